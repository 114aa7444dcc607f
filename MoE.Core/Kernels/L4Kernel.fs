namespace MoE.Core

open System
open System.Numerics.Tensors

/// <summary>The per-sample sums of one pass of the empirical L4 (docs/math.md §4.1), with q = (Q4(y) − shift)/c,
/// ρ = (Q2(y) − shift)/c', s = Ax, n_i = |a_i|², G = AAᵀ.</summary>
type internal L4Sums =
    {
        /// Σ q.
        SumQ: float
        /// Σ ρ.
        SumRho: float
        /// Σ_{i≠j} q·S4(x)(a_i,a_i,a_j,a_j).
        V1: float
        /// Σ_i q·S4(x)(a_i,a_i,a_i,a_i).
        V2: float
        /// Per expert: Σ ρ(s_i² − n_i).
        M: float[]
        /// k×k: Σ q s_i s_j.
        Qss: float[,]
        /// k×d: Σ C_l x, C the per-sample gradient coefficients.
        P: float[,]
        /// k×d: Σ ρ s_l x.
        R: float[,]
    }

/// <summary>
/// The empirical L4's kernel: every sum the value and the A-gradient need, in one fused pass over the samples,
/// chunked over all cores, partial sums added in chunk order (bit-identical whatever the core count). Scalar
/// reference: tests/MoE.Core.Tests/Reference.fs.
/// </summary>
module internal L4Kernel =

    /// <summary>The sums at A for the transform coefficients, centring shifts and μ.</summary>
    let sums
        (coefficients: TransformCoefficients)
        (q4Shift: float)
        (q2Shift: float)
        (mu: float)
        (a: float[,])
        (g: float[,])
        (norms: float[])
        (x: float[,])
        (y: float[])
        : L4Sums =
        let n, k, d = y.Length, a.GetLength 0, a.GetLength 1
        // One fused pass in row chunks over all cores (Chunks): per chunk the sums
        // [Σq, Σρ, v1, v2 | m (k) | qss (k·k) | p = Σ C_l x (k·d) | r = Σ ρ s_l x (k·d)], added in chunk order.
        let oM, oQss = 4, 4 + k
        let oP = oQss + k * k
        let oR = oP + k * d
        let length = oR + k * d

        let total =
            Chunks.sum n (fun lo hi ->
                let acc = Array.zeroCreate<float> length
                let s = Array.zeroCreate<float> k
                let coef = Array.zeroCreate<float> k
                let xs = Chunks.flat x
                let am = Chunks.flat a

                for row in lo .. hi - 1 do
                    let xr = xs.Slice(row * d, d)

                    for i in 0 .. k - 1 do
                        s.[i] <- TensorPrimitives.Dot(am.Slice(i * d, d), xr)

                    let yv = y.[row]
                    let q = (Transforms.q4 coefficients yv - q4Shift) / coefficients.C
                    let rho = (Transforms.q2 coefficients yv - q2Shift) / coefficients.CPrime
                    acc.[0] <- acc.[0] + q
                    acc.[1] <- acc.[1] + rho

                    for l in 0 .. k - 1 do
                        let sl = s.[l]
                        let nl = norms.[l]
                        acc.[oM + l] <- acc.[oM + l] + rho * (sl * sl - nl)
                        acc.[3] <- acc.[3] + q * (sl * sl * sl * sl - 6.0 * nl * sl * sl + 3.0 * nl * nl)
                        let mutable c = -mu * (4.0 * sl * sl * sl - 12.0 * nl * sl)

                        for j in 0 .. k - 1 do
                            let sj = s.[j]
                            acc.[oQss + l * k + j] <- acc.[oQss + l * k + j] + q * sl * sj

                            if j <> l then
                                let glj = g.[l, j]
                                let nj = norms.[j]

                                acc.[2] <-
                                    acc.[2]
                                    + q
                                      * (sl * sl * sj * sj - nl * sj * sj - 4.0 * sl * sj * glj - nj * sl * sl
                                         + nl * nj
                                         + 2.0 * glj * glj)

                                c <- c + 2.0 * (2.0 * sl * sj * sj - 4.0 * sj * glj - 2.0 * nj * sl)

                        coef.[l] <- q * c

                    for l in 0 .. k - 1 do
                        let pl = Span<float>(acc, oP + l * d, d)

                        TensorPrimitives.MultiplyAdd(xr, coef.[l], ReadOnlySpan<float>(acc, oP + l * d, d), pl)

                        let rl = Span<float>(acc, oR + l * d, d)

                        TensorPrimitives.MultiplyAdd(xr, rho * s.[l], ReadOnlySpan<float>(acc, oR + l * d, d), rl)

                acc)

        let sumQ, sumRho, v1, v2 = total.[0], total.[1], total.[2], total.[3]
        let m = Array.sub total oM k
        let qss = Array2D.init k k (fun l j -> total.[oQss + l * k + j])
        let p = Array2D.init k d (fun l t -> total.[oP + l * d + t])
        let r = Array2D.init k d (fun l t -> total.[oR + l * d + t])


        {
            SumQ = sumQ
            SumRho = sumRho
            V1 = v1
            V2 = v2
            M = m
            Qss = qss
            P = p
            R = r
        }
