namespace MoE.Core

open System

/// <summary>Sign resolution (docs/math.md §6.3): L4 recovers each direction up to sign, and L_log is not
/// sign-invariant, so the signs are chosen by likelihood before the gating fit.</summary>
[<RequireQualifiedAccess>]
module Signs =

    /// <summary>Chooses the sign of each unit direction by likelihood: for each of the 2^k sign patterns, a short
    /// gating fit (40 L-BFGS iterations) on a seeded subsample, keeping the pattern of highest log-likelihood.</summary>
    /// <param name="directions">k unit directions (k×d).</param>
    /// <param name="activation">g.</param>
    /// <param name="sigma">σ &gt; 0 for the likelihood.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <param name="subsampleSize">Rows of the seeded subsample the candidates are judged on.</param>
    /// <param name="seed">The seed of the subsample.</param>
    /// <param name="context">Progress (one report per pattern, loss −log-likelihood/n) and cancellation.</param>
    /// <returns>The model of the best pattern (its gating fitted on the subsample), with 2^k candidates and the best
    /// −log-likelihood per sample.</returns>
    [<CompiledName("Resolve")>]
    let resolve
        (directions: float[,])
        (activation: Activation)
        (sigma: float)
        (x: float[,])
        (y: float[])
        (subsampleSize: int)
        (seed: int64)
        (context: RunContext)
        : StageOutcome<MoeModel> =
        let k, d = directions.GetLength 0, directions.GetLength 1
        let xs, ys = Sampling.subsample subsampleSize seed x y

        let candidates =
            [
                for pattern in 0 .. (1 <<< k) - 1 ->
                    let a =
                        Array2D.init k d (fun i t ->
                            (if (pattern >>> i) &&& 1 = 1 then -1.0 else 1.0) * directions.[i, t])

                    let start = MoeModel.create a (Array2D.zeroCreate (k - 1) d) activation sigma
                    let fitted = (Gating.fit start xs ys 40 context false).Value
                    let ll = MoeModel.logLikelihood fitted xs ys

                    context.Progress
                        {
                            Stage = "signs"
                            Iteration = pattern
                            Loss = -ll / float ys.Length
                        }

                    fitted, ll
            ]

        let best, ll = List.maxBy snd candidates

        {
            Value = best
            Iterations = candidates.Length
            FinalLoss = Some(-ll / float ys.Length)
            Reason = StopReason.Completed
        }

    /// <summary>
    /// Chooses the sign of each unit direction in time linear in k (docs/math.md §6.3): the 2k experts
    /// g(t_j⟨±â_i, x⟩) compete in a mixture with constant weights π_j (no gating), each with a scale t_j ≥ 0; EM
    /// fits π, t and σ on a seeded subsample, and each pair keeps the sign of larger weight. A scale ≥ 0 matters:
    /// with a free scale, −â with t &lt; 0 would be +â again for an odd g.
    /// </summary>
    /// <param name="directions">k unit directions (k×d).</param>
    /// <param name="activation">g.</param>
    /// <param name="sigma">A start for σ &gt; 0 (refitted).</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <param name="subsampleSize">Rows of the seeded subsample.</param>
    /// <param name="seed">The seed of the subsample.</param>
    /// <param name="context">Progress (one report per iteration, loss −log-likelihood/n) and cancellation.</param>
    /// <returns>The signed directions (unit rows), with the iterations and the final −log-likelihood per row.</returns>
    [<CompiledName("Vote")>]
    let vote
        (directions: float[,])
        (activation: Activation)
        (sigma: float)
        (x: float[,])
        (y: float[])
        (subsampleSize: int)
        (seed: int64)
        (context: RunContext)
        : StageOutcome<float[,]> =
        Guard.positive "sigma" sigma
        let k, d = directions.GetLength 0, directions.GetLength 1
        let xs, ys = Sampling.subsample subsampleSize seed x y
        let n = ys.Length
        let s = Dense.projections directions xs
        let g = activation
        let m = 2 * k
        // Expert j: direction sign (+1 for j < k, −1 after), index i = j % k, scale t_j, weight π_j.
        let signOf j = if j < k then 1.0 else -1.0
        let t = Array.create m 1.0
        let pi = Array.create m (1.0 / float m)
        let mutable sig2 = sigma * sigma
        let r = Array2D.zeroCreate n m
        let logp = Array.zeroCreate m
        let iterations = 30
        let mutable nll = nan

        for iteration in 1..iterations do
            context.Cancellation.ThrowIfCancellationRequested()
            let logNorm = -0.5 * Math.Log(2.0 * Math.PI * sig2)
            let mutable ll = 0.0
            // E-step.
            for row in 0 .. n - 1 do
                let mutable mx = Double.NegativeInfinity

                for j in 0 .. m - 1 do
                    let e = ys.[row] - g.Value(t.[j] * signOf j * s.[row, j % k])
                    let v = Math.Log(max pi.[j] 1e-300) + logNorm - e * e / (2.0 * sig2)
                    logp.[j] <- v

                    if v > mx then
                        mx <- v

                let mutable total = 0.0

                for j in 0 .. m - 1 do
                    let e = Math.Exp(logp.[j] - mx)
                    r.[row, j] <- e
                    total <- total + e

                for j in 0 .. m - 1 do
                    r.[row, j] <- r.[row, j] / total

                ll <- ll + mx + Math.Log total

            nll <- -ll / float n
            // M-step: weights, one projected Gauss–Newton step per scale (exact for the identity), then σ².
            let mutable sse = 0.0

            for j in 0 .. m - 1 do
                let mutable weight = 0.0
                let mutable num = 0.0
                let mutable den = 0.0

                for row in 0 .. n - 1 do
                    let sj = signOf j * s.[row, j % k]
                    let u = t.[j] * sj
                    let jac = g.Derivative u * sj
                    let rw = r.[row, j]
                    weight <- weight + rw
                    num <- num + rw * jac * (ys.[row] - g.Value u)
                    den <- den + rw * jac * jac

                pi.[j] <- weight / float n

                if den > 0.0 then
                    t.[j] <- max 0.0 (t.[j] + num / den)

                for row in 0 .. n - 1 do
                    let e = ys.[row] - g.Value(t.[j] * signOf j * s.[row, j % k])
                    sse <- sse + r.[row, j] * e * e

            sig2 <- max (sse / float n) (1e-12 * sig2)

            context.Progress
                {
                    Stage = "signs"
                    Iteration = iteration
                    Loss = nll
                }

        {
            Value = Array2D.init k d (fun i c -> (if pi.[i] >= pi.[i + k] then 1.0 else -1.0) * directions.[i, c])
            Iterations = iterations
            FinalLoss = Some nll
            Reason = StopReason.Completed
        }
