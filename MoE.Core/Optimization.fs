namespace MoE.Core

open System
open System.Threading
open MathNet.Numerics.LinearAlgebra
open MathNet.Numerics.Optimization

/// <summary>Raised when a loss or gradient becomes NaN or infinite, or an objective turns out unbounded below: a
/// run stops with this error, never with non-finite parameters. <c>detail</c> says why, when more is known.</summary>
type NonFiniteException(stage: string, iteration: int, value: float, detail: string) =
    inherit
        ArithmeticException(
            if String.IsNullOrEmpty detail then
                sprintf
                    "The %s stage produced a non-finite value (%s) at iteration %d; no parameters were returned."
                    stage
                    (string value)
                    iteration
            else
                sprintf
                    "The %s stage failed (%s) at iteration %d; no parameters were returned. %s"
                    stage
                    (string value)
                    iteration
                    detail
        )

    /// <summary>The plain form: the stage, the iteration and the offending value.</summary>
    new(stage: string, iteration: int, value: float) = NonFiniteException(stage, iteration, value, "")

    /// The stage that diverged (l4, gating, em, l2, ...).
    member _.Stage = stage
    /// The iteration (or epoch) at which it happened.
    member _.Iteration = iteration
    /// The offending loss or gradient entry.
    member _.Value = value

/// <summary>One entry of a learner's trace, and what progress callbacks receive.</summary>
type TraceEntry =
    {
        /// The stage: "l4", "signs", "gating", "em", "l2", "l4-sgd".
        Stage: string
        /// Iteration, evaluation or epoch within the stage.
        Iteration: int
        /// The stage's loss at that point.
        Loss: float
    }

/// <summary>Why an iterative stage stopped.</summary>
[<RequireQualifiedAccess>]
type StopReason =
    /// The convergence criterion was met.
    | Converged
    /// The iteration budget ran out first.
    | MaxIterations
    /// The line search could not make progress (the best point seen is returned).
    | NoProgress

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

/// L-BFGS with non-finite checks, cancellation and best-point tracking (MathNet's minimiser underneath).
module internal Optim =

    let checkFinite (stage: string) (iteration: int) (value: float) (gradient: float[]) =
        if not (Double.IsFinite value) then
            raise (NonFiniteException(stage, iteration, value))

        for g in gradient do
            if not (Double.IsFinite g) then
                raise (NonFiniteException(stage, iteration, g))

    /// Minimises f from x0; returns the best point seen, its value, the evaluation count and the stop reason.
    let lbfgs
        (stage: string)
        (context: RunContext)
        (report: bool)
        (maxIterations: int)
        (gradientTolerance: float)
        (f: float[] -> float * float[])
        (x0: float[])
        =
        let mutable evaluations = 0
        let mutable bestValue = Double.PositiveInfinity
        let mutable best = Array.copy x0

        let objective =
            ObjectiveFunction.Gradient(
                Func<Vector<float>, struct (float * Vector<float>)>(fun v ->
                    context.Cancellation.ThrowIfCancellationRequested()
                    let x = v.ToArray()
                    let value, gradient = f x
                    checkFinite stage evaluations value gradient
                    evaluations <- evaluations + 1

                    if value < bestValue then
                        bestValue <- value
                        best <- x

                    if report then
                        context.Progress
                            {
                                Stage = stage
                                Iteration = evaluations
                                Loss = value
                            }

                    struct (value, Vector<float>.Build.DenseOfArray gradient))
            )

        let minimizer =
            LimitedMemoryBfgsMinimizer(gradientTolerance, 1e-12, 1e-14, 10, maxIterations)

        let reason =
            try
                minimizer.FindMinimum(objective, Vector<float>.Build.DenseOfArray x0) |> ignore
                StopReason.Converged
            with
            | :? MaximumIterationsException -> StopReason.MaxIterations
            | :? OptimizationException -> StopReason.NoProgress

        best, bestValue, evaluations, reason
