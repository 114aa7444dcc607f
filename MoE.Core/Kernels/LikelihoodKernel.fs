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
    let private Block = Lanes.Block

    [<Literal>]
    let private Stride = Lanes.Stride

    /// Rows lo..hi−1 into [LL | ∂ã_0..k−1 (p each) | ∂w̃_0..k−2 (p each) | ∂log σ_0..k−1 | ∂ν_0..k−1 (Student-t
    /// only; docs/math.md §14.2)]: the block's forward pass in
    /// lanes (<c>Forward</c>), then each gradient entry as a vectorised dot product over the block's rows.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private chunk (model: MoeModel) (forward: Forward) (batch: Dataset) (lo: int) (hi: int) : float[] =
        let k = model.Experts
        let km1 = k - 1
        let p, pG = forward.Width, forward.GateWidth
        let inv2s2 = forward.Inv2s2
        let oA, oW = 1, 1 + k * p
        let oS = oW + km1 * pG
        // Student-t's ∂LL/∂ν_i after the levels (FamilyKernels.shapeCount: none for the other families).
        let oV = oS + k
        let shapes = FamilyKernels.shapeCount forward.Family k
        let acc = Array.zeroCreate (oV + shapes)
        let weights, squares = forward.Work.[0], forward.Work.[1]
        let mutable start = lo

        while start < hi do
            let rows = min Block (hi - start)
            forward.Run(batch.X, batch.Y, start, rows, true)
            forward.Weigh(batch.Weights, start)
            acc.[0] <- acc.[0] + Lanes.sum forward.RowLogLikelihood 0 rows

            for i in 0 .. k - 1 do
                let o = i * Stride
                // The family's weight of ∂LL/∂η per row (Gaussian: r·e·h/σ²), and its level's score from the sums.
                FamilyKernels.scoreLanes
                    forward.Family
                    forward.Post
                    o
                    forward.Residuals
                    o
                    forward.Slopes
                    o
                    inv2s2.[i]
                    forward.Shapes.[i]
                    weights
                    squares
                    rows

                acc.[oS + i] <-
                    acc.[oS + i]
                    + FamilyKernels.scaleScore
                        forward.Family
                        (Lanes.sum squares 0 rows)
                        (Lanes.sum forward.Post o rows)
                        inv2s2.[i]

                if shapes > 0 then
                    acc.[oV + i] <-
                        acc.[oV + i]
                        + FamilyKernels.shapeScore
                            forward.Family
                            forward.Post
                            o
                            forward.Residuals
                            o
                            inv2s2.[i]
                            forward.Shapes.[i]
                            rows

                Lanes.weightedSums acc (oA + i * p) forward.Xt p rows weights 0

            for j in 0 .. km1 - 1 do
                forward.GateResidual(j, weights)
                Lanes.weightedSums acc (oW + j * pG) forward.GateXt pG rows weights 0

            start <- start + rows

        acc

    /// The pass behind <c>valueAndGradientOf</c>: [value | gradient] in one vector.
    let internal gradientPass (model: MoeModel) (intercepts: bool) (source: DataSource) : float[] =
        Passes.sum
            (PassRequest.LikelihoodGradient(model, intercepts))
            source
            (fun () -> Forward(model, intercepts))
            (chunk model)

    /// <summary>Σ_n log p(y_n | x_n) and its gradient over a source, laid out as [∂ã_0..k−1 (p each) | ∂w̃_0..k−2 |
    /// ∂log σ_0..k−1], then ∂ν_0..k−1 for Student-t experts.</summary>
    let valueAndGradientOf (model: MoeModel) (intercepts: bool) (source: DataSource) : float * float[] =
        let total = gradientPass model intercepts source
        total.[0], Array.sub total 1 (total.Length - 1)

    /// <summary>Σ_n log p(y_n | x_n) and its gradient on data in memory (<c>valueAndGradientOf</c>).</summary>
    let valueAndGradient (model: MoeModel) (intercepts: bool) (x: float[,]) (y: float[]) : float * float[] =
        valueAndGradientOf model intercepts (DataSource.ofDataset { X = x; Y = y; Weights = null })

    /// The pass behind <c>logLikelihoodOf</c>: [value].
    let internal logLikelihoodPass (model: MoeModel) (source: DataSource) : float[] =
        let total =
            Passes.sum
                (PassRequest.LogLikelihood model)
                source
                (fun () -> Forward(model, false))
                (fun forward batch lo hi ->
                    let mutable sum = 0.0
                    let mutable start = lo

                    while start < hi do
                        let rows = min Block (hi - start)
                        forward.Run(batch.X, batch.Y, start, rows, false)
                        forward.Weigh(batch.Weights, start)
                        sum <- sum + Lanes.sum forward.RowLogLikelihood 0 rows
                        start <- start + rows

                    [| sum |])

        total

    /// <summary>Σ_n log p(y_n | x_n) alone over a source, in lanes (<c>Forward</c>): the held-out score of screening and
    /// the likelihood of a stage's result. Reference: <c>MoeModel.logLikelihood</c> (the same value up to the order of
    /// the sum).</summary>
    let logLikelihoodOf (model: MoeModel) (source: DataSource) : float = (logLikelihoodPass model source).[0]

    /// <summary>Σ_n log p(y_n | x_n) of data in memory (<c>logLikelihoodOf</c>).</summary>
    let logLikelihood (model: MoeModel) (x: float[,]) (y: float[]) : float =
        logLikelihoodOf model (DataSource.ofDataset { X = x; Y = y; Weights = null })

    /// <summary>The posterior responsibilities r_ni (n×k), in lanes (<c>Forward</c>). Reference:
    /// <c>MoeModel.responsibilities</c>.</summary>
    let responsibilities (model: MoeModel) (x: float[,]) (y: float[]) : float[,] =
        let k = model.Experts
        let result = Array2D.zeroCreate y.Length k

        Chunks.forChunksWith y.Length (fun () -> Forward(model, false)) (fun forward _ lo hi ->
            let mutable start = lo

            while start < hi do
                let rows = min Block (hi - start)
                forward.Run(x, y, start, rows, false)

                for bi in 0 .. rows - 1 do
                    for i in 0 .. k - 1 do
                        result.[start + bi, i] <- forward.Post.[i * Stride + bi]

                start <- start + rows)

        result

    /// Rows lo..hi−1 of the curvature diagonal (see curvature).
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private curvatureChunk (model: MoeModel) (forward: Forward) (batch: Dataset) (lo: int) (hi: int) : float[] =
        let k = model.Experts
        let km1 = k - 1
        let p, pG = forward.Width, forward.GateWidth
        let inv2s2 = forward.Inv2s2
        let oW, oS = k * p, k * p + km1 * pG
        let shapes = FamilyKernels.shapeCount forward.Family k
        let acc = Array.zeroCreate (oS + k + shapes)
        let squares, gateSquares = forward.Wide, forward.GateWide
        let weights = forward.Work.[0]
        let mutable start = lo

        while start < hi do
            let rows = min Block (hi - start)
            forward.Run(batch.X, batch.Y, start, rows, true)
            forward.Weigh(batch.Weights, start)
            let xt = forward.Xt

            for t in 0 .. p - 1 do
                let column = ReadOnlySpan<float>(xt, t * Stride, rows)
                TensorPrimitives.Multiply(column, column, Span<float>(squares, t * Stride, rows))

            // With a shared design the gate's squares are the experts' (the same lanes).
            if not (obj.ReferenceEquals(gateSquares, squares)) then
                let xtG = forward.GateXt

                for t in 0 .. pG - 1 do
                    let column = ReadOnlySpan<float>(xtG, t * Stride, rows)
                    TensorPrimitives.Multiply(column, column, Span<float>(gateSquares, t * Stride, rows))

            for i in 0 .. k - 1 do
                FamilyKernels.curvatureLanes
                    forward.Family
                    forward.Post
                    (i * Stride)
                    forward.Slopes
                    (i * Stride)
                    inv2s2.[i]
                    forward.Shapes.[i]
                    weights
                    rows

                Lanes.weightedSums acc (i * p) squares p rows weights 0

                acc.[oS + i] <-
                    acc.[oS + i]
                    + FamilyKernels.scaleCurvature
                        forward.Family
                        (Lanes.sum forward.Post (i * Stride) rows)
                        forward.Shapes.[i]

                if shapes > 0 then
                    acc.[oS + k + i] <-
                        acc.[oS + k + i]
                        + FamilyKernels.shapeCurvature
                            forward.Family
                            (Lanes.sum forward.Post (i * Stride) rows)
                            forward.Shapes.[i]

                if i < km1 then
                    let pi = Lanes.lane forward.Gate i rows
                    TensorPrimitives.Subtract(1.0, pi, Lanes.into weights rows)
                    TensorPrimitives.Multiply(Lanes.view weights rows, pi, Lanes.into weights rows)
                    forward.WeighLane weights
                    Lanes.weightedSums acc (oW + i * pG) gateSquares pG rows weights 0

            start <- start + rows

        acc

    /// <summary>The diagonal of the complete-data information, in the layout of <c>valueAndGradient</c>: Σ_n r_ni h_ni²
    /// x̃_nt²/σ_i² for the experts, Σ_n p_nj(1 − p_nj) x̃_nt² for the gate (the multinomial logit's own diagonal) and
    /// 2·Σ_n r_ni for log σ_i. L-BFGS on the likelihood scales its variables by its square root so that the blocks'
    /// curvatures, which differ by 1/σ² (10⁴ at σ = 0.01), start equal (docs/math.md §7.5).</summary>
    let curvatureOf (model: MoeModel) (intercepts: bool) (source: DataSource) : float[] =
        Passes.sum
            (PassRequest.Curvature(model, intercepts))
            source
            (fun () -> Forward(model, intercepts))
            (curvatureChunk model)

    /// <summary>The curvature diagonal on data in memory (<c>curvatureOf</c>).</summary>
    let curvature (model: MoeModel) (intercepts: bool) (x: float[,]) (y: float[]) : float[] =
        curvatureOf model intercepts (DataSource.ofDataset { X = x; Y = y; Weights = null })
