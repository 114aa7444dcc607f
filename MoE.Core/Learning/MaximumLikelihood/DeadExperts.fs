namespace MoE.Core

open System

/// <summary>
/// Dead experts and the moves that revive them (docs/math.md §7.9). An expert whose activation is flat (g′ = 0: a ReLU
/// below its kink) on nearly every row it is responsible for predicts a constant there, and its coefficients sit on a
/// plateau of the likelihood where EM and L-BFGS have no gradient to follow. The rows it holds are typically the
/// off-rows of a true expert that is rarely on; that expert's on-rows are held as outliers by a neighbour, whose noise
/// level rises. The moves give the dead expert a live regression, keep its gate, and are kept only if the whole chain
/// climbed from them ends higher. Pure: everything is a function of the model and the rows given.
/// </summary>
module internal DeadExperts =

    /// An expert is dead when the γ-weighted share of its rows on which its activation has a slope is below this
    /// (docs/math.md §7.9: dead fitted ReLU experts measured at 0.1–1.3 %, the rarest-on experts of fits in the truth's
    /// basin at 3.7 % and above).
    [<Literal>]
    let LiveShare = 0.02

    /// An expert live on fewer of its rows than this is nearly dead: weakly determined by the few rows where it is
    /// live, it may sit on the wrong ones (docs/math.md §7.9: seeds 11 and 14 of the d = 50 grid, live on 2.4 % and 4 %),
    /// and the move from the rows explained worst is tried for it too.
    [<Literal>]
    let RareShare = 0.05

    /// |g′(η)| below this is flat: a ReLU's left side, a saturated sigmoid or tanh (g′ is at most 1 for the built-ins).
    [<Literal>]
    let private Flat = 1e-6

    /// A row is explained badly when the residual of its most responsible expert exceeds this many σ_ref.
    [<Literal>]
    let Badly = 3.0

    /// <summary>The rows the criteria are computed on at most (a seeded subsample) for data of d columns: the badly
    /// explained rows are a few per thousand, and their regression needs more of them than d_E + 1 coefficients (at
    /// d = 50, 20,000 rows held 49 and 100,000 held 237); 100,000 rows up to d = 50, then 5·10⁶ values, never fewer
    /// rows than split-and-merge reads (20,000).</summary>
    let criteriaRows (d: int) =
        max SplitMerge.CriteriaRows (min 100_000 (5_000_000 / max 1 d))

    /// The rounds of moves at most: a kept move is followed by another look, for the next dead expert.
    [<Literal>]
    let Rounds = 3

    /// η_ni (ModelRows.linearPredictor: the one scalar η).
    let private eta (model: MoeModel) (i: int) (x: float[,]) (r: int) = ModelRows.linearPredictor model x r i

    /// <summary>Each expert's live share: Σ_n γ_ni·[|g′(η_ni)| > 10⁻⁶] / Σ_n γ_ni (1 for an expert with no rows: it
    /// has nothing to say).</summary>
    let liveShares (model: MoeModel) (gamma: float[,]) (x: float[,]) : float[] =
        Array.init model.Experts (fun i ->
            let mutable total, live = 0.0, 0.0

            for r in 0 .. gamma.GetLength 0 - 1 do
                let g = gamma.[r, i]
                total <- total + g

                if abs (model.Activation.Derivative(eta model i x r)) > Flat then
                    live <- live + g

            if total > 0.0 then live / total else 1.0)

    /// <summary>Whether the dead-expert rule can apply: an activation with a flat region and a family with a noise
    /// level (the badly explained rows are measured in σ).</summary>
    let applies (model: MoeModel) =
        ExpertFamily.hasLevels model.Family
        && (match model.Activation with
            | Identity
            | LeakyRelu _ -> false
            | _ -> true)

    /// <summary>The responsibilities and the live shares of a model on the rows; None when the rule does not
    /// apply.</summary>
    let private sharesOf (model: MoeModel) (x: float[,]) (y: float[]) =
        if not (applies model) then
            None
        else
            let gamma = LikelihoodKernel.responsibilities model x y
            Some(gamma, liveShares model gamma x)

    /// <summary>The dead experts of a model on the rows (<c>LiveShare</c>), with the responsibilities; empty when the
    /// rule does not apply.</summary>
    let find (model: MoeModel) (x: float[,]) (y: float[]) : int[] * float[,] =
        match sharesOf model x y with
        | None -> [||], Array2D.zeroCreate 0 0
        | Some(gamma, shares) ->
            [|
                for i in 0 .. model.Experts - 1 do
                    if shares.[i] < LiveShare then
                        yield i
            |],
            gamma

    /// <summary>Least squares of y on (x_E, 1) over the rows explained badly (docs/math.md §7.9): rows whose most
    /// responsible expert leaves a residual beyond <c>Badly</c>·σ_ref, σ_ref the median of the σ_i. Where a dead expert
    /// holds a true expert's off-rows, that expert's on-rows are among them. None with fewer such rows than
    /// coefficients plus one.</summary>
    let badlyExplained (model: MoeModel) (gamma: float[,]) (x: float[,]) (y: float[]) : (float[] * float) option =
        let k = model.Experts
        let columns = model.Design.ExpertColumns
        let p = columns.Length + 1
        let sigmaRef = Dense.median model.Sigmas
        let gram = Array2D.zeroCreate p p
        let rhs = Array.zeroCreate p
        let z = Array.zeroCreate p
        let mutable count = 0

        for r in 0 .. y.Length - 1 do
            let mutable holder = 0

            for i in 1 .. k - 1 do
                if gamma.[r, i] > gamma.[r, holder] then
                    holder <- i

            if abs (y.[r] - model.Activation.Value(eta model holder x r)) > Badly * sigmaRef then
                count <- count + 1

                for t in 0 .. columns.Length - 1 do
                    z.[t] <- x.[r, columns.[t]]

                z.[p - 1] <- 1.0

                for a in 0 .. p - 1 do
                    rhs.[a] <- rhs.[a] + z.[a] * y.[r]

                    for b in 0..a do
                        gram.[a, b] <- gram.[a, b] + z.[a] * z.[b]

        if count <= p then
            None
        else
            for a in 0 .. p - 1 do
                for b in 0 .. a - 1 do
                    gram.[b, a] <- gram.[a, b]

            let v = Dense.solveSpd gram rhs

            if Array.forall Double.IsFinite v then
                Some(v.[.. p - 2], v.[p - 1])
            else
                None

    /// <summary>The intercept that puts expert i's kink at the γ-weighted median of ⟨a_i, x⟩ over its rows: alive on
    /// half of them, its direction kept.</summary>
    let recentred (model: MoeModel) (gamma: float[,]) (i: int) (x: float[,]) : float =
        let b = model.RegressorIntercepts.[i]

        let projections =
            Array.init (gamma.GetLength 0) (fun r -> eta model i x r - b, gamma.[r, i])
            |> Array.sortBy fst

        let half = 0.5 * (projections |> Array.sumBy snd)
        let mutable acc, median, r = 0.0, 0.0, 0

        while r < projections.Length && acc < half do
            acc <- acc + snd projections.[r]
            median <- fst projections.[r]
            r <- r + 1

        -median

    /// <summary>The moves from a model with dead or nearly dead experts (docs/math.md §7.9), most promising first:
    /// for each expert live on fewer than <c>RareShare</c> of its rows, the least live first, its regression replaced
    /// by that of the badly explained rows, and for a dead one (<c>LiveShare</c>) also its kink moved to the median of
    /// its rows; its gate row and intercept kept (the rows it holds are a true expert's off-rows), its level set to
    /// σ_ref. Empty when no expert is that rarely live.</summary>
    /// <param name="model">The maximum-likelihood model.</param>
    /// <param name="x">The criteria's rows.</param>
    /// <param name="y">Their responses.</param>
    /// <returns>(a description of the move, the moved model).</returns>
    let moves (model: MoeModel) (x: float[,]) (y: float[]) : (string * MoeModel)[] =
        match sharesOf model x y with
        | None -> [||]
        | Some(gamma, shares) ->
            // A stable sort: equal shares keep the experts' order.
            let rare =
                [| 0 .. model.Experts - 1 |]
                |> Array.filter (fun i -> shares.[i] < RareShare)
                |> Array.sortBy (fun i -> shares.[i])

            if rare.Length = 0 then
                [||]
            else
                let sigmaRef = Dense.median model.Sigmas
                let regression = badlyExplained model gamma x y

                let withExpert (i: int) (a: float[]) (b: float) =
                    let regressors = Array2D.copy model.Regressors
                    let intercepts = Array.copy model.RegressorIntercepts
                    let sigmas = Array.copy model.Sigmas

                    for t in 0 .. a.Length - 1 do
                        regressors.[i, t] <- a.[t]

                    intercepts.[i] <- b
                    sigmas.[i] <- sigmaRef

                    try
                        Some(
                            MoeModel.createWith
                                model.Design
                                model.Family
                                regressors
                                intercepts
                                model.Gating
                                model.GatingIntercepts
                                model.Activation
                                sigmas
                            |> MoeModel.withDegreesOfFreedom model.DegreesOfFreedom
                        )
                    with :? ArgumentException ->
                        None

                [|
                    for i in rare do
                        match regression with
                        | Some(a, b) ->
                            match withExpert i a b with
                            | Some m ->
                                yield Text.format "revived expert %d on the rows explained worst" [| box (i + 1) |], m
                            | None -> ()
                        | None -> ()

                        if shares.[i] < LiveShare then
                            let direction = Array.init model.ExpertDimension (fun t -> model.Regressors.[i, t])

                            match withExpert i direction (recentred model gamma i x) with
                            | Some m ->
                                yield Text.format "revived expert %d at the middle of its rows" [| box (i + 1) |], m
                            | None -> ()
                |]

    /// <summary>The warning dead-expert (docs/errors.md) for a maximum whose dead experts the moves did not revive and
    /// whose coefficients the data do not determine: a dead expert (<c>LiveShare</c>) live on fewer rows of the whole
    /// data than its coefficients plus one (d_E + 2), each named with its rows and its live rows; None when there is no
    /// such expert. A rarely live true expert on many rows (d = 50 seed 19: live on 1.7 % of 69,000 rows) is dead by
    /// the share but determined, and is not reported.</summary>
    /// <param name="model">The maximum after the moves.</param>
    /// <param name="rows">The rows of the whole data (the warning counts the experts' rows in them).</param>
    /// <param name="x">The criteria's rows (a subsample of the data).</param>
    /// <param name="y">Their responses.</param>
    let describe (model: MoeModel) (rows: float) (x: float[,]) (y: float[]) : string option =
        match find model x y with
        | [||], _ -> None
        | dead, gamma ->
            let shares = liveShares model gamma x
            let scale = rows / float y.Length
            let coefficients = model.ExpertDimension + 1

            let named =
                dead
                |> Array.choose (fun i ->
                    let held = scale * Seq.sum (seq { for r in 0 .. y.Length - 1 -> gamma.[r, i] })
                    let live = held * shares.[i]

                    if live < float (coefficients + 1) then
                        Some(
                            Text.format
                                "expert %d (%.4g rows, live on %.3g of them, fewer than its %d coefficients plus one)"
                                [| box (i + 1); box held; box live; box coefficients |]
                        )
                    else
                        None)

            if named.Length = 0 then
                None
            else
                Some(
                    Text.format
                        "%s: its activation is flat where it is responsible, so it predicts a constant there and its coefficients are not determined by the data (any that keep it off fit as well); reviving it did not raise the likelihood. Fewer experts may fit as well (moe select compares k); its standard errors are not meaningful."
                        [| box (String.Join("; ", named)) |]
                )
