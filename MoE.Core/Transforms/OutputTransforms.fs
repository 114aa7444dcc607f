namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra

/// <summary>The output transforms the moment estimators apply to y, with the scales of the tensors they produce:
/// E[Q4(y)·S4(x)] = C·Σ_m E[p_m] a_m^{⊗4}, E[Q3(y)·S3(x)] = C3·Σ_m E[p_m] a_m^{⊗3} and
/// E[Q2(y)·S2(x)] = CPrime·Σ_m E[p_m] a_m^{⊗2} under the theory's assumptions (docs/math.md §2, §3).</summary>
type OutputTransform =
    {
        /// "polynomial" (the paper's Q4/Q2, centred) or "bounded" (docs/math.md §2.3).
        Name: string
        /// The fourth-order output transform.
        Q4: float -> float
        /// The second-order output transform.
        Q2: float -> float
        /// Its fourth-order scale c.
        C: float
        /// Its second-order scale c'.
        CPrime: float
        /// The spectral method's third-order transform S3 (docs/math.md §2.4) and its scale c₃, or why g has none.
        Third: Result<ThirdOrderTransform, string>
        /// How to build the transform again — its kind, g and σ — when it was derived from them
        /// (<c>polynomialFor</c>, <c>bounded</c>): what a request to a shard's worker sends instead of the functions.
        Origin: (string * Activation * float) option
    }

/// <summary>The third-order transform of the spectral method and the scale of its tensor.</summary>
and ThirdOrderTransform =
    {
        /// S3(y), with E[S3(Y)·He_q(Z)] = 0 for q = 0, 1, 2.
        Q3: float -> float
        /// c₃ = E[S3(Y)·He_3(Z)] ≠ 0.
        C3: float
    }

/// <summary>
/// Output transforms for the L4 stage: the paper's polynomial Q4, Q2 (centred), or the variance-reduced bounded
/// transforms of docs/math.md §2.3, Q4b(y) = Σ_{j≤6} b_j y^j e^{−y²/(2τ²)}, Q3b(y) = Σ_{j≤5} b''_j y^j e^{−y²/(2τ²)} and
/// Q2b(y) = Σ_{j≤4} b'_j y^j e^{−y²/(2τ²)}, τ = 1.
/// </summary>
/// <remarks>
/// The bounded coefficients satisfy the same moment conditions as the polynomial ones — E[Q4b(Y)He_m(Z)] = 0 for
/// m = 0..3 and E[Q4b(Y)He_4(Z)] = 1 (so c = 1); E[Q3b(Y)He_m(Z)] = 0 for m = 0..2 and E[Q3b(Y)He_3(Z)] = 1;
/// E[Q2b(Y)He_m(Z)] = 0 for m = 0, 1 and E[Q2b(Y)He_2(Z)] = 1 — and minimise E[Q4b(Y)²He_4(Z)²] (resp. He_3², He_2²),
/// a proxy for the variance of the tensor estimates.
/// That is an equality-constrained quadratic programme, solved by its KKT system. Expectations are over
/// Y = g(Z) + σξ by quadrature: the panel rule over Z (split at 0) times 40-point Gauss–Hermite over ξ.
/// Lemma 1 holds for them because only E[Q(Y) | Z] enters and S4 has degree 4 in each direction.
/// </remarks>
[<RequireQualifiedAccess>]
module OutputTransforms =

    /// <summary>The paper's Q4, Q2, centred by their unit-expert means, with c and c', and the spectral method's
    /// S3 (mean zero by construction) with c₃, or why the activation has none.</summary>
    /// <param name="coefficients">The Q4/Q2 coefficients for the data's g and σ.</param>
    /// <param name="third">The S3 coefficients for the same g and σ, or why they do not exist.</param>
    /// <returns>Q4 − E[Q4], Q2 − E[Q2], S3, c, c' and c₃.</returns>
    [<CompiledName("Polynomial")>]
    let polynomial
        (coefficients: TransformCoefficients)
        (third: Result<ThirdOrderCoefficients, string>)
        : OutputTransform =
        {
            Name = "polynomial"
            Q4 = Transforms.q4Centred coefficients
            Q2 = Transforms.q2Centred coefficients
            C = coefficients.C
            CPrime = coefficients.CPrime
            Third =
                third
                |> Result.map (fun t ->
                    {
                        Q3 = fun y -> y * (t.Beta + y * (t.Alpha + y)) + t.Gamma
                        C3 = t.C3
                    })
            Origin = None
        }

    /// <summary>The polynomial transforms for an activation and noise level (both coefficient systems solved; an
    /// activation without a valid S3 gets an <c>Error</c> in <c>Third</c>, not an exception).</summary>
    /// <param name="activation">g.</param>
    /// <param name="sigma">σ ≥ 0.</param>
    /// <returns>The transforms.</returns>
    /// <exception cref="T:System.ArgumentException">g is not valid for Q4/Q2 (see <c>Coefficients.solve</c>).</exception>
    [<CompiledName("PolynomialFor")>]
    let polynomialFor (activation: Activation) (sigma: float) : OutputTransform =
        let third =
            try
                Ok(Coefficients.solveThird activation sigma)
            with :? ArgumentException as e ->
                Error e.Message

        { polynomial (Coefficients.solve activation sigma) third with
            Origin = Some("polynomial", activation, sigma)
        }

    let private tau = 1.0

    let private basis (degree: int) (y: float) (into: float[]) =
        let e = exp (-y * y / (2.0 * tau * tau))
        let mutable p = e

        for j in 0..degree do
            into.[j] <- p
            p <- p * y

    /// Minimise bᵀGb subject to Cb = e by the KKT system [2G Cᵀ; C 0][b; ν] = [0; e].
    let private solveKkt (g: float[,]) (c: float[,]) (target: float[]) =
        let nb, nc = g.GetLength 0, c.GetLength 0

        let kkt =
            Matrix<float>
                .Build.Dense(
                    nb + nc,
                    nb + nc,
                    fun i j ->
                        if i < nb && j < nb then 2.0 * g.[i, j]
                        elif i < nb then c.[j - nb, i]
                        elif j < nb then c.[i - nb, j]
                        else 0.0
                )

        let rhs =
            Vector<float>.Build.Dense(nb + nc, fun i -> if i < nb then 0.0 else target.[i - nb])

        let solution = kkt.Solve(rhs)
        Array.init nb (fun i -> solution.[i])

    /// <summary>The bounded transforms for an activation and noise level.</summary>
    /// <param name="activation">g (kinks assumed at 0 for the quadrature).</param>
    /// <param name="sigma">σ ≥ 0.</param>
    /// <returns>The transform pair with C = C' = 1.</returns>
    /// <exception cref="T:System.ArgumentException">The constraints cannot be met (g is not valid).</exception>
    [<CompiledName("Bounded")>]
    let bounded (activation: Activation) (sigma: float) : OutputTransform =
        Activation.validate activation
        Guard.nonNegative "sigma" sigma
        let zRule = Quadrature.accurate [| 0.0 |]

        let xiRule =
            if sigma = 0.0 then
                {
                    Nodes = [| 0.0 |]
                    Weights = [| 1.0 |]
                }
            else
                Quadrature.gaussHermite 40

        let d4, d3, d2 = 6, 5, 4
        let c4 = Array2D.zeroCreate 5 (d4 + 1)
        let g4 = Array2D.zeroCreate (d4 + 1) (d4 + 1)
        let c3 = Array2D.zeroCreate 4 (d3 + 1)
        let g3 = Array2D.zeroCreate (d3 + 1) (d3 + 1)
        let c2 = Array2D.zeroCreate 3 (d2 + 1)
        let g2 = Array2D.zeroCreate (d2 + 1) (d2 + 1)
        let phi = Array.zeroCreate (d4 + 1)

        for i in 0 .. zRule.Count - 1 do
            let z = zRule.Nodes.[i]
            let gz = activation.Value z
            let he = Array.init 5 (fun m -> Quadrature.hermite m z)

            for q in 0 .. xiRule.Count - 1 do
                let w = zRule.Weights.[i] * xiRule.Weights.[q]
                basis d4 (gz + sigma * xiRule.Nodes.[q]) phi

                for j in 0..d4 do
                    for m in 0..4 do
                        c4.[m, j] <- c4.[m, j] + w * phi.[j] * he.[m]

                    for l in 0..d4 do
                        g4.[j, l] <- g4.[j, l] + w * phi.[j] * phi.[l] * he.[4] * he.[4]

                for j in 0..d3 do
                    for m in 0..3 do
                        c3.[m, j] <- c3.[m, j] + w * phi.[j] * he.[m]

                    for l in 0..d3 do
                        g3.[j, l] <- g3.[j, l] + w * phi.[j] * phi.[l] * he.[3] * he.[3]

                for j in 0..d2 do
                    for m in 0..2 do
                        c2.[m, j] <- c2.[m, j] + w * phi.[j] * he.[m]

                    for l in 0..d2 do
                        g2.[j, l] <- g2.[j, l] + w * phi.[j] * phi.[l] * he.[2] * he.[2]

        let b4 = solveKkt g4 c4 [| 0.0; 0.0; 0.0; 0.0; 1.0 |]
        let b2 = solveKkt g2 c2 [| 0.0; 0.0; 1.0 |]
        let b3 = solveKkt g3 c3 [| 0.0; 0.0; 0.0; 1.0 |]

        if Array.exists (fun v -> not (Double.IsFinite v)) (Array.append b4 b2) then
            invalidArg
                "activation"
                (Text.format
                    "No bounded transform satisfies the moment conditions for activation %s."
                    [| box activation.Name |])

        let eval (b: float[]) (y: float) =
            let e = exp (-y * y / (2.0 * tau * tau))
            let mutable p = 0.0

            for j in b.Length - 1 .. -1 .. 0 do
                p <- p * y + b.[j]

            p * e

        {
            Name = "bounded"
            Q4 = eval b4
            Q2 = eval b2
            C = 1.0
            CPrime = 1.0
            Origin = Some("bounded", activation, sigma)
            Third =
                if Array.forall Double.IsFinite b3 then
                    Ok { Q3 = eval b3; C3 = 1.0 }
                else
                    Error(
                        Text.format
                            "no bounded third-order transform satisfies the moment conditions for %s"
                            [| box activation.Name |]
                    )
        }
