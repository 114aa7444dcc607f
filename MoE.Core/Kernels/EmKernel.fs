namespace MoE.Core

open System
open System.Numerics.Tensors
open System.Runtime.CompilerServices
open System.Runtime.InteropServices
open System.Runtime.Intrinsics

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
        /// Per expert i: the family's sums of its M-step (Gaussian: [Σ_n r_ni·(y_n − g(s_ni))², Σ_n r_ni·t_ni²], the
        /// second giving the identity's SSE after its exact step).
        Sums: float[][]
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

    /// Rows per block (<c>Lanes.Block</c>).
    [<Literal>]
    let Block = Lanes.Block

    [<Literal>]
    let Stride = Lanes.Stride

    /// The statistics' layout in one vector, with E of the family's sums per expert:
    /// [ll, Q | Gram_0..k-1 | Rhs_0..k-1 | Sums_0..k-1 (E each) | Weight_0..k-1 | GateGradient | GateHessian].
    let private layout (family: ExpertFamily) (p: int) (pG: int) (k: int) (hessian: bool) =
        let pp, hp = p * p, (k - 1) * pG
        let oGram, oRhs = 2, 2 + k * pp
        let oSums = oRhs + k * p
        let oW = oSums + k * FamilyKernels.emSums family
        let oGrad = oW + k
        let oHess = oGrad + hp
        struct (oGram, oRhs, oSums, oW, oGrad, oHess, oHess + (if hessian then hp * hp else 0))

    /// The lanes a Gram reads: p rounded up to whole 4×4 tiles (the extra lanes are zero).
    let padded (p: int) = (p + 3) / 4 * 4

    /// <summary>acc[o + t·stride + u] += Σ_b xt[t, b]·w[b]·xt[u, b] for t ≤ u &lt; p: one block's weighted Gram (upper
    /// triangle). The weighted rows z = xt ⊙ w go to <paramref name="z"/> (<c>padded p</c> lanes); the entries are then
    /// summed four by four (t0..t0+3 × u0..u0+3) over the block's rows, sixteen four-wide accumulators that each load of
    /// z and xt feeds four times — against one load per multiply-add for p²/2 separate dot products, the Gram's cost at
    /// d = 50 (docs/math.md §7.3). xt has <c>padded p</c> lanes, those past p zero, so every entry is inside a whole
    /// tile and is summed the same way (the entries past p are zero and not stored). With <paramref name="whole"/> every
    /// entry t, u &lt; p is summed (a rectangular block: the gate Hessian's off-diagonal blocks), not the upper triangle.</summary>
    let private gramBlock
        (whole: bool)
        (acc: float[])
        (offset: int)
        (stride: int)
        (xt: float[])
        (p: int)
        (rows: int)
        (w: float[])
        (z: float[])
        (wo: int)
        =
        let wr = ReadOnlySpan<float>(w, wo, rows)
        let lanes = padded p

        for t in 0 .. lanes - 1 do
            TensorPrimitives.Multiply(ReadOnlySpan<float>(xt, t * Stride, rows), wr, Span<float>(z, t * Stride, rows))

        let full = rows - rows % 4
        let zr = &MemoryMarshal.GetArrayDataReference z
        let xr = &MemoryMarshal.GetArrayDataReference xt
        let tiles = lanes / 4

        let inline add (t: int) (u: int) (c: Vector256<float>) =
            if (whole || t <= u) && t < p && u < p then
                let mutable sum = Lanes.total c

                for r in full .. rows - 1 do
                    sum <- sum + z.[t * Stride + r] * xt.[u * Stride + r]

                acc.[offset + t * stride + u] <- acc.[offset + t * stride + u] + sum

        for tt in 0 .. tiles - 1 do
            let t0 = 4 * tt

            for ut in (if whole then 0 else tt) .. tiles - 1 do
                let u0 = 4 * ut
                let mutable c00 = Vector256<float>.Zero
                let mutable c01 = Vector256<float>.Zero
                let mutable c02 = Vector256<float>.Zero
                let mutable c03 = Vector256<float>.Zero
                let mutable c10 = Vector256<float>.Zero
                let mutable c11 = Vector256<float>.Zero
                let mutable c12 = Vector256<float>.Zero
                let mutable c13 = Vector256<float>.Zero
                let mutable c20 = Vector256<float>.Zero
                let mutable c21 = Vector256<float>.Zero
                let mutable c22 = Vector256<float>.Zero
                let mutable c23 = Vector256<float>.Zero
                let mutable c30 = Vector256<float>.Zero
                let mutable c31 = Vector256<float>.Zero
                let mutable c32 = Vector256<float>.Zero
                let mutable c33 = Vector256<float>.Zero
                let mutable b = 0

                while b < full do
                    let z0 = Vector256.LoadUnsafe(&zr, unativeint (t0 * Stride + b))
                    let z1 = Vector256.LoadUnsafe(&zr, unativeint ((t0 + 1) * Stride + b))
                    let z2 = Vector256.LoadUnsafe(&zr, unativeint ((t0 + 2) * Stride + b))
                    let z3 = Vector256.LoadUnsafe(&zr, unativeint ((t0 + 3) * Stride + b))
                    let x0 = Vector256.LoadUnsafe(&xr, unativeint (u0 * Stride + b))
                    let x1 = Vector256.LoadUnsafe(&xr, unativeint ((u0 + 1) * Stride + b))
                    let x2 = Vector256.LoadUnsafe(&xr, unativeint ((u0 + 2) * Stride + b))
                    let x3 = Vector256.LoadUnsafe(&xr, unativeint ((u0 + 3) * Stride + b))
                    c00 <- Vector256.FusedMultiplyAdd(z0, x0, c00)
                    c01 <- Vector256.FusedMultiplyAdd(z0, x1, c01)
                    c02 <- Vector256.FusedMultiplyAdd(z0, x2, c02)
                    c03 <- Vector256.FusedMultiplyAdd(z0, x3, c03)
                    c10 <- Vector256.FusedMultiplyAdd(z1, x0, c10)
                    c11 <- Vector256.FusedMultiplyAdd(z1, x1, c11)
                    c12 <- Vector256.FusedMultiplyAdd(z1, x2, c12)
                    c13 <- Vector256.FusedMultiplyAdd(z1, x3, c13)
                    c20 <- Vector256.FusedMultiplyAdd(z2, x0, c20)
                    c21 <- Vector256.FusedMultiplyAdd(z2, x1, c21)
                    c22 <- Vector256.FusedMultiplyAdd(z2, x2, c22)
                    c23 <- Vector256.FusedMultiplyAdd(z2, x3, c23)
                    c30 <- Vector256.FusedMultiplyAdd(z3, x0, c30)
                    c31 <- Vector256.FusedMultiplyAdd(z3, x1, c31)
                    c32 <- Vector256.FusedMultiplyAdd(z3, x2, c32)
                    c33 <- Vector256.FusedMultiplyAdd(z3, x3, c33)
                    b <- b + 4

                add t0 u0 c00
                add t0 (u0 + 1) c01
                add t0 (u0 + 2) c02
                add t0 (u0 + 3) c03
                add (t0 + 1) u0 c10
                add (t0 + 1) (u0 + 1) c11
                add (t0 + 1) (u0 + 2) c12
                add (t0 + 1) (u0 + 3) c13
                add (t0 + 2) u0 c20
                add (t0 + 2) (u0 + 1) c21
                add (t0 + 2) (u0 + 2) c22
                add (t0 + 2) (u0 + 3) c23
                add (t0 + 3) u0 c30
                add (t0 + 3) (u0 + 1) c31
                add (t0 + 3) (u0 + 2) c32
                add (t0 + 3) (u0 + 3) c33


    /// Rows lo..hi−1 of the EM statistics (the chunk body of statistics): the block's forward pass in lanes
    /// (<c>Forward</c>), the posterior written out, then every sum over the block's rows as a vectorised dot product.
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let private chunk
        (model: MoeModel)
        (intercepts: bool)
        (hessian: bool)
        (forward: Forward)
        (batch: Dataset)
        (lo: int)
        (hi: int)
        : float[] =
        let k = model.Experts
        let km1 = k - 1
        let family = model.Family
        let identity = ExpertFamily.exactMStep family model.Activation
        let sums = FamilyKernels.emSums family
        let p, pG = forward.Width, forward.GateWidth
        let b = model.RegressorIntercepts
        let pp, hp = p * p, km1 * pG

        let struct (oGram, oRhs, oSums, oW, oGrad, oHess, length) =
            layout family p pG k hessian

        let acc = Array.zeroCreate length
        let xt, xtG = forward.Xt, forward.GateXt

        let post, gate, residuals, slopes =
            forward.Post, forward.Gate, forward.Residuals, forward.Slopes
        // Per-row weights of the block's sums: lanes 0–3 are the family's scratch (its M-step's weights), 4 the gate's.
        let weighted, wHess = forward.Work.[0], forward.Work.[4]

        let scratch = forward.Wide
        let mutable start = lo

        while start < hi do
            let rows = min Block (hi - start)
            forward.Run(batch.X, batch.Y, start, rows, not identity)
            forward.Weigh(batch.Weights, start)
            acc.[0] <- acc.[0] + Lanes.sum forward.RowLogLikelihood 0 rows

            for i in 0 .. k - 1 do
                let o = i * Stride
                acc.[1] <- acc.[1] + Lanes.dot post o forward.LogGate o rows

                // The family's M-step sums, and the row weights of its Gram and right-hand side (Gaussian: weighted
                // least squares, a Gauss–Newton step for a non-linear g).
                let struct (wGram, wGramOffset, wRhs) =
                    FamilyKernels.emBlock
                        family
                        identity
                        intercepts
                        b.[i]
                        post
                        o
                        residuals
                        forward.Means
                        o
                        slopes
                        o
                        forward.Y
                        forward.Trials
                        forward.Inv2s2.[i]
                        forward.Shapes.[i]
                        forward.Work
                        acc
                        (oSums + i * sums)
                        rows

                acc.[oW + i] <- acc.[oW + i] + Lanes.sum post o rows
                gramBlock false acc (oGram + i * pp) p xt p rows wGram scratch wGramOffset
                Lanes.weightedSums acc (oRhs + i * p) xt p rows wRhs 0

            for j in 0 .. km1 - 1 do
                forward.GateResidual(j, weighted)
                Lanes.weightedSums acc (oGrad + j * pG) xtG pG rows weighted 0

            if hessian then
                for j in 0 .. km1 - 1 do
                    // Diagonal block: p_j(1 − p_j); off-diagonal blocks l > j: −p_j p_l (full).
                    TensorPrimitives.Subtract(1.0, Lanes.lane gate j rows, Lanes.into wHess rows)
                    TensorPrimitives.Multiply(Lanes.view wHess rows, Lanes.lane gate j rows, Lanes.into wHess rows)
                    forward.WeighLane wHess
                    gramBlock false acc (oHess + (j * pG) * hp + j * pG) hp xtG pG rows wHess scratch 0

                    for l in j + 1 .. km1 - 1 do
                        TensorPrimitives.Multiply(Lanes.lane gate j rows, Lanes.lane gate l rows, Lanes.into wHess rows)

                        TensorPrimitives.Negate(Lanes.view wHess rows, Lanes.into wHess rows)
                        forward.WeighLane wHess
                        gramBlock true acc (oHess + (j * pG) * hp + l * pG) hp xtG pG rows wHess scratch 0

            start <- start + rows

        acc

    /// The pass behind <c>statisticsOf</c>: every sum in one vector.
    let internal statisticsPass (model: MoeModel) (intercepts: bool) (hessian: bool) (source: DataSource) : float[] =
        Passes.sum
            (PassRequest.EmStatistics(model, intercepts, hessian))
            source
            (fun () -> Forward(model, intercepts))
            (chunk model intercepts hessian)

    /// <summary>
    /// One pass of EM at <paramref name="model"/> over a source: gate probabilities, expert means, the log-likelihood,
    /// the posterior and every sum the M-step needs (see <see cref="T:MoE.Core.EmStatistics"/>), over the design
    /// x̃ = (x, 1) when <paramref name="intercepts"/>; the gate's Hessian only when <paramref name="hessian"/>. Nothing
    /// per row is kept: the posterior lives for one block of rows.
    /// </summary>
    let statisticsOf (model: MoeModel) (intercepts: bool) (hessian: bool) (source: DataSource) : EmStatistics =
        let k = model.Experts
        let width (d: int) = if intercepts then d + 1 else d
        let p, pG = width model.ExpertDimension, width model.GateDimension
        let pp, hp = p * p, (k - 1) * pG
        let sums = FamilyKernels.emSums model.Family

        let struct (oGram, oRhs, oSums, oW, oGrad, oHess, _) =
            layout model.Family p pG k hessian

        let total = statisticsPass model intercepts hessian source

        {
            LogLikelihood = total.[0]
            GateObjective = total.[1]
            Gram = Array.init k (fun i -> Array.sub total (oGram + i * pp) pp)
            Rhs = Array.init k (fun i -> Array.sub total (oRhs + i * p) p)
            Sums = Array.init k (fun i -> Array.sub total (oSums + i * sums) sums)
            Weight = Array.sub total oW k
            GateGradient = Array.sub total oGrad hp
            GateHessian = (if hessian then Array.sub total oHess (hp * hp) else [||])
        }

    /// <summary>One pass of EM at <paramref name="model"/> over data in memory (<c>statisticsOf</c>).</summary>
    let statistics (model: MoeModel) (intercepts: bool) (hessian: bool) (x: float[,]) (y: float[]) : EmStatistics =
        statisticsOf model intercepts hessian (DataSource.ofDataset { X = x; Y = y; Weights = null })

    /// The Gram Σ_n x̃_n x̃_nᵀ (p×p, upper) of x̃ = (x − μ, 1) or x − μ: the pass behind the design's Gram (μ = 0, as
    /// x − 0 = x exactly) and the covariance's centred moments.
    let private gramPass
        (request: PassRequest)
        (columns: int[])
        (mean: float[])
        (intercepts: bool)
        (source: DataSource)
        : float[] =
        let m = source.Dimension
        let d = columns.Length
        let p = if intercepts then d + 1 else d

        let init () =
            let xt = Array.zeroCreate (padded p * Stride)

            if intercepts then
                Array.fill xt (d * Stride) Block 1.0

            xt, Array.create Block 1.0, Array.zeroCreate (padded p * Stride)

        Passes.sum request source init (fun (xt, ones, scratch) batch lo hi ->
            let acc = Array.zeroCreate (p * p)
            let xs = Chunks.flat batch.X
            let mutable start = lo

            while start < hi do
                let rows = min Block (hi - start)

                for bi in 0 .. rows - 1 do
                    let xr = xs.Slice((start + bi) * m, m)

                    for t in 0 .. d - 1 do
                        xt.[t * Stride + bi] <- xr.[columns.[t]] - mean.[t]

                // Weighted rows weigh their terms (docs/math.md §13); unit weights read the lane of ones.
                if batch.IsWeighted then
                    gramBlock false acc 0 p xt p rows batch.Weights scratch start
                else
                    gramBlock false acc 0 p xt p rows ones scratch 0

                start <- start + rows

            acc)

    /// <summary>The unweighted Gram Σ_n x̃_n x̃_nᵀ (p×p, upper) of the given columns (with the intercept's column):
    /// Böhning's bound of the gate's Hessian is a fixed multiple of the gate's, so it is computed once per EM
    /// run.</summary>
    let designOf (columns: int[]) (intercepts: bool) (source: DataSource) : float[] =
        gramPass (PassRequest.Design(columns, intercepts)) columns (Array.zeroCreate columns.Length) intercepts source

    /// <summary>The unweighted Gram over data in memory (<c>designOf</c>).</summary>
    let design (columns: int[]) (intercepts: bool) (x: float[,]) : float[] =
        designOf
            columns
            intercepts
            (DataSource.ofDataset
                {
                    X = x
                    Y = Array.zeroCreate (x.GetLength 0)
                    Weights = null
                })

    /// The covariance's first pass: Σx.
    let internal inputSumsPass (source: DataSource) : float[] =
        let d = source.Dimension

        Passes.sum PassRequest.InputSums source ignore (fun () batch lo hi ->
            let acc = Array.zeroCreate d
            let xs = Chunks.flat batch.X

            if batch.IsWeighted then
                for r in lo .. hi - 1 do
                    TensorPrimitives.MultiplyAdd(
                        xs.Slice(r * d, d),
                        batch.Weights.[r],
                        ReadOnlySpan<float>(acc),
                        Span<float>(acc)
                    )
            else
                for r in lo .. hi - 1 do
                    TensorPrimitives.Add(ReadOnlySpan<float>(acc), xs.Slice(r * d, d), Span<float>(acc))

            acc)

    /// The covariance's second pass: Σ (x − μ)(x − μ)ᵀ (upper).
    let internal centredGramPass (mean: float[]) (source: DataSource) : float[] =
        gramPass (PassRequest.CentredGram mean) (Array.init source.Dimension id) mean false source

    /// <summary>The column means and the second moments about them, Σ_n (x_n − μ)(x_n − μ)ᵀ/n (d×d, upper), in two
    /// passes over a source (the mean first, so the moments lose no digits to cancellation when |μ| ≫ sd).</summary>
    let covarianceOf (centre: bool) (source: DataSource) : float[] * float[] =
        let n = source.Weight

        let mean =
            if centre then
                inputSumsPass source |> Array.map (fun s -> s / n)
            else
                Array.zeroCreate source.Dimension

        mean, centredGramPass mean source |> Array.map (fun s -> s / n)

    /// <summary>The column means and centred second moments of data in memory (<c>covarianceOf</c>).</summary>
    let covariance (centre: bool) (x: float[,]) : float[] * float[] =
        covarianceOf
            centre
            (DataSource.ofDataset
                {
                    X = x
                    Y = Array.zeroCreate (x.GetLength 0)
                    Weights = null
                })

    /// The pass behind <c>mStepObjectivesOf</c>: [SSE_1..k | Q].
    let internal mStepPass (current: MoeModel) (candidate: MoeModel) (source: DataSource) : float[] =
        let k = candidate.Experts

        let total =
            Passes.sum
                (PassRequest.MStepObjectives(current, candidate))
                source
                (fun () -> Forward(current, false), Forward(candidate, false))
                (fun (now, next) batch lo hi ->
                    let acc = Array.zeroCreate (k + 1)
                    let weighted = next.Work.[0]
                    let mutable start = lo

                    while start < hi do
                        let rows = min Block (hi - start)
                        now.Run(batch.X, batch.Y, start, rows, false)
                        now.Weigh(batch.Weights, start)
                        next.Load(batch.X, batch.Y, start, rows)
                        next.ComputeGate()
                        next.ComputeExperts false

                        for i in 0 .. k - 1 do
                            let o = i * Stride

                            acc.[i] <-
                                acc.[i]
                                + FamilyKernels.expectedLossBlock
                                    candidate.Family
                                    now.Post
                                    o
                                    now.Residuals
                                    next.Residuals
                                    next.Means
                                    next.Y
                                    next.Trials
                                    o
                                    now.Inv2s2.[i]
                                    now.Shapes.[i]
                                    weighted
                                    rows

                            acc.[k] <- acc.[k] + Lanes.dot now.Post o next.LogGate o rows

                        start <- start + rows

                    acc)

        total

    /// <summary>
    /// For a candidate M-step from <paramref name="current"/>: per expert i, Σ_n r_ni (y_n − g(&lt;a_i, x_n&gt; + b_i))²
    /// with the candidate's regressors, and Q(W) = Σ_n Σ_i r_ni log p_i(x_n; W, c) with its gating, r the posterior of
    /// the current model, in one pass (each block's posterior computed again rather than kept for every row; the
    /// candidate's σ is not used). Reference: the scalar weighted SSE and Q of tests' Reference.fs.
    /// </summary>
    let mStepObjectivesOf (current: MoeModel) (candidate: MoeModel) (source: DataSource) =
        let k = candidate.Experts
        let total = mStepPass current candidate source
        Array.sub total 0 k, total.[k]
