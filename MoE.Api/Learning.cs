using Microsoft.FSharp.Core;
using Core = MoE.Core;

namespace MoE.Api;

/// <summary>Which estimator <see cref="MoeLearner.Fit"/> runs.</summary>
public enum FitMethod
{
    /// <summary>Several initializers (spectral, L4, whitened L4, subspace and random starts), each screened by a short
    /// EM, the best by held-out likelihood taken to the maximum likelihood: the default.</summary>
    Auto,
    /// <summary>The paper's estimator: L4 for the regressors, L_log for the gating, then the EM polish.</summary>
    L4,
    /// <summary>The spectral method of Makkuva et al. (ICML 2019): third-order moments for the regressors, then EM on
    /// the gate and the noise with the regressors fixed.</summary>
    Spectral,
    /// <summary>Baseline: mini-batch SGD on the mean-square loss ℓ2 from a random start (the paper's model only).</summary>
    L2,
    /// <summary>Baseline: EM on the likelihood from random starts (the best by held-out likelihood when there are
    /// several; <see cref="FitOptions.RandomStarts"/>).</summary>
    Em,
}

/// <summary>How the L4 stage is minimised.</summary>
public enum L4Solver
{
    /// <summary>Moment subspace + L-BFGS with restarts (fast; the default).</summary>
    Subspace,
    /// <summary>The paper's mini-batch SGD on the full-dimensional L4.</summary>
    Sgd,
}

/// <summary>Which output transforms the L4 stage uses.</summary>
public enum OutputTransformKind
{
    /// <summary>Variance-reduced bounded transforms (the default).</summary>
    Bounded,
    /// <summary>The paper's polynomial Q4 and Q2.</summary>
    Polynomial,
}

/// <summary>Options of <see cref="MoeLearner.Fit"/>. Every property has a sensible default except
/// <see cref="Experts"/>: the model a regression user expects (intercepts, a noise level per expert, standardised
/// covariates for the moment initializers) fitted by <see cref="FitMethod.Auto"/>. <see cref="Paper"/> gives the
/// paper's model and estimator instead.</summary>
public sealed class FitOptions
{
    /// <summary>The number of experts k ≥ 2 (required).</summary>
    public int Experts { get; set; }

    /// <summary>The expert non-linearity g (default identity).</summary>
    public Activation Activation { get; set; } = Activation.Identity;

    /// <summary>The noise level σ if known (every expert's); null (the default) to estimate it.</summary>
    public double? Sigma { get; set; }

    /// <summary>The estimator (default <see cref="FitMethod.Auto"/>).</summary>
    public FitMethod Method { get; set; } = FitMethod.Auto;

    /// <summary>Whether the experts and the gate have intercepts b_i and c_i (default true).</summary>
    public bool Intercepts { get; set; } = true;

    /// <summary>One noise level for every expert (the paper's model) instead of one per expert (default false).</summary>
    public bool CommonSigma { get; set; }

    /// <summary>Whether the data are standardised for the moment initializers (default true); the model is reported
    /// in the data's units either way.</summary>
    public bool Standardise { get; set; } = true;

    /// <summary>Random whole-space starts <see cref="FitMethod.Auto"/> also screens, and the starts of
    /// <see cref="FitMethod.Em"/> (default 1).</summary>
    public int RandomStarts { get; set; } = 1;

    /// <summary>Random frames of the moment subspace <see cref="FitMethod.Auto"/> also screens (default 2).</summary>
    public int SubspaceStarts { get; set; } = 2;

    /// <summary>The L4 solver (default <see cref="L4Solver.Subspace"/>).</summary>
    public L4Solver Solver { get; set; } = L4Solver.Subspace;

    /// <summary>The L4 output transforms (default <see cref="OutputTransformKind.Bounded"/>).</summary>
    public OutputTransformKind Transform { get; set; } = OutputTransformKind.Bounded;

    /// <summary>Whether the EM polish runs after the paper's stages (default true).</summary>
    public bool Polish { get; set; } = true;

    /// <summary>The seed of every random choice (default 1).</summary>
    public long Seed { get; set; } = 1;

    /// <summary>The EM iteration budget (default 200).</summary>
    public int EmIterations { get; set; } = 200;

    /// <summary>EM stops when the relative log-likelihood gain of a step falls below this (default 1e-9; the paper's
    /// configuration uses 1e-11).</summary>
    public double EmTolerance { get; set; } = 1e-9;

    /// <summary>EM hands over to L-BFGS on the likelihood once its relative gain per step is below this and shrinking
    /// slowly (default 1e-3; 0: EM to the end, as in the paper's configuration).</summary>
    public double EmHandover { get; set; } = 1e-3;

    /// <summary>Standard errors of every parameter in <see cref="FitResult.StandardErrors"/>: None (default),
    /// Observed or Sandwich (docs/inference.md). In-memory fits only.</summary>
    public StandardErrorKind StandardErrors { get; set; } = StandardErrorKind.None;

    /// <summary>The paper's model and estimator: no intercepts, one σ, the data as given, L4, EM to 1e-11.</summary>
    /// <param name="experts">k ≥ 2.</param>
    /// <param name="activation">g (default identity).</param>
    public static FitOptions Paper(int experts, Activation? activation = null) => new()
    {
        Experts = experts,
        Activation = activation ?? Activation.Identity,
        Method = FitMethod.L4,
        Intercepts = false,
        CommonSigma = true,
        Standardise = false,
        EmTolerance = 1e-11,
        EmHandover = 0,
    };

    /// <summary>A copy (every property is a value or immutable, so a shallow copy is a snapshot).</summary>
    internal FitOptions Clone() => (FitOptions)MemberwiseClone();

    internal Core.FitConfig ToCore() => ToCore(Experts);

    internal Core.FitConfig ToCore(int experts)
    {
        ArgumentNullException.ThrowIfNull(Activation, nameof(Activation));
        if (!Enum.IsDefined(StandardErrors))
        {
            throw Undefined(nameof(StandardErrors), StandardErrors);
        }

        var config = Core.FitConfigModule.Paper(experts, Activation.Inner)
            .WithMethod(Method switch
            {
                FitMethod.Auto => Core.FitMethod.Auto,
                FitMethod.L4 => Core.FitMethod.L4,
                FitMethod.Spectral => Core.FitMethod.Spectral,
                FitMethod.L2 => Core.FitMethod.L2,
                FitMethod.Em => Core.FitMethod.Em,
                _ => throw Undefined(nameof(Method), Method),
            })
            .WithL4Solver(Solver switch
            {
                L4Solver.Subspace => Core.L4Solver.DefaultSubspace,
                L4Solver.Sgd => Core.L4Solver.DefaultSgd,
                _ => throw Undefined(nameof(Solver), Solver),
            })
            .WithTransform(Transform switch
            {
                OutputTransformKind.Bounded => Core.TransformKind.Bounded,
                OutputTransformKind.Polynomial => Core.TransformKind.Polynomial,
                _ => throw Undefined(nameof(Transform), Transform),
            })
            .WithIntercepts(Intercepts)
            .WithCommonSigma(CommonSigma)
            .WithStandardise(Standardise)
            .WithRandomStarts(RandomStarts)
            .WithSubspaceStarts(SubspaceStarts)
            .WithPolish(Polish)
            .WithSeed(Seed)
            .WithEmIterations(EmIterations)
            .WithEmTolerance(EmTolerance)
            .WithEmHandover(EmHandover);
        return Sigma is { } s ? config.WithSigma(s) : config;
    }

    private static ArgumentOutOfRangeException Undefined<T>(string name, T value) where T : struct, Enum =>
        new(name, value, $"{name} = {value} is not a defined {typeof(T).Name} value; expected one of {string.Join(", ", Enum.GetNames<T>())}.");
}

/// <summary>A progress report: the stage, its iteration and its loss.</summary>
/// <param name="Stage">l4, l4-sgd, signs, gating, em or l2.</param>
/// <param name="Iteration">Iteration, evaluation or epoch within the stage.</param>
/// <param name="Loss">The stage's loss at that point.</param>
public readonly record struct FitProgress(string Stage, int Iteration, double Loss);

/// <summary>Why a stage of a fit stopped.</summary>
public enum ExitCondition
{
    /// <summary>The convergence criterion was met.</summary>
    Converged,
    /// <summary>The iteration budget ran out first.</summary>
    MaxIterations,
    /// <summary>The line search could not make progress (the best point seen is kept).</summary>
    NoProgress,
    /// <summary>The stage has no convergence test and ran to its fixed end (a closed form, an enumeration, or a
    /// fixed number of SGD epochs).</summary>
    Completed,
    /// <summary>The stage stopped where a faster method continues (EM handing over to L-BFGS on the
    /// likelihood).</summary>
    HandedOver,
}

/// <summary>What one stage of a fit did.</summary>
/// <param name="Stage">l4, l4-sgd, directions, signs, gating, scales, em or l2.</param>
/// <param name="Iterations">Iterations, evaluations, epochs or candidates (0 for a closed form).</param>
/// <param name="FinalLoss">The stage's own loss at its end, or null for a stage without one.</param>
/// <param name="Exit">Why it stopped.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record StageResult(string Stage, int Iterations, double? FinalLoss, ExitCondition Exit, double Seconds);

/// <summary>Something about the data or the fit that deserves a look (docs/errors.md lists them).</summary>
/// <param name="Code">A stable identifier, e.g. not-standardised, not-gaussian, few-rows, em-not-converged.</param>
/// <param name="Message">What is wrong, with the numbers, and what to do.</param>
public sealed record FitWarning(string Code, string Message);

/// <summary>One candidate of a fit: an initializer's proposal after a short EM on the screening rows.</summary>
/// <param name="Initializer">spectral, l4, l4-whitened, subspace-start-i or random-start-i.</param>
/// <param name="Model">The screened model (in the data's units), or null when the candidate failed.</param>
/// <param name="Failure">Why the candidate failed, or null.</param>
/// <param name="ValidationLogLikelihood">Its mean log-likelihood per row on the held-out validation rows
/// (−∞ for a failure): the criterion that picks the winner.</param>
/// <param name="Seconds">Time spent on it.</param>
public sealed record FitCandidate(string Initializer, MixtureOfExperts? Model, string? Failure,
    double ValidationLogLikelihood, double Seconds);

/// <summary>The result of <see cref="MoeLearner.Fit"/>.</summary>
public sealed class FitResult
{
    internal FitResult(Core.FitResult inner)
    {
        Model = new MixtureOfExperts(inner.Model);
        Trace = inner.Trace.Select(e => new FitProgress(e.Stage, e.Iteration, e.Loss)).ToArray();
        Stages = inner.Stages.Select(s => new StageResult(s.Stage, s.Iterations,
            s.FinalLoss is { } loss ? loss.Value : null, Convert(s.Reason), s.Seconds)).ToArray();
        Exit = Convert(inner.Reason);
        Warnings = inner.Warnings.Select(w => new FitWarning(w.Code, w.Message)).ToArray();
        Initializer = inner.Initializer;
        Passes = inner.Passes;
        Candidates = inner.Candidates.Select(c => new FitCandidate(
            c.Initializer,
            c.Outcome.IsOk ? new MixtureOfExperts(c.Outcome.ResultValue) : null,
            c.Outcome.IsError ? c.Outcome.ErrorValue : null,
            c.ValidationLogLikelihood,
            c.Seconds)).ToArray();
    }

    /// <summary>How many times the rows were read from the source: 1 when they were held in memory, every pass of
    /// every stage when they were read in passes (<c>maxRowsInMemory</c> below the row count; docs/math.md §7.6).</summary>
    public int Passes { get; }

    /// <summary>The initializer of the model: the winning candidate's (<see cref="FitMethod.Auto"/>, several EM
    /// starts), or the method's own (l4, spectral, random-start-1).</summary>
    public string Initializer { get; }

    /// <summary>Every candidate that was screened, best first (empty for the methods that screen none).</summary>
    public IReadOnlyList<FitCandidate> Candidates { get; }

    internal static ExitCondition Convert(Core.StopReason reason) =>
        reason.IsConverged ? ExitCondition.Converged
        : reason.IsMaxIterations ? ExitCondition.MaxIterations
        : reason.IsNoProgress ? ExitCondition.NoProgress
        : reason.IsHandedOver ? ExitCondition.HandedOver
        : ExitCondition.Completed;

    /// <summary>The fitted model.</summary>
    public MixtureOfExperts Model { get; }

    /// <summary>Every progress report, in order.</summary>
    public IReadOnlyList<FitProgress> Trace { get; }

    /// <summary>Every stage that ran, in order.</summary>
    public IReadOnlyList<StageResult> Stages { get; }

    /// <summary>Why the stage that produced the model stopped (EM with the polish, the gating fit without it).</summary>
    public ExitCondition Exit { get; }

    /// <summary>What deserves a look: the data's departures from the estimator's assumptions and a fit that stopped
    /// before converging. Empty when nothing is wrong.</summary>
    public IReadOnlyList<FitWarning> Warnings { get; }

    /// <summary>Standard errors of every parameter when <see cref="FitOptions.StandardErrors"/> asked for them, else
    /// null.</summary>
    public ParameterErrors? StandardErrors { get; internal set; }
}

/// <summary>Raised when a fit's loss or gradient becomes NaN or infinite; no parameters are returned.</summary>
public sealed class FitDivergedException : ArithmeticException
{
    internal FitDivergedException(Core.NonFiniteException inner)
        : base(inner.Message, inner)
    {
        Stage = inner.Stage;
        Iteration = inner.Iteration;
        Value = inner.Value;
    }

    /// <summary>The stage that diverged.</summary>
    public string Stage { get; }

    /// <summary>The iteration (or epoch) at which it diverged.</summary>
    public int Iteration { get; }

    /// <summary>The offending loss or gradient value.</summary>
    public double Value { get; }
}

/// <summary>Fits mixtures of experts.</summary>
public static partial class MoeLearner
{
    /// <summary>Fits a mixture of experts to the data.</summary>
    /// <param name="data">The samples.</param>
    /// <param name="options">The options (<see cref="FitOptions.Experts"/> is required).</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the fit within one iteration.</param>
    /// <returns>The fitted model, its trace and stage timings.</returns>
    /// <exception cref="ArgumentException">Invalid options or too few samples; the message names the option.</exception>
    /// <exception cref="FitDivergedException">A loss or gradient became NaN or infinite.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static FitResult Fit(Dataset data, FitOptions options, IProgress<FitProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        var context = Context(progress, cancellationToken);
        var result = Run(() => Core.Learner.Fit(options.ToCore(), data.Inner, context));
        if (options.StandardErrors != StandardErrorKind.None)
        {
            result.StandardErrors = StandardErrors(result.Model, data, options.StandardErrors, options.CommonSigma,
                options.Sigma is null);
        }

        return result;
    }

    private static Core.RunContext Context(IProgress<FitProgress>? progress, CancellationToken cancellationToken) =>
        new(FuncConvert.FromAction<Core.TraceEntry>(e => progress?.Report(new FitProgress(e.Stage, e.Iteration, e.Loss))),
            cancellationToken);

    private static T RunCore<T>(Func<T> f)
    {
        try
        {
            return f();
        }
        catch (Core.NonFiniteException e)
        {
            throw new FitDivergedException(e);
        }
    }

    /// <summary>
    /// Fits a mixture of experts to data read in passes (files larger than memory, directories of shards, your own
    /// storage): every statistic over all the rows — the data's moments, the standardisation, the moment initializers,
    /// every EM map and likelihood evaluation — is a pass over the source, and the samples the estimator draws by design
    /// are chosen by row position, so the same shards give the same model whether they are held in memory or read again
    /// for each pass (docs/math.md §7.6).
    /// </summary>
    /// <param name="source">The data (<see cref="DataSources"/>).</param>
    /// <param name="options">The options (<see cref="FitOptions.Experts"/> is required). The ℓ2 baseline and the paper's
    /// SGD solver need every row in memory.</param>
    /// <param name="maxRowsInMemory">A memory bound: a source of at most this many rows is read once and held in memory;
    /// a larger one is read again for every pass, and the stages that work on a sample of rows use at most this many.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the fit (checked between batches and iterations).</param>
    /// <returns>The fitted model, its trace and stage timings.</returns>
    /// <exception cref="ArgumentException">Invalid options, a method that needs the rows in memory on a larger source,
    /// or fewer than 10 rows in memory per model parameter.</exception>
    /// <exception cref="InvalidDataException">A malformed file (with its line and column, or its column and row).</exception>
    /// <exception cref="FitDivergedException">A loss or gradient became NaN or infinite.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static FitResult FitSource(IDataSource source, FitOptions options, int maxRowsInMemory = int.MaxValue,
        IProgress<FitProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRowsInMemory, 1);
        if (options.StandardErrors != StandardErrorKind.None)
        {
            throw new ArgumentException("Standard errors need the data in memory: load it (Dataset.LoadCsv, Dataset.LoadParquet) and call Fit, or call MoeLearner.StandardErrors on a sample.", nameof(options));
        }

        var core = DataSources.ToCore(source);
        var context = Context(progress, cancellationToken);
        return Run(() => Core.Learner.FitSource(options.ToCore(), core, maxRowsInMemory, context));
    }

    /// <summary>
    /// Fits a mixture of experts to a CSV file (<c>x1,…,xd,y</c>) that need not fit in memory:
    /// <see cref="FitSource"/> on <see cref="DataSources.Csv"/>.
    /// </summary>
    /// <param name="path">The CSV file.</param>
    /// <param name="options">The options.</param>
    /// <param name="maxRowsInMemory">The memory bound of <see cref="FitSource"/>.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the fit.</param>
    /// <returns>The fitted model, its trace and stage timings.</returns>
    /// <exception cref="ArgumentException">As <see cref="FitSource"/>.</exception>
    /// <exception cref="InvalidDataException">A malformed row (with its line and column).</exception>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="FitDivergedException">A loss or gradient became NaN or infinite.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static FitResult FitCsv(string path, FitOptions options, int maxRowsInMemory = 200_000,
        IProgress<FitProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRowsInMemory, 1);
        return FitSource(DataSources.Csv(path), options, maxRowsInMemory, progress, cancellationToken);
    }

    private static FitResult Run(Func<Core.FitResult> fit) => new(RunCore(fit));
}

/// <summary>Recovery errors of a fitted model against a ground truth (paper §4, aligned as docs/math.md §8 defines).</summary>
public sealed class RecoveryErrors
{
    internal RecoveryErrors(Core.RecoveryErrors e)
    {
        Inner = e;
        RegressorError = e.RegressorError;
        GatingError = e.GatingError;
        GatingDistance = e.GatingDistance;
        LiteralGatingError = e.LiteralGatingError;
        Permutation = e.Permutation.ToArray();
    }

    internal Core.RecoveryErrors Inner { get; }

    /// <summary>E_reg = 1 − max_π min_i |cos(â_i, a*_π(i))|.</summary>
    public double RegressorError { get; }

    /// <summary>E_gating after aligning experts by the regressors' matching and rebasing the reference expert.</summary>
    public double GatingError { get; }

    /// <summary>max_j ‖ŵ'_j − w*_j‖ after the same alignment.</summary>
    public double GatingDistance { get; }

    /// <summary>The paper's literal E_gating (no alignment; blind to label swaps).</summary>
    public double LiteralGatingError { get; }

    /// <summary>Fitted expert i matches true expert Permutation[i].</summary>
    public IReadOnlyList<int> Permutation { get; }
}

/// <summary>Parameter-recovery metrics.</summary>
public static class Metrics
{
    /// <summary>Compares a fitted model with the ground truth (same k and d).</summary>
    /// <exception cref="ArgumentException">k or d differ.</exception>
    public static RecoveryErrors Compare(MixtureOfExperts fitted, MixtureOfExperts truth)
    {
        ArgumentNullException.ThrowIfNull(fitted);
        ArgumentNullException.ThrowIfNull(truth);
        return new RecoveryErrors(Core.Metrics.Compare(fitted.Inner, truth.Inner));
    }

    /// <summary>The success threshold of every recovery study and acceptance table: 0.01.</summary>
    public const double SuccessThreshold = Core.Success.Threshold;

    /// <summary>Whether a fit recovered the truth: E_reg ≤ 0.01 and aligned E_gating ≤ 0.01.</summary>
    /// <param name="errors">The fit's errors.</param>
    public static bool IsRecovered(RecoveryErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        return Core.Success.IsRecovered(errors.Inner);
    }

    /// <summary>The median of repeated runs' values (the mean of the two middle values for an even count).</summary>
    /// <param name="values">At least one value.</param>
    /// <exception cref="ArgumentException">No values.</exception>
    public static double Median(IEnumerable<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return Core.Summary.Median(values);
    }
}
