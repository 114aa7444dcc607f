namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra

/// <summary>
/// The spectral start of the GLM families (docs/math.md §12.6): the third-order moment E[S(y)·S3(u)] of the whitened
/// expert columns u, S the family's transform (<c>GlmTransform</c>), whose population value under the model is
/// c₃ Σ_m E[p_m] â_m^{⊗3}, decomposed by Jennrich's simultaneous diagonalisation of its slices (no whitening by a
/// second-order moment, which vanishes for the logit link with centred intercepts). A start, chosen by likelihood like
/// the others.
/// </summary>
[<RequireQualifiedAccess>]
module GlmSpectral =

    /// Jennrich's algorithm on k×k slices N_j = B·D_j·Bᵀ: the eigenvectors of P·Q⁻¹ for two random mixtures P, Q of
    /// the slices are B's columns. Of eight draws the one whose eigenvalues are real and farthest apart (relative to
    /// the largest) is kept: close eigenvalues make the eigenvectors ill-determined.
    let private jennrich (slices: Matrix<float>[]) (rng: Xoshiro256StarStar) : Result<Matrix<float>, string> =
        let k = slices.[0].RowCount
        let mutable best: (float * Matrix<float>) option = None

        for _ in 1..8 do
            let mix () =
                let g = Array.init slices.Length (fun _ -> rng.NextGaussian())

                Array.fold2
                    (fun (acc: Matrix<float>) (s: Matrix<float>) c -> acc + c * s)
                    (Matrix<float>.Build.Dense(k, k))
                    slices
                    g

            let p, q = mix (), mix ()

            if abs (q.Determinant()) > 1e-300 then
                let evd = (p * q.Inverse()).Evd()
                let values = evd.EigenValues.ToArray()
                let largest = values |> Array.map (fun v -> v.Magnitude) |> Array.max

                let real =
                    largest > 0.0
                    && values |> Array.forall (fun v -> abs v.Imaginary <= 1e-9 * largest)

                if real then
                    let gap =
                        Seq.min (
                            seq {
                                for i in 0 .. k - 1 do
                                    for j in i + 1 .. k - 1 -> abs (values.[i].Real - values.[j].Real) / largest
                            }
                            |> Seq.append [ infinity ]
                        )

                    match best with
                    | Some(g, _) when g >= gap -> ()
                    | _ -> best <- Some(gap, evd.EigenVectors.Clone())

        match best with
        | Some(gap, b) when gap > 1e-6 -> Ok b
        | _ ->
            Error
                "the third-order slices have no real, distinct simultaneous diagonalisation (k may exceed the experts the data show)"

    /// <summary>The spectral start of a GLM family on a sample (docs/math.md §12.6): the common (s, b) from the
    /// responses' moments, the transform, the expert columns whitened on the sample (u = L⁻¹(x − μ)), min(d, 3k + 4)
    /// orthonormal slices M_j = mean(S(y)·S3(u)(·, ·, θ_j)), the moment subspace (top k eigenvectors of Σ_j M_j²),
    /// the k×k×k tensor there, Jennrich's decomposition of its slices polished by dual power steps, each direction's
    /// sign from T3(r_m, r_m, r_m)/c₃ (r_m the dual rows), and a model: expert m
    /// has the linear predictor s⟨±â_m, u⟩ + b in the data's units, the gate is flat.</summary>
    /// <param name="family">Poisson, Bernoulli or binomial.</param>
    /// <param name="design">The columns the experts read (and, for the binomial, the trials column).</param>
    /// <param name="activation">g of the model.</param>
    /// <param name="intercepts">Whether the model has intercepts (without them the start's intercepts are 0).</param>
    /// <param name="experts">k ≤ the experts' columns.</param>
    /// <param name="seed">The seed of the slices and mixtures.</param>
    /// <param name="data">The sample (working units; weights honoured).</param>
    /// <returns>The start, or why there is none.</returns>
    [<CompiledName("Propose")>]
    let propose
        (family: ExpertFamily)
        (design: Design)
        (activation: Activation)
        (intercepts: bool)
        (experts: int)
        (seed: int64)
        (data: Dataset)
        : Result<MoeModel, string> =
        let k = experts
        let columns = design.ExpertColumns
        let d = columns.Length
        let n = data.Count

        if not (GlmTransform.applies family) then
            Error(Text.format "%s experts have no GLM spectral start" [| box family.Name |])
        elif family = ExpertFamily.Binomial && not design.HasOffset then
            Error "binomial experts read each row's trials: the design names no trials column"
        elif family = ExpertFamily.Poisson && design.HasOffset then
            Error "the Poisson transform assumes no exposure column (an exposure moves each row's intercept)"
        elif d < k then
            Error(
                Text.format
                    "the moment subspace needs d >= k, but the experts read %d columns < k = %d"
                    [| box d; box k |]
            )
        else
            let trials (r: int) =
                if family = ExpertFamily.Binomial then
                    data.X.[r, design.OffsetColumn]
                else
                    1.0

            let total = data.Weight
            let mutable share, factorial = 0.0, 0.0

            for r in 0 .. n - 1 do
                let w, y = data.WeightOf r, data.Y.[r]
                share <- share + w * y / trials r
                factorial <- factorial + w * y * (y - 1.0)

            GlmTransform.commonPredictor family (share / total) (factorial / total)
            |> Result.bind (fun (s, b) -> GlmTransform.derive family s b)
            |> Result.bind (fun transform ->
                // Whitening: μ and Σ of the expert columns (the weighted two-pass moments of every input column,
                // EmKernel.covarianceOf, then the experts' block), Σ = LLᵀ, u = L⁻¹(x − μ).
                let allMean, moments = EmKernel.covarianceOf true (DataSource.ofDataset data)
                let all = Dense.mirror data.Dimension moments
                let mean = columns |> Array.map (fun c -> allMean.[c])
                let cov = Matrix<float>.Build.Dense(d, d, fun a c -> all.[columns.[a], columns.[c]])

                let evCov = cov.Evd(Symmetricity.Symmetric).EigenValues |> Seq.map (fun v -> v.Real)

                if Seq.min evCov <= 1e-10 * Seq.max evCov then
                    Error "the expert columns are collinear on the sample"
                else
                    let l = cov.Cholesky().Factor
                    let lInv = l.Inverse()
                    let u = Array.zeroCreate (n * d)
                    let centred = Array.zeroCreate d

                    for r in 0 .. n - 1 do
                        for c in 0 .. d - 1 do
                            centred.[c] <- data.X.[r, columns.[c]] - mean.[c]

                        for a in 0 .. d - 1 do
                            let mutable v = 0.0

                            for c in 0..a do
                                v <- v + lInv.[a, c] * centred.[c]

                            u.[r * d + a] <- v

                    // S(y), centred by its weighted mean (E[S3(u)] = 0, so the population is unchanged and the
                    // variance drops).
                    let sy = Array.init n (fun r -> GlmTransform.value transform data.Y.[r] (trials r))

                    let sMean =
                        (Seq.sum (seq { for r in 0 .. n - 1 -> data.WeightOf r * sy.[r] })) / total

                    let rng = Rng.stream seed Streams.GlmSpectral
                    // J = min(d, 3k + 4) orthonormal directions θ_j: at J = d the slices are the whole unfolding and
                    // Σ_j M_j² = Σ_{m,l} λ_mλ_l⟨â_m, â_l⟩ â_m â_lᵀ sees every expert alike; fewer random slices can
                    // all but miss one expert (Σ_j ⟨â_m, θ_j⟩² small by chance), so they are many and orthogonal.
                    let slicesCount = min d (3 * k + 4)

                    let thetas =
                        let g = Matrix<float>.Build.Dense(d, slicesCount, fun _ _ -> rng.NextGaussian())
                        let q = g.QR().Q
                        Array.init slicesCount (fun j -> Array.init d (fun a -> q.[a, j]))

                    // A_j = Σ w s (θ_j·u) u uᵀ (upper triangles), v = Σ w s u.
                    let acc = Array.init slicesCount (fun _ -> Array.zeroCreate (d * d))
                    let vSum = Array.zeroCreate d
                    let coef = Array.zeroCreate slicesCount

                    for r in 0 .. n - 1 do
                        let ws = data.WeightOf r * (sy.[r] - sMean) / total
                        let o = r * d

                        for j in 0 .. slicesCount - 1 do
                            let mutable t = 0.0

                            for a in 0 .. d - 1 do
                                t <- t + thetas.[j].[a] * u.[o + a]

                            coef.[j] <- ws * t

                        for a in 0 .. d - 1 do
                            let ua = u.[o + a]
                            vSum.[a] <- vSum.[a] + ws * ua

                            for c in a .. d - 1 do
                                let uu = ua * u.[o + c]

                                for j in 0 .. slicesCount - 1 do
                                    acc.[j].[a * d + c] <- acc.[j].[a * d + c] + coef.[j] * uu

                    // M_j = A_j − (θ_j·v) I − v θ_jᵀ − θ_j vᵀ: S3(u)(·, ·, θ) = (θ·u) u uᵀ − (θ·u) I − u θᵀ − θ uᵀ.
                    let slices =
                        Array.init slicesCount (fun j ->
                            let th = thetas.[j]
                            let tv = Dense.dot th vSum

                            Matrix<float>
                                .Build.Dense(
                                    d,
                                    d,
                                    fun a c ->
                                        let a', c' = min a c, max a c

                                        acc.[j].[a' * d + c']
                                        - (if a = c then tv else 0.0)
                                        - vSum.[a] * th.[c]
                                        - th.[a] * vSum.[c]
                                ))

                    // The moment subspace: the top k eigenvectors of Σ_j M_j² (positive semi-definite; its range is
                    // span{â_m} in the population).
                    let gram =
                        slices
                        |> Array.fold (fun (acc: Matrix<float>) m -> acc + m * m) (Matrix<float>.Build.Dense(d, d))

                    let evd = gram.Evd(Symmetricity.Symmetric)

                    let order =
                        Array.init d id |> Array.sortByDescending (fun i -> evd.EigenValues.[i].Real)

                    let basis =
                        Matrix<float>.Build.Dense(d, k, fun a m -> evd.EigenVectors.[a, order.[m]])
                    // The whole k×k×k tensor T = mean(S(y)·S3(z)) in the subspace's coordinates z = Uᵀu (a second
                    // pass; k³ entries): its slices T(·, ·, e_c) carry all of the sample's third-order information
                    // there, where k + 2 random slices of ℝ^d carry a part.
                    let tensor = Array.zeroCreate (k * k * k)
                    let z = Array.zeroCreate k

                    for r in 0 .. n - 1 do
                        let ws = data.WeightOf r * (sy.[r] - sMean) / total

                        for a in 0 .. k - 1 do
                            let mutable v = 0.0

                            for c in 0 .. d - 1 do
                                v <- v + basis.[c, a] * u.[r * d + c]

                            z.[a] <- v

                        for a in 0 .. k - 1 do
                            for b in 0 .. k - 1 do
                                for c in 0 .. k - 1 do
                                    let delta =
                                        (if b = c then z.[a] else 0.0)
                                        + (if a = c then z.[b] else 0.0)
                                        + (if a = b then z.[c] else 0.0)

                                    tensor.[(a * k + b) * k + c] <-
                                        tensor.[(a * k + b) * k + c] + ws * (z.[a] * z.[b] * z.[c] - delta)

                    let projected =
                        Array.init k (fun c ->
                            Matrix<float>.Build.Dense(k, k, fun a b -> tensor.[(a * k + b) * k + c]))

                    jennrich projected rng
                    |> Result.map (fun b0 ->
                        // Refinement: with dual rows R = B⁻¹, T(·, r_m, r_m) = λ_m b_m exactly when T = Σ λ_l b_l^{⊗3};
                        // iterating B ← [T(·, r_m, r_m)]_m, R ← B⁻¹ (columns renormalised) polishes Jennrich's
                        // eigenvectors, which carry the noise of two random mixtures.
                        let mutable b = b0

                        for _ in 1..20 do
                            if abs (b.Determinant()) > 1e-12 then
                                let duals = b.Inverse()

                                let next =
                                    Matrix<float>
                                        .Build.Dense(
                                            k,
                                            k,
                                            fun a m ->
                                                let mutable v = 0.0

                                                for p in 0 .. k - 1 do
                                                    for q in 0 .. k - 1 do
                                                        v <-
                                                            v
                                                            + tensor.[(a * k + p) * k + q]
                                                              * duals.[m, p]
                                                              * duals.[m, q]

                                                v
                                        )

                                let norms = next.ColumnNorms(2.0)

                                if norms.ToArray() |> Array.forall (fun v -> v > 0.0 && Double.IsFinite v) then
                                    b <- next.NormalizeColumns(2.0)

                        b)
                    |> Result.bind (fun bMatrix ->
                        if abs (bMatrix.Determinant()) < 1e-12 then
                            Error "the decomposition's directions are linearly dependent"
                        else
                            let duals = bMatrix.Inverse()

                            let regressors = Array2D.zeroCreate k d
                            let offsets = Array.zeroCreate k

                            for m in 0 .. k - 1 do
                                // The dual row r_m in ℝ^d (U r_m, ‖U r_m‖ = ‖r_m‖) and T3(r_m, r_m, r_m).
                                let dual = basis * duals.Row m
                                let norm2 = dual.DotProduct dual
                                let mutable t3 = 0.0

                                for r in 0 .. n - 1 do
                                    let mutable t = 0.0

                                    for a in 0 .. d - 1 do
                                        t <- t + dual.[a] * u.[r * d + a]

                                    t3 <- t3 + data.WeightOf r * (sy.[r] - sMean) * (t * t * t - 3.0 * norm2 * t)

                                let direction = basis * bMatrix.Column m
                                let sign = if t3 * transform.C3 >= 0.0 then 1.0 else -1.0
                                let au = direction * (sign * transform.Scale / direction.L2Norm())
                                // ⟨a_u, L⁻¹(x − μ)⟩ = ⟨L⁻ᵀa_u, x⟩ − ⟨L⁻ᵀa_u, μ⟩.
                                let ax = lInv.TransposeThisAndMultiply au

                                for c in 0 .. d - 1 do
                                    regressors.[m, c] <- ax.[c]

                                offsets.[m] <- transform.Intercept - Dense.dot (ax.ToArray()) mean

                            if not (regressors |> Seq.cast<float> |> Seq.forall Double.IsFinite) then
                                Error "the decomposition is not finite"
                            else
                                Ok(
                                    MoeModel.createWith
                                        design
                                        family
                                        regressors
                                        (if intercepts then offsets else Array.zeroCreate k)
                                        (Array2D.zeroCreate (k - 1) design.GateColumns.Length)
                                        (Array.zeroCreate (k - 1))
                                        activation
                                        (Array.create k 1.0)
                                )))
