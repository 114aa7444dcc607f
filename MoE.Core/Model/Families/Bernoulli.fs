namespace MoE.Core

open System

/// <summary>
/// Bernoulli experts with the logit link (docs/math.md §12): y ∈ {0, 1}, P(y = 1) = μ_i = σ(η_i) = 1/(1 + e^−η_i),
/// so log f = y·η − log(1 + e^η), V = μ(1 − μ). What they share with every canonical-link expert (the score, the
/// information, the IRLS M-step) is <c>Canonical</c>'s; this file holds the link, the density, sampling and the
/// predictive distribution.
/// </summary>
/// <remarks>log(1 + e^η) is evaluated as max(η, 0) + log(1 + e^−|η|), finite for every η. An expert whose rows its
/// predictor separates perfectly has no finite maximum (the coefficients run to infinity, μ to 0 or 1): the fit
/// stops when the likelihood stops improving, and the model's warnings name the expert (docs/math.md §12.3).</remarks>
[<RequireQualifiedAccess>]
module internal Bernoulli =

    /// The name in files and on the command line.
    [<Literal>]
    let Name = "bernoulli"

    /// log(1 + e^η), without overflow.
    let softplus (eta: float) =
        max eta 0.0 + DetMath.log (1.0 + DetMath.exp (-(abs eta)))

    /// μ = σ(η).
    let mean (eta: float) = DetMath.sigmoid eta

    /// V(μ) = dμ/dη = μ(1 − μ), the variance of a 0/1 outcome of mean μ.
    let inline variance (mu: float) = mu * (1.0 - mu)

    /// log f(y | η) = y·η − log(1 + e^η).
    let logDensity (y: float) (eta: float) = y * eta - softplus eta

    /// The forward pass's lanes for one expert: η stays in <c>means</c>; V = μ(1 − μ) into <c>slopes</c>; y − μ into
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

    /// A draw: 1 with probability μ (one uniform from the row's stream).
    let draw (mu: float) (rng: Xoshiro256StarStar) : float =
        if rng.NextDouble() < mu then 1.0 else 0.0

    /// P(Y ≤ q): 0 below 0, 1 − μ on [0, 1), 1 from 1.
    let cdf (mu: float) (q: float) =
        if q < 0.0 then 0.0
        elif q < 1.0 then 1.0 - mu
        else 1.0

    /// The link g(μ) = log(μ/(1 − μ)) of a mean (a start's intercept from the responses' mean, kept inside (0, 1)).
    let link (mean: float) =
        let m = Math.Clamp(mean, 1e-3, 1.0 - 1e-3)
        Math.Log(m / (1.0 - m))
