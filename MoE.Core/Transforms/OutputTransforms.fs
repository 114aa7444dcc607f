namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra

/// <summary>The output transforms the L4 stage applies to y, with the scales of the tensors they produce:
/// E[Q4(y)·S4(x)] = C·Σ_m E[p_m] a_m^{⊗4} and E[Q2(y)·S2(x)] = CPrime·Σ_m E[p_m] a_m^{⊗2} under the theory's
/// assumptions.</summary>
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
    }

/// <summary>
/// Output transforms for the L4 stage: the paper's polynomial Q4, Q2 (centred), or the variance-reduced bounded
/// transforms of docs/math.md §2.3, Q4b(y) = Σ_{j≤6} b_j y^j e^{−y²/(2τ²)} and Q2b(y) = Σ_{j≤4} b'_j y^j e^{−y²/(2τ²)}, τ = 1.
/// </summary>
/// <remarks>
/// The bounded coefficients satisfy the same moment conditions as the polynomial ones — E[Q4b(Y)He_m(Z)] = 0 for
/// m = 0..3 and E[Q4b(Y)He_4(Z)] = 1 (so c = 1); E[Q2b(Y)He_m(Z)] = 0 for m = 0, 1 and E[Q2b(Y)He_2(Z)] = 1 — and
/// minimise E[Q4b(Y)²He_4(Z)²] (resp. E[Q2b(Y)²He_2(Z)²]), a proxy for the variance of the tensor estimates.
/// That is an equality-constrained quadratic programme, solved by its KKT system. Expectations are over
/// Y = g(Z) + σξ by quadrature: the panel rule over Z (split at 0) times 40-point Gauss–Hermite over ξ.
/// Lemma 1 holds for them because only E[Q(Y) | Z] enters and S4 has degree 4 in each direction.
/// </remarks>
[<RequireQualifiedAccess>]
module OutputTransforms =

    /// <summary>The paper's Q4, Q2, centred by their unit-expert means, with c and c'.</summary>
    /// <param name="coefficients">The coefficients for the data's g and σ.</param>
    /// <returns>Q4 − E[Q4], Q2 − E[Q2], c and c'.</returns>
    [<CompiledName("Polynomial")>]
    let polynomial (coefficients: TransformCoefficients) : OutputTransform =
        {
            Name = "polynomial"
            Q4 = Transforms.q4Centred coefficients
            Q2 = Transforms.q2Centred coefficients
            C = coefficients.C
            CPrime = coefficients.CPrime
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

        let d4, d2 = 6, 4
        let c4 = Array2D.zeroCreate 5 (d4 + 1)
        let g4 = Array2D.zeroCreate (d4 + 1) (d4 + 1)
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

                for j in 0..d2 do
                    for m in 0..2 do
                        c2.[m, j] <- c2.[m, j] + w * phi.[j] * he.[m]

                    for l in 0..d2 do
                        g2.[j, l] <- g2.[j, l] + w * phi.[j] * phi.[l] * he.[2] * he.[2]

        let b4 = solveKkt g4 c4 [| 0.0; 0.0; 0.0; 0.0; 1.0 |]
        let b2 = solveKkt g2 c2 [| 0.0; 0.0; 1.0 |]

        if Array.exists (fun v -> not (Double.IsFinite v)) (Array.append b4 b2) then
            invalidArg
                "activation"
                (sprintf "No bounded transform satisfies the moment conditions for activation %s." activation.Name)

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
        }
