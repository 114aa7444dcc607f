namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra

/// <summary>
/// The output-transform coefficients of Q4(y) = y⁴ + αy³ + βy² + γy and Q2(y) = y² + δy for a non-linearity g
/// and noise σ, with the constants c = E[S4·He4] and c' = E[S2·He2] (paper §3.1, App. B; docs/math.md §2.2).
/// </summary>
/// <remarks>
/// Q4Mean and Q2Mean are E[Q4(Y)] and E[Q2(Y)] for Y = g(Z) + σξ with Z, ξ ~ N(0, 1) independent, i.e. for a
/// unit-norm regressor. Subtracting them ("centring") leaves every population expectation used by L4
/// unchanged (each input transform t has mean zero) and lowers the variance of the empirical loss.
/// </remarks>
type TransformCoefficients =
    {
        /// Coefficient of y³ in Q4.
        Alpha: float
        /// Coefficient of y² in Q4.
        Beta: float
        /// Coefficient of y in Q4.
        Gamma: float
        /// Coefficient of y in Q2.
        Delta: float
        /// c = E[S4(Z)·He4(Z)] ≠ 0, the scale of the fourth-order tensor.
        C: float
        /// c' = E[S2(Z)·He2(Z)] ≠ 0, the scale of the second-order tensor.
        CPrime: float
        /// E[Q4(Y)] for a unit-norm regressor.
        Q4Mean: float
        /// E[Q2(Y)] for a unit-norm regressor.
        Q2Mean: float
        /// The noise level σ the coefficients were solved for.
        Sigma: float
    }

/// <summary>
/// The third-order output transform of the spectral method (docs/math.md §2.4): S3(y) = y³ + αy² + βy + γ with
/// E[f·He_q] = 0 for q = 0, 1, 2 and c₃ = E[f·He_3] ≠ 0, where f(z) = E[S3(Y) | Z = z].
/// </summary>
type ThirdOrderCoefficients =
    {
        /// Coefficient of y² in S3.
        Alpha: float
        /// Coefficient of y in S3.
        Beta: float
        /// The constant of S3.
        Gamma: float
        /// c₃ = E[f·He_3] ≠ 0, the scale of the third-order tensor.
        C3: float
        /// The noise level σ the coefficients were solved for.
        Sigma: float
    }

/// <summary>Solves Conditions 1 and 2 of the paper for any activation (docs/math.md §2.2, with the
/// paper's errata).</summary>
/// <remarks>
/// With m(p,q) = E[g(Z)^p He_q(Z)] and the conditional moments E[Y|Z] = g, E[Y²|Z] = g² + σ², E[Y³|Z] = g³ + 3σ²g,
/// E[Y⁴|Z] = g⁴ + 6σ²g² + 3σ⁴ (the paper's App. B writes σ⁴; E[ξ⁴] = 3), Condition 1 is, for q = 1, 2, 3,
/// α(m(3,q) + 3σ²m(1,q)) + β m(2,q) + γ m(1,q) = −(m(4,q) + 6σ²m(2,q)), and
/// c = m(4,4) + 6σ²m(2,4) + α(m(3,4) + 3σ²m(1,4)) + β m(2,4) + γ m(1,4) ≠ 0.
/// Condition 2: δ = −m(2,1)/m(1,1) (needs E[g'(Z)] = m(1,1) ≠ 0) and c' = m(2,2) + δ m(1,2) ≠ 0.
/// <para>Moments: identity by a 10-point Gauss–Hermite rule (exact for its degree-8 polynomials); ReLU and leaky
/// ReLU in closed form from E[Z^n 1{Z&gt;0}] = ½E|Z|^n, E|Z|^n = (n−1)!!·(√(2/π) if n is odd); every other g
/// by the panel rule split at its kinks (default: 0), which is accurate to rounding for g analytic between
/// kinks. (Never copy the paper's ReLU table: its β column is wrong.)</para>
/// </remarks>
[<RequireQualifiedAccess>]
module Coefficients =

    /// Coefficients of He_q in powers of z, q = 0..4.
    let private hermiteCoefficients =
        [|
            [| 1.0 |]
            [| 0.0; 1.0 |]
            [| -1.0; 0.0; 1.0 |]
            [| 0.0; -3.0; 0.0; 1.0 |]
            [| 3.0; 0.0; -6.0; 0.0; 1.0 |]
        |]

    /// E|Z|^n for Z ~ N(0,1): (n−1)!! times √(2/π) when n is odd.
    let internal absMoment (n: int) =
        let mutable v = 1.0
        let mutable j = n - 1

        while j > 1 do
            v <- v * float j
            j <- j - 2

        if n % 2 = 1 then v * sqrt (2.0 / Math.PI) else v

    /// m(p,q) = E[g(Z)^p He_q(Z)] for p, q = 0..4 as a 5×5 array.
    let internal moments (activation: Activation) (breakpoints: float[]) : float[,] =
        match activation with
        | Relu
        | LeakyRelu _ ->
            let s = activation.Slope

            Array2D.init 5 5 (fun p q ->
                // E[Z^(p+j) 1{Z>0}] = ½E|Z|^(p+j); on Z<0, g^p = s^p Z^p and E[Z^n 1{Z<0}] = (−1)^n ½E|Z|^n.
                let sp = if p = 0 then 1.0 else pown s p

                hermiteCoefficients.[q]
                |> Array.mapi (fun j coef ->
                    let n = p + j
                    let half = 0.5 * absMoment n
                    coef * (half + sp * (if n % 2 = 0 then half else -half)))
                |> Array.sum)
        | _ ->
            let rule =
                match activation with
                | Identity -> Quadrature.gaussHermite 10
                | _ -> Quadrature.accurate breakpoints

            let values = rule.Nodes |> Array.map activation.Value
            let he = Array.init 5 (fun q -> rule.Nodes |> Array.map (Quadrature.hermite q))

            Array2D.init 5 5 (fun p q ->
                let mutable s = 0.0

                for i in 0 .. rule.Count - 1 do
                    s <- s + rule.Weights.[i] * pown values.[i] p * he.[q].[i]

                s)

    /// <summary>The coefficients for an activation and noise level, with the kinks of g named (for custom
    /// activations; <c>solve</c> assumes a kink at 0 only).</summary>
    /// <param name="activation">g.</param>
    /// <param name="sigma">σ ≥ 0.</param>
    /// <param name="breakpoints">Where g has kinks (quadrature panels are cut there); ignored by the closed forms.</param>
    /// <returns>The coefficients.</returns>
    /// <exception cref="T:System.ArgumentException">σ is negative or not finite; or g is not valid: the message
    /// names the failing condition (Condition 1: the 3×3 system is singular or c = 0; Condition 2:
    /// E[g'(Z)] = 0 or c' = 0).</exception>
    [<CompiledName("SolveWithKinks")>]
    let solveWithKinks (activation: Activation) (sigma: float) (breakpoints: float[]) : TransformCoefficients =
        Activation.validate activation
        Guard.nonNegative "sigma" sigma
        Guard.notNull "breakpoints" breakpoints
        let m = moments activation breakpoints

        for p in 0..4 do
            for q in 0..4 do
                if not (Double.IsFinite m.[p, q]) then
                    invalidArg
                        "activation"
                        (Text.format
                            "The moment E[g(Z)^%d He_%d(Z)] of activation %s is not finite; g must grow at most polynomially."
                            [| box p; box q; box activation.Name |])

        let s2 = sigma * sigma
        let scale = max (sqrt m.[2, 0]) 1e-300
        let name = activation.Name

        // Condition 2 first: it is the simpler one and its failure (E[g'] = 0) also breaks Condition 1.
        if abs m.[1, 1] <= 1e-10 * scale then
            invalidArg
                "activation"
                (Text.format
                    "Activation %s is not valid: Condition 2 fails because E[g'(Z)] = E[g(Z)·Z] = %.3g is zero (e.g. g is even), so Q2's coefficient δ = −E[g²Z]/E[gZ] does not exist."
                    [| box name; box m.[1, 1] |])

        let delta = -m.[2, 1] / m.[1, 1]
        let cPrime = m.[2, 2] + delta * m.[1, 2]

        if abs cPrime <= 1e-10 * scale * scale then
            invalidArg
                "activation"
                (Text.format
                    "Activation %s is not valid: Condition 2 fails because c' = E[S2·He2] = %.3g is zero."
                    [| box name; box cPrime |])

        let system =
            Matrix<float>
                .Build.Dense(
                    3,
                    3,
                    fun row col ->
                        let q = row + 1

                        match col with
                        | 0 -> m.[3, q] + 3.0 * s2 * m.[1, q]
                        | 1 -> m.[2, q]
                        | _ -> m.[1, q]
                )

        let rhs =
            Vector<float>.Build.Dense(3, fun row -> -(m.[4, row + 1] + 6.0 * s2 * m.[2, row + 1]))

        let singular = system.Svd(false).S

        if singular.[2] <= 1e-10 * singular.[0] then
            invalidArg
                "activation"
                (Text.format
                    "Activation %s is not valid: Condition 1 fails because its 3x3 system for (alpha, beta, gamma) is singular (singular values %.3g, %.3g, %.3g)."
                    [| box name; box singular.[0]; box singular.[1]; box singular.[2] |])

        let solution = system.Solve(rhs)
        let alpha, beta, gamma = solution.[0], solution.[1], solution.[2]

        let c =
            m.[4, 4]
            + 6.0 * s2 * m.[2, 4]
            + alpha * (m.[3, 4] + 3.0 * s2 * m.[1, 4])
            + beta * m.[2, 4]
            + gamma * m.[1, 4]

        if abs c <= 1e-10 * pown scale 4 then
            invalidArg
                "activation"
                (Text.format
                    "Activation %s is not valid: Condition 1 fails because c = E[S4·He4] = %.3g is zero."
                    [| box name; box c |])

        let ey4 = m.[4, 0] + 6.0 * s2 * m.[2, 0] + 3.0 * s2 * s2
        let ey3 = m.[3, 0] + 3.0 * s2 * m.[1, 0]
        let ey2 = m.[2, 0] + s2
        let ey1 = m.[1, 0]

        {
            Alpha = alpha
            Beta = beta
            Gamma = gamma
            Delta = delta
            C = c
            CPrime = cPrime
            Q4Mean = ey4 + alpha * ey3 + beta * ey2 + gamma * ey1
            Q2Mean = ey2 + delta * ey1
            Sigma = sigma
        }

    /// <summary>The coefficients for an activation and noise level.</summary>
    /// <param name="activation">g.</param>
    /// <param name="sigma">σ ≥ 0.</param>
    /// <returns>The coefficients.</returns>
    /// <exception cref="T:System.ArgumentException">See <c>solveWithKinks</c>.</exception>
    /// <example>
    /// <code lang="fsharp">
    /// let c = Coefficients.solve Relu 0.05
    /// c.Alpha, c.Beta, c.Gamma   // (-5.35248…, 8.11003…, -3.25115…)
    /// c.C, c.CPrime              // (0.50105…, 0.36338…)
    /// </code>
    /// </example>
    [<CompiledName("Solve")>]
    let solve (activation: Activation) (sigma: float) : TransformCoefficients =
        solveWithKinks activation sigma [| 0.0 |]

    /// <summary>The spectral method's S3 coefficients for an activation and noise level, with the kinks of g named
    /// (docs/math.md §2.4). With f = E[S3(Y) | Z] = g³ + 3σ²g + α(g² + σ²) + βg + γ, the conditions
    /// E[f·He_q] = 0 (q = 0, 1, 2) are the linear system α(m(2,q) + σ²m(0,q)) + β m(1,q) + γ m(0,q) =
    /// −(m(3,q) + 3σ²m(1,q)), and c₃ = m(3,3) + 3σ²m(1,3) + α m(2,3) + β m(1,3).</summary>
    /// <param name="activation">g.</param>
    /// <param name="sigma">σ ≥ 0.</param>
    /// <param name="breakpoints">Where g has kinks (for the quadrature of a custom g).</param>
    /// <returns>The coefficients.</returns>
    /// <exception cref="T:System.ArgumentException">σ is negative or not finite, or g is not valid for the spectral
    /// method: the 3×3 system is singular or c₃ = 0 (the message says which).</exception>
    [<CompiledName("SolveThirdWithKinks")>]
    let solveThirdWithKinks (activation: Activation) (sigma: float) (breakpoints: float[]) : ThirdOrderCoefficients =
        Activation.validate activation
        Guard.nonNegative "sigma" sigma
        Guard.notNull "breakpoints" breakpoints
        let m = moments activation breakpoints
        let s2 = sigma * sigma
        let scale = max (sqrt m.[2, 0]) 1e-300
        let name = activation.Name

        let system =
            Matrix<float>
                .Build.Dense(
                    3,
                    3,
                    fun q col ->
                        match col with
                        | 0 -> m.[2, q] + s2 * m.[0, q]
                        | 1 -> m.[1, q]
                        | _ -> m.[0, q]
                )

        let rhs = Vector<float>.Build.Dense(3, fun q -> -(m.[3, q] + 3.0 * s2 * m.[1, q]))

        let singular = system.Svd(false).S

        if singular.[2] <= 1e-10 * singular.[0] then
            invalidArg
                "activation"
                (Text.format
                    "Activation %s is not valid for the spectral method: the 3x3 system for S3's coefficients is singular (singular values %.3g, %.3g, %.3g)."
                    [| box name; box singular.[0]; box singular.[1]; box singular.[2] |])

        let solution = system.Solve(rhs)
        let alpha, beta, gamma = solution.[0], solution.[1], solution.[2]

        let c3 =
            m.[3, 3]
            + 3.0 * s2 * m.[1, 3]
            + alpha * (m.[2, 3] + s2 * m.[0, 3])
            + beta * m.[1, 3]
            + gamma * m.[0, 3]

        if abs c3 <= 1e-10 * pown scale 3 then
            invalidArg
                "activation"
                (Text.format
                    "Activation %s is not valid for the spectral method: c3 = E[f·He3] = %.3g is zero (g has no third-order Hermite component)."
                    [| box name; box c3 |])

        {
            Alpha = alpha
            Beta = beta
            Gamma = gamma
            C3 = c3
            Sigma = sigma
        }

    /// <summary>The spectral method's S3 coefficients (kinks at 0 only).</summary>
    /// <param name="activation">g.</param>
    /// <param name="sigma">σ ≥ 0.</param>
    /// <returns>The coefficients.</returns>
    /// <exception cref="T:System.ArgumentException">See <c>solveThirdWithKinks</c>.</exception>
    [<CompiledName("SolveThird")>]
    let solveThird (activation: Activation) (sigma: float) : ThirdOrderCoefficients =
        solveThirdWithKinks activation sigma [| 0.0 |]
