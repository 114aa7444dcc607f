namespace MoE.Core

open System
open System.Numerics.Tensors
open System.Runtime.CompilerServices
open System.Runtime.InteropServices
open System.Runtime.Intrinsics

/// <summary>
/// The forward pass of the model over one block of rows, vectorised across the rows (docs/math.md §7.3): the block
/// transposed (x̃ column by column), the gate's log-probabilities and probabilities, the experts' pre-activations,
/// means, derivatives and residuals, and the posterior with each row's log-likelihood — every quantity as k lanes
/// of <c>Lanes.Block</c> rows. The likelihood, EM and gating kernels each take what they need from it; owned by one
/// worker thread of one pass (mutable buffers, allocated once per thread by <c>Chunks.sumWith</c>, nothing per row or
/// chunk).
/// </summary>
[<Sealed>]
type internal Forward(model: MoeModel, intercepts: bool) =
    let k = model.Experts
    // The input columns m, the experts' d_E and the gate's d_G (all m, in order, when the design is shared).
    let m = model.Dimension
    let shared = model.Design.IsShared

    let expertColumns, gateColumns =
        model.Design.ExpertColumns, model.Design.GateColumns

    let d, dG = model.ExpertDimension, model.GateDimension
    let km1 = k - 1
    let p = if intercepts then d + 1 else d
    let pG = if intercepts then dG + 1 else dG
    let g = model.Activation
    let family = model.Family
    let logNorms, inv2s2, shapes = ModelRows.densityConstants model
    let a = Array.init (k * d) (fun i -> model.Regressors.[i / d, i % d])
    let w = Array.init (km1 * dG) (fun i -> model.Gating.[i / dG, i % dG])
    let b, c = model.RegressorIntercepts, model.GatingIntercepts
    let block = Lanes.Block
    let stride = Lanes.Stride

    /// Transposed lanes for a design of width `width` (its `columns` inputs, then the intercept's lane of ones).
    let design (columns: int) (width: int) =
        let lanes = Array.zeroCreate ((width + 3) / 4 * 4 * stride)

        if intercepts then
            Array.fill lanes (columns * stride) block 1.0

        lanes

    let xt = design d p
    // The gate reads the experts' lanes when the design is shared: nothing is copied.
    let xtG = if shared then xt else design dG pG

    let y = Array.zeroCreate block
    // The design's row column: an exposure's offsets log t (docs/math.md §12.4), added to every expert's η; or a
    // binomial expert's trials n (§12.5), read by its density. None without one.
    let offsetColumn = model.Design.OffsetColumn
    let offsets: float[] = if offsetColumn >= 0 then Array.zeroCreate block else [||]
    let predictorOffset = ModelRows.hasPredictorOffset model
    let logGate = Array.zeroCreate (k * stride)
    let gate = Array.zeroCreate (k * stride)
    let means = Array.zeroCreate (k * stride)
    let slopes = Array.zeroCreate (k * stride)
    let residuals = Array.zeroCreate (k * stride)
    let post = Array.zeroCreate (k * stride)
    let rowLogLikelihood = Array.zeroCreate block
    let scratch = Array.zeroCreate block
    let rowWeights = Array.zeroCreate block
    let mutable weighted = false
    let work: float[][] = Array.init 6 (fun _ -> Array.zeroCreate block)
    let wide: float[] = Array.zeroCreate ((max p pG + 3) / 4 * 4 * stride)

    let wideG: float[] =
        if shared then
            wide
        else
            Array.zeroCreate ((pG + 3) / 4 * 4 * stride)

    let mutable rows = 0

    let lane (m: float[]) (i: int) = Span<float>(m, i * stride, rows)

    let view (m: float[]) (i: int) =
        ReadOnlySpan<float>(m, i * stride, rows)

    /// The block's transposed expert design x̃ (p lanes <c>Lanes.Stride</c> apart, the last 1 with intercepts, then zero lanes up to a multiple of 4 for the Gram tiles).
    member _.Xt = xt
    /// The experts' design width p: d_E, plus one with intercepts.
    member _.Width = p
    /// The block's transposed gate design (the experts' own lanes when the design is shared).
    member _.GateXt = xtG
    /// The gate's design width: d_G, plus one with intercepts.
    member _.GateWidth = pG
    /// Rows in the current block.
    member _.Rows = rows
    /// The block's responses.
    member _.Y = y
    /// log p_i(x) per expert (lane i at i·Block), after <c>Gate</c>.
    member _.LogGate = logGate
    /// p_i(x), after <c>Gate</c>.
    member _.Gate = gate
    /// g(s_i), after <c>Experts</c>.
    member _.Means = means
    /// g'(s_i), after <c>Experts</c> with slopes (1 for the identity).
    member _.Slopes = slopes
    /// y − g(s_i), after <c>Experts</c>.
    member _.Residuals = residuals
    /// The posterior r_i, after <c>Posterior</c>.
    member _.Post = post
    /// log p(y | x) per row, after <c>Posterior</c>.
    member _.RowLogLikelihood = rowLogLikelihood
    /// Whether the block's rows carry frequency weights (after <c>Weigh</c>).
    member _.Weighted = weighted
    /// Six lanes of scratch for the kernels' per-row weights (one Block each).
    member _.Work = work
    /// Scratch as wide as the transposed block (the Gram's weighted rows).
    member _.Wide = wide
    /// Scratch as wide as the transposed gate block (the same as <c>Wide</c> when the design is shared).
    member _.GateWide = wideG
    /// The family's log-density offsets per expert (Gaussian: −½ log(2πσ_i²)).
    member _.LogNorms = logNorms
    /// The family's log-density scales per expert (Gaussian: 1/(2σ_i²)).
    member _.Inv2s2 = inv2s2
    /// The family's third constant per expert (Student-t: ν + 1; unused by the others).
    member _.Shapes = shapes
    /// The model's expert family.
    member _.Family = family
    /// Binomial experts' trials per row of the block, after <c>Load</c> (empty for every other family; the lane holds
    /// log t for Poisson's exposure).
    member _.Trials: float[] = if predictorOffset then [||] else offsets

    /// The shared design's transposition: every column, in order, into the one block both parts read.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    member private _.LoadShared(x: float[,], start: int, count: int) =
        let xs = Chunks.flat x

        for bi in 0 .. count - 1 do
            let xr = xs.Slice((start + bi) * d, d)

            for t in 0 .. d - 1 do
                xt.[t * stride + bi] <- xr.[t]

    /// A split design's transposition: the experts' columns into their block, the gate's into its own.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    member private _.LoadSplit(x: float[,], start: int, count: int) =
        let xs = Chunks.flat x

        for bi in 0 .. count - 1 do
            let xr = xs.Slice((start + bi) * m, m)

            for t in 0 .. d - 1 do
                xt.[t * stride + bi] <- xr.[expertColumns.[t]]

            for t in 0 .. dG - 1 do
                xtG.[t * stride + bi] <- xr.[gateColumns.[t]]

            if offsetColumn >= 0 then
                offsets.[bi] <- xr.[offsetColumn]

        if predictorOffset then
            Lanes.log offsets 0 offsets 0 count

    /// <summary>Loads rows start..start+count−1 (count ≤ Block) of x and y, transposed.</summary>
    member this.Load(x: float[,], yAll: float[], start: int, count: int) =
        rows <- count

        if shared then
            this.LoadShared(x, start, count)
        else
            this.LoadSplit(x, start, count)

        if yAll.Length > 0 then
            Array.blit yAll start y 0 count

    /// <summary>The gate: logits l_j = ⟨w_j, x⟩ + c_j (l_k = 0), then p_i = exp(l_i − m)/Σ exp(l_j − m) and
    /// log p_i = l_i − m − log Σ exp(l_j − m), m = max_j l_j.</summary>
    member _.ComputeGate() =
        for j in 0 .. km1 - 1 do
            Lanes.combine w (j * dG) dG c.[j] xtG rows logGate (j * stride)

        (lane logGate km1).Clear()
        let mx = Span<float>(scratch, 0, rows)
        mx.Clear()

        for j in 0 .. km1 - 1 do
            TensorPrimitives.Max(ReadOnlySpan<float>(scratch, 0, rows), view logGate j, mx)

        let total = Span<float>(rowLogLikelihood, 0, rows)
        total.Clear()

        for i in 0..km1 do
            TensorPrimitives.Subtract(view logGate i, ReadOnlySpan<float>(scratch, 0, rows), lane logGate i)
            Lanes.exp logGate (i * stride) gate (i * stride) rows
            TensorPrimitives.Add(ReadOnlySpan<float>(rowLogLikelihood, 0, rows), view gate i, total)

        for i in 0..km1 do
            TensorPrimitives.Divide(view gate i, ReadOnlySpan<float>(rowLogLikelihood, 0, rows), lane gate i)

        Lanes.log rowLogLikelihood 0 rowLogLikelihood 0 rows

        for i in 0..km1 do
            TensorPrimitives.Subtract(view logGate i, ReadOnlySpan<float>(rowLogLikelihood, 0, rows), lane logGate i)

    /// <summary>The experts: s_i = ⟨a_i, x⟩ + b_i (+ log t with an exposure column), the means g(s_i), the residuals y − g(s_i) and, when asked, the
    /// derivatives g'(s_i) — for the GLM experts η_i kept, y − μ_i and the variance V_i (<c>FamilyKernels.expertLanes</c>).</summary>
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    member _.ComputeExperts(withSlopes: bool) =
        for i in 0 .. k - 1 do
            Lanes.combine a (i * d) d b.[i] xt rows means (i * stride)

            if predictorOffset then
                TensorPrimitives.Add(view means i, ReadOnlySpan<float>(offsets, 0, rows), lane means i)

            FamilyKernels.expertLanes family g means slopes residuals y offsets (i * stride) rows withSlopes

    /// <summary>The posterior (after <c>ComputeGate</c> and <c>ComputeExperts</c>): joint log-densities
    /// j_i = log p_i + log f_i(y | g(s_i)) of the model's family, each row's log-likelihood m + log Σ exp(j_i − m) and r_i =
    /// exp(j_i − m)/Σ exp(j_l − m).</summary>
    member _.ComputePosterior() =
        let mj = Span<float>(scratch, 0, rows)

        for i in 0 .. k - 1 do
            // j_i = log p_i + log f_i(y), the family's joint log-density, in post's lane.
            FamilyKernels.jointLanes
                family
                residuals
                means
                y
                offsets
                (i * stride)
                logGate
                (i * stride)
                logNorms.[i]
                inv2s2.[i]
                shapes.[i]
                post
                (i * stride)
                rows

            if i = 0 then
                (view post 0).CopyTo mj
            else
                TensorPrimitives.Max(ReadOnlySpan<float>(scratch, 0, rows), view post i, mj)

        let total = Span<float>(rowLogLikelihood, 0, rows)
        total.Clear()

        for i in 0 .. k - 1 do
            TensorPrimitives.Subtract(view post i, ReadOnlySpan<float>(scratch, 0, rows), lane post i)
            Lanes.exp post (i * stride) post (i * stride) rows
            TensorPrimitives.Add(ReadOnlySpan<float>(rowLogLikelihood, 0, rows), view post i, total)

        for i in 0 .. k - 1 do
            TensorPrimitives.Divide(view post i, ReadOnlySpan<float>(rowLogLikelihood, 0, rows), lane post i)

        Lanes.log rowLogLikelihood 0 rowLogLikelihood 0 rows

        TensorPrimitives.Add(
            ReadOnlySpan<float>(rowLogLikelihood, 0, rows),
            ReadOnlySpan<float>(scratch, 0, rows),
            total
        )

    /// <summary>The block's frequency weights w (docs/math.md §13), after <c>ComputePosterior</c>: every row's
    /// log-likelihood and posterior r_i become w·log p(y | x) and w·r_i, so each sum the kernels take of them is the
    /// weighted sum. The gate's probabilities are left as they are: the kernels weigh what they form from them
    /// (<c>GateResidual</c>, <c>WeighLane</c>). Nothing happens when <paramref name="weights"/> is null (unit weights),
    /// so unweighted data give the bits they always gave.</summary>
    /// <param name="weights">The batch's weights, or null.</param>
    /// <param name="start">The block's first row in the batch.</param>
    member _.Weigh(weights: float[], start: int) =
        weighted <- not (isNull weights)

        if weighted then
            let wr = ReadOnlySpan<float>(weights, start, rows)
            wr.CopyTo(Span<float>(rowWeights, 0, rows))

            TensorPrimitives.Multiply(
                ReadOnlySpan<float>(rowLogLikelihood, 0, rows),
                wr,
                Span<float>(rowLogLikelihood, 0, rows)
            )

            for i in 0 .. k - 1 do
                TensorPrimitives.Multiply(view post i, wr, lane post i)

    /// <summary>lane ← lane ⊙ w over the block when its rows are weighted (<c>Weigh</c>); nothing otherwise.</summary>
    member _.WeighLane(target: float[]) =
        if weighted then
            TensorPrimitives.Multiply(
                ReadOnlySpan<float>(target, 0, rows),
                ReadOnlySpan<float>(rowWeights, 0, rows),
                Span<float>(target, 0, rows)
            )

    /// <summary>target ← w·(r_j − p_j) for gate j, the row's term of the gate's score (r already weighted by
    /// <c>Weigh</c>, so only p_j is multiplied by w here).</summary>
    member this.GateResidual(j: int, target: float[]) =
        if weighted then
            TensorPrimitives.Multiply(
                view gate j,
                ReadOnlySpan<float>(rowWeights, 0, rows),
                Span<float>(target, 0, rows)
            )

            TensorPrimitives.Subtract(view post j, ReadOnlySpan<float>(target, 0, rows), Span<float>(target, 0, rows))
        else
            TensorPrimitives.Subtract(view post j, view gate j, Span<float>(target, 0, rows))

    /// <summary>Loads a block and runs the whole forward pass: gate, experts (with derivatives when asked), posterior.</summary>
    member this.Run(x: float[,], yAll: float[], start: int, count: int, withSlopes: bool) =
        this.Load(x, yAll, start, count)
        this.ComputeGate()
        this.ComputeExperts withSlopes
        this.ComputePosterior()
