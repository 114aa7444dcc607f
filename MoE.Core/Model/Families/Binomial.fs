namespace MoE.Core

open System

/// <summary>
/// Binomial experts with the logit link (docs/math.md §12.5): y successes out of the row's n trials (a column of the
/// data, <c>--trials</c>), y ~ Binomial(n, μ_i) with μ_i = σ(η_i) the probability of a success, so
/// log f = y·η − n·log(1 + e^η) + log C(n, y), mean n·μ and V = n·μ(1 − μ). With n = 1 it is the Bernoulli expert.
/// What it shares with every canonical-link expert (the score r·(y − nμ), the information r·V, the IRLS M-step) is
/// <c>Canonical</c>'s; this file holds the density, sampling and the predictive distribution.
/// </summary>
/// <remarks>The trials are the design's per-row column (<c>Design.OffsetColumn</c>, which for Poisson experts holds the
/// exposure): here it enters the density, not the linear predictor. The forward pass keeps n in its offsets' lane
/// (<c>Forward</c>) and hands it to the lane functions as <c>trials</c>. A model's "mean" is μ, the probability of a
/// success per trial, as R's <c>predict(type = "response")</c> gives for a binomial GLM.</remarks>
[<RequireQualifiedAccess>]
module internal Binomial =

    /// The name in files and on the command line.
    [<Literal>]
    let Name = "binomial"

    /// μ = σ(η), the probability of a success.
    let mean (eta: float) = DetMath.sigmoid eta

    /// log C(n, y) = log n! − log y! − log (n − y)!.
    let logChoose (n: float) (y: float) =
        Canonical.logFactorial n
        - Canonical.logFactorial y
        - Canonical.logFactorial (n - y)

    /// log f(y | n, η) = y·η − n·log(1 + e^η) + log C(n, y).
    let logDensity (y: float) (n: float) (eta: float) =
        y * eta - n * Bernoulli.softplus eta + logChoose n y

    /// The forward pass's lanes for one expert: η stays in <c>means</c>; V = n·μ(1 − μ) into <c>slopes</c>; y − n·μ
    /// into <c>residuals</c>.
    let expertLanes
        (means: float[])
        (slopes: float[])
        (residuals: float[])
        (y: float[])
        (trials: float[])
        (o: int)
        (rows: int)
        =
        for b in 0 .. rows - 1 do
            let mu = mean means.[o + b]
            let n = trials.[b]
            slopes.[o + b] <- n * mu * (1.0 - mu)
            residuals.[o + b] <- y.[b] - n * mu

    /// log f(y | n, η) for a block's rows into <c>out</c> at <c>oo</c>.
    let logDensityLanes (eta: float[]) (eo: int) (y: float[]) (trials: float[]) (out: float[]) (oo: int) (rows: int) =
        for b in 0 .. rows - 1 do
            out.[oo + b] <- logDensity y.[b] trials.[b] eta.[eo + b]

    /// A draw from Binomial(n, μ) by inversion from the nearer end (the count of successes, or of failures when
    /// μ &gt; ½): one uniform from the row's stream and O(n·min(μ, 1 − μ)) steps.
    let draw (n: float) (mu: float) (rng: Xoshiro256StarStar) : float =
        let p = min mu (1.0 - mu)
        let u = rng.NextDouble()
        let q = 1.0 - p
        // P(X = 0) = qⁿ; P(X = j + 1) = P(X = j)·(n − j)/(j + 1)·p/q.
        let mutable pmf = Math.Exp(n * Math.Log q)
        let mutable cumulative = pmf
        let mutable x = 0.0

        while u > cumulative && x < n do
            pmf <- pmf * (n - x) / (x + 1.0) * p / q
            x <- x + 1.0
            cumulative <- cumulative + pmf

        if mu > 0.5 then n - x else x

    /// P(Y ≤ q) for n trials of success probability μ.
    let cdf (n: float) (mu: float) (q: float) =
        if q < 0.0 then
            0.0
        elif q >= n then
            1.0
        else
            MathNet.Numerics.Distributions.Binomial.CDF(mu, int n, Math.Floor q)

    /// Whether a row's trials are a whole number ≥ 1 (and below 2³¹, a count the CDF can take).
    let validTrials (n: float) =
        n >= 1.0 && n = Math.Floor n && n < 2147483647.0

    /// Whether y successes are possible out of n trials: a whole number in [0, n].
    let validSuccesses (y: float) (n: float) = y >= 0.0 && y <= n && y = Math.Floor y
