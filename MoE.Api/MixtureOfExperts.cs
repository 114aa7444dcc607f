using Core = MoE.Core;

namespace MoE.Api;

/// <summary>
/// A mixture of experts (Makkuva et al., eq. 1, with intercepts and a noise level per expert; docs/math.md §9):
/// expert z chosen by the softmax gate p_i(x) ∝ exp(&lt;w_i, x&gt; + c_i) with w_k = 0, c_k = 0, and
/// y = g(&lt;a_z, x&gt; + b_z) + ξ with ξ ~ N(0, σ_z²). The paper's model has b = 0, c = 0 and one σ; its sampler draws
/// x ~ N(0, I_d). Immutable.
/// </summary>
public sealed class MixtureOfExperts
{
    internal Core.MoeModel Inner { get; }

    internal MixtureOfExperts(Core.MoeModel core) => Inner = core;

    /// <summary>A model from its parameters (the arrays are copied).</summary>
    /// <param name="regressors">k×d, k ≥ 2; row i is the regressor a_i.</param>
    /// <param name="gating">(k−1)×d; row i is the gating vector w_i (the k-th gate is fixed at 0).</param>
    /// <param name="activation">The expert non-linearity g.</param>
    /// <param name="sigma">Noise standard deviation σ ≥ 0 (likelihoods need σ &gt; 0).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">k &lt; 2, inconsistent shapes, a non-finite value or σ &lt; 0; the
    /// message names the parameter and the offending shape or value.</exception>
    public static MixtureOfExperts Create(double[,] regressors, double[,] gating, Activation activation, double sigma)
    {
        ArgumentNullException.ThrowIfNull(regressors);
        ArgumentNullException.ThrowIfNull(gating);
        ArgumentNullException.ThrowIfNull(activation);
        return new(Core.MoeModelModule.Create(regressors, gating, activation.Inner, sigma));
    }

    /// <summary>A model of the general form: intercepts and a noise level per expert (the arrays are copied).</summary>
    /// <param name="regressors">k×d, k ≥ 2; row i is the regressor a_i.</param>
    /// <param name="regressorIntercepts">k intercepts b_i.</param>
    /// <param name="gating">(k−1)×d; row i is the gating vector w_i (the k-th gate is fixed at 0).</param>
    /// <param name="gatingIntercepts">k−1 gate intercepts c_i (c_k = 0).</param>
    /// <param name="activation">The expert non-linearity g.</param>
    /// <param name="sigmas">k noise levels σ_i ≥ 0.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">k &lt; 2, inconsistent shapes, a non-finite value or a negative σ_i; the
    /// message names the parameter and the offending shape or value.</exception>
    public static MixtureOfExperts Create(double[,] regressors, double[] regressorIntercepts, double[,] gating,
        double[] gatingIntercepts, Activation activation, double[] sigmas)
    {
        ArgumentNullException.ThrowIfNull(regressors);
        ArgumentNullException.ThrowIfNull(regressorIntercepts);
        ArgumentNullException.ThrowIfNull(gating);
        ArgumentNullException.ThrowIfNull(gatingIntercepts);
        ArgumentNullException.ThrowIfNull(activation);
        ArgumentNullException.ThrowIfNull(sigmas);
        return new(Core.MoeModelModule.CreateGeneral(regressors, regressorIntercepts, gating, gatingIntercepts,
            activation.Inner, sigmas));
    }

    /// <summary>Reads a model file (the JSON schema shared by fitted models and ground truths).</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="System.IO.InvalidDataException">A missing field, wrong shape or invalid value; the
    /// message gives the JSON path.</exception>
    public static MixtureOfExperts Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
        {
            throw new FileNotFoundException($"'{path}' is a directory, not a model file.", path);
        }

        return new(Core.ModelJson.Load(path));
    }

    /// <summary>Parses a model from JSON text.</summary>
    /// <param name="json">The text.</param>
    /// <exception cref="System.IO.InvalidDataException">See <see cref="Load"/>.</exception>
    public static MixtureOfExperts FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        return new(Core.ModelJson.Deserialize(json));
    }

    /// <summary>Writes the model file; numbers round-trip exactly. The file is replaced atomically: a failed write
    /// leaves the previous file.</summary>
    /// <param name="path">The file (created or replaced).</param>
    /// <exception cref="ArgumentException">The activation is custom (it has no file form).</exception>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Core.ModelJson.Save(path, Inner);
    }

    /// <summary>Writes the model as an ONNX file (docs/deploying.md): input <c>x</c> [rows, d], outputs <c>mean</c>
    /// [rows], <c>expert_means</c> and <c>gate</c> [rows, k], computed by standard operators (opset 17) exactly as
    /// <see cref="Predict(double[,])"/> computes them. The file is replaced atomically.</summary>
    /// <param name="path">The file (created or replaced); its folder must exist.</param>
    /// <param name="float32">Single-precision input, parameters and outputs (for runtimes without double kernels).</param>
    /// <exception cref="NotSupportedException">The activation is custom (.NET code has no ONNX form).</exception>
    /// <exception cref="IOException">The write failed.</exception>
    /// <exception cref="UnauthorizedAccessException">The folder is not writable, or the path is a directory.</exception>
    public void SaveOnnx(string path, bool float32 = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        Onnx.OnnxExport.Save(Inner, path, float32);
    }

    /// <summary>The model as a serialized ONNX model (see <see cref="SaveOnnx"/>).</summary>
    /// <param name="float32">Single-precision input, parameters and outputs.</param>
    /// <exception cref="NotSupportedException">The activation is custom.</exception>
    public byte[] ToOnnx(bool float32 = false) => Onnx.OnnxExport.ToBytes(Inner, float32);

    /// <summary>The model as JSON text.</summary>
    /// <exception cref="ArgumentException">The activation is custom.</exception>
    public string ToJson() => Core.ModelJson.Serialize(Inner);

    /// <summary>The experts' columns by name, in the order of a row of <see cref="Regressors"/>, when the model was
    /// fitted on data read with <see cref="ColumnRoles"/> (or its file records them); else null.</summary>
    public IReadOnlyList<string>? ExpertColumns => Inner.Design.ExpertNames?.Value;

    /// <summary>The gate's columns by name, in the order of a row of <see cref="Gating"/>, or null.</summary>
    public IReadOnlyList<string>? GateColumns => Inner.Design.GateNames?.Value;

    /// <summary>Which columns of an input row x (0-based, of <see cref="Dimension"/>) the experts read, in the order of a
    /// row of <see cref="Regressors"/>: every column, in order, unless the gate and the experts read different ones.</summary>
    public IReadOnlyList<int> ExpertInputs => Inner.Design.ExpertColumns;

    /// <summary>Which columns of an input row x (0-based) the gate reads, in the order of a row of <see cref="Gating"/>.</summary>
    public IReadOnlyList<int> GateInputs => Inner.Design.GateColumns;

    /// <summary>The categorical (text) columns the model reads, each with its levels, the reference first (its other
    /// levels are the inputs <c>column=level</c>); null without names.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>>? Levels =>
        Inner.Design.Columns?.Value.Levels.ToDictionary(l => l.Item1, l => (IReadOnlyList<string>)l.Item2);

    /// <summary>The response column's name, or null.</summary>
    public string? Response => Inner.Design.Columns?.Value.Response;

    /// <summary>Reads this model's data from a file (CSV, Parquet or a directory of shards): by the column names the
    /// model records (any order, other columns ignored), else by position (x1..xd, y), checked against d.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="InvalidDataException">A column the model needs is missing, or the file has not the model's
    /// inputs.</exception>
    public Dataset ReadData(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return new(Core.DataFiles.DataFor(Inner, path), Inner.Design.Columns is null ? null : Inner.Design);
    }

    /// <summary>Reads the inputs of new rows for this model: as <see cref="ReadData"/>, the response optional in a CSV
    /// file.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The n×d inputs, in the model's column order.</returns>
    /// <exception cref="InvalidDataException">As <see cref="ReadData"/>.</exception>
    /// <param name="missing">Refuse a missing value (the default), or read it as NaN: that row's predictions
    /// (<see cref="PredictDistribution"/> with <see cref="MissingValues.Drop"/>) are NaN and no row shifts.</param>
    public double[,] ReadCovariates(string path, MissingValues missing = MissingValues.Refuse)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Core.DataFiles.CovariatesFor(Inner, path, Missing(missing));
    }

    private static Core.MissingValues Missing(MissingValues missing) => missing switch
    {
        MissingValues.Refuse => Core.MissingValues.Refuse,
        MissingValues.Drop => Core.MissingValues.Drop,
        _ => throw new ArgumentOutOfRangeException(nameof(missing), missing, $"missing = {(int)missing} is not a defined MissingValues value."),
    };

    /// <summary>The number of experts k.</summary>
    public int Experts => Inner.Experts;

    /// <summary>Every parameter's name: a1[x1] … and b1 … (each expert's coefficients by column, and its intercept),
    /// w1[x1] … and c1 … (the gate's rows 1..k−1 against expert k), sigma1 … (the noise levels, for a family that has
    /// them) — the order of <see cref="ParameterValues"/>, of <see cref="ParameterErrors.InOrderOf"/> and of a
    /// bootstrap's arrays.</summary>
    public IReadOnlyList<string> ParameterNames => Core.Bootstrap.ParameterNames(Inner, Family.HasNoiseLevels());

    /// <summary>Every parameter's value, in the order of <see cref="ParameterNames"/>.</summary>
    public IReadOnlyList<double> ParameterValues => Core.Bootstrap.ParameterValues(Inner, Family.HasNoiseLevels());

    /// <summary>The input dimension d.</summary>
    public int Dimension => Inner.Dimension;

    /// <summary>A copy of the k×d regressors.</summary>
    public double[,] Regressors => (double[,])Inner.Regressors.Clone();

    /// <summary>A copy of the (k−1)×d gating parameters.</summary>
    public double[,] Gating => (double[,])Inner.Gating.Clone();

    /// <summary>The expert non-linearity.</summary>
    public Activation Activation => new(Inner.Activation);

    /// <summary>The experts' family: what kind of response each models (Gaussian, Poisson counts, Bernoulli 0/1).</summary>
    public ExpertFamily Family => ExpertFamilies.From(Inner.Family);

    /// <summary>This model with another expert family: the same linear predictors and gate; the noise levels kept for
    /// Gaussian experts, 1 (meaningless) for Poisson and Bernoulli ones.</summary>
    /// <param name="family">The family.</param>
    /// <exception cref="ArgumentException">The family needs the identity activation and the model has another.</exception>
    public MixtureOfExperts WithFamily(ExpertFamily family) => new(Core.MoeModelModule.WithFamily(ExpertFamilies.ToCore(family), Inner));

    /// <summary>The noise standard deviation σ: the common level, or √(mean σ_i²) when the experts' levels
    /// differ.</summary>
    public double Sigma => Inner.Sigma;

    /// <summary>A copy of the experts' intercepts b_i (k; zeros in the paper's model).</summary>
    public double[] RegressorIntercepts => (double[])Inner.RegressorIntercepts.Clone();

    /// <summary>A copy of the gate's intercepts c_i (k−1; c_k = 0; zeros in the paper's model).</summary>
    public double[] GatingIntercepts => (double[])Inner.GatingIntercepts.Clone();

    /// <summary>A copy of the experts' noise levels σ_i (k).</summary>
    public double[] Sigmas => (double[])Inner.Sigmas.Clone();

    /// <summary>The binomial model of these linear predictors and gate reading one more input column, the last, as
    /// each row's number of trials (docs/math.md §12.5); its samples draw the trials as round(10·e^(z/2)), at least 1.</summary>
    /// <exception cref="ArgumentException">The model already reads a row column, or its activation is not the
    /// identity.</exception>
    public MixtureOfExperts WithTrialsColumn() => new(Core.MoeModelModule.WithTrialsColumn(Inner));

    /// <summary>The input column of a binomial model's trials (0-based), or null for every other family.</summary>
    public int? TrialsInput =>
        Family == ExpertFamily.Binomial && Inner.Design.HasOffset ? Inner.Design.OffsetColumn : null;

    /// <summary>A copy of Student-t experts' degrees of freedom ν_i (k; empty for every other family).</summary>
    public double[] DegreesOfFreedom => (double[])Inner.DegreesOfFreedom.Clone();

    /// <summary>The same model with Student-t experts' degrees of freedom set.</summary>
    /// <param name="degreesOfFreedom">k values ν_i &gt; 0.</param>
    /// <exception cref="ArgumentException">The model's family is not Student-t, the count is not k, or a value is not
    /// finite and &gt; 0.</exception>
    public MixtureOfExperts WithDegreesOfFreedom(double[] degreesOfFreedom) =>
        new(Core.MoeModelModule.WithDegreesOfFreedom(degreesOfFreedom, Inner));

    /// <summary>Draws n samples. The same seed gives bit-identical data on any machine and core count.</summary>
    /// <param name="n">The number of samples, ≥ 1.</param>
    /// <param name="seed">The seed.</param>
    /// <exception cref="ArgumentOutOfRangeException">n &lt; 1.</exception>
    public Dataset Sample(int n, long seed) => new(Core.Sampler.Sample(Inner, n, seed));

    /// <summary>Draws n samples whose covariates are x = μ + s ⊙ u with u ~ N(0, I), the model being in those
    /// units (see <see cref="GroundTruth.InCovariateUnits"/>). The same seed gives bit-identical data.</summary>
    /// <param name="n">The number of samples, ≥ 1.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="covariateMean">μ (d).</param>
    /// <param name="covariateScale">s (d, every entry &gt; 0).</param>
    /// <exception cref="ArgumentException">A length that is not d, a non-finite value or a scale ≤ 0.</exception>
    public Dataset SampleCovariates(int n, long seed, double[] covariateMean, double[] covariateScale)
    {
        ArgumentNullException.ThrowIfNull(covariateMean);
        ArgumentNullException.ThrowIfNull(covariateScale);
        return new(Core.Sampler.SampleCovariates(covariateMean, covariateScale, Inner, n, seed));
    }

    /// <summary>Writes n samples from the model to a file, a batch of 1,048,576 rows at a time (bounded memory for any n):
    /// Parquet for a <c>.parquet</c> name (a row group per batch), CSV otherwise. The rows are those of
    /// <see cref="Sample"/> (or <see cref="SampleCovariates"/> when covariate units are given) with the same seed.</summary>
    /// <param name="path">The file (created or replaced atomically).</param>
    /// <param name="n">The number of samples, ≥ 1.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="covariateMean">μ (d) for covariates x = μ + s ⊙ u, or null for standard covariates.</param>
    /// <param name="covariateScale">s (d), with <paramref name="covariateMean"/>.</param>
    /// <returns>The rows written.</returns>
    /// <exception cref="ArgumentOutOfRangeException">n &lt; 1.</exception>
    /// <exception cref="ArgumentException">Covariate units of the wrong length, not finite, or a scale ≤ 0.</exception>
    /// <exception cref="IOException">The file cannot fit in the disk's free space (checked before writing, from a
    /// lower estimate of its size), or writing fails; the previous file, if any, is left as it was.</exception>
    public long SaveSample(string path, long n, long seed, double[]? covariateMean = null, double[]? covariateScale = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1L);
        if ((covariateMean is null) != (covariateScale is null))
        {
            throw new ArgumentException("Give the covariates' mean and scale together, or neither.", nameof(covariateScale));
        }

        var units = covariateMean is null
            ? Microsoft.FSharp.Core.FSharpOption<Tuple<double[], double[]>>.None
            : Microsoft.FSharp.Core.FSharpOption<Tuple<double[], double[]>>.Some(Tuple.Create(covariateMean, covariateScale!));
        Core.DataFiles.RequireSpace(path, Dimension, n);
        return Core.DataFiles.Write(path, Dimension, Core.Sampler.Batches(Inner, units, n, seed, 1 << 20));
    }

    /// <summary>Gate probabilities p_i(x) of every row of <paramref name="x"/>.</summary>
    /// <param name="x">n×d inputs.</param>
    /// <returns>n×k probabilities, each row summing to 1.</returns>
    /// <exception cref="ArgumentException">x does not have d columns, or holds a NaN or infinite value.</exception>
    public double[,] GateProbabilities(double[,] x) => Core.MoeModelModule.GateProbabilities(Inner, x);

    /// <summary>The conditional mean ŷ(x) = Σ_i p_i(x) g(&lt;a_i, x&gt; + b_i) of every row.</summary>
    /// <param name="x">n×d inputs.</param>
    /// <exception cref="ArgumentException">x does not have d columns, or holds a NaN or infinite value.</exception>
    public double[] Predict(double[,] x) => Core.MoeModelModule.Predict(Inner, x);

    /// <summary>One row's prediction without allocating, for code that scores a row at a time (the ML.NET mapping,
    /// a service): the gate probabilities and the expert means into the caller's buffers, the mixture mean returned —
    /// the same bits as <see cref="Predict"/> and <see cref="GateProbabilities"/> give for that row.</summary>
    /// <param name="x">Inputs with d columns (e.g. a reused 1×d buffer).</param>
    /// <param name="row">The row of <paramref name="x"/>.</param>
    /// <param name="gate">At least k values; receives p_i(x).</param>
    /// <param name="expertMeans">At least k values; receives g(⟨a_i, x⟩ + b_i).</param>
    /// <returns>The conditional mean ŷ(x).</returns>
    /// <exception cref="ArgumentException">x does not have d columns, the row is outside x, a buffer holds fewer
    /// than k values, or the row is not finite.</exception>
    public double PredictRow(double[,] x, int row, double[] gate, double[] expertMeans)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(gate);
        ArgumentNullException.ThrowIfNull(expertMeans);
        return Core.MoeModelModule.PredictRowInto(Inner, x, row, gate, expertMeans);
    }

    /// <summary>Predictions with each expert's mean, the gate and, for <paramref name="level"/> &gt; 0, the central
    /// predictive interval of the mixture Σ_i p_i f_i(y | x) at that probability, and its quantiles at
    /// <paramref name="quantiles"/> (docs/inference.md).</summary>
    /// <param name="x">n×d inputs.</param>
    /// <param name="level">The interval's probability in (0, 1), or 0 for none.</param>
    /// <exception cref="ArgumentException">x does not have d columns or is not finite, level is outside [0, 1), or a
    /// quantile's probability is outside (0, 1).</exception>
    /// <param name="missing">With <see cref="MissingValues.Drop"/>, a row holding NaN (a missing value read by
    /// <see cref="ReadCovariates"/>) gets NaN predictions; by default every value must be finite.</param>
    /// <param name="quantiles">Probabilities in (0, 1) whose predictive quantiles to compute
    /// (<see cref="Prediction.Quantiles"/>), e.g. 0.05, 0.5, 0.95; null for none.</param>
    public Prediction PredictDistribution(double[,] x, double level = 0, MissingValues missing = MissingValues.Refuse,
        IReadOnlyList<double>? quantiles = null)
    {
        var probabilities = quantiles?.ToArray() ?? [];
        return new(Missing(missing) == Core.MissingValues.Drop
            ? Core.Inference.PredictQuantilesWithMissing(Inner, level, probabilities, x)
            : Core.Inference.PredictQuantiles(Inner, level, probabilities, x));
    }

    /// <summary>Checks the model's predictive distributions on rows it was not fitted on (docs/inference.md §3.1): the
    /// probability integral transform and its uniformity (Kolmogorov–Smirnov), the log score, the CRPS and the coverage
    /// of the central intervals at <paramref name="levels"/>.</summary>
    /// <param name="holdout">Held-out rows (<see cref="ReadData"/> reads a file by the model's columns).</param>
    /// <param name="levels">The intervals' probabilities to count, each in (0, 1); null for 0.5 and 0.9.</param>
    /// <param name="seed">The seed of the randomised PIT of a count or a 0/1 outcome.</param>
    /// <exception cref="ArgumentException">The rows do not match the model, or a level is outside (0, 1).</exception>
    public CalibrationReport Check(Dataset holdout, IReadOnlyList<double>? levels = null, long seed = 1)
    {
        ArgumentNullException.ThrowIfNull(holdout);
        return new CalibrationReport(Core.Calibration.Check(Inner, levels?.ToArray() ?? [0.5, 0.9], seed, holdout.X, holdout.Y));
    }

    /// <summary>The highest-density region of each row's predictive law at probability <paramref name="level"/>: the
    /// smallest set that holds it, a union of intervals (one per mode) where separated experts make the law multimodal
    /// (docs/inference.md §3.3). A row holding NaN (a missing value) gets no intervals.</summary>
    /// <param name="x">n×d inputs.</param>
    /// <param name="level">The region's probability, in (0, 1).</param>
    /// <returns>For each row its intervals, in increasing order.</returns>
    /// <exception cref="ArgumentException">x does not have d columns, or level is outside (0, 1).</exception>
    public IReadOnlyList<(double Lower, double Upper)>[] HighestDensity(double[,] x, double level)
    {
        ArgumentNullException.ThrowIfNull(x);
        int n = x.GetLength(0), d = x.GetLength(1);
        var complete = Enumerable.Range(0, n).Where(r => Enumerable.Range(0, d).All(t => !double.IsNaN(x[r, t]))).ToArray();
        var rows = new double[complete.Length, d];
        for (var i = 0; i < complete.Length; i++)
        {
            for (var t = 0; t < d; t++)
            {
                rows[i, t] = x[complete[i], t];
            }
        }

        var found = complete.Length == 0
            ? []
            : Core.PredictiveRegions.HighestDensity(Inner, level, rows);
        var result = Enumerable.Range(0, n).Select(_ => (IReadOnlyList<(double, double)>)Array.Empty<(double, double)>()).ToArray();
        for (var i = 0; i < complete.Length; i++)
        {
            result[complete[i]] = found[i].Select(v => (v.Item1, v.Item2)).ToArray();
        }

        return result;
    }

    /// <summary>The split-conformal level (docs/inference.md §3.2): the probability whose central intervals
    /// (<see cref="PredictDistribution"/>) cover a new row with probability at least <paramref name="level"/> whatever
    /// the model's errors, calibrated on rows exchangeable with the new ones and not used in the fit.</summary>
    /// <param name="calibration">The calibration rows (<see cref="ReadData"/>).</param>
    /// <param name="level">The coverage wanted, in (0, 1).</param>
    /// <param name="seed">The seed of the randomised PIT of a count or a 0/1 outcome.</param>
    /// <returns>The level to ask <see cref="PredictDistribution"/> for.</returns>
    /// <exception cref="ArgumentException">level outside (0, 1), too few calibration rows for it, or rows that do not
    /// match the model.</exception>
    public double ConformalLevel(Dataset calibration, double level, long seed = 1)
    {
        ArgumentNullException.ThrowIfNull(calibration);
        return Core.Calibration.ConformalLevel(Inner, level, seed, calibration.X, calibration.Y);
    }

    /// <summary>Posterior responsibilities P(z = i | x, y).</summary>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>n×k responsibilities, each row summing to 1.</returns>
    /// <exception cref="ArgumentException">Shapes disagree, a value is NaN or infinite, or σ = 0.</exception>
    public double[,] Responsibilities(double[,] x, double[] y) => Core.MoeModelModule.Responsibilities(Inner, x, y);

    /// <summary>The total log-likelihood Σ log p(y | x).</summary>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <exception cref="ArgumentException">Shapes disagree, a value is NaN or infinite, or σ = 0.</exception>
    public double LogLikelihood(double[,] x, double[] y) => Core.MoeModelModule.LogLikelihood(Inner, x, y);

    /// <summary>Per-sample log-likelihoods log p(y_i | x_i).</summary>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <exception cref="ArgumentException">Shapes disagree, a value is NaN or infinite, or σ = 0.</exception>
    public double[] LogLikelihoods(double[,] x, double[] y) => Core.MoeModelModule.LogLikelihoods(Inner, x, y);
}
