using Core = MoE.Core;

namespace MoE.Api;

/// <summary>The stages of a fit (docs/learners.md). Each has a stable lower-case name,
/// <see cref="FitStages.Name(FitStage)"/> (l4, em, likelihood, …), that the command line prints and report files
/// record.</summary>
public enum FitStage
{
    /// <summary>The L4 estimate of the regressors by the subspace solver (l4).</summary>
    L4,
    /// <summary>The paper's mini-batch SGD on the full-dimensional L4 (l4-sgd).</summary>
    L4Sgd,
    /// <summary>The regressors' directions from the L4 solution (directions).</summary>
    Directions,
    /// <summary>The regressors' signs (signs).</summary>
    Signs,
    /// <summary>The gating fit with the regressors fixed (gating).</summary>
    Gating,
    /// <summary>The paper's SGD on L_log, in the figures' trajectories (gating-sgd).</summary>
    GatingSgd,
    /// <summary>The regressors' scales (scales).</summary>
    Scales,
    /// <summary>EM on the likelihood (em).</summary>
    Em,
    /// <summary>L-BFGS on the likelihood after EM handed over (likelihood).</summary>
    Likelihood,
    /// <summary>EM without the noise-level prior, from the guarded optimum (unguarded).</summary>
    Unguarded,
    /// <summary>The moment statistics the initializers share (moments).</summary>
    Moments,
    /// <summary>The initializers' proposals (initializers).</summary>
    Initializers,
    /// <summary>Every proposal screened by a short EM and scored on held-out rows (candidates).</summary>
    Candidates,
    /// <summary>The spectral method's start (spectral).</summary>
    Spectral,
    /// <summary>The ℓ2 baseline's SGD (l2).</summary>
    L2,
    /// <summary>The single regression of k = 1 in a choice of k (single).</summary>
    Single,
    /// <summary>Split-and-merge moves from a maximum where one expert's noise level stands out (split-merge).</summary>
    SplitMerge,
    /// <summary>Moves that revive an expert whose activation is flat on nearly every row it holds (revive).</summary>
    Revive,
}

/// <summary>What a warning of a fit is about (docs/errors.md lists each with its cause and remedy). Each has a stable
/// name, <see cref="FitStages.Name(WarningCode)"/> (not-gaussian, em-not-converged, …).</summary>
public enum WarningCode
{
    /// <summary>A covariate column is constant (constant-column).</summary>
    ConstantColumn,
    /// <summary>The response is constant (constant-response).</summary>
    ConstantResponse,
    /// <summary>Fewer than 2kd rows (too-few-rows).</summary>
    TooFewRows,
    /// <summary>The moment-only methods need d ≥ k (dimension-below-experts).</summary>
    DimensionBelowExperts,
    /// <summary>Covariates far from 0 in a model without intercepts (not-centred).</summary>
    NotCentred,
    /// <summary>Covariates not standardised for the L4 estimator (not-standardised).</summary>
    NotStandardised,
    /// <summary>Covariates far from Gaussian for the moment estimators (not-gaussian).</summary>
    NotGaussian,
    /// <summary>Fewer than 10 rows per parameter (few-rows).</summary>
    FewRows,
    /// <summary>EM or L-BFGS stopped at its budget (em-not-converged).</summary>
    EmNotConverged,
    /// <summary>EM stopped on a step that lowered the likelihood (em-no-progress).</summary>
    EmNoProgress,
    /// <summary>A noise level collapsed towards 0 (sigma-collapsed).</summary>
    SigmaCollapsed,
    /// <summary>The likelihood's maximum is degenerate and the guarded model was kept (likelihood-degenerate).</summary>
    LikelihoodDegenerate,
    /// <summary>A column's values are so large that its squares or fourth powers overflow (value-overflow; an
    /// error).</summary>
    ValueOverflow,
    /// <summary>An expert looks like two merged ones that split-and-merge moves did not separate (merged-experts).</summary>
    MergedExperts,
    /// <summary>A response the experts' family has no density at: a negative or fractional count, a 0/1 outcome that
    /// is neither (invalid-response; an error).</summary>
    InvalidResponse,

    /// <summary>Rows left out of the fit for a missing value, as asked (<see cref="MissingValues.Drop"/>;
    /// rows-dropped).</summary>
    RowsDropped,

    /// <summary>A column's values are so small that their squares underflow to 0 and it looks constant
    /// (value-underflow; an error).</summary>
    ValueUnderflow,

    /// <summary>An expert's activation is flat (a ReLU below its kink) on nearly every row it holds, so its
    /// coefficients are not determined by the data, and reviving it did not raise the likelihood (dead-expert).</summary>
    DeadExpert,
}

/// <summary>The stable names of <see cref="FitStage"/> and <see cref="WarningCode"/> values, and their conversions
/// from the F# core (whose unions they mirror case for case, in order).</summary>
public static class FitStages
{
    /// <summary>The stage's stable lower-case name (l4, l4-sgd, em, likelihood, …).</summary>
    /// <param name="stage">The stage.</param>
    public static string Name(this FitStage stage) => Core.Stage.All[(int)stage].Name;

    /// <summary>The code's stable name (not-gaussian, em-not-converged, …).</summary>
    /// <param name="code">The code.</param>
    public static string Name(this WarningCode code) => Core.FindingCode.All[(int)code].Name;

    internal static FitStage From(Core.Stage stage) => (FitStage)stage.Tag;

    internal static WarningCode From(Core.FindingCode code) => (WarningCode)code.Tag;
}

/// <summary>A progress report: the stage, its iteration and its loss.</summary>
/// <param name="Stage">The stage (its name: <see cref="FitStages.Name(FitStage)"/>).</param>
/// <param name="Iteration">Iteration, evaluation or epoch within the stage.</param>
/// <param name="Loss">The stage's loss at that point.</param>
public readonly record struct FitProgress(FitStage Stage, int Iteration, double Loss)
{
    internal static FitProgress From(Core.TraceEntry e) => new(FitStages.From(e.Stage), e.Iteration, e.Loss);
}

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
/// <param name="Stage">The stage (its name: <see cref="FitStages.Name(FitStage)"/>).</param>
/// <param name="Iterations">Iterations, evaluations, epochs or candidates (0 for a closed form).</param>
/// <param name="FinalLoss">The stage's own loss at its end, or null for a stage without one.</param>
/// <param name="Exit">Why it stopped.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record StageResult(FitStage Stage, int Iterations, double? FinalLoss, ExitCondition Exit, double Seconds);

/// <summary>Something about the data or the fit that deserves a look (docs/errors.md lists them).</summary>
/// <param name="Code">What it is about (its stable name: <see cref="FitStages.Name(WarningCode)"/>, e.g.
/// not-gaussian).</param>
/// <param name="Message">What is wrong, with the numbers, and what to do.</param>
public sealed record FitWarning(WarningCode Code, string Message)
{
    internal static FitWarning From(Core.Finding f) => new(FitStages.From(f.Code), f.Message);
}

/// <summary>One candidate of a fit: an initializer's proposal after a short EM on the screening rows, or, on small
/// data, after the whole fit on every row (<see cref="AllRows"/>).</summary>
/// <param name="Initializer">spectral, l4, l4-whitened, subspace-start-i, segment-start-i, sample-start-i or
/// random-start-i.</param>
/// <param name="Model">The screened or fitted model (in the data's units), or null when the candidate failed.</param>
/// <param name="Failure">Why the candidate failed, or null.</param>
/// <param name="LogLikelihood">Its mean log-likelihood per row (−∞ for a failure), the criterion that picks the
/// winner: on the held-out validation rows, or on every row when <see cref="AllRows"/>.</param>
/// <param name="AllRows">Whether the candidate ran to convergence on every row (small data: rows × parameters at
/// most 250,000) rather than being screened on a subsample.</param>
/// <param name="Seconds">Time spent on it.</param>
public sealed record FitCandidate(string Initializer, MixtureOfExperts? Model, string? Failure,
    double LogLikelihood, bool AllRows, double Seconds);

/// <summary>The result of <see cref="MoeLearner.Fit"/>.</summary>
public sealed class FitResult
{
    internal FitResult(Core.FitResult inner)
    {
        Model = new MixtureOfExperts(inner.Model);
        Trace = inner.Trace.Select(FitProgress.From).ToArray();
        Stages = inner.Stages.Select(s => new StageResult(FitStages.From(s.Stage), s.Iterations,
            s.FinalLoss is { } loss ? loss.Value : null, Convert(s.Reason), s.Seconds)).ToArray();
        Exit = Convert(inner.Reason);
        Warnings = inner.Warnings.Select(FitWarning.From).ToArray();
        Initializer = inner.Initializer;
        Passes = inner.Passes;
        Candidates = inner.Candidates.Select(c => new FitCandidate(
            c.Initializer,
            c.Outcome.IsOk ? new MixtureOfExperts(c.Outcome.ResultValue) : null,
            c.Outcome.IsError ? c.Outcome.ErrorValue : null,
            c.LogLikelihood,
            c.AllRows,
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
        Stage = FitStages.From(inner.Stage);
        Iteration = inner.Iteration;
        Value = inner.Value;
    }

    /// <summary>The stage that diverged.</summary>
    public FitStage Stage { get; }

    /// <summary>The iteration (or epoch) at which it diverged.</summary>
    public int Iteration { get; }

    /// <summary>The offending loss or gradient value.</summary>
    public double Value { get; }
}
