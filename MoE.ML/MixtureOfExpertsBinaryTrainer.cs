using Microsoft.ML;
using Microsoft.ML.Data;
using MoE.Api;

namespace MoE.ML;

/// <summary>An ML.NET binary-classification trainer: a mixture of logistic (Bernoulli) experts with a softmax gate
/// (docs/math.md §12), fitted to a Boolean label and a known-size vector of <see cref="float"/> features. Its
/// transformer writes ML.NET's three binary outputs — <c>Score</c> (the logit of the probability, what the evaluators
/// rank by), <c>Probability</c> (P(label = true) = Σ_i p_i(x) σ(η_i)) and <c>PredictedLabel</c> (probability &gt; ½) —
/// so it works with <c>mlContext.BinaryClassification.Evaluate</c> and <c>CrossValidate</c>. Create it with
/// <c>mlContext.BinaryClassification.Trainers.MixtureOfExperts(...)</c>.</summary>
/// <remarks>Rows with a missing (NaN) feature are skipped in training; at prediction time they get missing outputs
/// (and PredictedLabel false). The fitted transformer saves and loads as the regression trainer's does (register this
/// assembly with <c>mlContext.ComponentCatalog.RegisterAssembly</c> before loading).</remarks>
public sealed class MixtureOfExpertsBinaryTrainer : IEstimator<MixtureOfExpertsTransformer>
{
    /// <summary>Options of <see cref="MixtureOfExpertsBinaryTrainer"/>: the columns, the outputs and the fit.</summary>
    public sealed class Options
    {
        /// <summary>The label column, a <see cref="bool"/> scalar (default <c>Label</c>).</summary>
        public string LabelColumnName { get; set; } = "Label";

        /// <summary>The feature column, a known-size vector of <see cref="float"/> (default <c>Features</c>).</summary>
        public string FeatureColumnName { get; set; } = "Features";

        /// <summary>The gate's own feature column, a known-size vector of <see cref="float"/>, or null (the default) for
        /// a gate that reads the feature column (as <see cref="MixtureOfExpertsTrainer.Options.GateFeatureColumnName"/>).</summary>
        public string? GateFeatureColumnName { get; set; }

        /// <summary>The column of each row's frequency weight, a <see cref="float"/> scalar, or null (the default): as
        /// <see cref="MixtureOfExpertsTrainer.Options.ExampleWeightColumnName"/>.</summary>
        public string? ExampleWeightColumnName { get; set; }

        /// <summary>The score column: the logit of the probability (default <c>Score</c>).</summary>
        public string ScoreColumnName { get; set; } = "Score";

        /// <summary>The probability column (default <c>Probability</c>).</summary>
        public string ProbabilityColumnName { get; set; } = "Probability";

        /// <summary>The predicted-label column, a Boolean (default <c>PredictedLabel</c>).</summary>
        public string PredictedLabelColumnName { get; set; } = "PredictedLabel";

        /// <summary>The output column of the k gate probabilities, or null (the default) for none.</summary>
        public string? GateColumnName { get; set; }

        /// <summary>The output column of the k experts' probabilities σ(η_i), or null (the default) for none.</summary>
        public string? ExpertsColumnName { get; set; }

        /// <summary>The fit (default: two experts with <see cref="FitOptions"/>' defaults). Its family is Bernoulli
        /// whatever it says; its activation must be the identity.</summary>
        public FitOptions Fit { get; set; } = new() { Experts = 2 };

        /// <summary>Receives each stage's progress while fitting (optional).</summary>
        public IProgress<FitProgress>? Progress { get; set; }

        /// <summary>Cancels a fit within one iteration.</summary>
        public CancellationToken CancellationToken { get; set; }
    }

    private readonly Options _options;
    private readonly FitOptions _fit;

    /// <summary>A trainer with the given options (copied).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="ArgumentNullException">options, its column names or its fit options are null.</exception>
    /// <exception cref="ArgumentException">A column name is empty, two outputs share a name or one starts with
    /// <c>MoE.</c>, or the fit asks for Poisson experts.</exception>
    public MixtureOfExpertsBinaryTrainer(Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.LabelColumnName, nameof(options.LabelColumnName));
        ArgumentException.ThrowIfNullOrWhiteSpace(options.FeatureColumnName, nameof(options.FeatureColumnName));
        ArgumentException.ThrowIfNullOrWhiteSpace(options.ScoreColumnName, nameof(options.ScoreColumnName));
        ArgumentException.ThrowIfNullOrWhiteSpace(options.ProbabilityColumnName, nameof(options.ProbabilityColumnName));
        ArgumentException.ThrowIfNullOrWhiteSpace(options.PredictedLabelColumnName, nameof(options.PredictedLabelColumnName));
        ArgumentNullException.ThrowIfNull(options.Fit, nameof(options.Fit));
        var outputs = new[]
        {
            options.ScoreColumnName, options.ProbabilityColumnName, options.PredictedLabelColumnName,
            options.GateColumnName, options.ExpertsColumnName,
        }.OfType<string>().ToArray();
        if (outputs.Distinct(StringComparer.Ordinal).Count() != outputs.Length)
        {
            throw new ArgumentException($"The output columns must have different names; got {string.Join(", ", outputs.Select(o => $"'{o}'"))}.", nameof(options));
        }

        if (outputs.Any(name => name.StartsWith("MoE.", StringComparison.Ordinal)))
        {
            throw new ArgumentException("Output column names starting with 'MoE.' are reserved for the mixture's own columns.", nameof(options));
        }

        if (options.Fit.Family is ExpertFamily.Poisson or ExpertFamily.StudentT or ExpertFamily.Binomial)
        {
            throw new ArgumentException($"A binary classifier's experts are Bernoulli (logistic), not {options.Fit.Family}; leave Fit.Family unset.", nameof(options));
        }

        _fit = options.Fit.Clone();
        _fit.Family = ExpertFamily.Bernoulli;
        _options = new Options
        {
            LabelColumnName = options.LabelColumnName,
            FeatureColumnName = options.FeatureColumnName,
            GateFeatureColumnName = options.GateFeatureColumnName,
            ExampleWeightColumnName = options.ExampleWeightColumnName,
            ScoreColumnName = options.ScoreColumnName,
            ProbabilityColumnName = options.ProbabilityColumnName,
            PredictedLabelColumnName = options.PredictedLabelColumnName,
            GateColumnName = options.GateColumnName,
            ExpertsColumnName = options.ExpertsColumnName,
            Fit = _fit,
            Progress = options.Progress,
            CancellationToken = options.CancellationToken,
        };
    }

    private BinaryColumns Binary => new(_options.ProbabilityColumnName, _options.PredictedLabelColumnName);

    /// <summary>Fits the mixture of logistic experts to <paramref name="input"/>'s label and feature columns.</summary>
    /// <param name="input">The training data.</param>
    /// <returns>The fitted transformer.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of the wrong type (ML.NET's
    /// "Schema mismatch" message).</exception>
    /// <exception cref="ArgumentException">Invalid fit options or too few rows; the message names the cause.</exception>
    /// <exception cref="OperationCanceledException">The options' token was cancelled.</exception>
    public MixtureOfExpertsTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var (data, skipped) = MixtureOfExpertsTrainer.ReadRoles(input, _options.LabelColumnName, _options.FeatureColumnName,
            _options.GateFeatureColumnName, BooleanDataViewType.Instance, _options.ExampleWeightColumnName);
        if (data is null)
        {
            throw new ArgumentException(
                $"No row to train on: every row of the {skipped} has a missing (NaN) feature.", nameof(input));
        }

        var fit = MoeLearner.Fit(data, _fit, _options.Progress, _options.CancellationToken);
        return new MixtureOfExpertsTransformer(fit, skipped, input, _options.FeatureColumnName,
            _options.ScoreColumnName, _options.GateColumnName, _options.ExpertsColumnName, Binary, _options.GateFeatureColumnName);
    }

    /// <summary>The schema after the transformer: the input's columns and the output columns.</summary>
    /// <param name="inputSchema">The input's shape.</param>
    /// <returns>The output's shape.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of the wrong type.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        MixtureOfExpertsTrainer.CheckShape(inputSchema, "label", _options.LabelColumnName, vector: false, BooleanDataViewType.Instance);
        MixtureOfExpertsTrainer.CheckShape(inputSchema, "feature", _options.FeatureColumnName, vector: true);
        if (_options.GateFeatureColumnName is { } gateFeatures)
        {
            MixtureOfExpertsTrainer.CheckShape(inputSchema, "gate feature", gateFeatures, vector: true);
        }

        return MixtureOfExpertsTransformer.Chain(new MLContext(), _options.FeatureColumnName, "{}", _options.ScoreColumnName,
            _options.GateColumnName, _options.ExpertsColumnName, Binary, _options.GateFeatureColumnName).GetOutputSchema(inputSchema);
    }
}
