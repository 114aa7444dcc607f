namespace MoE.Core

open System

/// <summary>Quadrature settings for population (infinite-sample) expectations.</summary>
type PopulationOptions =
    {
        /// Gauss–Hermite nodes per smooth axis (gate directions). 32 gives ~4e-12 relative error for gating
        /// rows of norm 1 and ~5e-7 for norm 2 (the softmax's complex poles approach the real axis as ‖w‖ grows).
        GateNodes: int
        /// Gauss–Hermite nodes over the noise ξ (population L_log only; exact integration is used for L4).
        NoiseNodes: int
        /// The largest product rule allowed (the rule has GateNodes^r nodes in r dimensions).
        MaxNodes: int
    }

/// <summary>Population moments of a ground truth: the L4 tensors, the gate masses and the coefficients used.</summary>
/// <remarks>
/// <c>Tensors.Basis</c> is an orthonormal basis U (d×r, columns) of span{a*_m, w*_i}; <c>Tensors.T4</c> is
/// E[Q4(y)·S4(x)] and <c>Tensors.T2</c> is E[Q2(y)·S2(x)] in U's coordinates, which is all of them: by
/// independence, every component with an index orthogonal to U has zero mean (docs/math.md §4.3).
/// </remarks>
type PopulationMoments =
    {
        /// The L4 tensors in the basis of span{a*_m, w*_i}.
        Tensors: L4Tensors
        /// E[p*_m(x)], m = 1..k.
        GateMasses: float[]
        /// The transform coefficients used.
        Coefficients: TransformCoefficients
    }

/// <summary>
/// Exact population values (no sampling noise): x enters every expectation only through its projections on a
/// low-dimensional span, so product Gauss rules over that span, with exact integration over the Gaussian noise
/// where the integrand is polynomial in y, give the infinite-sample gate masses, L4, L_log and their gradients.
/// Derivation and accuracy: docs/math.md §4.3.
/// </summary>
[<RequireQualifiedAccess>]
module Population =

    /// <summary>Default settings: 32 gate nodes, 40 noise nodes, at most 4·10⁶ nodes.</summary>
    [<CompiledName("DefaultOptions")>]
    let defaultOptions: PopulationOptions =
        {
            GateNodes = 32
            NoiseNodes = 40
            MaxNodes = 4_000_000
        }

    let internal validateOptions (o: PopulationOptions) =
        if o.GateNodes < 1 || o.GateNodes > 400 then
            raise (ArgumentOutOfRangeException("GateNodes", o.GateNodes, "GateNodes must be in 1..400."))

        if o.NoiseNodes < 1 || o.NoiseNodes > 400 then
            raise (ArgumentOutOfRangeException("NoiseNodes", o.NoiseNodes, "NoiseNodes must be in 1..400."))

        Guard.positiveInt "MaxNodes" o.MaxNodes

    /// Calls `f z weight` at every node of the product of the axis rules (z is a reused buffer).
    let internal product (axes: NormalRule[]) (maxNodes: int) (what: string) (f: float[] -> float -> unit) =
        let dims = axes.Length
        let total = axes |> Array.fold (fun acc r -> acc * float r.Count) 1.0

        if total > float maxNodes then
            invalidOp (
                Text.format
                    "%s needs a product rule of %.3g nodes in %d dimensions, over the budget of %d (PopulationOptions.MaxNodes); use fewer GateNodes or a smaller k."
                    [| box what; box total; box dims; box maxNodes |]
            )

        let z = Array.zeroCreate dims
        let index = Array.zeroCreate dims

        if dims = 0 then
            f z 1.0
        else
            let mutable fin = false

            while not fin do
                let mutable w = 1.0

                for a in 0 .. dims - 1 do
                    z.[a] <- axes.[a].Nodes.[index.[a]]
                    w <- w * axes.[a].Weights.[index.[a]]

                f z w
                // Odometer increment.
                let mutable a = dims - 1
                let mutable carry = true

                while carry && a >= 0 do
                    index.[a] <- index.[a] + 1

                    if index.[a] < axes.[a].Count then
                        carry <- false
                    else
                        index.[a] <- 0
                        a <- a - 1

                if carry then
                    fin <- true

    /// Only a polynomial g is integrated exactly by Gauss–Hermite along its own axis; kinked g (ReLU) and
    /// analytic g with complex poles (sigmoid, tanh, custom) get the panel rule split at 0.
    let private needsPanels (g: Activation) =
        match g with
        | Identity -> false
        | _ -> true

    /// Softmax of the gating logits (w_i·z for i < k, 0) into p.
    let internal gateInto (wz: float[][]) (z: float[]) (p: float[]) =
        let k = wz.Length + 1

        for i in 0 .. k - 2 do
            p.[i] <- Dense.dot wz.[i] z

        p.[k - 1] <- 0.0
        Gate.softmaxInPlace p k

    /// <summary>E[p*_m(x)] for every expert, by a product Gauss–Hermite rule over span{w*_i}.</summary>
    /// <param name="truth">The ground truth.</param>
    /// <param name="options">Quadrature settings.</param>
    /// <returns>E[p*_m(x)], m = 1..k (summing to 1 up to the rule's error).</returns>
    [<CompiledName("GateMasses")>]
    let gateMasses (truth: MoeModel) (options: PopulationOptions) : float[] =
        MoeModel.validate truth

        if truth.HasIntercepts || not truth.HasCommonSigma then
            invalidArg
                "truth"
                "Population values are for the paper's model: no intercepts and one sigma (docs/math.md §4.3)."

        validateOptions options
        let k = truth.Experts
        let basis = Dense.orthonormalBasis (Array.init (k - 1) (Dense.row truth.Gating))

        let wz =
            Array.init (k - 1) (fun i -> basis |> Array.map (Dense.dot (Dense.row truth.Gating i)))

        let axes = Array.create basis.Length (Quadrature.gaussHermite options.GateNodes)
        let masses = Array.zeroCreate k
        let p = Array.zeroCreate k

        product axes options.MaxNodes "The gate masses" (fun z w ->
            gateInto wz z p

            for i in 0 .. k - 1 do
                masses.[i] <- masses.[i] + w * p.[i])

        masses

    /// <summary>E[Q4(y) S4(x)], E[Q2(y) S2(x)] and the gate masses of a ground truth.</summary>
    /// <param name="truth">The data distribution (its g and σ are the ones the coefficients were solved for).</param>
    /// <param name="coefficients">Q4/Q2 coefficients for the truth's g and σ.</param>
    /// <param name="options">Quadrature settings.</param>
    /// <returns>The moments.</returns>
    /// <remarks>For expert m, the integrand p*_m(x)·E[Q4(y) | z = m, x]·S4(x) depends on x only through
    /// V_m = span{a*_m, w*_i}: E over the orthogonal complement turns S4(x) into S4 of the V_m coordinates. The
    /// noise integral is exact: E[Q4(g + σξ)] = g⁴ + 6σ²g² + 3σ⁴ + α(g³ + 3σ²g) + β(g² + σ²) + γg. The axis
    /// along a*_m uses the panel rule split at 0 unless g is the identity (then Gauss–Hermite is exact).</remarks>
    [<CompiledName("Moments")>]
    let moments
        (truth: MoeModel)
        (coefficients: TransformCoefficients)
        (options: PopulationOptions)
        : PopulationMoments =
        MoeModel.validate truth

        if truth.HasIntercepts || not truth.HasCommonSigma then
            invalidArg
                "truth"
                "Population values are for the paper's model: no intercepts and one sigma (docs/math.md §4.3)."

        validateOptions options
        Guard.notNull "coefficients" (box coefficients)
        let k, d = truth.Experts, truth.Dimension
        let g = truth.Activation
        let s2 = truth.Sigma * truth.Sigma
        let cf = coefficients
        let gatingRows = Array.init (k - 1) (Dense.row truth.Gating)

        let uBasis =
            Dense.orthonormalBasis (Array.append (Array.init k (Dense.row truth.Regressors)) gatingRows)

        let r = uBasis.Length
        let t4 = Array.zeroCreate (r * r * r * r)
        let t2 = Array.zeroCreate (r * r)
        let masses = Array.zeroCreate k
        let gh = Quadrature.gaussHermite options.GateNodes

        let firstAxis =
            if needsPanels g then
                Quadrature.panels 9.0 3.0 16 [| 0.0 |]
            else
                gh

        for m in 0 .. k - 1 do
            let am = Dense.row truth.Regressors m
            let normA = sqrt (Dense.dot am am)
            let v = Dense.orthonormalBasis (Array.append [| am |] gatingRows)
            let kp = v.Length
            let wz = gatingRows |> Array.map (fun w -> v |> Array.map (Dense.dot w))
            let axes = Array.init kp (fun a -> if a = 0 then firstAxis else gh)
            let qs = SymmetricTensor.quads kp
            let f4 = Array.zeroCreate qs.Length
            let f4z2 = Array2D.zeroCreate kp kp
            let f2 = Array2D.zeroCreate kp kp
            let mutable f4s = 0.0
            let mutable f2s = 0.0
            let mutable f0 = 0.0
            let p = Array.zeroCreate k
            let zz = Array2D.zeroCreate kp kp

            product axes options.MaxNodes "The population moments" (fun z w ->
                gateInto wz z p
                let gv = g.Value(normA * z.[0])

                let h4 =
                    gv * gv * gv * gv
                    + 6.0 * s2 * gv * gv
                    + 3.0 * s2 * s2
                    + cf.Alpha * (gv * gv * gv + 3.0 * s2 * gv)
                    + cf.Beta * (gv * gv + s2)
                    + cf.Gamma * gv

                let h2 = gv * gv + s2 + cf.Delta * gv
                let w0 = w * p.[m]
                let w4 = w0 * h4
                let w2 = w0 * h2
                f0 <- f0 + w0
                f4s <- f4s + w4
                f2s <- f2s + w2

                for i in 0 .. kp - 1 do
                    for j in i .. kp - 1 do
                        let zij = z.[i] * z.[j]
                        zz.[i, j] <- zij
                        f4z2.[i, j] <- f4z2.[i, j] + w4 * zij
                        f2.[i, j] <- f2.[i, j] + w2 * zij

                for q in 0 .. qs.Length - 1 do
                    let struct (i, j, kk, l) = qs.[q]
                    f4.[q] <- f4.[q] + w4 * zz.[i, j] * zz.[kk, l])

            masses.[m] <- f0
            let sym2 (a: float[,]) i j = if i <= j then a.[i, j] else a.[j, i]
            let delta i j = if i = j then 1.0 else 0.0
            let e4full = SymmetricTensor.assembleS4 kp qs f4 f4z2 f4s

            // Map into U coordinates: C = Uᵀ V_m (r × kp); T4 += C⊗4 · E4, by four mode products.
            let cm = Array2D.init r kp (fun a i -> Dense.dot uBasis.[a] v.[i])
            let mutable cur = e4full
            let mutable dims = [| kp; kp; kp; kp |]

            for mode in 0..3 do
                let outDims = Array.copy dims
                outDims.[mode] <- r
                let next = Array.zeroCreate (outDims |> Array.fold (*) 1)

                for i0 in 0 .. outDims.[0] - 1 do
                    for i1 in 0 .. outDims.[1] - 1 do
                        for i2 in 0 .. outDims.[2] - 1 do
                            for i3 in 0 .. outDims.[3] - 1 do
                                let idx = [| i0; i1; i2; i3 |]
                                let target = idx.[mode]
                                let mutable s = 0.0

                                for j in 0 .. kp - 1 do
                                    idx.[mode] <- j
                                    let src = ((idx.[0] * dims.[1] + idx.[1]) * dims.[2] + idx.[2]) * dims.[3] + idx.[3]
                                    s <- s + cm.[target, j] * cur.[src]

                                next.[((i0 * outDims.[1] + i1) * outDims.[2] + i2) * outDims.[3] + i3] <- s

                cur <- next
                dims <- outDims

            for idx in 0 .. t4.Length - 1 do
                t4.[idx] <- t4.[idx] + cur.[idx]

            for a in 0 .. r - 1 do
                for b in 0 .. r - 1 do
                    let mutable s = 0.0

                    for i in 0 .. kp - 1 do
                        for j in 0 .. kp - 1 do
                            s <- s + cm.[a, i] * cm.[b, j] * (sym2 f2 i j - delta i j * f2s)

                    t2.[a * r + b] <- t2.[a * r + b] + s

        {
            Tensors =
                {
                    Basis = Array2D.init d r (fun t a -> uBasis.[a].[t])
                    T4 = t4
                    T2 = t2
                    C = cf.C
                    CPrime = cf.CPrime
                }
            GateMasses = masses
            Coefficients = cf
        }

    /// <summary>Theorem 5's polynomial form of the population L4, for gating orthogonal to the regressors:
    /// Σ_m α_m Σ_{i≠j} &lt;a*_m,a_i&gt;²&lt;a*_m,a_j&gt;² − μ Σ_{m,i} α_m &lt;a*_m,a_i&gt;⁴ + λ Σ_i (Σ_m α_m &lt;a*_m,a_i&gt;² − 1)²
    /// + (ridge/2)‖A‖², with α_m = E[p*_m].</summary>
    /// <param name="truthRegressors">A* (k×d).</param>
    /// <param name="gateMasses">α_m = E[p*_m(x)].</param>
    /// <param name="weights">μ, λ, ridge.</param>
    /// <param name="regressors">A.</param>
    /// <returns>The value.</returns>
    [<CompiledName("Theorem5")>]
    let theorem5 (truthRegressors: float[,]) (gateMasses: float[]) (weights: L4Weights) (regressors: float[,]) : float =
        L4Weights.validate weights
        let k, d = truthRegressors.GetLength 0, truthRegressors.GetLength 1

        if gateMasses.Length <> k then
            invalidArg
                "gateMasses"
                (Text.format
                    "gateMasses has %d entries but the truth has k = %d experts."
                    [| box gateMasses.Length; box k |])

        if regressors.GetLength 1 <> d then
            invalidArg
                "regressors"
                (Text.format
                    "regressors has %d columns but the truth has d = %d."
                    [| box (regressors.GetLength 1); box d |])

        let ka = regressors.GetLength 0

        let ip =
            Array2D.init k ka (fun m i ->
                Seq.sum (seq { for t in 0 .. d - 1 -> truthRegressors.[m, t] * regressors.[i, t] }))

        let mutable v = 0.0

        for m in 0 .. k - 1 do
            for i in 0 .. ka - 1 do
                v <- v - weights.Mu * gateMasses.[m] * pown ip.[m, i] 4

                for j in 0 .. ka - 1 do
                    if i <> j then
                        v <- v + gateMasses.[m] * ip.[m, i] * ip.[m, i] * ip.[m, j] * ip.[m, j]

        for i in 0 .. ka - 1 do
            let s =
                Seq.sum (seq { for m in 0 .. k - 1 -> gateMasses.[m] * ip.[m, i] * ip.[m, i] })

            v <- v + weights.Lambda * (s - 1.0) * (s - 1.0)

        v
        + 0.5 * weights.Ridge * (Seq.cast<float> regressors |> Seq.sumBy (fun t -> t * t))
