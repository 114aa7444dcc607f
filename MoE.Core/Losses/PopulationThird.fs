namespace MoE.Core

/// <summary>The third-order population moment of the spectral method (docs/math.md §4.5): T3 = E[S3(y)·S3(x)] with
/// S3(x) = x⊗x⊗x − sym(x⊗I), computed like the fourth-order moments of <c>Population.moments</c> — the noise
/// integrated exactly, x through the low-dimensional span of each expert's regressor and the gating rows.</summary>
[<RequireQualifiedAccess>]
module PopulationThird =

    /// T3 = E[S(y)·S3(x)] for E[S(y) | x, expert m] = conditional(⟨a*_m, x⟩), integrated over x through the span of
    /// each expert's regressor and the gating rows, the first axis (along a*_m) by the given rule.
    let private momentsWith
        (truth: MoeModel)
        (firstAxis: NormalRule)
        (conditional: float -> float)
        (options: PopulationOptions)
        =
        let k, d = truth.Experts, truth.Dimension
        let gatingRows = Array.init (k - 1) (Dense.row truth.Gating)

        let uBasis =
            Dense.orthonormalBasis (Array.append (Array.init k (Dense.row truth.Regressors)) gatingRows)

        let r = uBasis.Length
        let t3 = Array.zeroCreate (r * r * r)
        let gh = Quadrature.gaussHermite options.GateNodes

        for m in 0 .. k - 1 do
            let am = Dense.row truth.Regressors m
            let normA = sqrt (Dense.dot am am)
            let v = Dense.orthonormalBasis (Array.append [| am |] gatingRows)
            let kp = v.Length
            let wz = gatingRows |> Array.map (fun w -> v |> Array.map (Dense.dot w))
            let axes = Array.init kp (fun a -> if a = 0 then firstAxis else gh)
            // E[F z_iz_jz_l] (dense kp³) and E[F z_i], F = p_m(x)·E[S(y) | x, z = m].
            let f3 = Array.zeroCreate (kp * kp * kp)
            let f1 = Array.zeroCreate kp
            let p = Array.zeroCreate k

            Population.product axes options.MaxNodes "The third-order population moments" (fun z w ->
                Population.gateInto wz z p
                let wf = w * p.[m] * conditional (normA * z.[0])

                for i in 0 .. kp - 1 do
                    f1.[i] <- f1.[i] + wf * z.[i]

                    for j in 0 .. kp - 1 do
                        for l in 0 .. kp - 1 do
                            f3.[(i * kp + j) * kp + l] <- f3.[(i * kp + j) * kp + l] + wf * z.[i] * z.[j] * z.[l])

            // E[F S3(z)]_{ijl} = E[F z_iz_jz_l] − (δ_ij E[F z_l] + δ_il E[F z_j] + δ_jl E[F z_i]).
            let delta i j = if i = j then 1.0 else 0.0

            let e3 =
                Array.init (kp * kp * kp) (fun idx ->
                    let i, j, l = idx / (kp * kp), (idx / kp) % kp, idx % kp
                    f3.[idx] - (delta i j * f1.[l] + delta i l * f1.[j] + delta j l * f1.[i]))

            // Into U coordinates: T3 += C^{⊗3}·E3 with C = UᵀV_m.
            let cm = Array2D.init r kp (fun a i -> Dense.dot uBasis.[a] v.[i])

            for a in 0 .. r - 1 do
                for b in 0 .. r - 1 do
                    for c in 0 .. r - 1 do
                        let mutable s = 0.0

                        for i in 0 .. kp - 1 do
                            for j in 0 .. kp - 1 do
                                for l in 0 .. kp - 1 do
                                    s <- s + cm.[a, i] * cm.[b, j] * cm.[c, l] * e3.[(i * kp + j) * kp + l]

                        t3.[(a * r + b) * r + c] <- t3.[(a * r + b) * r + c] + s

        Array2D.init d r (fun t a -> uBasis.[a].[t]), t3

    /// <summary>T3 in the coordinates of an orthonormal basis of span{a*_m, w*_i}.</summary>
    /// <param name="truth">The data distribution.</param>
    /// <param name="third">The S3 coefficients for the truth's g and σ.</param>
    /// <param name="options">Quadrature settings.</param>
    /// <returns>The basis U (d×r) and T3 (r³, index (a·r + b)·r + c), not divided by c₃.</returns>
    /// <remarks>Under orthogonal gating, T3 = c₃ Σ_m E[p*_m] a*_m^{⊗3} (the property tests check it).</remarks>
    [<CompiledName("Moments")>]
    let moments (truth: MoeModel) (third: ThirdOrderCoefficients) (options: PopulationOptions) : float[,] * float[] =
        MoeModel.validate truth

        if truth.HasIntercepts || not truth.HasCommonSigma then
            invalidArg
                "truth"
                "Population values are for the paper's model: no intercepts and one sigma (docs/math.md §4.3)."

        Population.validateOptions options
        Guard.notNull "third" (box third)
        let g = truth.Activation
        let s2 = truth.Sigma * truth.Sigma

        let firstAxis =
            match g with
            | Identity -> Quadrature.gaussHermite options.GateNodes
            | _ -> Quadrature.panels 9.0 3.0 16 [| 0.0 |]

        momentsWith
            truth
            firstAxis
            (fun t ->
                let gv = g.Value t
                // E[Y³ + αY² + βY + γ | Z] with Y = g + σξ.
                gv * gv * gv
                + 3.0 * s2 * gv
                + third.Alpha * (gv * gv + s2)
                + third.Beta * gv
                + third.Gamma)
            options

    /// <summary>T3 = E[S(y)·S3(x)] for any output transform whose conditional mean given expert m is a function of
    /// ⟨a*_m, x⟩ — the GLM families' spectral start (docs/math.md §12.6), whose F also carries the common intercept.</summary>
    /// <param name="truth">The regressors and gating (no intercepts; the family and levels are not read).</param>
    /// <param name="conditional">t ↦ E[S(y) | expert m, ⟨a*_m, x⟩ = t] (smooth).</param>
    /// <param name="options">Quadrature settings.</param>
    /// <returns>The basis U (d×r) and T3 (r³, index (a·r + b)·r + c).</returns>
    [<CompiledName("MomentsOf")>]
    let momentsOf (truth: MoeModel) (conditional: float -> float) (options: PopulationOptions) : float[,] * float[] =
        MoeModel.validate truth

        if truth.HasIntercepts then
            invalidArg "truth" "The conditional carries the intercept; the truth has none (docs/math.md §12.6)."

        Population.validateOptions options
        // Smooth integrands on the expert's axis: 16-point panels of width 3 on [−9, 9], as the Gaussian activations'
        // (F is bounded and analytic; the tests' identities hold to 1e-8 with it).
        momentsWith truth (Quadrature.panels 9.0 3.0 16 [||]) conditional options
