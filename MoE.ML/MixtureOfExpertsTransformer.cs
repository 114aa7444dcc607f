using Microsoft.ML;
using Microsoft.ML.Data;
using MoE.Api;
using MoE.ML.Mapping;

namespace MoE.ML;

/// <summary>A fitted mixture of experts in an ML.NET pipeline: adds the mixture mean (and, if asked, the gate
/// probabilities and the expert means) to every row; the input's other columns pass through.</summary>
/// <remarks>
/// It saves with <c>mlContext.Model.Save</c> as a chain of ML.NET's own transforms that carries the model's JSON
/// (see docs/ml-net.md); <c>mlContext.Model.Load</c> gives that chain back — an <see cref="ITransformer"/> with the same
/// predictions, bit for bit — once this assembly is registered:
/// <c>mlContext.ComponentCatalog.RegisterAssembly(typeof(MixtureOfExpertsTrainer).Assembly)</c>.
/// </remarks>
public sealed class MixtureOfExpertsTransformer : ITransformer
{
    private readonly ITransformer _chain;
    private readonly string _featureColumnName;

    internal MixtureOfExpertsTransformer(FitResult fit, long skipped, IDataView training, string featureColumnName,
        string scoreColumnName, string? gateColumnName, string? expertsColumnName)
    {
        FitResult = fit;
        RowsSkipped = skipped;
        _featureColumnName = featureColumnName;
        ScoreColumnName = scoreColumnName;
        GateColumnName = gateColumnName;
        ExpertsColumnName = expertsColumnName;
        var context = new MLContext();
        // None of the chain's estimators reads a row: fitting it only checks the training data's schema.
        _chain = Chain(context, featureColumnName, fit.Model.ToJson(), scoreColumnName, gateColumnName, expertsColumnName)
            .Fit(training);
    }

    /// <summary>The fitted mixture (in the features' units).</summary>
    public MixtureOfExperts Model => FitResult.Model;

    /// <summary>The whole fit: initializer, candidates, stages, warnings.</summary>
    public FitResult FitResult { get; }

    /// <summary>Training rows skipped for a missing (NaN) label or feature.</summary>
    public long RowsSkipped { get; }

    /// <summary>The column the mixture mean is written to.</summary>
    public string ScoreColumnName { get; }

    /// <summary>The column of the gate probabilities, or null.</summary>
    public string? GateColumnName { get; }

    /// <summary>The column of the expert means, or null.</summary>
    public string? ExpertsColumnName { get; }

    /// <inheritdoc />
    public bool IsRowToRowMapper => _chain.IsRowToRowMapper;

    /// <inheritdoc />
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        CheckFeatures(inputSchema);
        return _chain.GetOutputSchema(inputSchema);
    }

    /// <inheritdoc />
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        CheckFeatures(inputSchema);
        return _chain.GetRowToRowMapper(inputSchema);
    }

    /// <inheritdoc />
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        CheckFeatures(input.Schema);
        return _chain.Transform(input);
    }

    /// <summary>Saves the transformer as the chain of ML.NET transforms that computes it (it loads as that chain).</summary>
    /// <param name="ctx">The save context.</param>
    void ICanSaveModel.Save(ModelSaveContext ctx) => _chain.Save(ctx);

    private void CheckFeatures(DataViewSchema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var column = schema.GetColumnOrNull(_featureColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Could not find feature column '{_featureColumnName}'");
        if (column.Type is not VectorDataViewType { ItemType: var item, Size: var size } || item != NumberDataViewType.Single
            || size != Model.Dimension)
        {
            throw MixtureOfExpertsTrainer.SchemaMismatch("feature", _featureColumnName,
                $"vector of Single of size {Model.Dimension}", column.Type.ToString() ?? "?");
        }
    }

    /// <summary>The mixtures inside a pipeline, in pipeline order — also one loaded with <c>mlContext.Model.Load</c>,
    /// where the trainer's transformer has become the chain of ML.NET transforms that carries the model (docs/ml-net.md):
    /// the model's JSON is read back from that chain's value map.</summary>
    /// <param name="model">A fitted or loaded pipeline (any <see cref="ITransformer"/>).</param>
    /// <returns>The models (empty when the pipeline has no mixture).</returns>
    public static IReadOnlyList<MixtureOfExperts> ModelsIn(ITransformer model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var found = new List<MixtureOfExperts>();
        var context = new MLContext();
        var key = context.Data.LoadFromEnumerable(new[] { new KeyOutput { Key = MappingColumns.KeyValue } });
        void Visit(ITransformer t)
        {
            switch (t)
            {
                case MixtureOfExpertsTransformer moe:
                    found.Add(moe.Model);
                    break;
                case Microsoft.ML.Transforms.ValueMappingTransformer map
                    when map.GetOutputSchema(key.Schema).GetColumnOrNull(MappingColumns.Model) is { } column:
                    var mapped = map.Transform(key);
                    using (var cursor = mapped.GetRowCursor([mapped.Schema[column.Name]]))
                    {
                        var getter = cursor.GetGetter<ReadOnlyMemory<char>>(mapped.Schema[column.Name]);
                        var json = default(ReadOnlyMemory<char>);
                        if (cursor.MoveNext())
                        {
                            getter(ref json);
                            found.Add(MixtureOfExperts.FromJson(json.ToString()));
                        }
                    }

                    break;
                case IEnumerable<ITransformer> chain:
                    foreach (var inner in chain)
                    {
                        Visit(inner);
                    }

                    break;
            }
        }

        Visit(model);
        return found;
    }

    /// <summary>The transforms that compute the mixture's outputs from the features (Mapping.cs explains the chain).</summary>
    internal static IEstimator<ITransformer> Chain(MLContext context, string featureColumnName, string modelJson,
        string scoreColumnName, string? gateColumnName, string? expertsColumnName)
    {
        IEstimator<ITransformer> chain = context.Transforms.CopyColumns(MappingColumns.Features, featureColumnName)
            .Append(context.Transforms.CustomMapping(new KeyMappingFactory().GetMapping(), KeyMappingFactory.ContractName))
            .Append(context.Transforms.Conversion.MapValue(MappingColumns.Model,
                [new KeyValuePair<int, string>(MappingColumns.KeyValue, modelJson)], MappingColumns.Key))
            .Append(context.Transforms.CustomMapping(new ScoreMappingFactory().GetMapping(), ScoreMappingFactory.ContractName))
            .Append(context.Transforms.CopyColumns(scoreColumnName, MappingColumns.Score));
        if (gateColumnName is not null)
        {
            chain = chain.Append(context.Transforms.CopyColumns(gateColumnName, MappingColumns.Gate));
        }

        if (expertsColumnName is not null)
        {
            chain = chain.Append(context.Transforms.CopyColumns(expertsColumnName, MappingColumns.Experts));
        }

        return chain.Append(context.Transforms.DropColumns(MappingColumns.Features, MappingColumns.Key, MappingColumns.Model,
            MappingColumns.Score, MappingColumns.Gate, MappingColumns.Experts));
    }
}
