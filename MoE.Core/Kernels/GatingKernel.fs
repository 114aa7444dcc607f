namespace MoE.Core

open System
open System.Numerics.Tensors
open System.Runtime.CompilerServices

/// <summary>The experts' densities at fixed A, g, σ, in the form the gating kernel uses: per sample the largest
/// log-density m_n = max_i log N_ni and the scaled densities E_ni = exp(log N_ni − m_n) ∈ [0, 1].</summary>
type internal ExpertDensities =
    {
        /// n×k log N(y_n | g(&lt;a_i, x_n&gt;), σ²).
        Log: float[,]
        /// n×k exp(log N_ni − m_n).
        Scaled: float[,]
        /// n: m_n.
        LogMax: float[]
    }

/// <summary>
/// The gating fit's kernel: L_log and its W-gradient with the experts' densities precomputed (docs/math.md §5.2).
/// Reads X once per call, allocates nothing per sample, runs chunks on all cores and adds their partial sums in
/// chunk order (bit-identical whatever the core count). Scalar reference: <c>Losses.logLikelihoodLoss</c>.
/// </summary>
module internal GatingKernel =

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

    /// Rows lo..hi−1 of the gating loss into acc = [Σ ll | Σ (p − r) x | Σ (p − r)] (the chunk body of loss).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private gatingChunk
        (densities: ExpertDensities)
        (x: float[,])
        (w: float[,])
        (c: float[])
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
            let mx = RowOps.logitsInto ws c xr logits
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
                    acc.[1 + km1 * d + i] <- acc.[1 + km1 * d + i] - diff

    /// <summary>
    /// L_log (paper eq. 9) and its W-gradient with the experts' densities precomputed: while W moves and A, g, σ
    /// stay fixed, N(y | g(&lt;a_i, x&gt;), σ²) does not change, so each evaluation needs only the gate — k exponentials
    /// and one logarithm per sample (log space only where the scaled form would underflow).
    /// Reference: Losses.logLikelihoodLoss.
    /// </summary>
    /// <param name="densities">From <c>expertDensities</c>.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="w">(k−1)×d gating.</param>
    /// <param name="c">k−1 gate intercepts.</param>
    /// <returns>−mean log-likelihood, its gradient with respect to W ((k−1)×d) and to c (k−1).</returns>
    let loss (densities: ExpertDensities) (x: float[,]) (w: float[,]) (c: float[]) : float * float[,] * float[] =
        let n, d, k = x.GetLength 0, x.GetLength 1, densities.Scaled.GetLength 1
        let km1 = k - 1

        let total =
            Chunks.sum n (fun lo hi ->
                let acc = Array.zeroCreate (1 + km1 * d + km1)
                gatingChunk densities x w c lo hi acc
                acc)

        let inv = 1.0 / float n

        -total.[0] * inv,
        Array2D.init km1 d (fun i t -> total.[1 + i * d + t] * inv),
        Array.init km1 (fun i -> total.[1 + km1 * d + i] * inv)

    /// <summary>The experts' densities at the model's A, g, σ for every sample (n×k), in one parallel pass.</summary>
    let expertDensities (model: MoeModel) (x: float[,]) (y: float[]) : ExpertDensities =
        let n, d, k = x.GetLength 0, x.GetLength 1, model.Experts
        let logNorms, inv2s2 = MoeModel.densityConstants model
        let b = model.RegressorIntercepts
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
                    let e = y.[r] - g.Value(TensorPrimitives.Dot(a.Slice(i * d, d), xr) + b.[i])
                    let v = logNorms.[i] - e * e * inv2s2.[i]
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
