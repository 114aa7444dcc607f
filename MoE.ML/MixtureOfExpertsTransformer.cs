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
    private readonly string? _gateFeatureColumnName;

    internal MixtureOfExpertsTransformer(FitResult fit, long skipped, IDataView training, string featureColumnName,
        string scoreColumnName, string? gateColumnName, string? expertsColumnName, BinaryColumns? binary = null,
        string? gateFeatureColumnName = null)
    {
        _gateFeatureColumnName = gateFeatureColumnName;
        Binary = binary;
        FitResult = fit;
        RowsSkipped = skipped;
        _featureColumnName = featureColumnName;
        ScoreColumnName = scoreColumnName;
        GateColumnName = gateColumnName;
        ExpertsColumnName = expertsColumnName;
        var context = new MLContext();
        // None of the chain's estimators reads a row: fitting it only checks the training data's schema.
        _chain = Chain(context, featureColumnName, fit.Model.ToJson(), scoreColumnName, gateColumnName, expertsColumnName,
                binary, gateFeatureColumnName)
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

    /// <summary>A binary classifier's probability and predicted-label columns (the score column then holds the logit
    /// of the probability), or null for a regression.</summary>
    public BinaryColumns? Binary { get; }

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
        // With a gate feature column the model's inputs are the features, then the gate's features.
        foreach (var (role, name, width) in _gateFeatureColumnName is null
                     ? [("feature", _featureColumnName, Model.Dimension)]
                     : new[] { ("feature", _featureColumnName, Model.Dimension - Model.Inner.GateDimension), ("gate feature", _gateFeatureColumnName, Model.Inner.GateDimension) })
        {
            var column = schema.GetColumnOrNull(name)
                ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Could not find {role} column '{name}'");
            if (column.Type is not VectorDataViewType { ItemType: var item, Size: var size } || item != NumberDataViewType.Single
                || size != width)
            {
                throw MixtureOfExpertsTrainer.SchemaMismatch(role, name, $"vector of Single of size {width}", column.Type.ToString() ?? "?");
            }
        }
    }

    /// <summary>Writes the mixture as an ONNX file (docs/deploying.md): the graph's input <c>x</c> is this trainer's
    /// feature column (d values a row, as double — or float, with <paramref name="float32"/> — rather than ML.NET's
    /// Single), its outputs the score (<c>mean</c>), <c>expert_means</c> and <c>gate</c>. ML.NET's own
    /// <c>mlContext.Model.ConvertToOnnx</c> cannot take this transformer: ML.NET exports only transformers that
    /// implement its internal <c>ICanSaveOnnx</c> interface, which code outside ML.NET cannot implement.</summary>
    /// <param name="path">The file (created or replaced atomically).</param>
    /// <param name="float32">Single-precision input, parameters and outputs.</param>
    public void SaveOnnx(string path, bool float32 = false) => Model.SaveOnnx(path, float32);

    /// <summary>Writes a whole pipeline that ends in the mixture — fitted, or loaded with <c>mlContext.Model.Load</c> —
    /// as one ONNX file (docs/deploying.md): the transforms before the trainer as ML.NET's own
    /// <c>ConvertToOnnx</c> writes them (Concatenate, normalizers and the other transforms ML.NET can export), followed
    /// by the mixture's graph reading their feature column. The file's inputs are the pipeline's input columns that
    /// the score depends on, as ML.NET's converter names and shapes them ([rows, 1] for a scalar column); its outputs
    /// are <c>mean</c> (the Score), <c>expert_means</c> and <c>gate</c>.</summary>
    /// <param name="context">The ML.NET context.</param>
    /// <param name="pipeline">The pipeline; its last step is the mixture's transformer.</param>
    /// <param name="input">Data with the pipeline's input schema (ML.NET's converter reads the schema).</param>
    /// <param name="path">The file (created or replaced atomically).</param>
    /// <param name="float32">Compute the mixture in single precision (ML.NET's features are Single either way).</param>
    /// <param name="featureColumnName">The trainer's feature column.</param>
    /// <exception cref="ArgumentException">The pipeline holds no mixture or several, has steps after it, or the
    /// mixture reads another feature column.</exception>
    /// <exception cref="NotSupportedException">A step before the mixture that ML.NET cannot convert to ONNX (ML.NET's
    /// message says which).</exception>
    public static void SaveOnnx(MLContext context, ITransformer pipeline, IDataView input, string path,
        bool float32 = false, string featureColumnName = "Features")
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(featureColumnName);
        var steps = pipeline is IEnumerable<ITransformer> chain ? chain.ToList() : [pipeline];
        var models = steps.Count == 0 ? [] : ModelsIn(steps[^1]);
        var before = steps.Take(Math.Max(0, steps.Count - 1)).Sum(s => ModelsIn(s).Count);
        if (models.Count != 1 || before != 0)
        {
            throw new ArgumentException(
                models.Count + before == 0
                    ? "The pipeline holds no mixture of experts."
                    : "An ONNX export of a pipeline takes one mixture of experts as the pipeline's last step; "
                      + $"this one holds {models.Count + before}, {(before > 0 ? "with steps after one" : "in its last step")}.",
                nameof(pipeline));
        }

        if (steps[^1] is MixtureOfExpertsTransformer fitted && fitted._featureColumnName != featureColumnName)
        {
            throw new ArgumentException(
                $"The mixture reads the feature column '{fitted._featureColumnName}', not '{featureColumnName}'.",
                nameof(featureColumnName));
        }

        // The model's input row — the features, then the gate's features when it reads its own column — is the first
        // step of the mixture's saved chain (Chain: a CopyColumns or a Concatenate into MoE.Features), an ML.NET transform
        // its converter exports; a fitted transformer's is built the same way over the steps before it.
        var prefix = new TransformerChain<ITransformer>(steps.Take(steps.Count - 1).ToArray());
        var inputs = steps[^1] switch
        {
            MixtureOfExpertsTransformer m => (m._gateFeatureColumnName is { } gate
                    ? (IEstimator<ITransformer>)context.Transforms.Concatenate(MappingColumns.Features, m._featureColumnName, gate)
                    : context.Transforms.CopyColumns(MappingColumns.Features, m._featureColumnName))
                .Fit(prefix.Transform(input)),
            IEnumerable<ITransformer> saved when FirstLeaf(saved) is { } first
                && first.GetOutputSchema(prefix.Transform(input).Schema).GetColumnOrNull(MappingColumns.Features) is not null => first,
            _ => throw new ArgumentException("The pipeline's last step is not a mixture of experts the toolkit built.", nameof(pipeline)),
        };

        using var stream = new MemoryStream();
        context.Model.ConvertToOnnx(new TransformerChain<ITransformer>([.. prefix, inputs]), input, stream);
        var bytes = Onnx.OnnxExport.Append(stream.ToArray(), MappingColumns.Features + ".output", models[0].Inner, float32);
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    /// <summary>The first transform of a (nested) chain: a loaded mixture is a chain whose first element is the chain of
    /// <see cref="Chain"/>.</summary>
    private static ITransformer? FirstLeaf(IEnumerable<ITransformer> chain) =>
        chain.FirstOrDefault() switch
        {
            IEnumerable<ITransformer> inner => FirstLeaf(inner),
            var leaf => leaf,
        };

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
        string scoreColumnName, string? gateColumnName, string? expertsColumnName, BinaryColumns? binary = null,
        string? gateFeatureColumnName = null)
    {
        // The model's inputs: the features, then (when the gate reads its own column) the gate's features.
        IEstimator<ITransformer> chain = (gateFeatureColumnName is null
                ? (IEstimator<ITransformer>)context.Transforms.CopyColumns(MappingColumns.Features, featureColumnName)
                : context.Transforms.Concatenate(MappingColumns.Features, featureColumnName, gateFeatureColumnName))
            .Append(context.Transforms.CustomMapping(new KeyMappingFactory().GetMapping(), KeyMappingFactory.ContractName))
            .Append(context.Transforms.Conversion.MapValue(MappingColumns.Model,
                [new KeyValuePair<int, string>(MappingColumns.KeyValue, modelJson)], MappingColumns.Key))
            .Append(context.Transforms.CustomMapping(new ScoreMappingFactory().GetMapping(), ScoreMappingFactory.ContractName));
        if (binary is not null)
        {
            // A Bernoulli mixture's mean is P(y = 1): ML.NET's binary evaluators read it as Probability, rank by Score
            // (its logit) and count PredictedLabel (p > ½).
            chain = chain
                .Append(context.Transforms.CustomMapping(new BinaryMappingFactory().GetMapping(), BinaryMappingFactory.ContractName))
                .Append(context.Transforms.CopyColumns(scoreColumnName, MappingColumns.Logit))
                .Append(context.Transforms.CopyColumns(binary.ProbabilityColumnName, MappingColumns.Probability))
                .Append(context.Transforms.CopyColumns(binary.PredictedLabelColumnName, MappingColumns.PredictedLabel))
                .Append(context.Transforms.DropColumns(MappingColumns.Logit, MappingColumns.Probability,
                    MappingColumns.PredictedLabel));
        }
        else
        {
            chain = chain.Append(context.Transforms.CopyColumns(scoreColumnName, MappingColumns.Score));
        }

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

/// <summary>The output columns a binary classifier adds beside its score (ML.NET's names by default).</summary>
/// <param name="ProbabilityColumnName">P(y = 1).</param>
/// <param name="PredictedLabelColumnName">p &gt; ½, a Boolean.</param>
public sealed record BinaryColumns(string ProbabilityColumnName = "Probability", string PredictedLabelColumnName = "PredictedLabel");
