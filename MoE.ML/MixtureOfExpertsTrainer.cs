using Microsoft.ML;
using Microsoft.ML.Data;
using MoE.Api;
using MoE.ML.Mapping;

namespace MoE.ML;

/// <summary>An ML.NET regression trainer that fits a mixture of experts (<see cref="MoeLearner.Fit"/>) to a label
/// column and a known-size vector of <see cref="float"/> features; its transformer writes the mixture mean to
/// <c>Score</c> and, on request, the gate probabilities and each expert's mean. Create it with
/// <c>mlContext.Regression.Trainers.MixtureOfExperts(...)</c>.</summary>
/// <remarks>
/// Rows with a missing (NaN) label or feature are skipped in training, as ML.NET's own trainers do
/// (<see cref="MixtureOfExpertsTransformer.RowsSkipped"/> counts them); at prediction time such a row gets NaN
/// outputs. The data are read once into memory in double precision. The fitted transformer saves with
/// <c>mlContext.Model.Save</c>; to load it, register this assembly first:
/// <c>mlContext.ComponentCatalog.RegisterAssembly(typeof(MixtureOfExpertsTrainer).Assembly)</c>.
/// </remarks>
public sealed class MixtureOfExpertsTrainer : IEstimator<MixtureOfExpertsTransformer>
{
    /// <summary>Options of <see cref="MixtureOfExpertsTrainer"/>: the columns, the outputs and everything
    /// <see cref="FitOptions"/> has.</summary>
    public sealed class Options
    {
        /// <summary>The label column, a <see cref="float"/> scalar (default <c>Label</c>).</summary>
        public string LabelColumnName { get; set; } = "Label";

        /// <summary>The feature column, a known-size vector of <see cref="float"/> (default <c>Features</c>).</summary>
        public string FeatureColumnName { get; set; } = "Features";

        /// <summary>The output column of the mixture mean (default <c>Score</c>, where ML.NET's evaluators look).</summary>
        public string ScoreColumnName { get; set; } = "Score";

        /// <summary>The gate's own feature column, a known-size vector of <see cref="float"/>, or null (the default) for
        /// a gate that reads the feature column: the experts then read <see cref="FeatureColumnName"/> and the gate this
        /// one (docs/data.md; flexmix's concomitant variables).</summary>
        public string? GateFeatureColumnName { get; set; }

        /// <summary>The column of each row's frequency weight, a <see cref="float"/> scalar, or null (the default) for
        /// a weight of 1 on every row: a row of weight w counts w times, so integer weights fit as the rows repeated
        /// (docs/data.md). A row with a missing (NaN) weight is skipped as one with a missing label; a negative or
        /// infinite weight is refused, naming the row.</summary>
        public string? ExampleWeightColumnName { get; set; }

        /// <summary>The output column of the k gate probabilities, or null (the default) for none.</summary>
        public string? GateColumnName { get; set; }

        /// <summary>The output column of the k expert means, or null (the default) for none.</summary>
        public string? ExpertsColumnName { get; set; }

        /// <summary>The fit: the number of experts, the activation, the method, the seed and the rest (default: two
        /// identity experts with <see cref="FitOptions"/>' defaults).</summary>
        public FitOptions Fit { get; set; } = new() { Experts = 2 };

        /// <summary>Receives each stage's progress while fitting (optional).</summary>
        public IProgress<FitProgress>? Progress { get; set; }

        /// <summary>Cancels a fit within one iteration.</summary>
        public CancellationToken CancellationToken { get; set; }
    }

    private readonly Options _options;

    /// <summary>A trainer with the given options (copied: later changes to <paramref name="options"/> do not reach it).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="ArgumentNullException">options, its column names or its fit options are null.</exception>
    /// <exception cref="ArgumentException">A column name is empty, an output name repeats another or starts with
    /// <c>MoE.</c>, or the activation is a custom one (a pipeline carries the model as JSON, which cannot hold it).</exception>
    public MixtureOfExpertsTrainer(Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.LabelColumnName, nameof(options.LabelColumnName));
        ArgumentException.ThrowIfNullOrWhiteSpace(options.FeatureColumnName, nameof(options.FeatureColumnName));
        ArgumentException.ThrowIfNullOrWhiteSpace(options.ScoreColumnName, nameof(options.ScoreColumnName));
        ArgumentNullException.ThrowIfNull(options.Fit, nameof(options.Fit));
        var outputs = new[] { options.ScoreColumnName, options.GateColumnName, options.ExpertsColumnName }.OfType<string>().ToArray();
        if (outputs.Distinct(StringComparer.Ordinal).Count() != outputs.Length)
        {
            throw new ArgumentException($"The output columns must have different names; got score '{options.ScoreColumnName}', gate '{options.GateColumnName}', experts '{options.ExpertsColumnName}'.", nameof(options));
        }

        if (options.Fit.Activation is { IsBuiltIn: false } custom)
        {
            throw new ArgumentException(
                $"The custom activation '{custom.Name}' cannot go into an ML.NET pipeline: the transformer carries the model as JSON, which holds only the built-in activations (identity, relu, leaky-relu, sigmoid, tanh).", nameof(options));
        }

        if (outputs.Any(name => name.StartsWith("MoE.", StringComparison.Ordinal)))
        {
            throw new ArgumentException("Output column names starting with 'MoE.' are reserved for the mixture's own columns.", nameof(options));
        }

        _options = new Options
        {
            LabelColumnName = options.LabelColumnName,
            FeatureColumnName = options.FeatureColumnName,
            ScoreColumnName = options.ScoreColumnName,
            GateFeatureColumnName = options.GateFeatureColumnName,
            ExampleWeightColumnName = options.ExampleWeightColumnName,
            GateColumnName = options.GateColumnName,
            ExpertsColumnName = options.ExpertsColumnName,
            Fit = options.Fit.Clone(),
            Progress = options.Progress,
            CancellationToken = options.CancellationToken,
        };
    }

    /// <summary>Fits the mixture to <paramref name="input"/>'s label and feature columns.</summary>
    /// <param name="input">The training data.</param>
    /// <returns>The fitted transformer.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of the wrong type (ML.NET's
    /// "Schema mismatch" message).</exception>
    /// <exception cref="ArgumentException">Invalid fit options or too few rows; the message names the cause.</exception>
    /// <exception cref="FitDivergedException">The fit diverged.</exception>
    /// <exception cref="OperationCanceledException">The options' token was cancelled.</exception>
    public MixtureOfExpertsTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var (data, skipped) = ReadRoles(input, _options.LabelColumnName, _options.FeatureColumnName,
            _options.GateFeatureColumnName, NumberDataViewType.Single, _options.ExampleWeightColumnName);
        if (data is null)
        {
            throw new ArgumentException(
                $"No row to train on: every row of the {skipped} has a missing (NaN) label or feature.", nameof(input));
        }

        var fit = MoeLearner.Fit(data, _options.Fit, _options.Progress, _options.CancellationToken);
        return new MixtureOfExpertsTransformer(fit, skipped, input, _options.FeatureColumnName,
            _options.ScoreColumnName, _options.GateColumnName, _options.ExpertsColumnName, null, _options.GateFeatureColumnName);
    }

    /// <summary>The schema after the transformer: the input's columns and the output columns.</summary>
    /// <param name="inputSchema">The input's shape.</param>
    /// <returns>The output's shape.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of the wrong type.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        CheckShape(inputSchema, "label", _options.LabelColumnName, vector: false);
        CheckShape(inputSchema, "feature", _options.FeatureColumnName, vector: true);
        if (_options.GateFeatureColumnName is { } gateFeatures)
        {
            CheckShape(inputSchema, "gate feature", gateFeatures, vector: true);
        }

        // The same chain of transforms the fitted transformer runs, over a placeholder model: its shape is the answer.
        return MixtureOfExpertsTransformer.Chain(new MLContext(), _options.FeatureColumnName, "{}", _options.ScoreColumnName,
            _options.GateColumnName, _options.ExpertsColumnName, null, _options.GateFeatureColumnName).GetOutputSchema(inputSchema);
    }

    internal static void CheckShape(SchemaShape schema, string role, string name, bool vector, DataViewType? itemType = null)
    {
        var item = itemType ?? NumberDataViewType.Single;
        int index = Enumerable.Range(0, schema.Count).FirstOrDefault(i => schema[i].Name == name, -1);
        if (index < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(schema), $"Could not find {role} column '{name}'");
        }

        var column = schema[index];
        bool ok = column.ItemType == item && !column.IsKey
            && (vector ? column.Kind == SchemaShape.Column.VectorKind.Vector : column.Kind == SchemaShape.Column.VectorKind.Scalar);
        if (!ok)
        {
            throw SchemaMismatch(role, name, vector ? $"known-size vector of {item}" : $"{item}", TypeString(column));
        }
    }

    private static string TypeString(SchemaShape.Column column)
    {
        string item = column.IsKey ? $"Key<{column.ItemType}>" : $"{column.ItemType}";
        return column.Kind switch
        {
            SchemaShape.Column.VectorKind.Vector => $"Vector<{item}>",
            SchemaShape.Column.VectorKind.VariableVector => $"VarVector<{item}>",
            _ => item,
        };
    }

    internal static ArgumentOutOfRangeException SchemaMismatch(string role, string name, string expected, string got) =>
        new("schema", $"Schema mismatch for {role} column '{name}': expected {expected}, got {got}");

    private (DataViewSchema.Column Label, DataViewSchema.Column Features) Columns(DataViewSchema schema) =>
        Columns(schema, _options.LabelColumnName, _options.FeatureColumnName, NumberDataViewType.Single);

    /// <summary>The label and feature columns, checked: a label of the given type, a known-size vector of Single.</summary>
    internal static (DataViewSchema.Column Label, DataViewSchema.Column Features) Columns(DataViewSchema schema,
        string labelColumnName, string featureColumnName, DataViewType labelType)
    {
        var label = schema.GetColumnOrNull(labelColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Could not find label column '{labelColumnName}'");
        var features = schema.GetColumnOrNull(featureColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Could not find feature column '{featureColumnName}'");
        if (label.Type != labelType)
        {
            throw SchemaMismatch("label", label.Name, labelType.ToString() ?? "?", label.Type.ToString() ?? "?");
        }

        if (features.Type is not VectorDataViewType { IsKnownSize: true } v || v.ItemType != NumberDataViewType.Single)
        {
            throw SchemaMismatch("feature", features.Name, "known-size vector of Single", features.Type.ToString() ?? "?");
        }

        return (label, features);
    }

    /// <summary>The label and the features (and the gate's own features, when named) read as a dataset: with a gate
    /// feature column the inputs are the features then the gate's features, the experts reading the first and the gate
    /// the second (a split design).</summary>
    internal static (Dataset? Data, long Skipped) ReadRoles(IDataView input, string labelColumnName, string featureColumnName,
        string? gateFeatureColumnName, DataViewType labelType, string? weightColumnName = null)
    {
        var (label, features) = Columns(input.Schema, labelColumnName, featureColumnName, labelType);
        DataViewSchema.Column? WeightOf(DataViewSchema schema)
        {
            if (weightColumnName is null)
            {
                return null;
            }

            var weight = schema.GetColumnOrNull(weightColumnName)
                ?? throw new ArgumentOutOfRangeException(nameof(input), $"Could not find weight column '{weightColumnName}'");
            if (weight.Type != NumberDataViewType.Single)
            {
                throw SchemaMismatch("weight", weight.Name, NumberDataViewType.Single.ToString() ?? "?", weight.Type.ToString() ?? "?");
            }

            return weight;
        }

        if (gateFeatureColumnName is null)
        {
            return Read(input, label, features, WeightOf(input.Schema));
        }

        var (_, gate) = Columns(input.Schema, labelColumnName, gateFeatureColumnName, labelType);
        int dE = ((VectorDataViewType)features.Type).Size, dG = ((VectorDataViewType)gate.Type).Size;
        const string all = "MoE.AllFeatures";
        var joined = new MLContext().Transforms.Concatenate(all, featureColumnName, gateFeatureColumnName).Fit(input).Transform(input);
        var (data, skipped) = Read(joined, joined.Schema[labelColumnName], joined.Schema[all], WeightOf(joined.Schema));
        var design = Core.DesignModule.Create(dE + dG, Enumerable.Range(0, dE).ToArray(), Enumerable.Range(dE, dG).ToArray());
        return (data is null ? null : new Dataset(data.Inner, design), skipped);
    }

    /// <summary>One pass over the rows into double-precision arrays; rows with a NaN label, feature or weight are
    /// skipped.</summary>
    internal static (Dataset? Data, long Skipped) Read(IDataView input, DataViewSchema.Column label, DataViewSchema.Column features,
        DataViewSchema.Column? weight = null)
    {
        int d = ((VectorDataViewType)features.Type).Size;
        var xs = new List<double>();
        var ys = new List<double>();
        var ws = new List<double>();
        long skipped = 0;
        long position = 0;
        using (var cursor = input.GetRowCursor(weight is { } wc ? [label, features, wc] : [label, features]))
        {
            ValueGetter<float>? getWeight = weight is { } w ? cursor.GetGetter<float>(w) : null;
            float rowWeight = 1;
            // A Boolean label (a binary classifier's) is read as 1 or 0.
            ValueGetter<float> getLabel = label.Type == BooleanDataViewType.Instance
                ? Bool(cursor.GetGetter<bool>(label))
                : cursor.GetGetter<float>(label);
            var getFeatures = cursor.GetGetter<VBuffer<float>>(features);
            float y = 0;
            var buffer = default(VBuffer<float>);
            var row = new double[d];
            while (cursor.MoveNext())
            {
                getLabel(ref y);
                getFeatures(ref buffer);
                bool finite = float.IsFinite(y);
                Array.Clear(row);
                var values = buffer.GetValues();
                if (buffer.IsDense)
                {
                    for (int j = 0; j < d; j++)
                    {
                        row[j] = values[j];
                    }
                }
                else
                {
                    var indices = buffer.GetIndices();
                    for (int t = 0; t < indices.Length; t++)
                    {
                        row[indices[t]] = values[t];
                    }
                }

                foreach (var v in row)
                {
                    finite &= double.IsFinite(v);
                }

                position++;
                if (getWeight is not null)
                {
                    getWeight(ref rowWeight);
                    finite &= !float.IsNaN(rowWeight);
                    if (float.IsInfinity(rowWeight) || rowWeight < 0)
                    {
                        throw new ArgumentException(
                            $"Row {position} has the weight {rowWeight.ToString("R", System.Globalization.CultureInfo.InvariantCulture)} in the column '{weight!.Value.Name}'; a frequency weight is a finite number of at least 0 (0 leaves the row out).",
                            nameof(input));
                    }
                }

                if (!finite)
                {
                    skipped++;
                    continue;
                }

                ys.Add(y);
                xs.AddRange(row);
                ws.Add(rowWeight);
            }
        }

        if (ys.Count == 0)
        {
            return (null, skipped);
        }

        var x = new double[ys.Count, d];
        for (int i = 0; i < ys.Count; i++)
        {
            for (int j = 0; j < d; j++)
            {
                x[i, j] = xs[i * d + j];
            }
        }

        return (weight is null ? Dataset.FromArrays(x, ys.ToArray()) : Dataset.FromArrays(x, ys.ToArray(), ws.ToArray()), skipped);
    }

    private static ValueGetter<float> Bool(ValueGetter<bool> getter)
    {
        bool b = false;
        return (ref float value) =>
        {
            getter(ref b);
            value = b ? 1f : 0f;
        };
    }
}
