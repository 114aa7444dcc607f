namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra

/// <summary>
/// Escape from merged-expert optima (docs/math.md §7.8): a split-and-merge move in the manner of Ueda et al.'s SMEM,
/// for a mixture of regressions. When one expert's noise level stands far above the others' — the signature of one
/// expert sitting on two true ones — the move splits it along the direction in which its residual variance grows
/// fastest, merges the pair of other experts whose merging costs the least likelihood, climbs the likelihood from the
/// result, and keeps the move only if the likelihood rises. Pure: everything is a function of the model and the data.
/// </summary>
module internal SplitMerge =

    /// An expert stands out when its σ_i is at least this multiple of the median of the others' (docs/math.md §7.8:
    /// two experts at distance 2σ merged into one give σ ≥ √2·σ; a factor of 2 needs them ≥ 3.5σ apart).
    [<Literal>]
    let StandOut = 2.0

    /// The merge pairs tried for a split at most, cheapest first (every pair up to k = 7).
    [<Literal>]
    let Pairs = 15

    /// The rounds of moves at most: a move that was kept is followed by one more look.
    [<Literal>]
    let Rounds = 2

    /// The rows the criteria are computed on at most (a seeded subsample): enough for the pairs' ranking and the
    /// split direction of d ≤ a few hundred.
    [<Literal>]
    let CriteriaRows = 20_000

    /// <summary>The expert that stands out: the first with the largest σ_i, when that is at least <c>StandOut</c> times
    /// the median of the others' (k ≥ 3: a move needs a pair besides it), with that median.</summary>
    let standsOut (sigmas: float[]) : (int * float) option =
        if sigmas.Length < 3 then
            None
        else
            let top = Array.max sigmas
            let l = Array.findIndex (fun s -> s = top) sigmas

            let others =
                sigmas |> Array.indexed |> Array.filter (fun (i, _) -> i <> l) |> Array.map snd

            let m = Dense.median others

            if m > 0.0 && top >= StandOut * m then Some(l, m) else None

    /// A model's parameters with the gate's k logit rows written out (the k-th is zero until assembled).
    type private Parts =
        {
            A: float[][]
            B: float[]
            W: float[][]
            C: float[]
            S: float[]
            /// Student-t's degrees of freedom (empty for the other families).
            V: float[]
        }

    let private partsOf (m: MoeModel) =
        let k, dE, dG = m.Experts, m.ExpertDimension, m.GateDimension

        {
            A = Array.init k (fun i -> Array.init dE (fun t -> m.Regressors.[i, t]))
            B = Array.copy m.RegressorIntercepts
            W =
                Array.init k (fun i ->
                    if i < k - 1 then
                        Array.init dG (fun t -> m.Gating.[i, t])
                    else
                        Array.zeroCreate dG)
            C = Array.init k (fun i -> if i < k - 1 then m.GatingIntercepts.[i] else 0.0)
            S = Array.copy m.Sigmas
            V = Array.copy m.DegreesOfFreedom
        }

    /// The model of the parts: the gate's logits shifted so that the last expert's are zero (softmax is unchanged).
    let private assemble (like: MoeModel) (p: Parts) =
        let k = p.A.Length
        let last = k - 1
        let dG = like.GateDimension

        MoeModel.createWith
            like.Design
            like.Family
            (Array2D.init k like.ExpertDimension (fun i t -> p.A.[i].[t]))
            p.B
            (Array2D.init (k - 1) dG (fun i t -> p.W.[i].[t] - p.W.[last].[t]))
            (Array.init (k - 1) (fun i -> p.C.[i] - p.C.[last]))
            like.Activation
            p.S
        |> MoeModel.withDegreesOfFreedom p.V

    /// log(e^a + e^b) without overflow.
    let private logAdd (a: float) (b: float) =
        let hi, lo = max a b, min a b
        hi + Math.Log(1.0 + Math.Exp(lo - hi))

    /// Experts i and j merged into slot i (docs/math.md §7.8): the coefficients and gate rows averaged with the
    /// experts' rows N as weights, the gate's intercepts added as probabilities (log-sum-exp), the variances pooled.
    let private mergeInto (p: Parts) (rows: float[]) (i: int) (j: int) =
        let ni, nj = max rows.[i] 0.0, max rows.[j] 0.0

        let wi, wj =
            (if ni + nj > 0.0 then
                 ni / (ni + nj), nj / (ni + nj)
             else
                 0.5, 0.5)

        let mix (u: float[]) (v: float[]) =
            Array.map2 (fun a b -> wi * a + wj * b) u v

        let a, w = Array.copy p.A, Array.copy p.W
        let b, c, s = Array.copy p.B, Array.copy p.C, Array.copy p.S
        a.[i] <- mix p.A.[i] p.A.[j]
        b.[i] <- wi * p.B.[i] + wj * p.B.[j]
        w.[i] <- mix p.W.[i] p.W.[j]
        c.[i] <- logAdd p.C.[i] p.C.[j]
        s.[i] <- sqrt (wi * p.S.[i] * p.S.[i] + wj * p.S.[j] * p.S.[j])
        // Slot i keeps its degrees of freedom (Student-t): the next EM steps re-estimate them.
        {
            A = a
            B = b
            W = w
            C = c
            S = s
            V = Array.copy p.V
        }

    /// The parts without expert j.
    let private without (p: Parts) (j: int) =
        let drop (v: 'T[]) = Array.append v.[.. j - 1] v.[j + 1 ..]

        {
            A = drop p.A
            B = drop p.B
            W = drop p.W
            C = drop p.C
            S = drop p.S
            V = (if p.V.Length = 0 then [||] else drop p.V)
        }

    /// <summary>Expert l's residuals e_n = y_n − g(⟨a_l, x_n⟩ + b_l) on the rows (x over all the design's
    /// columns): what the split direction, the outlier regression and the merged-experts rule read.</summary>
    let internal residuals (model: MoeModel) (l: int) (x: float[,]) (y: float[]) : float[] =
        let columns = model.Design.ExpertColumns

        Array.init y.Length (fun r ->
            let mutable eta = model.RegressorIntercepts.[l]

            for t in 0 .. columns.Length - 1 do
                eta <- eta + model.Regressors.[l, t] * x.[r, columns.[t]]

            if ModelRows.hasPredictorOffset model then
                eta <- eta + Design.offsetAt model.Design x r

            y.[r] - model.Activation.Value eta)

    /// <summary>The direction along which expert l's residual variance grows fastest (docs/math.md §7.8): with
    /// responsibilities γ_n, residuals e_n = y_n − g(⟨a_l, x_n⟩ + b_l) (<c>residuals</c>), the γ-weighted covariance Σ of the expert's
    /// inputs and M = Σ_n γ_n (e_n² − s²) x̃_n x̃_nᵀ / N, the top eigenvector u of Σ⁻¹M, scaled so that uᵀΣu =
    /// max(s² − σ_ref², s²/2) (the variance the split should take out of the residuals); with the weighted mean of the
    /// inputs, the top eigenvalue of L⁻¹ML⁻ᵀ/s² (Σ = LLᵀ; MergedExperts tests it) and N. None when Σ is singular or
    /// the expert holds fewer than d_E + 2 rows (too few to say).</summary>
    let internal splitDirection
        (model: MoeModel)
        (gamma: float[,])
        (l: int)
        (sigmaRef: float)
        (x: float[,])
        (e: float[])
        =
        let columns = model.Design.ExpertColumns
        let dE = columns.Length
        let n = e.Length
        let mutable total = 0.0
        let mean = Array.zeroCreate dE

        for r in 0 .. n - 1 do
            let gr = gamma.[r, l]
            total <- total + gr

            for t in 0 .. dE - 1 do
                mean.[t] <- mean.[t] + gr * x.[r, columns.[t]]

        if not (total > float (dE + 2)) then
            None
        else
            for t in 0 .. dE - 1 do
                mean.[t] <- mean.[t] / total

            let mutable s2 = 0.0

            for r in 0 .. n - 1 do
                s2 <- s2 + gamma.[r, l] * e.[r] * e.[r]

            s2 <- s2 / total
            let sigma = Array2D.zeroCreate dE dE
            let m = Array2D.zeroCreate dE dE
            let xt = Array.zeroCreate dE

            for r in 0 .. n - 1 do
                let gr = gamma.[r, l]

                if gr > 0.0 then
                    for t in 0 .. dE - 1 do
                        xt.[t] <- x.[r, columns.[t]] - mean.[t]

                    let h = gr * (e.[r] * e.[r] - s2)

                    for a in 0 .. dE - 1 do
                        for b in 0..a do
                            sigma.[a, b] <- sigma.[a, b] + gr * xt.[a] * xt.[b]
                            m.[a, b] <- m.[a, b] + h * xt.[a] * xt.[b]

            for a in 0 .. dE - 1 do
                for b in 0..a do
                    sigma.[a, b] <- sigma.[a, b] / total
                    sigma.[b, a] <- sigma.[a, b]
                    m.[a, b] <- m.[a, b] / total
                    m.[b, a] <- m.[a, b]

            try
                let cov = Matrix<float>.Build.DenseOfArray sigma
                let lower = cov.Cholesky().Factor
                let inverse = lower.Inverse()
                let whitened = inverse * Matrix<float>.Build.DenseOfArray m * inverse.Transpose()
                let symmetric = (whitened + whitened.Transpose()) * 0.5
                let evd = symmetric.Evd(Symmetricity.Symmetric)
                let values = evd.EigenValues |> Seq.map (fun v -> v.Real) |> Array.ofSeq
                let top = Array.findIndex (fun v -> v = Array.max values) values
                let u = inverse.Transpose() * evd.EigenVectors.Column top
                let spread = u * (cov * u)
                let target = max (s2 - sigmaRef * sigmaRef) (0.5 * s2)
                let scale = sqrt (target / spread)

                if Double.IsFinite scale && scale > 0.0 then
                    Some((u * scale).ToArray(), mean, values.[top] / s2, total)
                else
                    None
            with :? ArgumentException ->
                None

    /// <summary>The regression of the rows expert l explains worst (docs/math.md §7.8): least squares of y on
    /// (x, 1) over the rows with |e_n| &gt; 2σ_ref, weighted by γ_n — when the expert sits on one true expert and has
    /// taken another's rows as outliers, those rows are the other's. None with fewer such rows than coefficients
    /// plus one, or a singular system.</summary>
    let private outlierRegression
        (model: MoeModel)
        (gamma: float[,])
        (l: int)
        (sigmaRef: float)
        (x: float[,])
        (y: float[])
        (e: float[])
        =
        let columns = model.Design.ExpertColumns
        let dE = columns.Length
        let p = dE + 1
        let gram = Array2D.zeroCreate p p
        let rhs = Array.zeroCreate p
        let z = Array.zeroCreate p
        let mutable weight = 0.0

        for r in 0 .. y.Length - 1 do
            let gr = gamma.[r, l]

            if abs e.[r] > 2.0 * sigmaRef && gr > 0.0 then
                weight <- weight + gr

                for t in 0 .. dE - 1 do
                    z.[t] <- x.[r, columns.[t]]

                z.[dE] <- 1.0

                for a in 0 .. p - 1 do
                    rhs.[a] <- rhs.[a] + gr * z.[a] * y.[r]

                    for b in 0..a do
                        gram.[a, b] <- gram.[a, b] + gr * z.[a] * z.[b]

        if not (weight > float (p + 1)) then
            None
        else
            for a in 0 .. p - 1 do
                for b in 0 .. a - 1 do
                    gram.[b, a] <- gram.[a, b]

            try
                let solution =
                    Matrix<float>.Build.DenseOfArray(gram).Cholesky().Solve(Vector<float>.Build.DenseOfArray rhs)

                let v = solution.ToArray()

                if Array.forall Double.IsFinite v then
                    Some(v.[.. dE - 1], v.[dE])
                else
                    None
            with :? ArgumentException ->
                None

    /// <summary>The moves to try from a model, most promising first (docs/math.md §7.8): split the expert that stands
    /// out (l) along its residuals' direction into itself and the slot freed by merging a pair (i, j) of the others,
    /// the pairs ranked by the log-likelihood of the k − 1 expert model with them merged (the cheapest first), at
    /// most <c>Pairs</c>. Empty when no expert stands out or the split direction cannot be had.</summary>
    /// <param name="model">The maximum-likelihood model (intercepts and a level per expert).</param>
    /// <param name="x">The criteria's rows.</param>
    /// <param name="y">Their responses.</param>
    /// <returns>(a description of the move, the moved model).</returns>
    let moves (model: MoeModel) (x: float[,]) (y: float[]) : (string * MoeModel)[] =
        match standsOut model.Sigmas with
        | None -> [||]
        | Some(l, sigmaRef) ->
            let k = model.Experts
            let gamma = LikelihoodKernel.responsibilities model x y
            let e = residuals model l x y

            let rows =
                Array.init k (fun i -> Seq.sum (seq { for r in 0 .. y.Length - 1 -> gamma.[r, i] }))

            let parts = partsOf model

            // The two ways to split expert l: along its residual variance's direction, and off its worst rows.
            let splits =
                [|
                    match splitDirection model gamma l sigmaRef x e with
                    | Some(delta, mean, _, _) ->
                        let shift = Array.fold2 (fun acc d m -> acc + d * m) 0.0 delta mean
                        let a = parts.A.[l]

                        yield
                            "along its residuals",
                            (Array.map2 (-) a delta, parts.B.[l] + shift),
                            (Array.map2 (+) a delta, parts.B.[l] - shift)
                    | None -> ()
                    match outlierRegression model gamma l sigmaRef x y e with
                    | Some(a, b) -> yield "off its worst rows", (Array.copy parts.A.[l], parts.B.[l]), (a, b)
                    | None -> ()
                |]

            if splits.Length = 0 then
                [||]
            else

                let pairs =
                    [|
                        for i in 0 .. k - 1 do
                            for j in i + 1 .. k - 1 do
                                if i <> l && j <> l then
                                    // Keep the slot of the expert with more rows.
                                    let keep, free = if rows.[i] >= rows.[j] then i, j else j, i
                                    let merged = mergeInto parts rows keep free

                                    let cost =
                                        try
                                            let smaller = assemble model (without merged free)
                                            LikelihoodKernel.logLikelihood smaller x y
                                        with :? ArgumentException ->
                                            Double.NegativeInfinity

                                    if Double.IsFinite cost then
                                        yield keep, free, merged, cost
                    |]
                    // A stable sort: equal costs keep the pairs' order.
                    |> Array.sortBy (fun (_, _, _, cost) -> -cost)
                    |> Array.truncate Pairs

                [|
                    for keep, free, merged, _ in pairs do
                        for how, (stayA, stayB), (newA, newB) in splits do
                            let a, b = Array.copy merged.A, Array.copy merged.B
                            let w, c, s = Array.copy merged.W, Array.copy merged.C, Array.copy merged.S
                            a.[l] <- stayA
                            b.[l] <- stayB
                            a.[free] <- newA
                            b.[free] <- newB
                            w.[free] <- Array.copy merged.W.[l]
                            c.[free] <- merged.C.[l] - Math.Log 2.0
                            c.[l] <- merged.C.[l] - Math.Log 2.0
                            s.[free] <- sigmaRef
                            s.[l] <- sigmaRef

                            let moved =
                                try
                                    let v = Array.copy merged.V

                                    if v.Length > 0 then
                                        v.[free] <- v.[l]

                                    Some(
                                        assemble
                                            model
                                            {
                                                A = a
                                                B = b
                                                W = w
                                                C = c
                                                S = s
                                                V = v
                                            }
                                    )
                                with :? ArgumentException ->
                                    None

                            match moved with
                            | Some m ->
                                yield
                                    Text.format
                                        "split expert %d %s, merged experts %d and %d"
                                        [| box (l + 1); box how; box (keep + 1); box (free + 1) |],
                                    m
                            | None -> ()
                |]
