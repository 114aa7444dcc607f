namespace MoE.Core

open System

/// <summary>How well a model's predictive distributions describe rows it was not fitted on (docs/inference.md §3.1):
/// the probability integral transform and its uniformity, the proper scores, and the coverage of the central
/// intervals the model states.</summary>
type CalibrationReport =
    {
        /// The rows scored.
        Rows: int
        /// Each row's PIT u = F(y | x): uniform on (0, 1) when the model is right (randomised between F(y − 1) and F(y)
        /// for a count or a 0/1 outcome, with the seed given).
        Pit: float[]
        /// The PIT's counts in ten equal bins of (0, 1).
        Histogram: int[]
        /// The Kolmogorov–Smirnov distance between the PIT and the uniform law.
        KsStatistic: float
        /// Its p-value (Kolmogorov's limit law with Stephens' finite-n correction): small when the PIT is not uniform.
        KsP: float
        /// The mean log predictive density (or probability) of the rows, log p(y | x): higher is better.
        LogScore: float
        /// The mean continuous ranked probability score E|Y − y| − ½E|Y − Y'| of the predictive law: lower is better,
        /// in the response's units.
        Crps: float
        /// For each level L asked for: L and the share of rows inside the model's central L interval.
        Coverage: (float * float)[]
    }

/// <summary>The check of a model on held-out rows (<c>moe check</c>).</summary>
[<RequireQualifiedAccess>]
module Calibration =

    /// Φ, the standard normal CDF.
    let private phi (z: float) =
        0.5 * MathNet.Numerics.SpecialFunctions.Erfc(-z / sqrt 2.0)

    /// The standard normal density.
    let private density (z: float) =
        exp (-0.5 * z * z) / sqrt (2.0 * Math.PI)

    /// E|X| for X ~ N(μ, s²): A(μ, s²) = 2sφ(μ/s) + μ(2Φ(μ/s) − 1) (Grimit et al. 2006).
    let private absMoment (mu: float) (s2: float) =
        let s = sqrt s2
        2.0 * s * density (mu / s) + mu * (2.0 * phi (mu / s) - 1.0)

    /// <summary>P(K > x) for Kolmogorov's limit law: 2 Σ_{j≥1} (−1)^{j−1} e^{−2j²x²} (1 for x ≤ 0.2, where the series
    /// converges slowly and the probability is 1 to 15 digits).</summary>
    let private kolmogorovTail (x: float) =
        if x <= 0.2 then
            1.0
        else
            let mutable sum = 0.0
            let mutable j = 1
            let mutable term = 1.0

            while j <= 100 && abs term > 1e-17 do
                term <- exp (-2.0 * float (j * j) * x * x)
                sum <- sum + (if j % 2 = 1 then term else -term)
                j <- j + 1

            Math.Clamp(2.0 * sum, 0.0, 1.0)

    /// <summary>The Kolmogorov–Smirnov distance of a sample from the uniform law on (0, 1) and its p-value, with
    /// Stephens' correction x = D(√n + 0.12 + 0.11/√n), accurate for n ≥ 5.</summary>
    /// <param name="u">The sample.</param>
    [<CompiledName("KolmogorovSmirnov")>]
    let kolmogorovSmirnov (u: float[]) : float * float =
        Guard.notNull "u" u

        if u.Length = 0 then
            invalidArg "u" "The Kolmogorov-Smirnov test needs at least one value."

        let sorted = Array.sort u
        let n = float sorted.Length
        let mutable d = 0.0

        for i in 0 .. sorted.Length - 1 do
            d <- max d (max (float (i + 1) / n - sorted.[i]) (sorted.[i] - float i / n))

        let root = sqrt n
        d, kolmogorovTail (d * (root + 0.12 + 0.11 / root))

    /// Each row's PIT under the model, from its predictions at the rows (randomised for a discrete family, from the
    /// seed's PIT stream).
    let private pitOf (model: MoeModel) (p: Predictions) (seed: int64) (y: float[]) =
        let rng = Rng.stream seed Streams.Pit
        let cdf = Inference.mixtureCdf model p.Gate p.ExpertMeans p.Trials

        Array.init y.Length (fun r ->
            if ExpertFamily.isDiscrete model.Family then
                let below = cdf r (y.[r] - 1.0)
                below + rng.NextDouble() * (cdf r y.[r] - below)
            else
                cdf r y.[r])

    /// <summary>The split-conformal level (docs/inference.md §3.2): the probability L' whose central intervals
    /// [F⁻¹(½ − q̂), F⁻¹(½ + q̂)], L' = 2q̂, cover a new row with probability at least <paramref name="level"/> whatever the
    /// model's errors, for rows exchangeable with the calibration rows. The conformity score of a calibration row is
    /// s = |F(y | x) − ½| (its PIT's distance from the median), q̂ the ⌈(m + 1)·level⌉-th smallest of the m scores; a row
    /// is inside its interval exactly when its score is at most q̂ (F is increasing), which gives the guarantee
    /// (Vovk et al. 2005; Lei et al. 2018). The calibration rows must not be the fit's.</summary>
    /// <param name="model">The model.</param>
    /// <param name="level">The coverage wanted, in (0, 1).</param>
    /// <param name="seed">The seed of the randomised PIT of a count or a 0/1 outcome.</param>
    /// <param name="x">m×d calibration inputs.</param>
    /// <param name="y">m calibration responses.</param>
    /// <returns>L' in (0, 1).</returns>
    /// <exception cref="T:System.ArgumentException">level outside (0, 1), or too few calibration rows for it: the
    /// guarantee needs m ≥ level/(1 − level) (9 at 0.9, 19 at 0.95), and L' = 1 would be an interval of the whole line.</exception>
    [<CompiledName("ConformalLevel")>]
    let conformalLevel (model: MoeModel) (level: float) (seed: int64) (x: float[,]) (y: float[]) : float =
        if not (level > 0.0 && level < 1.0) then
            invalidArg "level" (Text.format "The coverage wanted must be in (0, 1), but is %g." [| box level |])

        ModelRows.checkLikelihoodInputs model x y
        let m = y.Length
        let rank = int (Math.Ceiling(float (m + 1) * level))

        if rank > m then
            invalidArg
                "y"
                (Text.format
                    "%d calibration rows cannot guarantee %g coverage: it needs at least %d (the score of rank ceil((m + 1) level) must exist); use more rows or a lower level."
                    [|
                        box m
                        box level
                        box (
                            Seq.initInfinite id
                            |> Seq.find (fun r -> Math.Ceiling(float (r + 1) * level) <= float r)
                        )
                    |])

        let scores =
            pitOf model (Inference.predictQuantiles model 0.0 [||] x) seed y
            |> Array.map (fun u -> abs (u - 0.5))
            |> Array.sort

        let widest = 2.0 * scores.[rank - 1]

        if widest >= 1.0 then
            invalidArg
                "y"
                (Text.format
                    "a calibration row lies at the very edge of the model's predictive law (its PIT is 0 or 1), so the %g conformal interval is the whole line: the model is far off for these rows."
                    [| box level |])

        widest

    /// <summary>Checks a model's predictive distributions on rows it was not fitted on: the PIT and its uniformity
    /// (Kolmogorov–Smirnov), the log score, the CRPS and the coverage of its central intervals. For a count or a 0/1
    /// outcome the PIT is randomised, u = F(y − 1) + v·(F(y) − F(y − 1)) with v uniform from the seed, which is uniform
    /// exactly when the model is right; the CRPS is then Σ_z (F(z) − 1{y ≤ z})² over the counts.</summary>
    /// <param name="model">The model.</param>
    /// <param name="levels">The central intervals' probabilities whose coverage to count, each in (0, 1).</param>
    /// <param name="seed">The seed of the randomised PIT (unused for Gaussian experts).</param>
    /// <param name="x">n×d held-out inputs.</param>
    /// <param name="y">n held-out responses.</param>
    /// <exception cref="T:System.ArgumentException">x and y do not match the model or each other, or a level is outside
    /// (0, 1).</exception>
    [<CompiledName("Check")>]
    let check (model: MoeModel) (levels: float[]) (seed: int64) (x: float[,]) (y: float[]) : CalibrationReport =
        Guard.notNull "levels" levels
        ModelRows.checkLikelihoodInputs model x y

        for level in levels do
            if not (level > 0.0 && level < 1.0) then
                invalidArg "levels" (Text.format "Every level must be in (0, 1), but one is %g." [| box level |])

        let n, k = y.Length, model.Experts
        let family = model.Family
        let discrete = ExpertFamily.isDiscrete family
        // One pass of predictions: the gate and means for the PIT and the CRPS, and each level's interval ends as the
        // quantiles at (1 ∓ L)/2 (the bits Inference.predict gives them).
        let ends =
            levels
            |> Array.collect (fun level -> [| (1.0 - level) / 2.0; (1.0 + level) / 2.0 |])

        let p = Inference.predictQuantiles model 0.0 ends x
        let cdf = Inference.mixtureCdf model p.Gate p.ExpertMeans p.Trials
        let pit = pitOf model p seed y

        let crps (r: int) =
            if discrete then
                // Σ_z (F(z) − 1{y ≤ z})² up to where F is 1 to rounding (and past y).
                let reach =
                    ExpertFamily.quantileReach
                        family
                        model.Sigmas
                        model.DegreesOfFreedom
                        (Seq.max (seq { for i in 0 .. k - 1 -> p.ExpertMeans.[r, i] }))
                        (if p.Trials.Length = 0 then 0.0 else p.Trials.[r])

                let top =
                    max y.[r] (Math.Ceiling(Seq.max (seq { for i in 0 .. k - 1 -> p.ExpertMeans.[r, i] }) + reach))

                let mutable s = 0.0
                let mutable z = 0.0

                while z <= top do
                    let f = cdf r z
                    let e = f - (if y.[r] <= z then 1.0 else 0.0)
                    s <- s + e * e
                    z <- z + 1.0

                s
            elif family = ExpertFamily.StudentT then
                // No closed form for a mixture of t: ∫ (F(z) − 1{y ≤ z})² dz split at y, each side mapped to a finite
                // interval by z = y ± s·tan θ (s the largest scale) and integrated by 128-point Gauss–Legendre; the
                // integrand is smooth in θ and, for ν ≥ 1, bounded as θ → π/2 (docs/math.md §14.5).
                let cdf = Inference.mixtureCdf model p.Gate p.ExpertMeans p.Trials r
                let s = Array.max model.Sigmas

                let side (sign: float) =
                    MathNet.Numerics.Integration.GaussLegendreRule.Integrate(
                        (fun theta ->
                            let t = Math.Tan theta
                            let z = y.[r] + sign * s * t
                            let f = cdf z
                            let e = if sign > 0.0 then 1.0 - f else f
                            e * e * s * (1.0 + t * t)),
                        0.0,
                        Math.PI / 2.0,
                        128
                    )

                side -1.0 + side 1.0
            else
                // A mixture of normals: Σ_i w_i A(y − μ_i, σ_i²) − ½ Σ_ij w_i w_j A(μ_i − μ_j, σ_i² + σ_j²).
                let mutable first = 0.0
                let mutable second = 0.0

                for i in 0 .. k - 1 do
                    let wi = p.Gate.[r, i]
                    let si2 = model.Sigmas.[i] * model.Sigmas.[i]
                    first <- first + wi * absMoment (y.[r] - p.ExpertMeans.[r, i]) si2

                    for j in 0 .. k - 1 do
                        let sj2 = model.Sigmas.[j] * model.Sigmas.[j]

                        second <-
                            second
                            + wi
                              * p.Gate.[r, j]
                              * absMoment (p.ExpertMeans.[r, i] - p.ExpertMeans.[r, j]) (si2 + sj2)

                first - 0.5 * second

        let histogram = Array.zeroCreate 10

        for u in pit do
            let bin = min 9 (max 0 (int (u * 10.0)))
            histogram.[bin] <- histogram.[bin] + 1

        let d, pValue = kolmogorovSmirnov pit
        let logScore = (MoeModel.logLikelihoods model x y |> Array.sum) / float n

        let coverage =
            levels
            |> Array.mapi (fun j level ->

                let inside =
                    Seq.sum (
                        seq {
                            for r in 0 .. n - 1 ->
                                if y.[r] >= p.Quantiles.[r, 2 * j] && y.[r] <= p.Quantiles.[r, 2 * j + 1] then
                                    1
                                else
                                    0
                        }
                    )

                level, float inside / float n)

        {
            Rows = n
            Pit = pit
            Histogram = histogram
            KsStatistic = d
            KsP = pValue
            LogScore = logScore
            Crps = (Array.init n crps |> Array.sum) / float n
            Coverage = coverage
        }
