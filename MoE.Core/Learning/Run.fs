namespace MoE.Core

open System
open System.Threading

/// <summary>The stages of a fit, as its trace, its stage results and its errors name them (docs/learners.md). Each
/// has a stable lower-case name (<c>Name</c>): what the command line prints and a report file records.</summary>
[<RequireQualifiedAccess>]
type Stage =
    /// The L4 estimate of the regressors by the subspace solver ("l4").
    | L4
    /// The paper's mini-batch SGD on the full-dimensional L4 ("l4-sgd").
    | L4Sgd
    /// The regressors' directions from the L4 solution, a closed form ("directions").
    | Directions
    /// The regressors' signs, by enumeration or vote ("signs").
    | Signs
    /// The gating fit with the regressors fixed, L_log by L-BFGS or projected gradient ("gating").
    | Gating
    /// The paper's SGD on L_log, in the figures' trajectories ("gating-sgd").
    | GatingSgd
    /// The regressors' scales, a closed form ("scales").
    | Scales
    /// EM on the likelihood ("em").
    | Em
    /// L-BFGS on the likelihood after EM handed over ("likelihood").
    | Likelihood
    /// EM without the σ prior, from the guarded optimum ("unguarded").
    | Unguarded
    /// The moment statistics the initializers share ("moments").
    | Moments
    /// The initializers' proposals ("initializers").
    | Initializers
    /// Every proposal screened by a short EM and scored on held-out rows ("candidates").
    | Candidates
    /// The spectral method's start ("spectral").
    | Spectral
    /// The ℓ2 baseline's SGD ("l2").
    | L2
    /// The single regression of k = 1 in a choice of k ("single").
    | Single
    /// Split-and-merge moves from a maximum where one expert stands out ("split-merge"; docs/math.md §7.8).
    | SplitMerge
    /// Moves that revive an expert whose activation is flat on its rows ("revive"; docs/math.md §7.9).
    | Revive

    /// <summary>The stage's stable lower-case name: l4, l4-sgd, directions, signs, gating, gating-sgd, scales, em,
    /// likelihood, unguarded, moments, initializers, candidates, spectral, l2, single, split-merge, revive.</summary>
    member this.Name =
        match this with
        | L4 -> "l4"
        | L4Sgd -> "l4-sgd"
        | Directions -> "directions"
        | Signs -> "signs"
        | Gating -> "gating"
        | GatingSgd -> "gating-sgd"
        | Scales -> "scales"
        | Em -> "em"
        | Likelihood -> "likelihood"
        | Unguarded -> "unguarded"
        | Moments -> "moments"
        | Initializers -> "initializers"
        | Candidates -> "candidates"
        | Spectral -> "spectral"
        | L2 -> "l2"
        | Single -> "single"
        | SplitMerge -> "split-merge"
        | Revive -> "revive"

    /// <summary>The stage's name.</summary>
    override this.ToString() = this.Name

    /// <summary>Every stage, in the order of declaration (entry i has tag i): what a host enumerates to map its own
    /// enumeration onto the stages.</summary>
    static member All =
        [|
            L4
            L4Sgd
            Directions
            Signs
            Gating
            GatingSgd
            Scales
            Em
            Likelihood
            Unguarded
            Moments
            Initializers
            Candidates
            Spectral
            L2
            Single
            SplitMerge
            Revive
        |]

/// <summary>Raised when a loss or gradient becomes NaN or infinite, or an objective turns out unbounded below: a
/// run stops with this error, never with non-finite parameters. <c>detail</c> says why, when more is known.</summary>
type NonFiniteException(stage: Stage, iteration: int, value: float, detail: string) =
    inherit
        ArithmeticException(
            if String.IsNullOrEmpty detail then
                Text.format
                    "The %s stage produced a non-finite value (%s) at iteration %d; no parameters were returned."
                    [| box stage.Name; box (string value); box iteration |]
            else
                Text.format
                    "The %s stage failed (%s) at iteration %d; no parameters were returned. %s"
                    [| box stage.Name; box (string value); box iteration; box detail |]
        )

    /// <summary>The plain form: the stage, the iteration and the offending value.</summary>
    /// <param name="stage">The stage that diverged.</param>
    /// <param name="iteration">The iteration (or epoch) at which it happened.</param>
    /// <param name="value">The offending loss or gradient entry.</param>
    new(stage: Stage, iteration: int, value: float) = NonFiniteException(stage, iteration, value, "")

    /// The stage that diverged.
    member _.Stage = stage
    /// The iteration (or epoch) at which it happened.
    member _.Iteration = iteration
    /// The offending loss or gradient entry.
    member _.Value = value
    /// Why, when more is known than the value (empty otherwise).
    member _.Detail = detail

/// <summary>One entry of a learner's trace, and what progress callbacks receive.</summary>
type TraceEntry =
    {
        /// The stage.
        Stage: Stage
        /// Iteration, evaluation or epoch within the stage.
        Iteration: int
        /// The stage's loss at that point.
        Loss: float
    }

/// <summary>Why a stage stopped.</summary>
[<RequireQualifiedAccess>]
type StopReason =
    /// The convergence criterion was met.
    | Converged
    /// The iteration budget ran out first.
    | MaxIterations
    /// The line search could not make progress (the best point seen is returned).
    | NoProgress
    /// The stage has no convergence test and ran to its fixed end: a closed form, an enumeration, or a fixed
    /// schedule (SGD epochs, projected-gradient steps).
    | Completed
    /// The stage stopped where another method converges faster and that method continues (EM handing over to
    /// L-BFGS on the likelihood once its rate has become slow).
    | HandedOver

/// <summary>What one stage of a fit did: how many iterations, its loss at the end, why it stopped, how long it
/// took.</summary>
type StageResult =
    {
        /// The stage.
        Stage: Stage
        /// Iterations, evaluations, epochs or candidates (0 for a closed form).
        Iterations: int
        /// The stage's loss at its end (its own objective), or None for a stage without one.
        FinalLoss: float option
        /// Why it stopped.
        Reason: StopReason
        /// Wall time in seconds.
        Seconds: float
    }

/// <summary>What an iterative step of a learner returns: its result, how far it went and why it stopped.</summary>
type StageOutcome<'T> =
    {
        /// The result (a model, regressors, …).
        Value: 'T
        /// Iterations, evaluations, epochs or candidates.
        Iterations: int
        /// The loss at the end, or None.
        FinalLoss: float option
        /// Why it stopped.
        Reason: StopReason
    }

/// <summary>Where a run reports progress and how it is cancelled (the only side channel of a learner).</summary>
type RunContext =
    {
        /// Called with each trace entry (on the calling thread).
        Progress: TraceEntry -> unit
        /// Checked at least once per iteration.
        Cancellation: CancellationToken
    }

/// Construction of run contexts.
[<RequireQualifiedAccess>]
module RunContext =
    /// <summary>No progress reporting, no cancellation.</summary>
    [<CompiledName("Silent")>]
    let silent: RunContext =
        {
            Progress = ignore
            Cancellation = CancellationToken.None
        }

/// Non-finite checks shared by the optimisers.
module internal Divergence =

    /// Raises NonFiniteException when the value or a gradient entry is NaN or infinite.
    let check (stage: Stage) (iteration: int) (value: float) (gradient: float[]) =
        if not (Double.IsFinite value) then
            raise (NonFiniteException(stage, iteration, value))

        for g in gradient do
            if not (Double.IsFinite g) then
                raise (NonFiniteException(stage, iteration, g))
