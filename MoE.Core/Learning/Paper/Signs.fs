namespace MoE.Core

open System
open System.Numerics.Tensors

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
                    let ll = LikelihoodKernel.logLikelihood fitted xs ys

                    context.Progress
                        {
                            Stage = Stage.Signs
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
    /// with a free scale, −â with t &lt; 0 would be +â again for an odd g. EM stops after 30 iterations, once an
    /// iteration gains less than 1e-9 per row, or once the vote is decided: from the fifth iteration, every pair's larger
    /// weight 20 times its smaller one and no pair changed side since the iteration before.
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
        let g = activation
        let m = 2 * k
        // Expert j: direction sign (+1 for j < k, −1 after), index i = j % k, scale t_j, weight π_j.
        let signOf j = if j < k then 1.0 else -1.0
        let t = Array.create m 1.0
        let pi = Array.create m (1.0 / float m)
        let mutable sig2 = sigma * sigma
        // The projections ⟨â_i, x_r⟩ expert by expert (i·n + r), and the responsibilities likewise (j·n + r).
        let projected =
            let s = Dense.projections directions xs
            Array.init (k * n) (fun idx -> s.[idx % n, idx / n])

        let r = Array.zeroCreate (m * n)
        // Per block: each expert's mean (then residual) and derivative lanes, and the row-wise max and total.
        let block = Lanes.Block
        let stride = Lanes.Stride
        let means = Array.zeroCreate (m * stride)
        let slopes = Array.zeroCreate (m * stride)
        let work = Array.zeroCreate block
        let mx = Array.zeroCreate block
        let total = Array.zeroCreate block
        let weight, num, den = Array.zeroCreate m, Array.zeroCreate m, Array.zeroCreate m
        let iterations = 30
        let mutable nll = nan
        let mutable iteration = 0
        let mutable settled = false
        let mutable lastDecided = Array.create k true

        /// Residuals y − g(t_j·sign_j·s) of every expert for rows start..start+rows−1 (derivatives when asked).
        let residuals (start: int) (rows: int) (withSlopes: bool) =
            for j in 0 .. m - 1 do
                let lane = Span<float>(means, j * stride, rows)

                TensorPrimitives.Multiply(
                    ReadOnlySpan<float>(projected, (j % k) * n + start, rows),
                    t.[j] * signOf j,
                    lane
                )

                Activation.activateLanes g means (if withSlopes then slopes else [||]) (j * stride) rows

                TensorPrimitives.Subtract(
                    ReadOnlySpan<float>(ys, start, rows),
                    ReadOnlySpan<float>(means, j * stride, rows),
                    lane
                )

        while iteration < iterations && not settled do
            context.Cancellation.ThrowIfCancellationRequested()
            iteration <- iteration + 1
            let logNorm = -0.5 * Math.Log(2.0 * Math.PI * sig2)
            let mutable ll = 0.0
            Array.fill weight 0 m 0.0
            Array.fill num 0 m 0.0
            Array.fill den 0 m 0.0
            let mutable start = 0

            // E-step with the M-step's sums: Σ r, Σ r·J·e and Σ r·J² per expert, J = g'(u)·sign·s the scale's Jacobian.
            while start < n do
                let rows = min block (n - start)
                residuals start rows true
                let mxs = Span<float>(mx, 0, rows)

                for j in 0 .. m - 1 do
                    let e = ReadOnlySpan<float>(means, j * stride, rows)
                    let logp = Span<float>(r, j * n + start, rows)
                    TensorPrimitives.Multiply(e, e, logp)
                    TensorPrimitives.Multiply(ReadOnlySpan<float>(r, j * n + start, rows), -0.5 / sig2, logp)

                    TensorPrimitives.Add(
                        ReadOnlySpan<float>(r, j * n + start, rows),
                        Math.Log(max pi.[j] 1e-300) + logNorm,
                        logp
                    )

                    if j = 0 then
                        ReadOnlySpan<float>(r, start, rows).CopyTo mxs
                    else
                        TensorPrimitives.Max(
                            ReadOnlySpan<float>(mx, 0, rows),
                            ReadOnlySpan<float>(r, j * n + start, rows),
                            mxs
                        )

                let totals = Span<float>(total, 0, rows)
                totals.Clear()

                for j in 0 .. m - 1 do
                    let rj = Span<float>(r, j * n + start, rows)

                    TensorPrimitives.Subtract(
                        ReadOnlySpan<float>(r, j * n + start, rows),
                        ReadOnlySpan<float>(mx, 0, rows),
                        rj
                    )

                    Lanes.exp r (j * n + start) r (j * n + start) rows

                    TensorPrimitives.Add(
                        ReadOnlySpan<float>(total, 0, rows),
                        ReadOnlySpan<float>(r, j * n + start, rows),
                        totals
                    )

                for j in 0 .. m - 1 do
                    let rj = ReadOnlySpan<float>(r, j * n + start, rows)

                    TensorPrimitives.Divide(
                        rj,
                        ReadOnlySpan<float>(total, 0, rows),
                        Span<float>(r, j * n + start, rows)
                    )

                    let jac = Span<float>(slopes, j * stride, rows)

                    TensorPrimitives.Multiply(
                        ReadOnlySpan<float>(slopes, j * stride, rows),
                        ReadOnlySpan<float>(projected, (j % k) * n + start, rows),
                        jac
                    )

                    TensorPrimitives.Multiply(ReadOnlySpan<float>(slopes, j * stride, rows), signOf j, jac)
                    let w = Span<float>(work, 0, rows)
                    TensorPrimitives.Multiply(rj, ReadOnlySpan<float>(slopes, j * stride, rows), w)
                    weight.[j] <- weight.[j] + Lanes.sum r (j * n + start) rows

                    num.[j] <- num.[j] + Lanes.dot work 0 means (j * stride) rows

                    den.[j] <- den.[j] + Lanes.dot work 0 slopes (j * stride) rows

                Lanes.log total 0 total 0 rows

                ll <- ll + Lanes.sum mx 0 rows + Lanes.sum total 0 rows

                start <- start + rows

            let previous = nll
            nll <- -ll / float n
            settled <- Double.IsFinite previous && previous - nll < 1e-9 * max 1.0 (abs nll)
            // M-step: weights, one projected Gauss–Newton step per scale (exact for the identity), then σ² at the new
            // scales.
            for j in 0 .. m - 1 do
                pi.[j] <- weight.[j] / float n

                if den.[j] > 0.0 then
                    t.[j] <- max 0.0 (t.[j] + num.[j] / den.[j])

            // The vote is decided once every pair's larger weight is 20 times its smaller one and no pair changed side
            // since the last iteration (from the fifth on): later iterations only sharpen it.
            let decided = Array.init k (fun i -> pi.[i] >= pi.[i + k])

            let clear =
                Array.forall (fun i -> max pi.[i] pi.[i + k] >= 20.0 * min pi.[i] pi.[i + k]) [| 0 .. k - 1 |]

            if iteration >= 5 && clear && decided = lastDecided then
                settled <- true

            lastDecided <- decided

            let mutable sse = 0.0
            start <- 0

            while start < n do
                let rows = min block (n - start)
                residuals start rows false

                for j in 0 .. m - 1 do
                    let e = ReadOnlySpan<float>(means, j * stride, rows)

                    TensorPrimitives.Multiply(
                        ReadOnlySpan<float>(r, j * n + start, rows),
                        e,
                        Span<float>(work, 0, rows)
                    )

                    sse <- sse + Lanes.dot work 0 means (j * stride) rows

                start <- start + rows

            sig2 <- max (sse / float n) (1e-12 * sig2)

            context.Progress
                {
                    Stage = Stage.Signs
                    Iteration = iteration
                    Loss = nll
                }

        {
            Value = Array2D.init k d (fun i c -> (if pi.[i] >= pi.[i + k] then 1.0 else -1.0) * directions.[i, c])
            Iterations = iteration
            FinalLoss = Some nll
            Reason =
                (if settled then
                     StopReason.Converged
                 else
                     StopReason.Completed)
        }
