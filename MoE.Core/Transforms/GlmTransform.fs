namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra

/// <summary>The output transform of the spectral start for a GLM family (docs/math.md §12.6): S(y) with
/// F(η) = E[S(y) | η] satisfying E[F(sZ + b)·He_q(Z)] = 0 for q = 0, 1, 2 where the family allows it, and c₃ =
/// E[F(sZ + b)·He_3(Z)].</summary>
type GlmThirdOrder =
    {
        /// The family it is derived for (Poisson, Bernoulli or binomial).
        Family: ExpertFamily
        /// The common scale s of the experts' linear predictors the derivation assumes: η = s⟨â, u⟩ + b, ‖â‖ = 1.
        Scale: float
        /// The common intercept b.
        Intercept: float
        /// Poisson: the points t_j of the generating-function basis t_j^y; empty for the logit families.
        Points: float[]
        /// Poisson: one coefficient per point; empty for the logit families.
        Coefficients: float[]
        /// The logit families' centre E[h(sZ + b)], subtracted from the share y/n; 0 for Poisson.
        Centre: float
        /// c₃ = E[F(sZ + b)·He_3(Z)]: 1 for Poisson (the transform is normalised), E[h(sZ + b)·He_3(Z)] for the logit
        /// families.
        C3: float
    }

/// <summary>
/// The output transforms of the GLM families' spectral start (docs/math.md §12.6): for the log link a bounded
/// combination of t^y (the generating function, whose conditional mean is exp(−(1 − t)μ)) that meets the conditions
/// E[F(sZ + b)·He_q(Z)] = 0, q &lt; 3, and so cancels the gate's terms in the third-order moment; for the logit link the
/// share y/n, which cannot (two constants for three conditions) and is exact under a constant gate; and the common scale
/// and intercept the derivation assumes, from the responses' moments.
/// </summary>
[<RequireQualifiedAccess>]
module GlmTransform =

    /// The points t_j of Poisson's generating-function basis t_j^y (t = 0 is the indicator of y = 0, t = 1 the
    /// constant).
    let private points = [| 0.0; 0.2; 0.4; 0.6; 0.8; 1.0 |]

    /// <summary>Whether the family has a spectral start here (Poisson, Bernoulli, binomial).</summary>
    /// <param name="family">The family.</param>
    [<CompiledName("Applies")>]
    let applies (family: ExpertFamily) : bool =
        match family with
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> true
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> false

    /// The logit families' mean h(η) (the deterministic logistic of the likelihood).
    let private logistic (eta: float) = Bernoulli.mean eta

    /// <summary>F(η) = E[S(y) | η] for one row of an expert with linear predictor η (and, for the binomial, any
    /// number of trials: S is the share y/n).</summary>
    /// <param name="transform">The transform.</param>
    /// <param name="eta">The linear predictor.</param>
    [<CompiledName("ConditionalMean")>]
    let conditionalMean (transform: GlmThirdOrder) (eta: float) : float =
        match transform.Family with
        | ExpertFamily.Poisson ->
            let mu = exp eta
            let mutable s = 0.0

            for j in 0 .. transform.Points.Length - 1 do
                // E[t^y] = exp(−(1 − t)μ); at t = 1 the constant 1 (0·∞ never arises: μ is finite).
                let c = 1.0 - transform.Points.[j]
                s <- s + transform.Coefficients.[j] * (if c = 0.0 then 1.0 else exp (-c * mu))

            s
        | _ -> logistic eta - transform.Centre

    /// <summary>S(y) for one row.</summary>
    /// <param name="transform">The transform.</param>
    /// <param name="y">The response (a count, a 0/1 outcome or a number of successes).</param>
    /// <param name="trials">The row's trials (binomial; 1 otherwise).</param>
    [<CompiledName("Value")>]
    let value (transform: GlmThirdOrder) (y: float) (trials: float) : float =
        match transform.Family with
        | ExpertFamily.Poisson ->
            let mutable s = 0.0

            for j in 0 .. transform.Points.Length - 1 do
                // Math.Pow(0, 0) = 1 and Math.Pow(0, y > 0) = 0: t = 0 is the indicator of y = 0.
                s <- s + transform.Coefficients.[j] * Math.Pow(transform.Points.[j], y)

            s
        | _ -> y / trials - transform.Centre

    /// <summary>Derives the transform for a common scale s and intercept b (docs/math.md §12.6).</summary>
    /// <param name="family">Poisson, Bernoulli or binomial.</param>
    /// <param name="scale">s &gt; 0.</param>
    /// <param name="intercept">b.</param>
    /// <returns>The transform, or why there is none (c₃ vanishes, the system is singular).</returns>
    [<CompiledName("Derive")>]
    let derive (family: ExpertFamily) (scale: float) (intercept: float) : Result<GlmThirdOrder, string> =
        if not (applies family) then
            invalidArg "family" (Text.format "%s experts have no GLM spectral transform." [| box family.Name |])

        Guard.positive "scale" scale
        Guard.finite "intercept" intercept
        // Analytic integrands (no kinks): panels of width 1 with 20 Gauss–Legendre points are exact to rounding.
        let rule = Quadrature.accurate [||]
        let eta z = scale * z + intercept

        match family with
        | ExpertFamily.Poisson ->
            // Minimise E[S(y)² He_3(Z)²] (a proxy for the variance of the tensor's entries) subject to
            // E[F He_q] = 0 (q = 0, 1, 2) and E[F He_3] = 1: the KKT system [2G Cᵀ; C 0][β; λ] = [0; e₄].
            let j = points.Length

            let f (i: int) (z: float) =
                let c = 1.0 - points.[i]
                if c = 0.0 then 1.0 else exp (-c * exp (eta z))

            let constraints =
                Matrix<float>
                    .Build.Dense(4, j, fun q i -> Quadrature.expect rule (fun z -> f i z * Quadrature.hermite q z))

            // E[t_i^y t_j^y | η] = exp(−(1 − t_i t_j)μ).
            let gram =
                Matrix<float>
                    .Build.Dense(
                        j,
                        j,
                        fun a b ->
                            let c = 1.0 - points.[a] * points.[b]

                            Quadrature.expect rule (fun z ->
                                let h3 = Quadrature.hermite 3 z
                                (if c = 0.0 then 1.0 else exp (-c * exp (eta z))) * h3 * h3)
                    )

            let kkt = Matrix<float>.Build.Dense(j + 4, j + 4)
            kkt.SetSubMatrix(0, 0, 2.0 * gram)
            kkt.SetSubMatrix(j, 0, constraints)
            kkt.SetSubMatrix(0, j, constraints.Transpose())
            let rhs = Vector<float>.Build.Dense(j + 4)
            rhs.[j + 3] <- 1.0
            let solution = kkt.Solve rhs
            let beta = solution.SubVector(0, j)
            let residual = (constraints * beta - rhs.SubVector(j, 4)).InfinityNorm()

            if not (beta.ToArray() |> Array.forall Double.IsFinite) || residual > 1e-6 then
                Error(
                    Text.format
                        "the Poisson transform's conditions cannot be met at s = %.3g, b = %.3g (residual %.2g): the counts are too small or too large for a transform of their generating function"
                        [| box scale; box intercept; box residual |]
                )
            else
                Ok
                    {
                        Family = family
                        Scale = scale
                        Intercept = intercept
                        Points = Array.copy points
                        Coefficients = beta.ToArray()
                        Centre = 0.0
                        C3 = 1.0
                    }
        | _ ->
            let centre = Quadrature.expect rule (fun z -> logistic (eta z))
            let c3 = Quadrature.expect rule (fun z -> logistic (eta z) * Quadrature.hermite 3 z)

            if abs c3 < 1e-4 then
                Error(
                    Text.format
                        "c3 = E[h(sZ + b) He_3(Z)] vanishes at s = %.3g, b = %.3g: the outcomes' share (%.3g) is too extreme for a third-order moment"
                        [| box scale; box intercept; box centre |]
                )
            else
                Ok
                    {
                        Family = family
                        Scale = scale
                        Intercept = intercept
                        Points = [||]
                        Coefficients = [||]
                        Centre = centre
                        C3 = c3
                    }

    /// <summary>The common scale s and intercept b the derivation assumes, from the responses' moments (docs/math.md
    /// §12.6): Poisson from the first two factorial moments, E[y] = e^{b + s²/2} and E[y(y − 1)] = e^{2b + 2s²};
    /// the logit families at s = 1 (a share does not identify s) with b solving E[h(Z + b)] = the mean share.</summary>
    /// <param name="family">Poisson, Bernoulli or binomial.</param>
    /// <param name="meanShare">The weighted mean of y (Poisson) or of y/n (logit families).</param>
    /// <param name="meanFactorial">The weighted mean of y(y − 1) (Poisson; ignored otherwise).</param>
    /// <returns>(s, b), or why the data give none.</returns>
    [<CompiledName("CommonPredictor")>]
    let commonPredictor
        (family: ExpertFamily)
        (meanShare: float)
        (meanFactorial: float)
        : Result<float * float, string> =
        match family with
        | ExpertFamily.Poisson ->
            if not (meanShare > 0.0) then
                Error "every count is zero"
            else
                let s2 = log (meanFactorial / (meanShare * meanShare))

                // e^{s²} is the counts' excess dispersion over Poisson noise; at s² < 0.01 the linear predictors vary
                // too little to carry a third-order moment.
                if not (s2 >= 0.01) then
                    Error(
                        Text.format
                            "the counts vary hardly beyond Poisson noise (E[y(y-1)]/E[y]^2 = %.4g): nothing for the third-order moment to decompose"
                            [| box (meanFactorial / (meanShare * meanShare)) |]
                    )
                else
                    let s = sqrt (min s2 25.0)
                    Ok(s, log meanShare - 0.5 * s * s)
        | _ ->
            if not (meanShare > 0.0 && meanShare < 1.0) then
                Error "every outcome is the same"
            else
                let rule = Quadrature.accurate [||]

                let share b =
                    Quadrature.expect rule (fun z -> logistic (z + b))
                // E[h(Z + b)] increases in b: bisection on [−30, 30].
                let mutable lo, hi = -30.0, 30.0

                for _ in 1..100 do
                    let mid = 0.5 * (lo + hi)

                    if share mid < meanShare then lo <- mid else hi <- mid

                Ok(1.0, 0.5 * (lo + hi))
