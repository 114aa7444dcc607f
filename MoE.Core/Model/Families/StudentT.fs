namespace MoE.Core

open System

/// <summary>
/// Student-t experts (docs/math.md §14): y = η_i + σ_i·ε with ε ~ t(ν_i), the identity's linear predictor
/// η_i = ⟨a_i, x⟩ + b_i, a scale σ_i &gt; 0 and degrees of freedom ν_i per expert. For ν → ∞ the expert is the Gaussian
/// one; for small ν a few gross outliers barely move its line, which is why it is here (robust mixtures of
/// regressions, Peel &amp; McLachlan 2000).
/// </summary>
/// <remarks>
/// <para>With e = y − η, b = νσ² and the density's constant c = log Γ((ν+1)/2) − log Γ(ν/2) − ½ log(πνσ²),
/// log f = c − ((ν+1)/2)·log(1 + e²/b). Its derivatives use one weight per row, w = (ν+1)/(b + e²) = u/σ², where
/// u = (ν+1)/(ν + e²/σ²) is the E-step's expected precision of the row's latent scale: ∂log f/∂η = w·e and
/// ∂log f/∂log σ = w·e² − 1 — the Gaussian's with 1/σ² replaced by w.</para>
/// <para>EM (ECM, Liu &amp; Rubin 1995): the M-step of (a_i, b_i) is weighted least squares with row weights r·u
/// (∝ r·w: one constant per expert, which the solution does not see); σ_i² = Σ r·u·e²/Σ r = σ_i²_old·Σ r·w·e²/Σ r; ν_i
/// then solves log(ν/2) − ψ(ν/2) + 1 + ψ((ν_old+1)/2) − log((ν_old+1)/2) + Σ r(log u − u)/Σ r = 0, whose left side
/// falls strictly from +∞ to a negative limit, so bisection on log ν finds its one root. The family's sums per expert
/// are [Σ r·w·e², Σ r·w·t², Σ r·log w, Σ r·w]: log u − u = log w + log σ² − σ²·w.</para>
/// <para>Guards: ν is kept in [1, 200]. Below 1 the experts' means do not exist (the mixture's mean prediction would
/// not); above 200 the expert is the Gaussian one to within 1 % in every quantile the toolkit reports, and the
/// likelihood is flat in ν there, so an estimate at the cap reads "Gaussian" (docs/math.md §14.3).</para>
/// <para>The lanes take three constants per expert (<c>constants</c>): c, b = νσ² and ν + 1.</para>
/// </remarks>
[<RequireQualifiedAccess>]
module internal StudentT =

    /// The name in files and on the command line.
    [<Literal>]
    let Name = "student-t"

    /// The degrees of freedom every start begins with when ν is estimated: heavy enough tails that an outlier does not
    /// pull a start's line, light enough that the first E-step's weights are not all small.
    [<Literal>]
    let StartDegreesOfFreedom = 4.0

    /// The smallest ν the fit returns (docs/math.md §14.3).
    [<Literal>]
    let MinDegreesOfFreedom = 1.0

    /// The largest ν the fit returns (docs/math.md §14.3): the Gaussian limit.
    [<Literal>]
    let MaxDegreesOfFreedom = 200.0

    // ---- The log-density and its derivatives ----

    /// Per expert: c = log Γ((ν+1)/2) − log Γ(ν/2) − ½ log(πνσ²), b = νσ², and ν + 1.
    let constants (sigmas: float[]) (dof: float[]) : float[] * float[] * float[] =
        Array.init sigmas.Length (fun i ->
            let nu, s = dof.[i], sigmas.[i]

            MathNet.Numerics.SpecialFunctions.GammaLn((nu + 1.0) / 2.0)
            - MathNet.Numerics.SpecialFunctions.GammaLn(nu / 2.0)
            - 0.5 * Math.Log(Math.PI * nu * s * s)),
        Array.init sigmas.Length (fun i -> dof.[i] * sigmas.[i] * sigmas.[i]),
        Array.init sigmas.Length (fun i -> dof.[i] + 1.0)

    /// log f(y | η) from the residual e: c − ((ν+1)/2)·log(1 + e²/b).
    let inline logDensity (c: float) (b: float) (nuPlus1: float) (e: float) =
        c - 0.5 * nuPlus1 * DetMath.log (1.0 + e * e / b)

    /// The row weight w = (ν+1)/(b + e²) = u/σ².
    let inline weight (b: float) (nuPlus1: float) (e: float) = nuPlus1 / (b + e * e)

    /// log f for a block's rows into <c>out</c> at <c>oo</c>, from the residuals at <c>eo</c>.
    let logDensityLanes
        (e: float[])
        (eo: int)
        (c: float)
        (b: float)
        (nuPlus1: float)
        (out: float[])
        (oo: int)
        (rows: int)
        =
        for r in 0 .. rows - 1 do
            out.[oo + r] <- logDensity c b nuPlus1 e.[eo + r]

    /// The score of a block for one expert: the weight of ∂LL/∂η per row, r·w·e, into <c>weights</c>, and r·w·e² into
    /// <c>squares</c>, whose sum gives ∂LL/∂log σ (<c>scaleScore</c>).
    let scoreLanes
        (post: float[])
        (po: int)
        (e: float[])
        (eo: int)
        (b: float)
        (nuPlus1: float)
        (weights: float[])
        (squares: float[])
        (rows: int)
        =
        for r in 0 .. rows - 1 do
            let er = e.[eo + r]
            let rw = post.[po + r] * weight b nuPlus1 er
            weights.[r] <- rw * er
            squares.[r] <- rw * er * er

    /// ∂LL/∂log σ of a block: Σ r(w·e² − 1).
    let inline scaleScore (sumSquares: float) (sumPost: float) = sumSquares - sumPost

    /// The expected (Fisher) information's weight of η per row: r·(ν+1)/((ν+3)σ²) = r·(ν+1)ν/((ν+3)·b).
    let curvatureLanes (post: float[]) (po: int) (b: float) (nuPlus1: float) (weights: float[]) (rows: int) =
        let nu = nuPlus1 - 1.0
        let factor = nuPlus1 * nu / ((nu + 3.0) * b)

        for r in 0 .. rows - 1 do
            weights.[r] <- post.[po + r] * factor

    /// The expected information of log σ from a block's Σ r: 2ν/(ν+3)·Σ r.
    let inline scaleCurvature (sumPost: float) (nuPlus1: float) =
        let nu = nuPlus1 - 1.0
        2.0 * nu / (nu + 3.0) * sumPost

    /// ∂LL/∂ν of a block for one expert: with ∂log f/∂ν = ½[ψ((ν+1)/2) − ψ(ν/2) − 1/ν − log(1 + e²/b) + w·e²/ν]
    /// (differentiating c and the power), Σ r·∂log f/∂ν = ½[(ψ((ν+1)/2) − ψ(ν/2) − 1/ν)·Σ r + Σ r(w·e²/ν − log(1 + e²/b))].
    let shapeScore (post: float[]) (po: int) (e: float[]) (eo: int) (b: float) (nuPlus1: float) (rows: int) =
        let nu = nuPlus1 - 1.0
        let mutable sumPost = 0.0
        let mutable sum = 0.0

        for r in 0 .. rows - 1 do
            let er = e.[eo + r]
            let pr = post.[po + r]
            sumPost <- sumPost + pr

            sum <-
                sum
                + pr * (weight b nuPlus1 er * er * er / nu - DetMath.log (1.0 + er * er / b))

        let constant =
            MathNet.Numerics.SpecialFunctions.DiGamma(nuPlus1 / 2.0)
            - MathNet.Numerics.SpecialFunctions.DiGamma(nu / 2.0)
            - 1.0 / nu

        0.5 * (constant * sumPost + sum)

    /// ψ'(x) for x &gt; 0: the recurrence ψ'(x) = ψ'(x + 1) + 1/x² up to x ≥ 6, then the asymptotic series
    /// 1/x + 1/(2x²) + 1/(6x³) − 1/(30x⁵) + 1/(42x⁷) − 1/(30x⁹) (its next term is below 1e-9 at x = 6).
    let trigamma (x: float) =
        let mutable x = x
        let mutable sum = 0.0

        while x < 6.0 do
            sum <- sum + 1.0 / (x * x)
            x <- x + 1.0

        let z = 1.0 / (x * x)

        sum
        + 1.0 / x
        + z / 2.0
        + z / x * (1.0 / 6.0 - z * (1.0 / 30.0 - z * (1.0 / 42.0 - z / 30.0)))

    /// The expected information of ν per unit of posterior weight: ¼[ψ'(ν/2) − ψ'((ν+1)/2)] − (ν+5)/(2ν(ν+1)(ν+3))
    /// (Lange, Little &amp; Taylor 1989), positive for every ν &gt; 0.
    let shapeCurvature (nuPlus1: float) =
        let nu = nuPlus1 - 1.0

        0.25 * (trigamma (nu / 2.0) - trigamma (nuPlus1 / 2.0))
        - (nu + 5.0) / (2.0 * nu * nuPlus1 * (nu + 3.0))

    /// Whether ν_i is inside (1, 200), where it is a variable of the likelihood's direct maximisation and of the
    /// standard errors; at a bound it is held (a parameter on the boundary has no Wald interval).
    let isInterior (nu: float) =
        nu > MinDegreesOfFreedom * (1.0 + 1e-9)
        && nu < MaxDegreesOfFreedom * (1.0 - 1e-9)

    /// The unbounded variable of an interior ν: v = log((ν − 1)/(200 − ν)).
    let toVariable (nu: float) =
        Math.Log((nu - MinDegreesOfFreedom) / (MaxDegreesOfFreedom - nu))

    /// ν = 1 + 199/(1 + e^−v), v clamped to ±40 (ν then within rounding of its bounds).
    let ofVariable (v: float) =
        let v = Math.Clamp(v, -40.0, 40.0)

        MinDegreesOfFreedom
        + (MaxDegreesOfFreedom - MinDegreesOfFreedom) / (1.0 + Math.Exp(-v))

    /// dν/dv = (ν − 1)(200 − ν)/199.
    let variableSlope (nu: float) =
        (nu - MinDegreesOfFreedom) * (MaxDegreesOfFreedom - nu)
        / (MaxDegreesOfFreedom - MinDegreesOfFreedom)

    // ---- EM ----

    /// The family's sums per expert: [Σ r·w·e², Σ r·w·t², Σ r·log w, Σ r·w].
    [<Literal>]
    let EmSums = 4

    /// One expert's EM sums over a block into acc at o..o+3, with t = y (the intercept in the design) or y − b_i;
    /// returns the Gram's row weights r·w (work.[2]) and the right-hand side's r·w·t (work.[3]).
    let emBlock
        (interceptInDesign: bool)
        (intercept: float)
        (post: float[])
        (po: int)
        (e: float[])
        (eo: int)
        (b: float)
        (nuPlus1: float)
        (y: float[])
        (work: float[][])
        (acc: float[])
        (o: int)
        (rows: int)
        : struct (float[] * int * float[]) =
        let wGram, wRhs = work.[2], work.[3]
        let mutable swe2 = 0.0
        let mutable swt2 = 0.0
        let mutable slogw = 0.0
        let mutable sw = 0.0

        for r in 0 .. rows - 1 do
            let er = e.[eo + r]
            let w = weight b nuPlus1 er
            let pr = post.[po + r]
            let t = if interceptInDesign then y.[r] else y.[r] - intercept
            let rw = pr * w
            wGram.[r] <- rw
            wRhs.[r] <- rw * t
            swe2 <- swe2 + rw * er * er
            swt2 <- swt2 + rw * t * t
            slogw <- slogw + pr * DetMath.log w
            sw <- sw + rw

        acc.[o] <- acc.[o] + swe2
        acc.[o + 1] <- acc.[o + 1] + swt2
        acc.[o + 2] <- acc.[o + 2] + slogw
        acc.[o + 3] <- acc.[o + 3] + sw
        struct (wGram, 0, wRhs)

    /// Σ r·w_now·e² of a block for a candidate's residuals <c>e</c>, w from the current model's residuals
    /// <c>eNow</c> and constants: the expert's part of Q (up to its constants and the factor σ²_old/2) that a careful
    /// M-step checks.
    let expectedLossBlock
        (post: float[])
        (po: int)
        (eNow: float[])
        (e: float[])
        (eo: int)
        (b: float)
        (nuPlus1: float)
        (rows: int)
        =
        let mutable s = 0.0

        for r in 0 .. rows - 1 do
            let er = e.[eo + r]
            s <- s + post.[po + r] * weight b nuPlus1 eNow.[eo + r] * er * er

        s

    /// The scales σ_i from the sums (each expert's Σ r·w·e² at the new experts in <c>losses</c>):
    /// σ² = σ²_old·Σ r·w·e²/Σ r, or with the inverse-gamma prior (ν₀, s₀²) (σ²_old·Σ r·w·e² + ν₀s₀²)/(Σ r + ν₀ + 2),
    /// floored; a common σ pools the sums.
    let levels
        (prior: (float * float) option)
        (floor: float)
        (common: bool)
        (losses: float[])
        (weights: float[])
        (n: float)
        (current: float[])
        =
        let sse =
            Array.init current.Length (fun i -> current.[i] * current.[i] * losses.[i])

        Gaussian.levels prior floor common sse weights n current

    /// ν_o := the root of log(ν/2) − ψ(ν/2) + 1 + C = 0 with C = ψ((ν_old+1)/2) − log((ν_old+1)/2) + Σ r(log u − u)/Σ r,
    /// clamped to [1, 200]; an expert with no weight keeps its ν.
    let degreesOfFreedom (sums: float[][]) (weights: float[]) (n: float) (sigmas: float[]) (current: float[]) =
        Array.init current.Length (fun i ->
            let w = weights.[i]

            if not (w > 1e-9 * n) then
                current.[i]
            else
                let s2 = sigmas.[i] * sigmas.[i]
                // Σ r(log u − u)/Σ r with u = σ²w: (Σ r log w + log σ²·Σ r − σ²·Σ r w)/Σ r.
                let meanLogUMinusU = (sums.[i].[2] + Math.Log s2 * w - s2 * sums.[i].[3]) / w
                let half = (current.[i] + 1.0) / 2.0

                let c =
                    1.0 + MathNet.Numerics.SpecialFunctions.DiGamma half - Math.Log half
                    + meanLogUMinusU

                let f (nu: float) =
                    Math.Log(nu / 2.0) - MathNet.Numerics.SpecialFunctions.DiGamma(nu / 2.0) + c

                if f MaxDegreesOfFreedom >= 0.0 then
                    MaxDegreesOfFreedom
                elif f MinDegreesOfFreedom <= 0.0 then
                    MinDegreesOfFreedom
                else
                    // f falls strictly in ν: bisection on log ν to a relative width of 1e-10.
                    let mutable lo = Math.Log MinDegreesOfFreedom
                    let mutable hi = Math.Log MaxDegreesOfFreedom

                    while hi - lo > 1e-10 do
                        let mid = 0.5 * (lo + hi)

                        if f (Math.Exp mid) > 0.0 then lo <- mid else hi <- mid

                    Math.Exp(0.5 * (lo + hi)))

    // ---- Parameters ----

    /// The family's own free parameters: the scales (one, or one per expert) and, when estimated, one ν per expert.
    let parameterCount (experts: int) (commonSigma: bool) (estimateDegreesOfFreedom: bool) =
        Gaussian.parameterCount experts commonSigma
        + (if estimateDegreesOfFreedom then experts else 0)

    /// Checks k degrees of freedom, each finite and &gt; 0.
    let validate (k: int) (sigma: float) (sigmas: float[]) (dof: float[]) =
        Gaussian.validate k sigma sigmas
        Guard.expertVector "degreesOfFreedom" k k dof

        for i in 0 .. k - 1 do
            Guard.positive (Text.format "degreesOfFreedom[%d]" [| box i |]) dof.[i]

    // ---- Sampling and prediction ----

    /// A Gamma(α, 1) draw (Marsaglia &amp; Tsang 2000; α &lt; 1 by Γ(α + 1)·U^(1/α)), from the row's stream.
    let rec gammaDraw (alpha: float) (rng: Xoshiro256StarStar) : float =
        if alpha < 1.0 then
            let g = gammaDraw (alpha + 1.0) rng
            g * Math.Pow(rng.NextDouble(), 1.0 / alpha)
        else
            let d = alpha - 1.0 / 3.0
            let c = 1.0 / sqrt (9.0 * d)
            let mutable result = -1.0

            while result < 0.0 do
                let z = rng.NextGaussian()
                let v = 1.0 + c * z

                if v > 0.0 then
                    let v3 = v * v * v
                    let u = rng.NextDouble()

                    if
                        u < 1.0 - 0.0331 * z * z * z * z
                        || Math.Log u < 0.5 * z * z + d * (1.0 - v3 + Math.Log v3)
                    then
                        result <- d * v3

            result

    /// A response: η + σ·Z/√(W/ν), Z ~ N(0, 1), W ~ χ²_ν = 2·Gamma(ν/2).
    let draw (eta: float) (sigma: float) (nu: float) (rng: Xoshiro256StarStar) =
        let z = rng.NextGaussian()
        let w = 2.0 * gammaDraw (nu / 2.0) rng
        eta + sigma * z / sqrt (w / nu)

    /// P(Y ≤ q) for one expert of location μ, scale σ and ν degrees of freedom.
    let cdf (mean: float) (sigma: float) (nu: float) (q: float) =
        MathNet.Numerics.Distributions.StudentT.CDF(mean, sigma, nu, q)

    /// How far beyond the experts' extreme locations every quantile the toolkit asks for (probabilities within
    /// [1e-9, 1 − 1e-9]) lies at most: the largest σ_i·t_i with t_i a closed-form bound on t_ν_i's 1 − 1e-9 quantile.
    /// With A = Γ((ν+1)/2)/(√(νπ) Γ(ν/2)), the density A(1 + t²/ν)^−(ν+1)/2 is at most Aν^((ν+1)/2) t^−(ν+1), so
    /// P(T &gt; t) ≤ Aν^((ν−1)/2) t^−ν, which is 1e-9 at log t = (log A + ((ν−1)/2) log ν − log 1e-9)/ν (docs/math.md
    /// §14.5; no root-finding that could fail in the far tail).
    let quantileReach (sigmas: float[]) (dof: float[]) =
        let mutable reach = 0.0

        for i in 0 .. sigmas.Length - 1 do
            let nu = dof.[i]

            let logA =
                MathNet.Numerics.SpecialFunctions.GammaLn((nu + 1.0) / 2.0)
                - MathNet.Numerics.SpecialFunctions.GammaLn(nu / 2.0)
                - 0.5 * Math.Log(nu * Math.PI)

            let t = Math.Exp((logA + 0.5 * (nu - 1.0) * Math.Log nu - Math.Log 1e-9) / nu)

            reach <- max reach (sigmas.[i] * max t 1.0)

        reach

    // ---- Files ----

    /// The model file's trailing fields: "sigmas" (always, the scales) and "degreesOfFreedom".
    let jsonTrailing (sigmas: float[]) (dof: float[]) : (string * float[])[] =
        [| "sigmas", sigmas; "degreesOfFreedom", dof |]

    /// The degrees of freedom from a model file's field, each checked &gt; 0.
    let ofJson (vector: string -> int -> float[] option) (fail: string -> string -> unit) (k: int) : float[] =
        match vector "degreesOfFreedom" k with
        | Some v ->
            v
            |> Array.iteri (fun i x ->
                if not (x > 0.0) then
                    fail
                        (Text.format "$.degreesOfFreedom[%d]" [| box i |])
                        (Text.format "degrees of freedom must be > 0, found %s." [| box (string x) |]))

            v
        | None ->
            fail "$" "a student-t model needs the field 'degreesOfFreedom' (one value per expert)."
            [||]
