namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra
open MathNet.Numerics.Optimization

/// <summary>Limited-memory BFGS (MathNet's minimiser underneath) with non-finite checks, cancellation and
/// best-point tracking: the quasi-Newton solver of the subspace L4 and of the gating fit.</summary>
module internal Lbfgs =

    /// <summary>Minimises f from x0 and returns the best point seen, with its value, the evaluation count and why
    /// the minimiser stopped.</summary>
    /// <param name="stage">The stage name for progress reports and errors.</param>
    /// <param name="context">Progress and cancellation.</param>
    /// <param name="report">Whether each evaluation is reported to the context.</param>
    /// <param name="maxIterations">The iteration budget.</param>
    /// <param name="gradientTolerance">Convergence: the gradient's norm below this.</param>
    /// <param name="f">Value and gradient.</param>
    /// <param name="x0">The start.</param>
    let minimize
        (stage: string)
        (context: RunContext)
        (report: bool)
        (maxIterations: int)
        (gradientTolerance: float)
        (f: float[] -> float * float[])
        (x0: float[])
        : StageOutcome<float[]> =
        let mutable evaluations = 0
        let mutable bestValue = Double.PositiveInfinity
        let mutable best = Array.copy x0

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

        {
            Value = best
            Iterations = evaluations
            FinalLoss = Some bestValue
            Reason = reason
        }
