namespace MoE.Core

open System
open System.Numerics.Tensors
open System.Runtime.CompilerServices

/// <summary>
/// Sufficient statistics of one EM iteration, gathered in one pass over the data (EmKernel.statistics). Symmetric
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
/// The EM kernels (docs/math.md §7): one pass gives the likelihood, the posterior and every sum the M-step needs;
/// another judges a candidate M-step. Each reads X once, allocates nothing per sample, runs chunks on all cores and
/// adds their partial sums in chunk order (bit-identical whatever the core count). Scalar references:
/// tests/MoE.Core.Tests/Reference.fs.
/// </summary>
module internal EmKernel =

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
            let mx = RowOps.logitsInto ws xr logits
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
                    RowOps.rankOneUpper acc (oGram + i * dd) d (post * h * h) xr
                    let target = if identity then yr else h * e
                    let rhs = Span<float>(acc, oRhs + i * d, d)
                    TensorPrimitives.MultiplyAdd(xr, post * target, ReadOnlySpan<float>(acc, oRhs + i * d, d), rhs)

            // Gate gradient and Hessian blocks.
            for j in 0 .. km1 - 1 do
                let gj = posterior.[r, j] - p.[j]
                let grad = Span<float>(acc, oGrad + j * d, d)
                TensorPrimitives.MultiplyAdd(xr, gj, ReadOnlySpan<float>(acc, oGrad + j * d, d), grad)
                // Diagonal block: upper triangle; off-diagonal blocks l > j: full.
                RowOps.rankOneUpper acc (oHess + (j * d) * hd + j * d) hd (p.[j] * (1.0 - p.[j])) xr

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
    /// <see cref="T:MoE.Core.EmStatistics"/>). Reference: the scalar E-step of tests' Reference.fs (MoeModel.responsibilities and
    /// per-expert weighted normal equations), compared in the tests.
    /// </summary>
    let statistics (model: MoeModel) (x: float[,]) (y: float[]) (posterior: float[,]) : EmStatistics =
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
    /// Q(W) = Σ_n Σ_i r_ni log p_i(x_n; W) with the candidate gating, in one pass. Reference: the scalar
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
                    let mx = RowOps.logitsInto ws xr logits
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
