namespace MoE.Core

open System

/// <summary>
/// Poisson experts with the log link (docs/math.md §12): y ~ Poisson(μ_i), μ_i = exp(η_i), η_i = ⟨a_i, x⟩ + b_i, so
/// log f = y·η − exp(η) − log y!, V = μ. What they share with every canonical-link expert (the score, the
/// information, the IRLS M-step) is <c>Canonical</c>'s; this file holds the link, the density, sampling and the
/// predictive distribution.
/// </summary>
/// <remarks>The guard against overflow: μ is exp(min(η, 700)) (e^700 ≈ 1e304), so a line search that tries an absurd
/// step sees a finite, very low likelihood and halves it, never ∞ − ∞. Counts are whole and ≥ 0 (the data check says
/// which row is not).</remarks>
[<RequireQualifiedAccess>]
module internal Poisson =

    /// The name in files and on the command line.
    [<Literal>]
    let Name = "poisson"

    /// The largest η whose exponential is taken: beyond it μ = e^700.
    [<Literal>]
    let EtaCap = 700.0

    /// μ = exp(min(η, 700)).
    let mean (eta: float) = DetMath.exp (min eta EtaCap)

    /// V(μ) = dμ/dη = μ, the variance of a count of mean μ.
    let inline variance (mu: float) = mu

    /// log f(y | η) = y·η − μ − log y!.
    let logDensity (y: float) (eta: float) =
        y * min eta EtaCap - mean eta - Canonical.logFactorial y

    /// The forward pass's lanes for one expert: η stays in <c>means</c>; V = μ into <c>slopes</c>; y − μ into
    /// <c>residuals</c>.
    let expertLanes (means: float[]) (slopes: float[]) (residuals: float[]) (y: float[]) (o: int) (rows: int) =
        for b in 0 .. rows - 1 do
            let mu = mean means.[o + b]
            slopes.[o + b] <- variance mu
            residuals.[o + b] <- y.[b] - mu

    /// log f(y | η) for a block's rows into <c>out</c> at <c>oo</c>.
    let logDensityLanes (eta: float[]) (eo: int) (y: float[]) (out: float[]) (oo: int) (rows: int) =
        for b in 0 .. rows - 1 do
            out.[oo + b] <- logDensity y.[b] eta.[eo + b]

    /// A draw from Poisson(μ): inversion by sequential search below μ = 10, else Hörmann's transformed rejection
    /// (PTRS, 1993), as NumPy draws it; uniforms from the row's stream.
    let draw (mu: float) (rng: Xoshiro256StarStar) : float =
        if mu < 10.0 then
            let u = rng.NextDouble()
            let mutable p = DetMath.exp -mu
            let mutable cumulative = p
            let mutable x = 0

            while u > cumulative && p > 0.0 do
                x <- x + 1
                p <- p * mu / float x
                cumulative <- cumulative + p

            float x
        else
            let smu = sqrt mu
            let b = 0.931 + 2.53 * smu
            let a = -0.059 + 0.02483 * b
            let invAlpha = 1.1239 + 1.1328 / (b - 3.4)
            let vr = 0.9277 - 3.6224 / (b - 2.0)
            let logMu = DetMath.log mu
            let mutable result = -1.0

            while result < 0.0 do
                let u = rng.NextDouble() - 0.5
                let v = rng.NextDouble()
                let us = 0.5 - abs u
                let k = Math.Floor((2.0 * a / us + b) * u + mu + 0.43)

                if us >= 0.07 && v <= vr then
                    result <- k
                elif k >= 0.0 && not (us < 0.013 && v > us) then
                    if
                        DetMath.log v + DetMath.log invAlpha - DetMath.log (a / (us * us) + b)
                        <= -mu + k * logMu - Canonical.logFactorial k
                    then
                        result <- k

            result

    /// P(Y ≤ q) = Q(⌊q⌋ + 1, μ), the regularised upper incomplete gamma function.
    let cdf (mu: float) (q: float) =
        if q < 0.0 then
            0.0
        else
            MathNet.Numerics.SpecialFunctions.GammaUpperRegularized(Math.Floor q + 1.0, mu)

    /// How far beyond the largest mean every quantile of interest lies: 12 standard deviations and 30 counts.
    let quantileReach (largestMean: float) = 12.0 * sqrt largestMean + 30.0

    /// The link g(μ) = log μ of a mean (a start's intercept from the responses' mean, kept away from log 0).
    let link (mean: float) = Math.Log(max mean 1e-3)
