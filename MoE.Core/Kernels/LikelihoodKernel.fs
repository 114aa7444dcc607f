namespace MoE.Core

open System
open System.Numerics.Tensors
open System.Runtime.CompilerServices

/// <summary>
/// The log-likelihood and its gradient with respect to every parameter, in one pass (docs/math.md §7.5): with
/// r_ni the posterior, e_ni = y_n − g(s_ni) and h_ni = g'(s_ni),
/// ∂LL/∂ã_i = Σ_n r_ni e_ni h_ni x̃_n / σ_i², ∂LL/∂w̃_j = Σ_n (r_nj − p_nj) x̃_n and
/// ∂LL/∂log σ_i = Σ_n r_ni (e_ni²/σ_i² − 1), over the design x̃ = (x, 1) when intercepts are fitted. Rows are summed
/// in transposed blocks (one vectorised dot product per entry per block) and chunks in chunk order: O(n·k·p) per
/// pass and bit-identical whatever the core count. Reference: central differences of MoeModel.logLikelihood.
/// </summary>
module internal LikelihoodKernel =

    [<Literal>]
    let private Block = 256

    /// Rows lo..hi−1 into [LL | ∂ã_0..k−1 (p each) | ∂w̃_0..k−2 (p each) | ∂log σ_0..k−1].
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private chunk (model: MoeModel) (intercepts: bool) (x: float[,]) (y: float[]) (lo: int) (hi: int) : float[] =
        let d, k = x.GetLength 1, model.Experts
        let p = if intercepts then d + 1 else d
        let km1 = k - 1
        let g = model.Activation
        let identity = g = Identity
        let logNorms, inv2s2 = MoeModel.densityConstants model
        let b, c = model.RegressorIntercepts, model.GatingIntercepts
        let oA, oW = 1, 1 + k * p
        let oS = oW + km1 * p
        let acc = Array.zeroCreate (oS + k)
        let prob = Array.zeroCreate k
        let logits = Array.zeroCreate k
        let joint = Array.zeroCreate k
        let means = Array.zeroCreate k
        let slopes = Array.zeroCreate k
        let xt = Array.zeroCreate (p * Block)
        let wA = Array.init k (fun _ -> Array.zeroCreate Block)
        let wW = Array.init km1 (fun _ -> Array.zeroCreate Block)
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

                let mx = RowOps.logitsInto ws c xr logits
                let mutable sg = 0.0

                for i in 0..km1 do
                    let e = Math.Exp(logits.[i] - mx)
                    prob.[i] <- e
                    sg <- sg + e

                let logSg = Math.Log sg + mx
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
                    let e = yr - means.[i]
                    // ∂/∂s of −e²/(2σ²) is e·h/σ²: inv2s2 = 1/(2σ²).
                    wA.[i].[bi] <- post * e * slopes.[i] * 2.0 * inv2s2.[i]
                    acc.[oS + i] <- acc.[oS + i] + post * (e * e * 2.0 * inv2s2.[i] - 1.0)

                    if i < km1 then
                        wW.[i].[bi] <- post - prob.[i]

            for i in 0 .. k - 1 do
                let wr = ReadOnlySpan<float>(wA.[i], 0, rows)

                for t in 0 .. p - 1 do
                    acc.[oA + i * p + t] <-
                        acc.[oA + i * p + t]
                        + TensorPrimitives.Dot(ReadOnlySpan<float>(xt, t * Block, rows), wr)

            for j in 0 .. km1 - 1 do
                let wr = ReadOnlySpan<float>(wW.[j], 0, rows)

                for t in 0 .. p - 1 do
                    acc.[oW + j * p + t] <-
                        acc.[oW + j * p + t]
                        + TensorPrimitives.Dot(ReadOnlySpan<float>(xt, t * Block, rows), wr)

            start <- start + rows

        acc

    /// <summary>Σ_n log p(y_n | x_n) and its gradient, laid out as [∂ã_0..k−1 (p each) | ∂w̃_0..k−2 | ∂log σ_0..k−1].</summary>
    let valueAndGradient (model: MoeModel) (intercepts: bool) (x: float[,]) (y: float[]) : float * float[] =
        let total = Chunks.sum y.Length (chunk model intercepts x y)
        total.[0], Array.sub total 1 (total.Length - 1)

    /// Rows lo..hi−1 of the curvature diagonal (see curvature).
    let private curvatureChunk
        (model: MoeModel)
        (intercepts: bool)
        (x: float[,])
        (y: float[])
        (lo: int)
        (hi: int)
        : float[] =
        let d, k = x.GetLength 1, model.Experts
        let p = if intercepts then d + 1 else d
        let km1 = k - 1
        let g = model.Activation
        let logNorms, inv2s2 = MoeModel.densityConstants model
        let b, c = model.RegressorIntercepts, model.GatingIntercepts
        let oW, oS = k * p, k * p + km1 * p
        let acc = Array.zeroCreate (oS + k)
        let prob = Array.zeroCreate k
        let logits = Array.zeroCreate k
        let joint = Array.zeroCreate k
        let slopes = Array.zeroCreate k
        let xs = Chunks.flat x
        let ws = Chunks.flat model.Gating
        let a = Chunks.flat model.Regressors

        for r in lo .. hi - 1 do
            let xr = xs.Slice(r * d, d)
            let mx = RowOps.logitsInto ws c xr logits
            let mutable sg = 0.0

            for i in 0..km1 do
                let e = Math.Exp(logits.[i] - mx)
                prob.[i] <- e
                sg <- sg + e

            let logSg = Math.Log sg + mx
            let mutable mj = Double.NegativeInfinity

            for i in 0..km1 do
                let s = TensorPrimitives.Dot(a.Slice(i * d, d), xr) + b.[i]
                slopes.[i] <- g.Derivative s
                prob.[i] <- prob.[i] / sg
                let e = y.[r] - g.Value s
                let j = logits.[i] - logSg + logNorms.[i] - e * e * inv2s2.[i]
                joint.[i] <- j

                if j > mj then
                    mj <- j

            let mutable sj = 0.0

            for i in 0..km1 do
                let e = Math.Exp(joint.[i] - mj)
                joint.[i] <- e
                sj <- sj + e

            for i in 0..km1 do
                let post = joint.[i] / sj
                let wa = post * slopes.[i] * slopes.[i] * 2.0 * inv2s2.[i]
                let ww = if i < km1 then prob.[i] * (1.0 - prob.[i]) else 0.0

                for t in 0 .. d - 1 do
                    let x2 = xr.[t] * xr.[t]
                    acc.[i * p + t] <- acc.[i * p + t] + wa * x2

                    if i < km1 then
                        acc.[oW + i * p + t] <- acc.[oW + i * p + t] + ww * x2

                if intercepts then
                    acc.[i * p + d] <- acc.[i * p + d] + wa

                    if i < km1 then
                        acc.[oW + i * p + d] <- acc.[oW + i * p + d] + ww

                acc.[oS + i] <- acc.[oS + i] + 2.0 * post

        acc

    /// <summary>The diagonal of the complete-data information, in the layout of <c>valueAndGradient</c>: Σ_n r_ni h_ni²
    /// x̃_nt²/σ_i² for the experts, Σ_n p_nj(1 − p_nj) x̃_nt² for the gate (the multinomial logit's own diagonal) and
    /// 2·Σ_n r_ni for log σ_i. L-BFGS on the likelihood scales its variables by its square root so that the blocks'
    /// curvatures, which differ by 1/σ² (10⁴ at σ = 0.01), start equal (docs/math.md §7.5).</summary>
    let curvature (model: MoeModel) (intercepts: bool) (x: float[,]) (y: float[]) : float[] =
        Chunks.sum y.Length (curvatureChunk model intercepts x y)
