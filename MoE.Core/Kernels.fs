namespace MoE.Core

open System
open System.Numerics.Tensors
open System.Runtime.CompilerServices

/// <summary>
/// Sufficient statistics of one EM iteration, gathered in one pass over the data (Kernels.emStatistics). Symmetric
/// matrices hold their upper triangle only (row-major, t ≤ u); the caller mirrors them.
/// </summary>
type internal EmStatistics =
    {
        /// Σ_n log p(y_n | x_n) of the model the statistics were taken at.
        LogLikelihood: float
        /// Per expert i: Σ_n r_ni·h_ni·x_n x_nᵀ (d×d, upper), with h = g'(s)² (1 for the identity).
        Gram: float[][]
        /// Per expert i: Σ_n r_ni·y_n·x_n for the identity, Σ_n r_ni·g'(s_ni)(y_n − g(s_ni))·x_n otherwise.
        Rhs: float[][]
        /// Per expert i: Σ_n r_ni·(y_n − g(s_ni))².
        Sse: float[]
        /// Q(W) = Σ_n Σ_i r_ni log p_i(x_n; W) at the model's W.
        GateObjective: float
        /// Σ_n (r_nj − p_nj)·x_n for j &lt; k ((k−1)·d).
        GateGradient: float[]
        /// Σ_n p_nj(δ_jl − p_nl)·x_n x_nᵀ for j ≤ l &lt; k, as a ((k−1)d)² matrix (upper blocks; diagonal blocks upper).
        GateHessian: float[]
    }

/// <summary>
/// The learner's hot loops, fused: each kernel reads X once per call, allocates nothing per sample (scratch is per
/// chunk), and splits the samples into chunks that run on all cores. The chunking depends on n only and the chunks'
/// partial sums are added in chunk order, so a result is bit-identical whatever the core count. Each kernel has a
/// plain scalar reference that the tests compare it with (named in its summary).
/// </summary>
module internal Kernels =

    /// The gate logits l_i = &lt;w_i, x&gt; (l_k = 0) into logits; returns max_i l_i (≥ 0).
    let inline private logitsInto (ws: ReadOnlySpan<float>) (xr: ReadOnlySpan<float>) (logits: float[]) =
        let d, km1 = xr.Length, logits.Length - 1
        let mutable mx = 0.0

        for i in 0 .. km1 - 1 do
            let v = TensorPrimitives.Dot(ws.Slice(i * d, d), xr)
            logits.[i] <- v

            if v > mx then
                mx <- v

        logits.[km1] <- 0.0
        mx

    /// acc[t, u] += c·x_t·x_u for t ≤ u (upper triangle of a d×d row-major block starting at offset).
    let inline rankOneUpper (acc: float[]) (offset: int) (stride: int) (c: float) (x: ReadOnlySpan<float>) =
        let d = x.Length

        for t in 0 .. d - 1 do
            let ct = c * x.[t]

            if ct <> 0.0 then
                let row = Span<float>(acc, offset + t * stride + t, d - t)

                TensorPrimitives.MultiplyAdd(
                    x.Slice t,
                    ct,
                    ReadOnlySpan<float>(acc, offset + t * stride + t, d - t),
                    row
                )

    /// <summary>The experts' densities at fixed A, g, σ, in the form the gating kernel uses: per sample the largest
    /// log-density m_n = max_i log N_ni and the scaled densities E_ni = exp(log N_ni − m_n) ∈ [0, 1].</summary>
    type ExpertDensities =
        {
            /// n×k log N(y_n | g(&lt;a_i, x_n&gt;), σ²).
            Log: float[,]
            /// n×k exp(log N_ni − m_n).
            Scaled: float[,]
            /// n: m_n.
            LogMax: float[]
        }

    /// One sample of the gating loss in log space (the slow path, for when the scaled form underflows).
    let private gatingSampleInLogSpace
        (logits: float[])
        (mx: float)
        (sg: float)
        (logDensity: ReadOnlySpan<float>)
        (post: float[])
        =
        let k = logits.Length
        let logSg = Math.Log sg
        let mutable mj = Double.NegativeInfinity

        for i in 0 .. k - 1 do
            let j = logits.[i] - mx - logSg + logDensity.[i]
            post.[i] <- j

            if j > mj then
                mj <- j

        let mutable sj = 0.0

        for i in 0 .. k - 1 do
            let e = Math.Exp(post.[i] - mj)
            post.[i] <- e
            sj <- sj + e

        for i in 0 .. k - 1 do
            post.[i] <- post.[i] / sj

        mj + Math.Log sj

    /// Rows lo..hi−1 of the gating loss into acc = [Σ ll | Σ (p − r) x] (the chunk body of gatingLoss).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private gatingChunk
        (densities: ExpertDensities)
        (x: float[,])
        (w: float[,])
        (lo: int)
        (hi: int)
        (acc: float[])
        =
        let d, k = x.GetLength 1, densities.Scaled.GetLength 1
        let km1 = k - 1
        let logits = Array.zeroCreate k
        let e = Array.zeroCreate k
        let post = Array.zeroCreate k
        let xs = Chunks.flat x
        let ws = Chunks.flat w
        let scaled = Chunks.flat densities.Scaled
        let logs = Chunks.flat densities.Log

        for r in lo .. hi - 1 do
            let xr = xs.Slice(r * d, d)
            let mx = logitsInto ws xr logits
            // p_i = e_i/Σe with e_i = exp(l_i − max l); p(y|x) = Σ_i p_i N_i = (Σ e_i E_i / Σ e)·exp(m).
            let mutable sg = 0.0
            let mutable t = 0.0

            for i in 0..km1 do
                let ei = Math.Exp(logits.[i] - mx)
                e.[i] <- ei
                sg <- sg + ei
                t <- t + ei * scaled.[r * k + i]

            if t > 1e-280 then
                acc.[0] <- acc.[0] + Math.Log(t / sg) + densities.LogMax.[r]

                for i in 0 .. km1 - 1 do
                    post.[i] <- e.[i] * scaled.[r * k + i] / t
            else
                acc.[0] <- acc.[0] + gatingSampleInLogSpace logits mx sg (logs.Slice(r * k, k)) post

            for i in 0 .. km1 - 1 do
                let diff = post.[i] - e.[i] / sg

                if diff <> 0.0 then
                    let g = Span<float>(acc, 1 + i * d, d)
                    TensorPrimitives.MultiplyAdd(xr, -diff, ReadOnlySpan<float>(acc, 1 + i * d, d), g)

    /// <summary>
    /// L_log (paper eq. 9) and its W-gradient with the experts' densities precomputed: while W moves and A, g, σ
    /// stay fixed, N(y | g(&lt;a_i, x&gt;), σ²) does not change, so each evaluation needs only the gate — k exponentials
    /// and one logarithm per sample (log space only where the scaled form would underflow).
    /// Reference: Losses.logLikelihoodLoss.
    /// </summary>
    /// <param name="densities">From <c>expertDensities</c>.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="w">(k−1)×d gating.</param>
    /// <returns>−mean log-likelihood and its gradient, (k−1)×d.</returns>
    let gatingLoss (densities: ExpertDensities) (x: float[,]) (w: float[,]) : float * float[,] =
        let n, d, k = x.GetLength 0, x.GetLength 1, densities.Scaled.GetLength 1
        let km1 = k - 1

        let total =
            Chunks.sum n (fun lo hi ->
                let acc = Array.zeroCreate (1 + km1 * d)
                gatingChunk densities x w lo hi acc
                acc)

        let inv = 1.0 / float n
        -total.[0] * inv, Array2D.init km1 d (fun i t -> total.[1 + i * d + t] * inv)

    /// <summary>The experts' densities at the model's A, g, σ for every sample (n×k), in one parallel pass.</summary>
    let expertDensities (model: MoeModel) (x: float[,]) (y: float[]) : ExpertDensities =
        let n, d, k = x.GetLength 0, x.GetLength 1, model.Experts
        let sigma = model.Sigma
        let logNorm = -0.5 * Math.Log(2.0 * Math.PI * sigma * sigma)
        let inv2s2 = 0.5 / (sigma * sigma)
        let g = model.Activation
        let logs = Array2D.zeroCreate n k
        let scaled = Array2D.zeroCreate n k
        let logMax = Array.zeroCreate n

        Chunks.forChunks n (fun _ lo hi ->
            let xs = Chunks.flat x
            let a = Chunks.flat model.Regressors

            for r in lo .. hi - 1 do
                let xr = xs.Slice(r * d, d)
                let mutable m = Double.NegativeInfinity

                for i in 0 .. k - 1 do
                    let e = y.[r] - g.Value(TensorPrimitives.Dot(a.Slice(i * d, d), xr))
                    let v = logNorm - e * e * inv2s2
                    logs.[r, i] <- v

                    if v > m then
                        m <- v

                logMax.[r] <- m

                for i in 0 .. k - 1 do
                    scaled.[r, i] <- Math.Exp(logs.[r, i] - m))

        {
            Log = logs
            Scaled = scaled
            LogMax = logMax
        }

    /// The EM statistics' layout in one vector: [ll, Q | Gram_0..k-1 | Rhs_0..k-1 | Sse_0..k-1 | GateGradient | GateHessian].
    let private emLayout (d: int) (k: int) =
        let dd, hd = d * d, (k - 1) * d
        let oGram, oRhs = 2, 2 + k * dd
        let oSse = oRhs + k * d
        let oGrad = oSse + k
        let oHess = oGrad + hd
        struct (oGram, oRhs, oSse, oGrad, oHess, oHess + hd * hd)

    /// Rows lo..hi−1 of the EM statistics (the chunk body of emStatistics).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private emChunk
        (model: MoeModel)
        (x: float[,])
        (y: float[])
        (posterior: float[,])
        (lo: int)
        (hi: int)
        : float[] =
        let d, k = x.GetLength 1, model.Experts
        let km1 = k - 1
        let g = model.Activation
        let identity = g = Identity
        let sigma = model.Sigma
        let logNorm = -0.5 * Math.Log(2.0 * Math.PI * sigma * sigma)
        let inv2s2 = 0.5 / (sigma * sigma)
        let dd, hd = d * d, km1 * d
        let struct (oGram, oRhs, oSse, oGrad, oHess, length) = emLayout d k
        let acc = Array.zeroCreate length
        let p = Array.zeroCreate k
        let logits = Array.zeroCreate k
        let joint = Array.zeroCreate k
        let means = Array.zeroCreate k
        let slopes = Array.zeroCreate k
        let xs = Chunks.flat x
        let ws = Chunks.flat model.Gating
        let a = Chunks.flat model.Regressors

        for r in lo .. hi - 1 do
            let xr = xs.Slice(r * d, d)
            let yr = y.[r]
            // Gate.
            let mx = logitsInto ws xr logits
            let mutable sg = 0.0

            for i in 0..km1 do
                let e = Math.Exp(logits.[i] - mx)
                p.[i] <- e
                sg <- sg + e

            let logSg = Math.Log sg + mx
            // Experts and the joint log-density.
            let mutable mj = Double.NegativeInfinity

            for i in 0..km1 do
                let s = TensorPrimitives.Dot(a.Slice(i * d, d), xr)
                means.[i] <- g.Value s
                slopes.[i] <- (if identity then 1.0 else g.Derivative s)
                let logP = logits.[i] - logSg
                p.[i] <- p.[i] / sg
                let e = yr - means.[i]
                let j = logP + logNorm - e * e * inv2s2
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

                if post > 0.0 then
                    acc.[1] <- acc.[1] + post * (logits.[i] - logSg)

                let e = yr - means.[i]
                acc.[oSse + i] <- acc.[oSse + i] + post * e * e

                if post > 0.0 then
                    let h = slopes.[i]
                    rankOneUpper acc (oGram + i * dd) d (post * h * h) xr
                    let target = if identity then yr else h * e
                    let rhs = Span<float>(acc, oRhs + i * d, d)
                    TensorPrimitives.MultiplyAdd(xr, post * target, ReadOnlySpan<float>(acc, oRhs + i * d, d), rhs)

            // Gate gradient and Hessian blocks.
            for j in 0 .. km1 - 1 do
                let gj = posterior.[r, j] - p.[j]
                let grad = Span<float>(acc, oGrad + j * d, d)
                TensorPrimitives.MultiplyAdd(xr, gj, ReadOnlySpan<float>(acc, oGrad + j * d, d), grad)
                // Diagonal block: upper triangle; off-diagonal blocks l > j: full.
                rankOneUpper acc (oHess + (j * d) * hd + j * d) hd (p.[j] * (1.0 - p.[j])) xr

                for l in j + 1 .. km1 - 1 do
                    let cjl = -p.[j] * p.[l]

                    for t in 0 .. d - 1 do
                        let ct = cjl * xr.[t]
                        let offset = oHess + (j * d + t) * hd + l * d
                        let row = Span<float>(acc, offset, d)
                        TensorPrimitives.MultiplyAdd(xr, ct, ReadOnlySpan<float>(acc, offset, d), row)

        acc

    /// <summary>
    /// One pass of EM: gate probabilities, expert means, the log-likelihood, the posterior (written to
    /// <paramref name="posterior"/>, n×k, reused across iterations) and every sum the M-step needs (see
    /// <see cref="T:MoE.Core.EmStatistics"/>). Reference: Polish's scalar E-step (MoeModel.responsibilities and
    /// per-expert weighted normal equations), compared in the tests.
    /// </summary>
    let emStatistics (model: MoeModel) (x: float[,]) (y: float[]) (posterior: float[,]) : EmStatistics =
        let n, d, k = x.GetLength 0, x.GetLength 1, model.Experts
        let dd, hd = d * d, (k - 1) * d
        let struct (oGram, oRhs, oSse, oGrad, oHess, _) = emLayout d k
        let total = Chunks.sum n (emChunk model x y posterior)

        {
            LogLikelihood = total.[0]
            GateObjective = total.[1]
            Gram = Array.init k (fun i -> Array.sub total (oGram + i * dd) dd)
            Rhs = Array.init k (fun i -> Array.sub total (oRhs + i * d) d)
            Sse = Array.sub total oSse k
            GateGradient = Array.sub total oGrad hd
            GateHessian = Array.sub total oHess (hd * hd)
        }

    /// <summary>
    /// For a candidate M-step: per expert i, Σ_n r_ni (y_n − g(&lt;a_i, x_n&gt;))² with the candidate regressors, and
    /// Q(W) = Σ_n Σ_i r_ni log p_i(x_n; W) with the candidate gating, in one pass. Reference: Polish's scalar
    /// weighted SSE and Q.
    /// </summary>
    let mStepObjectives
        (regressors: float[,])
        (gating: float[,])
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
                    let mx = logitsInto ws xr logits
                    let mutable sg = 0.0

                    for i in 0..km1 do
                        sg <- sg + Math.Exp(logits.[i] - mx)

                    let lse = mx + Math.Log sg

                    for i in 0..km1 do
                        let post = posterior.[r, i]

                        if post > 0.0 then
                            let e = y.[r] - g.Value(TensorPrimitives.Dot(a.Slice(i * d, d), xr))
                            acc.[i] <- acc.[i] + post * e * e
                            acc.[k] <- acc.[k] + post * (logits.[i] - lse)

                acc)

        Array.sub total 0 k, total.[k]
