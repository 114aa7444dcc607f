namespace MoE.Core

open System

/// <summary>Recovery errors of a fitted model against a ground truth (paper §4; docs/math.md §8).</summary>
type RecoveryErrors =
    {
        /// E_reg = 1 − max_π min_i |&lt;â_i, a*_π(i)&gt;| over unit-normalised rows (0 is perfect).
        RegressorError: float
        /// E_gating, aligned: experts matched by the regressors' π, fitted gating rebased so that the expert
        /// matched to the truth's k-th has logit 0, then 1 − min_j cos(ŵ'_j, w*_j) (signed).
        GatingError: float
        /// max_j ‖ŵ'_j − w*_j‖₂ after the same alignment.
        GatingDistance: float
        /// The paper's literal E_gating: 1 − max_π min_i |cos(ŵ_i, w*_π(i))| over the k−1 rows, without
        /// alignment (blind to w → −w, which is what a label swap does for k = 2).
        LiteralGatingError: float
        /// π: fitted expert i is matched to true expert Permutation[i].
        Permutation: int[]
    }

/// <summary>Parameter-recovery metrics.</summary>
[<RequireQualifiedAccess>]
module Metrics =

    let private rows (m: float[,]) =
        Array.init (m.GetLength 0) (fun i -> Array.init (m.GetLength 1) (fun j -> m.[i, j]))

    let private norm (v: float[]) = sqrt (Array.sumBy (fun t -> t * t) v)

    let private cosine (u: float[]) (v: float[]) =
        let nu, nv = norm u, norm v

        if nu = 0.0 || nv = 0.0 then
            0.0
        else
            Array.fold2 (fun s a b -> s + a * b) 0.0 u v / (nu * nv)

    /// Every ordering of the items, in lexicographic order of positions (k ≤ 8: at most 40,320); the expert matchings
    /// of the metrics and of the bootstrap's alignment enumerate these.
    let rec internal permutations (items: int list) : int list list =
        match items with
        | [] -> [ [] ]
        | _ ->
            items
            |> List.collect (fun x -> permutations (List.filter ((<>) x) items) |> List.map (fun p -> x :: p))

    /// Maximin assignment: π maximising min_i score[i, π(i)] (ties broken by the larger sum). Enumerates the
    /// k! permutations for k ≤ 8; beyond, finds the bottleneck value by thresholds and a bipartite matching.
    let internal assign (score: float[,]) : int[] =
        let k = score.GetLength 0

        if k <= 8 then
            permutations [ 0 .. k - 1 ]
            |> List.maxBy (fun p ->
                let values = p |> List.mapi (fun i j -> score.[i, j])
                List.min values, List.sum values)
            |> List.toArray
        else
            let matchWith (threshold: float) =
                let owner = Array.create k -1

                let rec augment (i: int) (seen: bool[]) =
                    seq { 0 .. k - 1 }
                    |> Seq.exists (fun j ->
                        if score.[i, j] >= threshold && not seen.[j] then
                            seen.[j] <- true

                            if owner.[j] < 0 || augment owner.[j] seen then
                                owner.[j] <- i
                                true
                            else
                                false
                        else
                            false)

                let complete =
                    seq { 0 .. k - 1 } |> Seq.forall (fun i -> augment i (Array.zeroCreate k))

                if complete then
                    let p = Array.zeroCreate k

                    for j in 0 .. k - 1 do
                        p.[owner.[j]] <- j

                    Some p
                else
                    None

            let thresholds =
                Seq.cast<float> score |> Seq.distinct |> Seq.sortDescending |> Seq.toArray

            thresholds |> Array.pick matchWith

    /// <summary>E_reg, the aligned E_gating, ‖W − W*‖ and the paper's literal E_gating.</summary>
    /// <param name="fitted">The fitted model.</param>
    /// <param name="truth">The ground truth (same k and d).</param>
    /// <returns>The errors and the matching.</returns>
    /// <example>
    /// <code lang="fsharp">
    /// let e = Metrics.compare fitted truth
    /// e.RegressorError, e.GatingError   // e.g. (1.5e-7, 1.2e-4): both ≤ 0.01 is a success
    /// </code>
    /// </example>
    [<CompiledName("Compare")>]
    let compare (fitted: MoeModel) (truth: MoeModel) : RecoveryErrors =
        MoeModel.validate fitted
        MoeModel.validate truth

        if fitted.Experts <> truth.Experts || fitted.Dimension <> truth.Dimension then
            invalidArg
                "fitted"
                (Text.format
                    "The fitted model has k = %d, d = %d but the truth has k = %d, d = %d."
                    [|
                        box fitted.Experts
                        box fitted.Dimension
                        box truth.Experts
                        box truth.Dimension
                    |])

        if not (Design.same fitted.Design truth.Design) then
            invalidArg
                "fitted"
                (Text.format
                    "The fitted model's experts and gate read other columns (%s) than the truth's (%s)."
                    [| box fitted.Design; box truth.Design |])

        let k, d = truth.Experts, truth.GateDimension
        let a, aStar = rows fitted.Regressors, rows truth.Regressors
        let pi = assign (Array2D.init k k (fun i j -> abs (cosine a.[i] aStar.[j])))

        let eReg =
            1.0 - (Array.init k (fun i -> abs (cosine a.[i] aStar.[pi.[i]])) |> Array.min)
        // Full fitted gating with w_k = 0, then rebase on the expert matched to the truth's reference k−1 (0-based).
        let w =
            Array.init k (fun i ->
                if i < k - 1 then
                    Array.init d (fun t -> fitted.Gating.[i, t])
                else
                    Array.zeroCreate d)

        let inverse = Array.zeroCreate k

        for i in 0 .. k - 1 do
            inverse.[pi.[i]] <- i

        let reference = w.[inverse.[k - 1]]
        let aligned = Array.init (k - 1) (fun j -> Array.map2 (-) w.[inverse.[j]] reference)
        let wStar = rows truth.Gating

        let eGating =
            1.0 - (Array.init (k - 1) (fun j -> cosine aligned.[j] wStar.[j]) |> Array.min)

        let distance =
            Array.init (k - 1) (fun j -> norm (Array.map2 (-) aligned.[j] wStar.[j]))
            |> Array.max

        let literalPi =
            assign (Array2D.init (k - 1) (k - 1) (fun i j -> abs (cosine w.[i] wStar.[j])))

        let literal =
            1.0
            - (Array.init (k - 1) (fun i -> abs (cosine w.[i] wStar.[literalPi.[i]]))
               |> Array.min)

        {
            RegressorError = eReg
            GatingError = eGating
            GatingDistance = distance
            LiteralGatingError = literal
            Permutation = pi
        }
