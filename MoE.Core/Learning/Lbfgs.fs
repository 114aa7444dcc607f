namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra
open MathNet.Numerics.Optimization

/// <summary>Limited-memory BFGS (MathNet's minimiser underneath) with non-finite checks, cancellation and
/// best-point tracking: the quasi-Newton solver of the subspace L4 and of the gating fit.</summary>
module internal Lbfgs =

    /// Raised from inside the objective to end a run whose progress has stalled.
    exception private Stalled

    /// Evaluations over which progressTolerance is measured: L-BFGS's memory, so one window spans a full curvature
    /// update, and long enough that a line search's rejected trial points cannot end a run alone.
    [<Literal>]
    let private Window = 10

    /// <summary>Minimises f from x0 and returns the best point seen, with its value, the evaluation count and why
    /// the minimiser stopped; besides the gradient test, the run also counts as converged when the best value fell
    /// by at most progressTolerance·max(1, |best|) over the last <c>window</c> evaluations (0: no such test).</summary>
    /// <param name="stage">The stage name for progress reports and errors.</param>
    /// <param name="context">Progress and cancellation.</param>
    /// <param name="report">Whether each evaluation is reported to the context.</param>
    /// <param name="maxIterations">The iteration budget.</param>
    /// <param name="gradientTolerance">Convergence: the gradient's norm below this.</param>
    /// <param name="progressTolerance">Convergence: the relative fall of the best value over the window below this.</param>
    /// <param name="f">Value and gradient.</param>
    /// <param name="x0">The start.</param>
    let minimizeWithin
        (stage: string)
        (context: RunContext)
        (report: bool)
        (maxIterations: int)
        (gradientTolerance: float)
        (progressTolerance: float)
        (f: float[] -> float * float[])
        (x0: float[])
        : StageOutcome<float[]> =
        let mutable evaluations = 0
        let mutable bestValue = Double.PositiveInfinity
        let mutable best = Array.copy x0
        let history = ResizeArray<float>()

        let objective =
            ObjectiveFunction.Gradient(
                Func<Vector<float>, struct (float * Vector<float>)>(fun v ->
                    context.Cancellation.ThrowIfCancellationRequested()
                    let x = v.ToArray()
                    let value, gradient = f x
                    Divergence.check stage evaluations value gradient
                    evaluations <- evaluations + 1

                    if value < bestValue then
                        bestValue <- value
                        best <- x

                    history.Add bestValue

                    if progressTolerance > 0.0 && history.Count > Window then
                        let before = history.[history.Count - 1 - Window]

                        if before - bestValue <= progressTolerance * max 1.0 (abs bestValue) then
                            raise Stalled

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
            | Stalled -> StopReason.Converged
            | :? MaximumIterationsException -> StopReason.MaxIterations
            | :? OptimizationException -> StopReason.NoProgress

        {
            Value = best
            Iterations = evaluations
            FinalLoss = Some bestValue
            Reason = reason
        }

    /// <summary>Minimises f from x0 until the gradient's norm is below gradientTolerance (see <c>minimizeWithin</c>).</summary>
    /// <param name="stage">The stage name for progress reports and errors.</param>
    /// <param name="context">Progress and cancellation.</param>
    /// <param name="report">Whether each evaluation is reported to the context.</param>
    /// <param name="maxIterations">The iteration budget.</param>
    /// <param name="gradientTolerance">Convergence: the gradient's norm below this.</param>
    /// <param name="f">Value and gradient.</param>
    /// <param name="x0">The start.</param>
    let minimize stage context report maxIterations gradientTolerance f x0 =
        minimizeWithin stage context report maxIterations gradientTolerance 0.0 f x0
