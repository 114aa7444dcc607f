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

    /// The bookkeeping of both minimisers' evaluations: the divergence check, the count, the best point, and whether
    /// the best value fell by at most progressTolerance·max(1, |best|) over the last Window evaluations.
    type private Evaluations(stage: Stage, context: RunContext, progressTolerance: float, x0: float[]) =
        let history = ResizeArray<float>()
        member val Count = 0 with get, set
        member val BestValue = Double.PositiveInfinity with get, set
        member val Best = Array.copy x0 with get, set

        /// Records an evaluation at x (kept, not copied) and returns whether the run has stalled.
        member this.Record(x: float[], value: float, gradient: float[]) : bool =
            Divergence.check stage this.Count value gradient
            this.Count <- this.Count + 1

            if value < this.BestValue then
                this.BestValue <- value
                this.Best <- x

            history.Add this.BestValue

            progressTolerance > 0.0
            && history.Count > Window
            && history.[history.Count - 1 - Window] - this.BestValue
               <= progressTolerance * max 1.0 (abs this.BestValue)

        /// Reports the latest evaluation to the context.
        member this.Report(value: float) =
            context.Progress
                {
                    Stage = stage
                    Iteration = this.Count
                    Loss = value
                }

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
        (stage: Stage)
        (context: RunContext)
        (report: bool)
        (maxIterations: int)
        (gradientTolerance: float)
        (progressTolerance: float)
        (f: float[] -> float * float[])
        (x0: float[])
        : StageOutcome<float[]> =
        let run = Evaluations(stage, context, progressTolerance, x0)

        let objective =
            ObjectiveFunction.Gradient(
                Func<Vector<float>, struct (float * Vector<float>)>(fun v ->
                    context.Cancellation.ThrowIfCancellationRequested()
                    let x = v.ToArray()
                    let value, gradient = f x

                    if run.Record(x, value, gradient) then
                        raise Stalled

                    if report then
                        run.Report value

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
            Value = run.Best
            Iterations = run.Count
            FinalLoss = Some run.BestValue
            Reason = reason
        }

    /// <summary>
    /// L-BFGS for variables already scaled so that the Hessian's diagonal is about 1 (Nocedal and Wright 2006,
    /// Algorithms 7.4–7.5): the first trial step is 1 along −g, a Newton step for such variables, and every later one
    /// the two-loop direction with H₀ = (sᵀy/yᵀy)·I; steps backtrack (Armijo, c₁ = 1e-4, quadratic interpolation kept
    /// within [0.1, 0.5] of the trial) and a pair with sᵀy ≤ 1e-10·|s||y| is not stored, so H stays positive definite.
    /// MathNet's L-BFGS starts with a step of 100·tol/|g|² and doubles it: at the likelihood's tolerance of 1e-12 that
    /// was 16 of the 35 evaluations measured at n = 200,000, d = 50, k = 6 (docs/math.md §7.5).
    /// Stops as <c>minimizeWithin</c> does: the gradient's norm below gradientTolerance, or no relative progress of
    /// progressTolerance in ten evaluations (Converged); the budget of evaluations spent (MaxIterations); no step
    /// along a descent direction decreases f (NoProgress). Returns the best point evaluated.
    /// </summary>
    /// <param name="stage">The stage name for progress reports and errors.</param>
    /// <param name="context">Progress and cancellation.</param>
    /// <param name="maxEvaluations">The budget of evaluations of f.</param>
    /// <param name="gradientTolerance">Convergence: the gradient's Euclidean norm below this.</param>
    /// <param name="progressTolerance">Convergence: relative progress below this over ten evaluations (0: off).</param>
    /// <param name="f">Value and gradient.</param>
    /// <param name="x0">The start.</param>
    let minimizeScaled
        (stage: Stage)
        (context: RunContext)
        (maxEvaluations: int)
        (gradientTolerance: float)
        (progressTolerance: float)
        (f: float[] -> float * float[])
        (x0: float[])
        : StageOutcome<float[]> =
        let dot = Dense.dot
        let run = Evaluations(stage, context, progressTolerance, x0)
        let mutable stalled = false

        let evaluate (x: float[]) =
            context.Cancellation.ThrowIfCancellationRequested()
            let value, gradient = f x
            // Once stalled, the run stays stalled (a later evaluation ends it).
            stalled <- run.Record(Array.copy x, value, gradient) || stalled
            run.Report value
            value, gradient

        let pairs = ResizeArray<float[] * float[] * float>()

        let direction (g: float[]) =
            let q = Array.map (fun v -> -v) g
            let alphas = Array.zeroCreate pairs.Count

            for j in pairs.Count - 1 .. -1 .. 0 do
                let s, y, rho = pairs.[j]
                alphas.[j] <- rho * dot s q

                for t in 0 .. q.Length - 1 do
                    q.[t] <- q.[t] - alphas.[j] * y.[t]

            if pairs.Count > 0 then
                let s, y, _ = pairs.[pairs.Count - 1]
                let gamma = dot s y / dot y y

                for t in 0 .. q.Length - 1 do
                    q.[t] <- gamma * q.[t]

            for j in 0 .. pairs.Count - 1 do
                let s, y, rho = pairs.[j]
                let beta = rho * dot y q

                for t in 0 .. q.Length - 1 do
                    q.[t] <- q.[t] + (alphas.[j] - beta) * s.[t]

            q

        let mutable x = Array.copy x0
        let mutable fx, gx = evaluate x
        let mutable reason = None

        while reason.IsNone do
            if sqrt (dot gx gx) < gradientTolerance || stalled then
                reason <- Some StopReason.Converged
            elif run.Count >= maxEvaluations then
                reason <- Some StopReason.MaxIterations
            else
                let mutable d = direction gx
                let mutable slope = dot gx d

                if not (slope < 0.0) then
                    // Not a descent direction (rounding in the stored pairs): start again from steepest descent.
                    pairs.Clear()
                    d <- Array.map (fun v -> -v) gx
                    slope <- dot gx d

                let mutable alpha = 1.0
                let mutable accepted = None
                let mutable trials = 0

                while accepted.IsNone && trials < 30 && not stalled && run.Count < maxEvaluations do
                    let trial = Array.init x.Length (fun t -> x.[t] + alpha * d.[t])
                    let ft, gt = evaluate trial
                    trials <- trials + 1

                    if ft <= fx + 1e-4 * alpha * slope then
                        accepted <- Some(trial, ft, gt)
                    else
                        // The minimiser of the quadratic through f(x), f'(x; d) and f(trial), kept in [0.1, 0.5]·alpha
                        // (a non-finite ft cannot occur: Divergence.check has raised).
                        let q = -slope * alpha * alpha / (2.0 * (ft - fx - slope * alpha))
                        alpha <- max (0.1 * alpha) (min (0.5 * alpha) q)

                match accepted with
                | Some(xn, fn, gn) ->
                    let s = Array.map2 (-) xn x
                    let y = Array.map2 (-) gn gx
                    let sy = dot s y

                    if sy > 1e-10 * sqrt (dot s s * dot y y) then
                        pairs.Add((s, y, 1.0 / sy))

                        if pairs.Count > Window then
                            pairs.RemoveAt 0

                    x <- xn
                    fx <- fn
                    gx <- gn
                | None when stalled -> reason <- Some StopReason.Converged
                | None when run.Count >= maxEvaluations -> reason <- Some StopReason.MaxIterations
                | None -> reason <- Some StopReason.NoProgress

        {
            Value = run.Best
            Iterations = run.Count
            FinalLoss = Some run.BestValue
            Reason = reason.Value
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
