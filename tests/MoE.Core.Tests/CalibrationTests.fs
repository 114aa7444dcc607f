/// The check of a model on held-out rows (Analysis/Calibration.fs, docs/inference.md §3.1): the PIT is uniform for the
/// right model and clearly not for a wrong one, the CRPS's closed form is the integral it stands for, and the stated
/// intervals cover what they say.
module MoE.Core.Tests.CalibrationTests

open System
open FsCheck.FSharp
open FsCheck.Xunit
open Xunit
open MoE.Core

/// CRPS = ∫ (F(z) − 1{y ≤ z})² dz, by the trapezoid rule on 200,001 points each side of the jump at y, over the
/// mixture's support ± 14σ: the integrand is smooth on each side, the step ≤ 2e-3σ, so the error O(h²·F'') ≲ 1e-7 of
/// σ; the tails beyond 14σ hold < 1e-40. The closed form (Grimit et al. 2006) must agree
/// to 1e-6 relative (plus 1e-9), while a wrong term (a missing ½, σ for σ²) is off by 10 % or more.
[<Property(MaxTest = 25)>]
let ``the CRPS of a Gaussian mixture is the integral of its squared CDF error`` () =
    Prop.forAll (Arb.fromGen Generators.generalModel) (fun m ->
        let data = Sampler.sample m 3 11L
        let report = Calibration.check m [||] 1L data.X data.Y
        let p = Inference.predict m 0.0 data.X

        let phi z =
            0.5 * MathNet.Numerics.SpecialFunctions.Erfc(-z / sqrt 2.0)

        let crps (r: int) =
            let y = data.Y.[r]
            let means = Array.init m.Experts (fun i -> p.ExpertMeans.[r, i])
            let s = Array.max m.Sigmas
            let lo = min y (Array.min means) - 14.0 * s
            let hi = max y (Array.max means) + 14.0 * s

            let cdf (z: float) =
                Seq.sum (seq { for i in 0 .. m.Experts - 1 -> p.Gate.[r, i] * phi ((z - means.[i]) / m.Sigmas.[i]) })

            // The trapezoid rule on each side of the jump at y: ∫_lo^y F² + ∫_y^hi (F − 1)².
            let trapezoid (a: float) (b: float) (g: float -> float) =
                let steps = 200_000
                let h = (b - a) / float steps
                let mutable sum = 0.5 * (g a + g b)

                for t in 1 .. steps - 1 do
                    sum <- sum + g (a + float t * h)

                sum * h

            trapezoid lo y (fun z -> cdf z ** 2.0)
            + trapezoid y hi (fun z -> (cdf z - 1.0) ** 2.0)

        let numeric = (crps 0 + crps 1 + crps 2) / 3.0

        Assert.True(
            abs (report.Crps - numeric) <= 1e-6 * abs numeric + 1e-9,
            sprintf "closed form %.12g, integral %.12g" report.Crps numeric
        ))

/// Kolmogorov–Smirnov against the uniform law: 5,000 seeded uniform draws pass (p > 0.01; this seed's p is fixed),
/// their squares (a law with CDF √u, D ≈ 0.25) fail with p < 1e-12.
[<Fact>]
let ``the Kolmogorov-Smirnov test tells uniform from not`` () =
    let rng = Rng.stream 7L 1L
    let u = Array.init 5_000 (fun _ -> rng.NextDouble())
    let _, p = Calibration.kolmogorovSmirnov u
    Assert.True(p > 0.01, sprintf "uniform draws: p = %g" p)
    let d, q = Calibration.kolmogorovSmirnov (u |> Array.map (fun v -> v * v))
    Assert.True(q < 1e-12 && d > 0.2, sprintf "squares: D = %g, p = %g" d q)

/// Three experts whose intercepts −3, 0, 3 keep them apart at every x (σ 0.3), and a gate on all three covariates:
/// y given x is trimodal, which a single regression's one normal cannot describe.
let private truth =
    MoeModel.createGeneral
        (array2D [ [ 0.5; 0.0; 0.2 ]; [ 0.0; 0.5; -0.2 ]; [ 0.3; 0.0; 0.5 ] ])
        [| -3.0; 0.0; 3.0 |]
        (array2D [ [ 1.0; -0.5; 0.0 ]; [ 0.0; 1.0; 0.5 ] ])
        [| 0.2; -0.1 |]
        Identity
        [| 0.3; 0.3; 0.3 |]

/// Issue 33's acceptance: a correct model's PIT on held-out rows is uniform (KS p > 0.01 over five seeds; each
/// seed's p is fixed, and under the null p < 0.01 has probability 1 %), its 50 % and 90 % intervals cover within
/// ±4.5 binomial sd at n = 2,000 (sd 0.011 and 0.0067); a single regression fitted to the same three-expert data is
/// clearly not calibrated (p < 1e-6).
[<Fact>]
let ``the PIT of a correct model is uniform on held-out rows and that of k = 1 fitted to k = 3 data is not`` () =
    for seed in 1L .. 5L do
        let held = Sampler.sample truth 2_000 (100L + seed)
        let report = Calibration.check truth [| 0.5; 0.9 |] seed held.X held.Y
        Assert.True(report.KsP > 0.01, sprintf "seed %d: KS p = %g" seed report.KsP)
        Assert.InRange(snd report.Coverage.[0], 0.45, 0.55)
        Assert.InRange(snd report.Coverage.[1], 0.87, 0.93)
        Assert.Equal(2_000, Array.sum report.Histogram)

    let train = Sampler.sample truth 5_000 1L
    let held = Sampler.sample truth 2_000 2L

    let config =
        { FitConfig.defaults 3 Identity with
            Seed = 1L
        }

    let fitted = (Learner.fit config train RunContext.silent).Model
    let right = Calibration.check fitted [| 0.9 |] 1L held.X held.Y
    Assert.True(right.KsP > 0.01, sprintf "fitted k = 3: KS p = %g" right.KsP)

    // k = 1: the single regression `moe select` fits.
    let a, b, s, _ =
        (Inference.selectExperts config [| 1 |] train RunContext.silent).[0].Single.Value

    // A mixture of two copies of it with a flat gate is the same predictive law (a model has k ≥ 2).
    let one =
        MoeModel.createGeneral
            (Array2D.init 2 a.Length (fun _ t -> a.[t]))
            [| b; b |]
            (Array2D.zeroCreate 1 a.Length)
            [| 0.0 |]
            Identity
            [| s; s |]

    let single = Calibration.check one [| 0.9 |] 1L held.X held.Y
    Assert.True(single.KsP < 1e-6, sprintf "fitted k = 1: KS p = %g" single.KsP)
    Assert.True(single.LogScore < right.LogScore && single.Crps > right.Crps)

/// A count's PIT, randomised between F(y − 1) and F(y), is uniform for the right Poisson mixture (p > 0.01 over three
/// seeds).
[<Fact>]
let ``a Poisson mixture's randomised PIT is uniform on held-out rows`` () =
    let m = MoeModel.withFamily ExpertFamily.Poisson Coverage.truth

    for seed in 1L .. 3L do
        let held = Sampler.sample m 2_000 (200L + seed)
        let report = Calibration.check m [||] seed held.X held.Y
        Assert.True(report.KsP > 0.01, sprintf "seed %d: KS p = %g" seed report.KsP)

/// Issue 33's acceptance for split-conformal intervals: a model that is over-confident (every σ_i half the truth's)
/// states 90 % intervals that cover less (0.79), but its conformal level, calibrated on 1,000 other rows, gives intervals
/// that cover 90 %: over ten seeds the mean coverage on 5,000 held-out rows is within [0.88, 0.92], and each seed's
/// within [0.85, 0.95] (the coverage given the calibration rows is Beta-distributed with sd ≈ 0.0095, plus 0.004 of
/// held-out noise: ±5 sd).
[<Fact>]
let ``conformal levels make an over-confident model's intervals cover what they say`` () =
    let narrow =
        MoeModel.createGeneral
            truth.Regressors
            truth.RegressorIntercepts
            truth.Gating
            truth.GatingIntercepts
            Identity
            (truth.Sigmas |> Array.map (fun s -> s / 2.0))

    let covered (level: float) (rows: Dataset) =
        let p = Inference.predict narrow level rows.X

        let inside =
            Seq.sum (
                seq {
                    for r in 0 .. rows.Count - 1 ->
                        if rows.Y.[r] >= p.Lower.[r] && rows.Y.[r] <= p.Upper.[r] then
                            1.0
                        else
                            0.0
                }
            )

        inside / float rows.Count

    let coverages =
        [|
            for seed in 1L .. 10L do
                let calibration = Sampler.sample truth 1_000 (300L + seed)
                let held = Sampler.sample truth 5_000 (400L + seed)
                Assert.InRange(covered 0.9 held, 0.0, 0.85)
                let level = Calibration.conformalLevel narrow 0.9 seed calibration.X calibration.Y
                Assert.True(level > 0.9, sprintf "seed %d: conformal level %g" seed level)
                let c = covered level held
                Assert.InRange(c, 0.85, 0.95)
                c
        |]

    Assert.InRange(Array.average coverages, 0.88, 0.92)

    let few = Sampler.sample truth 8 1L

    let e =
        Assert.Throws<ArgumentException>(fun () -> Calibration.conformalLevel narrow 0.9 1L few.X few.Y |> ignore)

    Assert.Contains("8 calibration rows cannot guarantee 0.9 coverage: it needs at least 9", e.Message)
