namespace MoE.Core

/// <summary>The gating fit with the regressors fixed (docs/math.md §5.2, §6.5): W minimising the empirical L_log,
/// by L-BFGS (the default) or by the paper's projected gradient descent.</summary>
[<RequireQualifiedAccess>]
module Gating =

    /// <summary>W minimising the empirical L_log with A, g and σ of <paramref name="model"/> fixed, by L-BFGS from
    /// the model's W. Unconstrained (the ball of radius R in the theory is inactive in practice); see
    /// <c>fitProjected</c> for the constrained projected-gradient form.</summary>
    /// <param name="model">The start: A, g and σ &gt; 0 are held, W is the initial gating.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <param name="maxIterations">The L-BFGS budget.</param>
    /// <param name="context">Progress and cancellation.</param>
    /// <param name="report">Whether every evaluation is reported (false for the short fits of the sign search).</param>
    /// <returns>The model with the fitted W, the evaluation count, the final L_log and the stop reason.</returns>
    /// <exception cref="T:System.ArgumentException">An invalid model or mismatched shapes.</exception>
    /// <exception cref="T:MoE.Core.NonFiniteException">L_log or its gradient became non-finite.</exception>
    [<CompiledName("Fit")>]
    let fit
        (model: MoeModel)
        (x: float[,])
        (y: float[])
        (maxIterations: int)
        (context: RunContext)
        (report: bool)
        : StageOutcome<MoeModel> =
        MoeModel.validate model
        ModelRows.checkLikelihoodInputs model x y
        let km1, d = model.Experts - 1, model.Dimension
        // A, g and σ are fixed: the experts' log-densities are computed once, and each evaluation is a gate pass.
        let densities = GatingKernel.expertDensities model x y

        let f (v: float[]) =
            let value, gradient, _ =
                GatingKernel.loss densities x (Dense.unflatten km1 d v) model.GatingIntercepts

            value, Dense.flatten gradient

        let outcome =
            Lbfgs.minimize Stage.Gating context report maxIterations 1e-9 f (Dense.flatten model.Gating)

        {
            Value =
                { model with
                    Gating = Dense.unflatten km1 d outcome.Value
                }
            Iterations = outcome.Iterations
            FinalLoss = outcome.FinalLoss
            Reason = outcome.Reason
        }

    /// <summary>Projected gradient descent on L_log (paper §3.2): W ← Π_Ω(W − η∇L_log), each row of W kept in the
    /// ball of radius R. With <paramref name="splitting"/>, iteration t uses the t-th of T disjoint batches of n/T
    /// samples (Theorem 4's sample-splitting variant).</summary>
    /// <param name="model">The start: A, g and σ &gt; 0 are held, W is the initial gating.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <param name="radius">R &gt; 0.</param>
    /// <param name="learningRate">η &gt; 0.</param>
    /// <param name="iterations">T ≥ 1.</param>
    /// <param name="splitting">Whether iteration t uses only the t-th batch of n/T samples.</param>
    /// <param name="context">Progress and cancellation.</param>
    /// <returns>The model with the fitted W after T steps, and the last L_log.</returns>
    /// <exception cref="T:System.ArgumentException">A non-positive radius, rate or count.</exception>
    [<CompiledName("FitProjected")>]
    let fitProjected
        (model: MoeModel)
        (x: float[,])
        (y: float[])
        (radius: float)
        (learningRate: float)
        (iterations: int)
        (splitting: bool)
        (context: RunContext)
        : StageOutcome<MoeModel> =
        Guard.positive "radius" radius
        Guard.positive "learningRate" learningRate
        Guard.positiveInt "iterations" iterations
        let n, d = x.GetLength 0, x.GetLength 1
        let batch = if splitting then max 1 (n / iterations) else n
        let mutable w = Array2D.copy model.Gating
        let mutable last = nan

        for t in 0 .. iterations - 1 do
            context.Cancellation.ThrowIfCancellationRequested()

            let xb, yb =
                if splitting then
                    let start = (t * batch) % (n - batch + 1)
                    Array2D.init batch d (fun i j -> x.[start + i, j]), Array.init batch (fun i -> y.[start + i])
                else
                    x, y

            let e = Losses.logLikelihoodLoss { model with Gating = w } xb yb
            Divergence.check Stage.Gating t e.Value (Dense.flatten e.Gradient)
            last <- e.Value

            context.Progress
                {
                    Stage = Stage.Gating
                    Iteration = t
                    Loss = e.Value
                }

            w <- Array2D.mapi (fun i j v -> v - learningRate * e.Gradient.[i, j]) w

            for i in 0 .. w.GetLength 0 - 1 do
                let norm = sqrt (Seq.sum (seq { for j in 0 .. d - 1 -> w.[i, j] * w.[i, j] }))

                if norm > radius then
                    for j in 0 .. d - 1 do
                        w.[i, j] <- w.[i, j] * radius / norm

        {
            Value = { model with Gating = w }
            Iterations = iterations
            FinalLoss = Some last
            Reason = StopReason.Completed
        }
