namespace MoE.Core

open System
open System.Numerics.Tensors
open System.Runtime.CompilerServices

/// <summary>The experts' densities at fixed A, g, σ, in the form the gating kernel uses: per sample the largest
/// log-density m_n = max_i log N_ni and the scaled densities E_ni = exp(log N_ni − m_n) ∈ [0, 1], stored expert by
/// expert (entry i·n + r) so that a block of rows reads each expert's densities as one contiguous lane.</summary>
type internal ExpertDensities =
    {
        /// The model the densities were taken at (its gating is replaced by each evaluation's).
        Model: MoeModel
        /// k×n: log N(y_r | g(&lt;a_i, x_r&gt; + b_i), σ_i²) at i·n + r.
        Log: float[]
        /// k×n: exp(log N_ri − m_r) at i·n + r.
        Scaled: float[]
        /// n: m_r.
        LogMax: float[]
    }

/// <summary>
/// The gating fit's kernel: L_log and its W-gradient with the experts' densities precomputed (docs/math.md §5.2).
/// Reads X once per call in transposed blocks, the gate computed in lanes (<c>Forward</c>), allocates nothing per
/// sample, runs chunks on all cores and adds their partial sums in chunk order (bit-identical whatever the core
/// count). Scalar reference: <c>Losses.logLikelihoodLoss</c>.
/// </summary>
module internal GatingKernel =

    [<Literal>]
    let private Block = Lanes.Block

    [<Literal>]
    let private Stride = Lanes.Stride

    /// One sample of the gating loss in log space, for when the scaled form underflows: log Σ_i p_i N_i from
    /// log p_i + log N_i, and the posterior into post (lane layout, row bi).
    let private sampleInLogSpace (forward: Forward) (densities: ExpertDensities) (n: int) (row: int) (bi: int) =
        let k = densities.Model.Experts
        let mutable mj = Double.NegativeInfinity

        for i in 0 .. k - 1 do
            let j = forward.LogGate.[i * Stride + bi] + densities.Log.[i * n + row]

            if j > mj then
                mj <- j

        let mutable sj = 0.0

        for i in 0 .. k - 1 do
            let e =
                Math.Exp(forward.LogGate.[i * Stride + bi] + densities.Log.[i * n + row] - mj)

            forward.Post.[i * Stride + bi] <- e
            sj <- sj + e

        for i in 0 .. k - 1 do
            forward.Post.[i * Stride + bi] <- forward.Post.[i * Stride + bi] / sj

        mj + Math.Log sj

    /// Rows lo..hi−1 of the gating loss into acc = [Σ ll | Σ (p − r) x (k−1 rows of d) | Σ (p − r)].
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private gatingChunk (densities: ExpertDensities) (forward: Forward) (x: float[,]) (lo: int) (hi: int) =
        let n, d, k = x.GetLength 0, densities.Model.GateDimension, densities.Model.Experts
        let km1 = k - 1
        let acc = Array.zeroCreate (1 + km1 * d + km1)
        let total, weights = forward.Work.[0], forward.Work.[1]
        let mutable start = lo

        while start < hi do
            let rows = min Block (hi - start)
            forward.Load(x, [||], start, rows)
            forward.ComputeGate()
            // p(y|x)/exp(m) = Σ_i p_i E_i, and the posterior r_i = p_i E_i / Σ_l p_l E_l.
            (Lanes.into total rows).Clear()

            for i in 0 .. k - 1 do
                let post = Span<float>(forward.Post, i * Stride, rows)

                TensorPrimitives.Multiply(
                    Lanes.lane forward.Gate i rows,
                    ReadOnlySpan<float>(densities.Scaled, i * n + start, rows),
                    post
                )

                TensorPrimitives.Add(Lanes.view total rows, Lanes.lane forward.Post i rows, Lanes.into total rows)

            for i in 0 .. k - 1 do
                TensorPrimitives.Divide(
                    Lanes.lane forward.Post i rows,
                    Lanes.view total rows,
                    Span<float>(forward.Post, i * Stride, rows)
                )

            // log Σ p_i E_i in lanes (weights as scratch), then each row's log-likelihood in row order.
            Lanes.log total 0 weights 0 rows
            let mutable sum = 0.0

            for bi in 0 .. rows - 1 do
                let t = total.[bi]

                sum <-
                    sum
                    + (if t > 1e-280 then
                           weights.[bi] + densities.LogMax.[start + bi]
                       else
                           sampleInLogSpace forward densities n (start + bi) bi)

            acc.[0] <- acc.[0] + sum

            for j in 0 .. km1 - 1 do
                TensorPrimitives.Subtract(
                    Lanes.lane forward.Gate j rows,
                    Lanes.lane forward.Post j rows,
                    Lanes.into weights rows
                )

                Lanes.weightedSums acc (1 + j * d) forward.GateXt d rows weights 0
                acc.[1 + km1 * d + j] <- acc.[1 + km1 * d + j] + Lanes.sum weights 0 rows

            start <- start + rows

        acc

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
        let n, d, k = x.GetLength 0, densities.Model.GateDimension, densities.Model.Experts
        let km1 = k - 1

        let model =
            { densities.Model with
                Gating = w
                GatingIntercepts = c
            }

        let total =
            Chunks.sumWith n (fun () -> Forward(model, false)) (fun forward lo hi ->
                gatingChunk densities forward x lo hi)

        let inv = 1.0 / float n

        -total.[0] * inv,
        Array2D.init km1 d (fun i t -> total.[1 + i * d + t] * inv),
        Array.init km1 (fun i -> total.[1 + km1 * d + i] * inv)

    /// <summary>The experts' densities at the model's A, g, σ for every sample (k×n), in one parallel pass of lanes.</summary>
    let expertDensities (model: MoeModel) (x: float[,]) (y: float[]) : ExpertDensities =
        let n, k = x.GetLength 0, model.Experts
        let logs = Array.zeroCreate (k * n)
        let scaled = Array.zeroCreate (k * n)
        let logMax = Array.zeroCreate n

        Chunks.forChunksWith n (fun () -> Forward(model, false)) (fun forward _ lo hi ->
            let mutable start = lo

            while start < hi do
                let rows = min Block (hi - start)
                forward.Load(x, y, start, rows)
                forward.ComputeExperts false
                let m = Span<float>(logMax, start, rows)

                for i in 0 .. k - 1 do
                    // log f_i(y), the family's log-density (Gaussian: log norm_i − e²/(2σ_i²)).
                    FamilyKernels.logDensityLanes
                        forward.Family
                        forward.Residuals
                        forward.Means
                        forward.Y
                        forward.Trials
                        (i * Stride)
                        forward.LogNorms.[i]
                        forward.Inv2s2.[i]
                        forward.Shapes.[i]
                        logs
                        (i * n + start)
                        rows

                    if i = 0 then
                        (ReadOnlySpan<float>(logs, start, rows)).CopyTo m
                    else
                        TensorPrimitives.Max(
                            ReadOnlySpan<float>(logMax, start, rows),
                            ReadOnlySpan<float>(logs, i * n + start, rows),
                            m
                        )

                for i in 0 .. k - 1 do
                    let out = Span<float>(scaled, i * n + start, rows)

                    TensorPrimitives.Subtract(
                        ReadOnlySpan<float>(logs, i * n + start, rows),
                        ReadOnlySpan<float>(logMax, start, rows),
                        out
                    )

                    Lanes.exp scaled (i * n + start) scaled (i * n + start) rows

                start <- start + rows)

        {
            Model = model
            Log = logs
            Scaled = scaled
            LogMax = logMax
        }
