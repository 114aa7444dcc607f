using Microsoft.FSharp.Core;

namespace MoE.Api;

/// <summary>How <see cref="MoeLearner.Fit"/> computes standard errors (docs/inference.md).</summary>
public enum StandardErrorKind
{
    /// <summary>None (the default: they cost about 2p likelihood-gradient passes for p parameters).</summary>
    None,

    /// <summary>The inverse observed information (right when the model is right).</summary>
    Observed,

    /// <summary>The sandwich H⁻¹ J H⁻¹ (robust to a misspecified noise model).</summary>
    Sandwich,
}

/// <summary>Standard errors of every parameter of a fitted model, in the same shapes and units as the model's own
/// arrays, with Wald intervals.</summary>
public sealed class ParameterErrors
{
    internal ParameterErrors(Core.StandardErrors inner)
    {
        Inner = inner;
        Regressors = inner.Regressors;
        RegressorIntercepts = inner.RegressorIntercepts;
        Gating = inner.Gating;
        GatingIntercepts = inner.GatingIntercepts;
        Sigmas = inner.Sigmas;
        Method = inner.Method == "sandwich" ? StandardErrorKind.Sandwich : StandardErrorKind.Observed;
        Conditioning = inner.Conditioning;
    }

    internal Core.StandardErrors Inner { get; }

    /// <summary>The errors in the order of <see cref="MixtureOfExperts.ParameterNames"/> (one value per named
    /// parameter of <paramref name="model"/>, the model these errors are of; a noise level that was given, not fitted,
    /// has error 0).</summary>
    /// <param name="model">The model.</param>
    public IReadOnlyList<double> InOrderOf(MixtureOfExperts model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Core.Bootstrap.ParameterErrors(model.Inner, Inner, model.Family.HasNoiseLevels());
    }

    /// <summary>k×d standard errors of the regressors.</summary>
    public double[,] Regressors { get; }

    /// <summary>k standard errors of the expert intercepts (empty without intercepts).</summary>
    public double[] RegressorIntercepts { get; }

    /// <summary>(k−1)×d standard errors of the gating rows (the k-th row is 0 by definition, not a parameter).</summary>
    public double[,] Gating { get; }

    /// <summary>k−1 standard errors of the gate intercepts (empty without intercepts).</summary>
    public double[] GatingIntercepts { get; }

    /// <summary>k standard errors of the noise levels (zeros when σ was given, not fitted; empty for Poisson and
    /// Bernoulli experts, which have none).</summary>
    public double[] Sigmas { get; }

    /// <summary>Observed information or sandwich.</summary>
    public StandardErrorKind Method { get; }

    /// <summary>The observed information's smallest eigenvalue relative to its largest, per row in scaled units; near
    /// 0 a parameter is barely identified and its interval is not to be trusted.</summary>
    public double Conditioning { get; }

    /// <summary>The z value of a central Wald interval: estimate ± z·SE holds the truth with probability
    /// <paramref name="level"/> asymptotically (1.96 for 0.95).</summary>
    /// <param name="level">The interval's probability in (0, 1).</param>
    public static double Z(double level)
    {
        if (!(level > 0 && level < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(level), level, $"The level must be in (0, 1), but is {level}.");
        }

        return MathNet.Numerics.Distributions.Normal.InvCDF(0, 1, (1 + level) / 2);
    }
}

/// <summary>Predictions of a model for every row: the mean, each expert's mean, the gate and, on request, a central
/// predictive interval of the mixture.</summary>
public sealed class Prediction
{
    internal Prediction(Core.Predictions inner)
    {
        Mean = inner.Mean;
        ExpertMeans = inner.ExpertMeans;
        Gate = inner.Gate;
        Lower = inner.Lower;
        Upper = inner.Upper;
        Level = inner.Level;
        Quantiles = inner.Quantiles;
        Probabilities = inner.Probabilities;
    }

    /// <summary>n conditional means Σ_i p_i(x) μ_i(x).</summary>
    public double[] Mean { get; }

    /// <summary>n×k expert means μ_i(x) = g(⟨a_i, x⟩ + b_i).</summary>
    public double[,] ExpertMeans { get; }

    /// <summary>n×k gate probabilities.</summary>
    public double[,] Gate { get; }

    /// <summary>n lower ends of the predictive interval (empty without one).</summary>
    public double[] Lower { get; }

    /// <summary>n upper ends of the predictive interval (empty without one).</summary>
    public double[] Upper { get; }

    /// <summary>The interval's probability (0 without one).</summary>
    public double Level { get; }

    /// <summary>n×q predictive quantiles, column j at <see cref="Probabilities"/>[j] (n×0 when none were asked for).</summary>
    public double[,] Quantiles { get; }

    /// <summary>The q probabilities of <see cref="Quantiles"/>' columns.</summary>
    public IReadOnlyList<double> Probabilities { get; }
}

/// <summary>The fit for one number of experts and its information criteria (lower is better for all three).</summary>
/// <param name="Experts">k (1 is a single regression with the same activation, intercept and noise).</param>
/// <param name="LogLikelihood">The maximised total log-likelihood.</param>
/// <param name="Parameters">The number of free parameters.</param>
/// <param name="Aic">−2 LL + 2p.</param>
/// <param name="Bic">−2 LL + p ln n.</param>
/// <param name="Icl">BIC − 2 Σ ln r(most likely expert), flexmix's ICL.</param>
/// <param name="Model">The fitted mixture for k ≥ 2, null for k = 1.</param>
/// <param name="Warnings">The fit's warnings.</param>
public sealed record ExpertsCriteria(int Experts, double LogLikelihood, int Parameters, double Aic, double Bic,
    double Icl, MixtureOfExperts? Model, IReadOnlyList<FitWarning> Warnings)
{
    /// <summary>Whether the likelihood is degenerate at this k (an expert collapses onto a few points or repeated
    /// responses without the guard on the noise levels): its likelihood, and so its criteria, are not comparable,
    /// and the choice skips it.</summary>
    public bool Degenerate { get; init; }
}

/// <summary>The result of <see cref="MoeLearner.Select"/>: the criteria of every k, and the k that BIC chooses.</summary>
/// <param name="Results">One entry per k, in increasing k.</param>
/// <param name="Chosen">The k with the lowest BIC among the fits that are not degenerate.</param>
/// <param name="ChosenByIcl">The k with the lowest ICL among them (fewer, better-separated experts).</param>
public sealed record ExpertsSelection(IReadOnlyList<ExpertsCriteria> Results, int Chosen, int ChosenByIcl)
{
    /// <summary>The core's fits, which <see cref="MoeLearner.TestExperts"/> reads instead of fitting again.</summary>
    internal Core.KChoice[] Fits { get; init; } = [];
}

/// <summary>The parametric-bootstrap likelihood-ratio test of k experts against k + 1
/// (<see cref="MoeLearner.TestExperts"/>; docs/inference.md §1.1).</summary>
/// <param name="Experts">k, the null hypothesis's number of experts.</param>
/// <param name="Statistic">The observed 2 (LL(k + 1) − LL(k)).</param>
/// <param name="P">The share of replicates drawn from the k-expert fit whose statistic is at least the observed one,
/// (1 + count) / (1 + replicates): small when k + 1 experts fit better than chance would give.</param>
/// <param name="Replicates">The replicates' statistics (NaN for a replicate whose fits failed).</param>
/// <param name="Failed">Replicates whose fits failed (left out of P).</param>
/// <param name="FirstFailure">The first failure's reason ("" when none failed).</param>
public sealed record ExpertsTest(int Experts, double Statistic, double P, IReadOnlyList<double> Replicates, int Failed,
    string FirstFailure);

public static partial class MoeLearner
{
    /// <summary>Fits every k of <paramref name="experts"/> with the options (k = 1 is a single regression) and
    /// chooses k by BIC, as flexmix does, skipping the k whose likelihood is degenerate (where flexmix would pick an
    /// expert sitting on repeated responses); ICL's choice is reported beside it.</summary>
    /// <param name="data">The samples.</param>
    /// <param name="options">The options (<see cref="FitOptions.Experts"/> is ignored).</param>
    /// <param name="experts">The values of k, each ≥ 1.</param>
    /// <param name="progress">Receives each fit's progress (optional).</param>
    /// <param name="cancellationToken">Cancels between and within fits.</param>
    /// <exception cref="ArgumentException">No k, a k below 1, or invalid options.</exception>
    public static ExpertsSelection Select(Dataset data, FitOptions options, IEnumerable<int> experts,
        IProgress<FitProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(experts);
        var ks = experts.ToArray();
        if (ks.Length == 0)
        {
            throw new ArgumentException("At least one number of experts is needed.", nameof(experts));
        }

        var config = options.ToCore(Math.Max(2, ks.Max()));
        if (data.Design is { } design)
        {
            config = config.WithDesign(design);
        }

        var context = Context(progress, cancellationToken);
        var choices = RunCore(() => Core.Inference.SelectExperts(config, ks, data.Inner, context));
        var results = choices.Select(c => new ExpertsCriteria(c.Experts, c.LogLikelihood, c.Parameters, c.Aic, c.Bic,
            c.Icl, FSharpOption<Core.MoeModel>.get_IsSome(c.Model) ? new MixtureOfExperts(c.Model.Value) : null,
            c.Warnings.Select(FitWarning.From).ToArray())
        {
            Degenerate = Core.Inference.IsDegenerate(c),
        }).ToArray();
        var (bic, icl) = Core.Inference.Choose(choices);
        return new ExpertsSelection(results, bic, icl) { Fits = choices };
    }

    /// <summary>Tests k experts against k + 1 (docs/inference.md §1.1): the likelihood ratio of the two fits of
    /// <paramref name="selection"/>, against its null law from a parametric bootstrap — replicates drawn from the
    /// k-expert fit at the data's covariates, each fitted with k and k + 1 experts as the data were. The χ² law does not
    /// hold here (an extra expert is not identified under the null), which is why BIC is only a rule of thumb.</summary>
    /// <param name="data">The data of the selection.</param>
    /// <param name="options">The options of the selection.</param>
    /// <param name="selection">A selection (<see cref="Select"/>) that fitted k and k + 1.</param>
    /// <param name="experts">k.</param>
    /// <param name="replicates">B (default 99: P in steps of 0.01).</param>
    /// <param name="seed">The seed (replicate b draws from its own stream: the same P on any number of cores).</param>
    /// <param name="progress">Receives the number of replicates done (optional; from worker threads).</param>
    /// <param name="cancellationToken">Cancels within a replicate's fit.</param>
    /// <exception cref="ArgumentException">The selection did not fit k or k + 1, or B &lt; 1.</exception>
    /// <exception cref="FitDivergedException">Every replicate failed.</exception>
    public static ExpertsTest TestExperts(Dataset data, FitOptions options, ExpertsSelection selection, int experts,
        int replicates = 99, long seed = 1, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(selection);
        var fits = selection.Fits;
        var k0 = fits.FirstOrDefault(c => c.Experts == experts);
        var k1 = fits.FirstOrDefault(c => c.Experts == experts + 1);
        if (k0 is null || k1 is null)
        {
            throw new ArgumentException(
                $"The selection fitted k = {string.Join(", ", fits.Select(c => c.Experts))}; testing {experts} against {experts + 1} experts needs both.",
                nameof(experts));
        }

        var config = options.ToCore(Math.Max(2, fits.Max(c => c.Experts)));
        if (data.Design is { } design)
        {
            config = config.WithDesign(design);
        }

        var r = RunCore(() => Core.ExpertsTest.Run(config, data.Inner, k0, k1, replicates, seed, Environment.ProcessorCount,
            cancellationToken, FuncConvert.FromAction<int>(done => progress?.Report(done))));
        return new ExpertsTest(r.Experts, r.Statistic, r.P, r.Replicates, r.Failed, r.FirstFailure);
    }

    /// <summary>Standard errors of a fitted model's parameters from its data (docs/inference.md): the inverse observed
    /// information, or the sandwich. Call it on a maximum-likelihood fit (the default fit's model).</summary>
    /// <param name="model">The fitted model.</param>
    /// <param name="data">The data it was fitted to. Weighted rows (<see cref="Dataset.Weights"/>) count as frequency
    /// weights: the errors are those of the rows repeated, not survey weights' (whose design they do not know).</param>
    /// <param name="kind">Observed (default) or sandwich.</param>
    /// <param name="commonSigma">Whether the fit had one σ for every expert.</param>
    /// <param name="sigmaFitted">Whether σ was fitted (false: it was given and has no standard error).</param>
    /// <param name="degreesOfFreedomFitted">For Student-t experts fitted with σ: whether their degrees of freedom were
    /// estimated. Then those inside (1, 200) are parameters of the information too, so the other errors allow for
    /// their estimation (docs/math.md §14.2); false when the fit fixed them (<see cref="FitOptions.DegreesOfFreedom"/>).</param>
    /// <exception cref="ArgumentException">The data do not match the model, or kind is None.</exception>
    /// <exception cref="InvalidOperationException">The observed information is not positive definite (the model is
    /// not at a strict maximum, or a parameter is not identified).</exception>
    public static ParameterErrors StandardErrors(MixtureOfExperts model, Dataset data,
        StandardErrorKind kind = StandardErrorKind.Observed, bool commonSigma = false, bool sigmaFitted = true,
        bool degreesOfFreedomFitted = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        if (kind is not (StandardErrorKind.Observed or StandardErrorKind.Sandwich))
        {
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "kind must be Observed or Sandwich.");
        }

        return new ParameterErrors(Core.Inference.StandardErrorsWith(model.Inner, commonSigma, sigmaFitted,
            degreesOfFreedomFitted, kind == StandardErrorKind.Sandwich, data.Inner));
    }

    /// <summary>A Wald test of linear hypotheses about a fitted model's coefficients, jointly (docs/inference.md §2.1):
    /// e.g. <c>"x1[1] = x1[2]"</c> (does x1 act the same in experts 1 and 2?), several separated by ';'. A term is
    /// <c>name[i]</c> (expert i's coefficient on a column, by the data's name or x1, x2, … by position),
    /// <c>intercept[i]</c>, <c>gate.name[j]</c> or <c>gate.intercept[j]</c>, with an optional factor (<c>2*x1[1]</c>).</summary>
    /// <param name="model">The fitted model (a maximum of the likelihood: the default fit's).</param>
    /// <param name="data">The data it was fitted to.</param>
    /// <param name="hypotheses">The hypotheses.</param>
    /// <param name="kind">The covariance the test uses: Observed (default) or Sandwich.</param>
    /// <exception cref="ArgumentException">A term that names no coefficient, a malformed or redundant hypothesis.</exception>
    /// <exception cref="InvalidOperationException">The observed information is not positive definite.</exception>
    public static WaldResult Test(MixtureOfExperts model, Dataset data, string hypotheses,
        StandardErrorKind kind = StandardErrorKind.Observed)
    {
        ArgumentNullException.ThrowIfNull(hypotheses);
        var errors = StandardErrors(model, data, kind);
        var w = Core.Hypotheses.Wald(errors.Inner, model.Inner, hypotheses);
        return new WaldResult(w.Hypotheses, w.Estimates.Select(e => (e.Item1, e.Item2)).ToArray(), w.Statistic, w.DegreesOfFreedom, w.P);
    }
}

/// <summary>A Wald test's result (<see cref="MoeLearner.Test"/>).</summary>
/// <param name="Hypotheses">The hypotheses as written.</param>
/// <param name="Estimates">Each hypothesis's estimate (left side minus right side at the fit) and its standard error.</param>
/// <param name="Statistic">The Wald statistic.</param>
/// <param name="DegreesOfFreedom">Its degrees of freedom, the number of hypotheses.</param>
/// <param name="P">P(χ² ≥ statistic): small when the data contradict the hypotheses.</param>
public sealed record WaldResult(IReadOnlyList<string> Hypotheses, IReadOnlyList<(double Estimate, double StandardError)> Estimates,
    double Statistic, int DegreesOfFreedom, double P);

/// <summary>What the data say about the estimators' assumptions (<see cref="MoeLearner.Diagnose"/>; docs/inference.md §4).</summary>
public sealed class DataDiagnosis
{
    internal DataDiagnosis(Core.DataReport r)
    {
        Rows = r.Rows;
        Dimension = r.Dimension;
        Experts = r.Experts;
        Parameters = r.Parameters;
        Columns = r.Columns.Select(c => new ColumnSummary(c.Mean, c.Sd, c.Skewness, c.ExcessKurtosis)).ToArray();
        MardiaSkewness = r.MardiaSkewness;
        MardiaSkewnessP = r.MardiaSkewnessP;
        MardiaKurtosisRatio = r.MardiaKurtosisRatio;
        MardiaKurtosisP = r.MardiaKurtosisP;
        Conditioning = r.Conditioning;
        MomentGuarantees = r.MomentGuarantees;
        Verdict = r.Verdict;
    }

    /// <summary>Rows n.</summary>
    public int Rows { get; }

    /// <summary>Covariates d.</summary>
    public int Dimension { get; }

    /// <summary>The number of experts asked about.</summary>
    public int Experts { get; }

    /// <summary>Free parameters of the default model at that k.</summary>
    public long Parameters { get; }

    /// <summary>Mean, sd, skewness and excess kurtosis of every covariate.</summary>
    public IReadOnlyList<ColumnSummary> Columns { get; }

    /// <summary>Mardia's multivariate skewness (0 for a Gaussian; NaN when the covariates are collinear).</summary>
    public double MardiaSkewness { get; }

    /// <summary>Its p-value under normality.</summary>
    public double MardiaSkewnessP { get; }

    /// <summary>Mardia's kurtosis over a Gaussian's (1 for a Gaussian).</summary>
    public double MardiaKurtosisRatio { get; }

    /// <summary>Its two-sided p-value under normality.</summary>
    public double MardiaKurtosisP { get; }

    /// <summary>The condition number of the covariates' correlation matrix.</summary>
    public double Conditioning { get; }

    /// <summary>Whether the moment initializers' guarantees apply after standardising.</summary>
    public bool MomentGuarantees { get; }

    /// <summary>The verdict and what to do, one sentence each.</summary>
    public IReadOnlyList<string> Verdict { get; }
}

/// <summary>The moments of one covariate.</summary>
/// <param name="Mean">The mean.</param>
/// <param name="Sd">The standard deviation.</param>
/// <param name="Skewness">The skewness (0 for a Gaussian).</param>
/// <param name="ExcessKurtosis">The excess kurtosis (0 for a Gaussian).</param>
public sealed record ColumnSummary(double Mean, double Sd, double Skewness, double ExcessKurtosis);

public static partial class MoeLearner
{
    /// <summary>Examines the covariates for a fit with <paramref name="experts"/> experts: moments per column,
    /// Mardia's tests, conditioning, rows per parameter, and whether the moment initializers' guarantees apply.</summary>
    /// <param name="data">The samples.</param>
    /// <param name="experts">k ≥ 1.</param>
    /// <param name="family">The experts' family (default Gaussian): it sets the parameter count.</param>
    /// <exception cref="ArgumentException">k below 1.</exception>
    public static DataDiagnosis Diagnose(Dataset data, int experts, ExpertFamily family = ExpertFamily.Gaussian)
    {
        ArgumentNullException.ThrowIfNull(data);
        // Data read with roles count the parameters of their design (a gate on other columns than the experts').
        return new DataDiagnosis(data.Design is { } design
            ? Core.DataReportModule.CreateForDesign(ExpertFamilies.ToCore(family), experts, design, data.Inner)
            : Core.DataReportModule.CreateFor(ExpertFamilies.ToCore(family), experts, data.Inner));
    }
}

/// <summary>How well a model's predictive distributions describe held-out rows (<see cref="MixtureOfExperts.Check"/>;
/// docs/inference.md §3.1).</summary>
public sealed class CalibrationReport
{
    internal CalibrationReport(Core.CalibrationReport inner)
    {
        Rows = inner.Rows;
        Pit = inner.Pit;
        Histogram = inner.Histogram;
        KsStatistic = inner.KsStatistic;
        KsP = inner.KsP;
        LogScore = inner.LogScore;
        Crps = inner.Crps;
        Coverage = inner.Coverage.Select(c => (c.Item1, c.Item2)).ToArray();
    }

    /// <summary>The rows scored.</summary>
    public int Rows { get; }

    /// <summary>Each row's probability integral transform F(y | x), uniform on (0, 1) when the model is right
    /// (randomised between F(y − 1) and F(y) for a count or a 0/1 outcome).</summary>
    public double[] Pit { get; }

    /// <summary>The PIT's counts in ten equal bins of (0, 1).</summary>
    public int[] Histogram { get; }

    /// <summary>The Kolmogorov–Smirnov distance between the PIT and the uniform law.</summary>
    public double KsStatistic { get; }

    /// <summary>Its p-value: small when the PIT is not uniform (the model's distributions are off).</summary>
    public double KsP { get; }

    /// <summary>The mean log predictive density of the rows (higher is better).</summary>
    public double LogScore { get; }

    /// <summary>The mean continuous ranked probability score (lower is better, in the response's units).</summary>
    public double Crps { get; }

    /// <summary>Each level asked for and the share of rows inside the model's central interval of that probability.</summary>
    public IReadOnlyList<(double Level, double Observed)> Coverage { get; }
}

