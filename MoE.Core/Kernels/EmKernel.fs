namespace MoE.Core

open System
open System.Numerics.Tensors
open System.Runtime.CompilerServices

/// <summary>
/// Sufficient statistics of one EM iteration, gathered in one pass over the data (EmKernel.statistics). The design is
/// x̃ = (x, 1) when intercepts are fitted (p = d + 1 columns) and x̃ = x otherwise (p = d). Symmetric matrices hold
/// their upper triangle only (row-major, t ≤ u); the caller mirrors them.
/// </summary>
type internal EmStatistics =
    {
        /// Σ_n log p(y_n | x_n) of the model the statistics were taken at.
        LogLikelihood: float
        /// Per expert i: Σ_n r_ni·h_ni²·x̃_n x̃_nᵀ (p×p, upper), with h = g'(s) (1 for the identity).
        Gram: float[][]
        /// Per expert i: Σ_n r_ni·t_ni·x̃_n for the identity (t = y, or y − b_i when the intercepts are not in the
        /// design), Σ_n r_ni·g'(s_ni)(y_n − g(s_ni))·x̃_n otherwise.
        Rhs: float[][]
        /// Per expert i: Σ_n r_ni·(y_n − g(s_ni))².
        Sse: float[]
        /// Per expert i: Σ_n r_ni·t_ni² (the identity's SSE after its exact step follows from it).
        SumY2: float[]
        /// Per expert i: Σ_n r_ni.
        Weight: float[]
        /// Q(W) = Σ_n Σ_i r_ni log p_i(x_n; W) at the model's gating.
        GateObjective: float
        /// Σ_n (r_nj − p_nj)·x̃_n for j &lt; k ((k−1)·p).
        GateGradient: float[]
        /// Σ_n p_nj(δ_jl − p_nl)·x̃_n x̃_nᵀ for j ≤ l &lt; k as a ((k−1)p)² matrix (upper blocks; diagonal blocks
        /// upper), or empty when not requested.
        GateHessian: float[]
    }

/// <summary>
/// The EM kernels (docs/math.md §7): one pass gives the likelihood, the posterior and every sum the M-step needs;
/// another judges a candidate M-step. Rows are processed in blocks of 256, transposed, so each weighted sum over the
/// block is one vectorised dot product (docs/math.md §7.3); chunks run on all cores and their partial sums are added
/// in chunk order (bit-identical whatever the core count). Scalar references: tests/MoE.Core.Tests/Reference.fs.
/// </summary>
module internal EmKernel =

    /// Rows per block: the transposed block (p × 256 doubles) stays in the L2 cache for p up to a few hundred.
    [<Literal>]
    let Block = 256

    /// The statistics' layout in one vector:
    /// [ll, Q | Gram_0..k-1 | Rhs_0..k-1 | Sse_0..k-1 | SumY2_0..k-1 | Weight_0..k-1 | GateGradient | GateHessian].
    let private layout (p: int) (k: int) (hessian: bool) =
        let pp, hp = p * p, (k - 1) * p
        let oGram, oRhs = 2, 2 + k * pp
        let oSse = oRhs + k * p
        let oY2 = oSse + k
        let oW = oY2 + k
        let oGrad = oW + k
        let oHess = oGrad + hp
        struct (oGram, oRhs, oSse, oY2, oW, oGrad, oHess, oHess + (if hessian then hp * hp else 0))

    /// acc[o + t·stride + u] += Σ_b xt[t, b]·w[b]·xt[u, b] for t ≤ u < p: one block's weighted Gram (upper triangle).
    let private gramBlock
        (acc: float[])
        (offset: int)
        (stride: int)
        (xt: float[])
        (p: int)
        (rows: int)
        (w: float[])
        (scratch: float[])
        =
        for t in 0 .. p - 1 do
            let xtT = ReadOnlySpan<float>(xt, t * Block, rows)
            let yt = Span<float>(scratch, 0, rows)
            TensorPrimitives.Multiply(xtT, ReadOnlySpan<float>(w, 0, rows), yt)
            let ytr = ReadOnlySpan<float>(scratch, 0, rows)
            let row = offset + t * stride

            for u in t .. p - 1 do
                acc.[row + u] <-
                    acc.[row + u]
                    + TensorPrimitives.Dot(ytr, ReadOnlySpan<float>(xt, u * Block, rows))

    /// acc[o + t] += Σ_b xt[t, b]·w[b] for t < p.
    let private vectorBlock (acc: float[]) (offset: int) (xt: float[]) (p: int) (rows: int) (w: float[]) =
        let wr = ReadOnlySpan<float>(w, 0, rows)

        for t in 0 .. p - 1 do
            acc.[offset + t] <-
                acc.[offset + t]
                + TensorPrimitives.Dot(ReadOnlySpan<float>(xt, t * Block, rows), wr)

    /// Rows lo..hi−1 of the EM statistics (the chunk body of statistics).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private chunk
        (model: MoeModel)
        (intercepts: bool)
        (hessian: bool)
        (x: float[,])
        (y: float[])
        (posterior: float[,])
        (lo: int)
        (hi: int)
        : float[] =
        let d, k = x.GetLength 1, model.Experts
        let p = if intercepts then d + 1 else d
        let km1 = k - 1
        let g = model.Activation
        let identity = g = Identity
        let logNorms, inv2s2 = MoeModel.densityConstants model
        let b, c = model.RegressorIntercepts, model.GatingIntercepts
        let pp, hp = p * p, km1 * p
        let struct (oGram, oRhs, oSse, oY2, oW, oGrad, oHess, length) = layout p k hessian
        let acc = Array.zeroCreate length
        let prob = Array.zeroCreate k
        let logits = Array.zeroCreate k
        let joint = Array.zeroCreate k
        let means = Array.zeroCreate k
        let slopes = Array.zeroCreate k
        // The block, transposed (p rows of Block), and the per-row weights of every sum.
        let xt = Array.zeroCreate (p * Block)
        let wGram = Array.init k (fun _ -> Array.zeroCreate Block)
        let wRhs = Array.init k (fun _ -> Array.zeroCreate Block)
        let wGrad = Array.init km1 (fun _ -> Array.zeroCreate Block)
        let probs = Array.init km1 (fun _ -> Array.zeroCreate Block)
        let scratch = Array.zeroCreate Block
        let wHess = Array.zeroCreate Block
        let xs = Chunks.flat x
        let ws = Chunks.flat model.Gating
        let a = Chunks.flat model.Regressors
        let mutable start = lo

        while start < hi do
            let rows = min Block (hi - start)

            for bi in 0 .. rows - 1 do
                let r = start + bi
                let xr = xs.Slice(r * d, d)
                let yr = y.[r]

                for t in 0 .. d - 1 do
                    xt.[t * Block + bi] <- xr.[t]

                if intercepts then
                    xt.[d * Block + bi] <- 1.0
                // Gate.
                let mx = RowOps.logitsInto ws c xr logits
                let mutable sg = 0.0

                for i in 0..km1 do
                    let e = Math.Exp(logits.[i] - mx)
                    prob.[i] <- e
                    sg <- sg + e

                let logSg = Math.Log sg + mx
                // Experts and the joint log-density.
                let mutable mj = Double.NegativeInfinity

                for i in 0..km1 do
                    let s = TensorPrimitives.Dot(a.Slice(i * d, d), xr) + b.[i]
                    means.[i] <- g.Value s
                    slopes.[i] <- (if identity then 1.0 else g.Derivative s)
                    prob.[i] <- prob.[i] / sg
                    let e = yr - means.[i]
                    let j = logits.[i] - logSg + logNorms.[i] - e * e * inv2s2.[i]
                    joint.[i] <- j

                    if j > mj then
                        mj <- j

                let mutable sj = 0.0

                for i in 0..km1 do
                    let e = Math.Exp(joint.[i] - mj)
                    joint.[i] <- e
                    sj <- sj + e

                acc.[0] <- acc.[0] + mj + Math.Log sj

                for i in 0..km1 do
                    let post = joint.[i] / sj
                    posterior.[r, i] <- post
                    let e = yr - means.[i]
                    let h = slopes.[i]

                    if post > 0.0 then
                        acc.[1] <- acc.[1] + post * (logits.[i] - logSg)

                    // The identity's target: y, or y − b_i when the intercept is fixed (not in the design).
                    let target = if intercepts then yr else yr - b.[i]
                    acc.[oSse + i] <- acc.[oSse + i] + post * e * e
                    acc.[oY2 + i] <- acc.[oY2 + i] + post * target * target
                    acc.[oW + i] <- acc.[oW + i] + post
                    wGram.[i].[bi] <- post * h * h
                    wRhs.[i].[bi] <- post * (if identity then target else h * e)

                for j in 0 .. km1 - 1 do
                    wGrad.[j].[bi] <- posterior.[r, j] - prob.[j]
                    probs.[j].[bi] <- prob.[j]

            // The block's sums, one vectorised dot product over its rows each.
            for i in 0 .. k - 1 do
                gramBlock acc (oGram + i * pp) p xt p rows wGram.[i] scratch
                vectorBlock acc (oRhs + i * p) xt p rows wRhs.[i]

            for j in 0 .. km1 - 1 do
                vectorBlock acc (oGrad + j * p) xt p rows wGrad.[j]

            if hessian then
                for j in 0 .. km1 - 1 do
                    // Diagonal block: p_j(1 − p_j); off-diagonal blocks l > j: −p_j p_l (full).
                    for bi in 0 .. rows - 1 do
                        wHess.[bi] <- probs.[j].[bi] * (1.0 - probs.[j].[bi])

                    gramBlock acc (oHess + (j * p) * hp + j * p) hp xt p rows wHess scratch

                    for l in j + 1 .. km1 - 1 do
                        for bi in 0 .. rows - 1 do
                            wHess.[bi] <- -probs.[j].[bi] * probs.[l].[bi]

                        for t in 0 .. p - 1 do
                            TensorPrimitives.Multiply(
                                ReadOnlySpan<float>(xt, t * Block, rows),
                                ReadOnlySpan<float>(wHess, 0, rows),
                                Span<float>(scratch, 0, rows)
                            )

                            let row = oHess + (j * p + t) * hp + l * p

                            for u in 0 .. p - 1 do
                                acc.[row + u] <-
                                    acc.[row + u]
                                    + TensorPrimitives.Dot(
                                        ReadOnlySpan<float>(scratch, 0, rows),
                                        ReadOnlySpan<float>(xt, u * Block, rows)
                                    )

            start <- start + rows

        acc

    /// <summary>
    /// One pass of EM at <paramref name="model"/>: gate probabilities, expert means, the log-likelihood, the posterior
    /// (written to <paramref name="posterior"/>, n×k, reused across iterations) and every sum the M-step needs (see
    /// <see cref="T:MoE.Core.EmStatistics"/>), over the design x̃ = (x, 1) when <paramref name="intercepts"/>; the
    /// gate's Hessian only when <paramref name="hessian"/>.
    /// </summary>
    let statistics
        (model: MoeModel)
        (intercepts: bool)
        (hessian: bool)
        (x: float[,])
        (y: float[])
        (posterior: float[,])
        : EmStatistics =
        let n, d, k = x.GetLength 0, x.GetLength 1, model.Experts
        let p = if intercepts then d + 1 else d
        let pp, hp = p * p, (k - 1) * p
        let struct (oGram, oRhs, oSse, oY2, oW, oGrad, oHess, _) = layout p k hessian
        let total = Chunks.sum n (chunk model intercepts hessian x y posterior)

        {
            LogLikelihood = total.[0]
            GateObjective = total.[1]
            Gram = Array.init k (fun i -> Array.sub total (oGram + i * pp) pp)
            Rhs = Array.init k (fun i -> Array.sub total (oRhs + i * p) p)
            Sse = Array.sub total oSse k
            SumY2 = Array.sub total oY2 k
            Weight = Array.sub total oW k
            GateGradient = Array.sub total oGrad hp
            GateHessian = (if hessian then Array.sub total oHess (hp * hp) else [||])
        }

    /// <summary>The unweighted Gram Σ_n x̃_n x̃_nᵀ (p×p, upper): Böhning's bound of the gate's Hessian is a fixed
    /// multiple of it, so it is computed once per EM run.</summary>
    let design (intercepts: bool) (x: float[,]) : float[] =
        let n, d = x.GetLength 0, x.GetLength 1
        let p = if intercepts then d + 1 else d

        Chunks.sum n (fun lo hi ->
            let acc = Array.zeroCreate (p * p)
            let xt = Array.zeroCreate (p * Block)
            let ones = Array.create Block 1.0
            let scratch = Array.zeroCreate Block
            let xs = Chunks.flat x
            let mutable start = lo

            while start < hi do
                let rows = min Block (hi - start)

                for bi in 0 .. rows - 1 do
                    let xr = xs.Slice((start + bi) * d, d)

                    for t in 0 .. d - 1 do
                        xt.[t * Block + bi] <- xr.[t]

                    if intercepts then
                        xt.[d * Block + bi] <- 1.0

                gramBlock acc 0 p xt p rows ones scratch
                start <- start + rows

            acc)

    /// <summary>The column means and the second moments about them, Σ_n (x_n − μ)(x_n − μ)ᵀ/n (d×d, upper), in two
    /// passes (the mean first, so the moments lose no digits to cancellation when |μ| ≫ sd).</summary>
    let covariance (centre: bool) (x: float[,]) : float[] * float[] =
        let n, d = x.GetLength 0, x.GetLength 1

        let mean =
            if centre then
                Chunks.sum n (fun lo hi ->
                    let acc = Array.zeroCreate d
                    let xs = Chunks.flat x

                    for r in lo .. hi - 1 do
                        TensorPrimitives.Add(ReadOnlySpan<float>(acc), xs.Slice(r * d, d), Span<float>(acc))

                    acc)
                |> Array.map (fun s -> s / float n)
            else
                Array.zeroCreate d

        let moments =
            Chunks.sum n (fun lo hi ->
                let acc = Array.zeroCreate (d * d)
                let xt = Array.zeroCreate (d * Block)
                let ones = Array.create Block 1.0
                let scratch = Array.zeroCreate Block
                let xs = Chunks.flat x
                let mutable start = lo

                while start < hi do
                    let rows = min Block (hi - start)

                    for bi in 0 .. rows - 1 do
                        let xr = xs.Slice((start + bi) * d, d)

                        for t in 0 .. d - 1 do
                            xt.[t * Block + bi] <- xr.[t] - mean.[t]

                    gramBlock acc 0 d xt d rows ones scratch
                    start <- start + rows

                acc)

        mean, moments |> Array.map (fun s -> s / float n)

    /// <summary>
    /// For a candidate M-step: per expert i, Σ_n r_ni (y_n − g(&lt;a_i, x_n&gt; + b_i))² with the candidate regressors,
    /// and Q(W) = Σ_n Σ_i r_ni log p_i(x_n; W, c) with the candidate gating, in one pass. Reference: the scalar
    /// weighted SSE and Q of tests' Reference.fs.
    /// </summary>
    let mStepObjectives
        (regressors: float[,])
        (regressorIntercepts: float[])
        (gating: float[,])
        (gatingIntercepts: float[])
        (g: Activation)
        (posterior: float[,])
        (x: float[,])
        (y: float[])
        =
        let n, d, k = x.GetLength 0, x.GetLength 1, regressors.GetLength 0
        let km1 = k - 1

        let total =
            Chunks.sum n (fun lo hi ->
                let acc = Array.zeroCreate (k + 1)
                let logits = Array.zeroCreate k
                let xs = Chunks.flat x
                let ws = Chunks.flat gating
                let a = Chunks.flat regressors

                for r in lo .. hi - 1 do
                    let xr = xs.Slice(r * d, d)
                    let mx = RowOps.logitsInto ws gatingIntercepts xr logits
                    let mutable sg = 0.0

                    for i in 0..km1 do
                        sg <- sg + Math.Exp(logits.[i] - mx)

                    let lse = mx + Math.Log sg

                    for i in 0..km1 do
                        let post = posterior.[r, i]

                        if post > 0.0 then
                            let e =
                                y.[r]
                                - g.Value(TensorPrimitives.Dot(a.Slice(i * d, d), xr) + regressorIntercepts.[i])

                            acc.[i] <- acc.[i] + post * e * e
                            acc.[k] <- acc.[k] + post * (logits.[i] - lse)

                acc)

        Array.sub total 0 k, total.[k]
