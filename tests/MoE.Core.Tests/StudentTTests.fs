/// Student-t experts (Model/Families/StudentT.fs; docs/math.md §14): the density is Student's, the vectorised kernels
/// equal the scalar reference, the gradient in every coefficient and log σ_i equals central differences, an EM step
/// with its ν step never lowers the likelihood, the ν step finds a known ν, the sampler draws t, a fit recovers seeded
/// truth, and where 5 % of the responses are gross outliers the t experts keep the lines the Gaussian ones lose.
module MoE.Core.Tests.StudentTTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open MoE.Core
open MoE.Core.Tests.Tolerance
open MoE.Core.Tests.Generators

type TCase =
    {
        Model: MoeModel
        X: float[,]
        Y: float[]
    }

    override this.ToString() =
        sprintf
            "k=%d d=%d n=%d\n%s"
            this.Model.Experts
            this.Model.Dimension
            this.Y.Length
            (ModelJson.serialize this.Model)

let private tModel (a: float[,]) (b: float[]) (w: float[,]) (c: float[]) (sigmas: float[]) (nu: float[]) =
    MoeModel.createWith (Design.shared (a.GetLength 1)) ExpertFamily.StudentT a b w c Identity sigmas
    |> MoeModel.withDegreesOfFreedom nu

/// A t model (k ≤ 4, d ≤ 5, scales in [0.2, 1.5], ν in [1, 30]: from Cauchy-like tails to nearly Gaussian) and a draw
/// of 1..700 rows from it: several 256-row blocks and a ragged tail.
let private tCases: Arbitrary<TCase> =
    gen {
        let! k = Gen.choose (2, 4)
        let! d = Gen.choose (1, 5)
        let! a = matrix k d -1.0 1.0
        let! b = vector k -1.0 1.0
        let! w = matrix (k - 1) d -1.5 1.5
        let! c = vector (k - 1) -1.0 1.0
        let! sigmas = vector k 0.2 1.5
        let! nu = vector k 1.0 30.0
        let! n = Gen.choose (1, 700)
        let! seed = Gen.choose (1, 1_000_000)
        let model = tModel a b w c sigmas nu
        let data = Sampler.sample model n (int64 seed)

        return
            {
                Model = model
                X = data.X
                Y = data.Y
            }
    }
    |> Arb.fromGen

/// log f against MathNet's Student-t log-density on a grid of residuals, scales and ν (both from the same
/// log-gamma functions; the difference is the order of a few roundings, far below 1e-12 relative).
[<Fact>]
let ``the t log-density is Student's`` () =
    for nu in [ 1.0; 2.5; 4.0; 30.0; 200.0 ] do
        for sigma in [ 0.1; 1.0; 7.0 ] do
            let c, b, shape = StudentT.constants [| sigma |] [| nu |]

            for e in [ -50.0; -3.0; -0.1; 0.0; 0.7; 12.0 ] do
                let expected = MathNet.Numerics.Distributions.StudentT.PDFLn(0.0, sigma, nu, e)

                let out = Array.zeroCreate 1
                StudentT.logDensityLanes [| e |] 0 c.[0] b.[0] shape.[0] out 0 1
                assertClose exact expected out.[0] (sprintf "nu %g sigma %g e %g" nu sigma e)

[<Property(MaxTest = 60)>]
let ``the kernels' likelihood and posterior equal the scalar reference for t experts`` () =
    Prop.forAll tCases (fun c -> Numerics.kernelsEqualReference c.Model c.X c.Y)

/// The analytic gradient in (a_i, b_i, w_j, c_j, log σ_i, ν_i) against central differences of the scalar
/// log-likelihood (Numerics.fdGradient's step; Tolerance.gradientCheck, 1e-6 of the gradient's scale). The ν entries
/// differentiate the log-gamma constant and the power (docs/math.md §14.2).
[<Property(MaxTest = 40)>]
let ``the t likelihood's gradient equals central differences`` () =
    Prop.forAll tCases (fun c ->
        let m = c.Model
        let k, d = m.Experts, m.Dimension
        let p = d + 1
        let nA, nW = k * p, (k - 1) * p

        let theta =
            Array2D.init 1 (nA + nW + 2 * k) (fun _ t ->
                if t < nA then
                    let i, j = t / p, t % p

                    if j < d then
                        m.Regressors.[i, j]
                    else
                        m.RegressorIntercepts.[i]
                elif t < nA + nW then
                    let u = t - nA
                    let i, j = u / p, u % p
                    if j < d then m.Gating.[i, j] else m.GatingIntercepts.[i]
                elif t < nA + nW + k then
                    log m.Sigmas.[t - nA - nW]
                else
                    m.DegreesOfFreedom.[t - nA - nW - k])

        let modelOf (v: float[,]) =
            tModel
                (Array2D.init k d (fun i j -> v.[0, i * p + j]))
                (Array.init k (fun i -> v.[0, i * p + d]))
                (Array2D.init (k - 1) d (fun i j -> v.[0, nA + i * p + j]))
                (Array.init (k - 1) (fun i -> v.[0, nA + i * p + d]))
                (Array.init k (fun i -> exp v.[0, nA + nW + i]))
                (Array.init k (fun i -> v.[0, nA + nW + k + i]))

        let _, gradient = LikelihoodKernel.valueAndGradient m true c.X c.Y
        Assert.Equal(theta.GetLength 1, gradient.Length)
        let analytic = Array2D.init 1 (theta.GetLength 1) (fun _ t -> gradient.[t])

        let numeric =
            Numerics.fdGradient (fun v -> MoeModel.logLikelihood (modelOf v) c.X c.Y) theta

        Numerics.gradientsAgree analytic numeric)

/// The variables of the direct maximisation and of the standard errors (docs/math.md §14.2): every interior ν_i is
/// one, v = log((ν − 1)/(200 − ν)), and the objective's gradient in v is ∂LL/∂ν·dν/dv — checked against central
/// differences of the objective in the packed variables; a ν at a bound is held.
[<Property(MaxTest = 30)>]
let ``the likelihood's variables include the interior degrees of freedom, with the chain rule's gradient`` () =
    Prop.forAll tCases (fun c ->
        let settings =
            { EmSettings.paper true 1 0.0 with
                FitIntercepts = true
                CommonSigma = false
                EstimateDegreesOfFreedom = true
            }

        let m = c.Model
        let theta = Likelihood.pack settings m
        let k, p = m.Experts, m.Dimension + 1
        Assert.Equal(k * p + (k - 1) * p + 2 * k, theta.Length)
        let back = Likelihood.unpack settings m theta

        Seq.iter2 (fun e a -> assertClose 1e-12 e a "nu through its variable") m.DegreesOfFreedom back.DegreesOfFreedom

        let _, gradient = Likelihood.objective settings m c.X c.Y
        let point = Array2D.init 1 theta.Length (fun _ t -> theta.[t])

        let numeric =
            Numerics.fdGradient
                (fun v ->
                    fst (
                        Likelihood.objective
                            settings
                            (Likelihood.unpack settings m (Array.init theta.Length (fun t -> v.[0, t])))
                            c.X
                            c.Y
                    ))
                point

        Numerics.gradientsAgree (Array2D.init 1 theta.Length (fun _ t -> gradient.[t])) numeric
        && (let held =
                MoeModel.withDegreesOfFreedom (Array.create k StudentT.MaxDegreesOfFreedom) m

            (Likelihood.pack settings held).Length = k * p + (k - 1) * p + k))

/// An EM step — weighted least squares at the E-step's weights u, σ_i, then ν_i by its ECM step — is a step of ECM
/// (Liu & Rubin 1995), so the likelihood does not fall (Tolerance.likelihoodDrop of |LL|), and the family stays.
[<Property(MaxTest = 60)>]
let ``an EM step with its nu step never lowers a t mixture's likelihood`` () =
    Prop.forAll tCases (fun c ->
        let settings =
            { EmSettings.paper true 1 0.0 with
                FitIntercepts = true
                CommonSigma = false
                EstimateDegreesOfFreedom = true
            }

        let before = MoeModel.logLikelihood c.Model c.X c.Y
        let next = Em.stepWith settings c.Model c.X c.Y
        let after = MoeModel.logLikelihood next c.X c.Y
        Assert.Equal(ExpertFamily.StudentT, next.Family)
        Assert.Equal(c.Model.Experts, next.DegreesOfFreedom.Length)
        Assert.True(after >= before - likelihoodDrop * abs before, sprintf "%.12g -> %.12g" before after))

/// The sampler draws t(ν): 100,000 draws per ν against MathNet's CDF by Kolmogorov–Smirnov at 1.95/√n (a false alarm
/// about once in 1,000; the seeds are fixed, so the test is deterministic).
[<Fact>]
let ``the t sampler draws Student's t`` () =
    let n = 100_000

    for nu in [ 0.7; 1.0; 3.0; 25.0 ] do
        let rng = Xoshiro256StarStar.FromSeed(uint64 (nu * 1000.0))
        let draws = Array.init n (fun _ -> StudentT.draw 0.5 2.0 nu rng) |> Array.sort

        let d =
            draws
            |> Array.mapi (fun i v ->
                let f = MathNet.Numerics.Distributions.StudentT.CDF(0.5, 2.0, nu, v)
                max (abs (float (i + 1) / float n - f)) (abs (float i / float n - f)))
            |> Array.max

        Assert.True(d < 1.95 / sqrt (float n), sprintf "nu = %g: KS distance %g" nu d)

/// The ν step alone finds a known ν: one t regression (k = 1) on 50,000 draws with ν = 5. The information about ν at
/// ν = 5 is ¼[ψ'(2.5) − ψ'(3)] − 10/480 ≈ 0.0030 per row, so ν̂'s sd is ≈ 0.08; ±0.5 is six of them. The scale and
/// the line are found to their own standard errors (σ/√n ≈ 0.005).
[<Fact>]
let ``the single t regression finds its degrees of freedom`` () =
    let n = 50_000
    let rng = Xoshiro256StarStar.FromSeed 17UL
    let x = Array2D.init n 1 (fun _ _ -> rng.NextGaussian())
    let y = Array.init n (fun r -> StudentT.draw (1.0 + 2.0 * x.[r, 0]) 0.5 5.0 rng)

    let a, b, sigma, nu, _ =
        SingleRegression.fit ExpertFamily.StudentT Identity true x y null null None RunContext.silent

    Assert.InRange(nu, 4.5, 5.5)
    Assert.InRange(sigma, 0.48, 0.52)
    Assert.InRange(a.[0], 1.98, 2.02)
    Assert.InRange(b, 0.98, 1.02)

    // Fixed, ν stays where it is put.
    let _, _, _, fixedNu, _ =
        SingleRegression.fit ExpertFamily.StudentT Identity true x y null null (Some 12.0) RunContext.silent

    Assert.Equal(12.0, fixedNu)

let private seededTruth (family: ExpertFamily) =
    let truth =
        MoeModel.createWith
            (Design.shared 3)
            family
            (array2D [ [ 0.8; -0.4; 0.3 ]; [ -0.5; 0.6; 0.2 ] ])
            [| 1.0; -0.5 |]
            (array2D [ [ 1.5; 1.0; -1.0 ] ])
            [| 0.3 |]
            Identity
            [| 0.1; 0.2 |]

    if family = ExpertFamily.StudentT then
        MoeModel.withDegreesOfFreedom [| 3.0; 6.0 |] truth
    else
        truth

/// Seeded recovery: k = 2, d = 3, intercepts, free gating, ν = (3, 6), n = 20,000; the defaults find the truth to
/// E_reg, E_gating ≤ 0.01 — the issue's success rule — and the fit is as likely as the truth.
[<Fact>]
let ``the defaults recover seeded t experts`` () =
    let truth = seededTruth ExpertFamily.StudentT
    let data = Sampler.sample truth 20_000 11L

    let fit =
        Learner.fit
            { FitConfig.defaults 2 Identity with
                Family = ExpertFamily.StudentT
                Seed = 3L
            }
            data
            RunContext.silent

    let errors = Metrics.compare fit.Model truth

    Assert.True(
        errors.RegressorError <= 0.01 && errors.GatingError <= 0.01,
        sprintf "E_reg %g, E_gating %g\n%s" errors.RegressorError errors.GatingError (ModelJson.serialize fit.Model)
    )

    let llFit = MoeModel.logLikelihood fit.Model data.X data.Y
    let llTruth = MoeModel.logLikelihood truth data.X data.Y
    Assert.True(llFit >= llTruth - 1e-6 * abs llTruth, sprintf "fit %.6f, truth %.6f" llFit llTruth)

/// The robustness the family is for: Gaussian experts (σ = 0.1, 0.2) with 5 % of the responses replaced by gross
/// outliers (y + 20·N(0, 1), i.e. ~100–200 σ away). The t fit recovers the slopes to E_reg ≤ 0.01; the Gaussian fit,
/// whose squared loss the outliers dominate, does not (measured: see docs/math.md §14.6).
[<Fact>]
let ``with gross outliers the t experts keep the lines and the Gaussian ones do not`` () =
    let truth = seededTruth ExpertFamily.Gaussian
    let clean = Sampler.sample truth 20_000 5L
    let rng = Xoshiro256StarStar.FromSeed 99UL

    let y =
        clean.Y
        |> Array.map (fun v ->
            if rng.NextDouble() < 0.05 then
                v + 20.0 * rng.NextGaussian()
            else
                v)

    let data = { clean with Y = y }

    let fitWith family =
        Learner.fit
            { FitConfig.defaults 2 Identity with
                Family = family
                Seed = 3L
            }
            data
            RunContext.silent

    let t = Metrics.compare (fitWith ExpertFamily.StudentT).Model truth
    let gaussian = Metrics.compare (fitWith ExpertFamily.Gaussian).Model truth

    Assert.True(t.RegressorError <= 0.01, sprintf "t: E_reg %g, E_gating %g" t.RegressorError t.GatingError)

    Assert.True(
        gaussian.RegressorError > 0.01,
        sprintf "Gaussian: E_reg %g (the outliers should have moved its lines)" gaussian.RegressorError
    )

[<Fact>]
let ``a t model file carries its scales and degrees of freedom, and reads back to the same model`` () =
    let model = seededTruth ExpertFamily.StudentT
    let json = ModelJson.serialize model
    Assert.Contains("\"family\": \"student-t\"", json)
    Assert.Contains("\"degreesOfFreedom\": [3, 6]", json)
    Assert.Contains("\"sigmas\": [0.1, 0.2]", json)
    let back = ModelJson.deserialize json
    Assert.Equal(ExpertFamily.StudentT, back.Family)
    Assert.Equal<float[]>([| 3.0; 6.0 |], back.DegreesOfFreedom)
    Assert.Equal(json, ModelJson.serialize back)

    let missing = json.Replace(",\n  \"degreesOfFreedom\": [3, 6]", "")
    Assert.NotEqual<string>(json, missing)

    let e =
        Assert.ThrowsAny<Exception>(fun () -> ModelJson.deserialize missing |> ignore)

    Assert.Contains("degreesOfFreedom", e.Message)

    let negative =
        json.Replace("\"degreesOfFreedom\": [3, 6]", "\"degreesOfFreedom\": [3, -1]")

    let e =
        Assert.ThrowsAny<Exception>(fun () -> ModelJson.deserialize negative |> ignore)

    Assert.Contains("degreesOfFreedom[1]", e.Message)

[<Fact>]
let ``degrees of freedom are refused where they do not belong`` () =
    let e =
        Assert.Throws<ArgumentException>(fun () ->
            FitConfig.validate
                { FitConfig.defaults 2 Identity with
                    DegreesOfFreedom = Some 4.0
                })

    Assert.Equal("DegreesOfFreedom", e.ParamName)
    Assert.Contains("gaussian experts have none", e.Message)

    let e =
        Assert.Throws<ArgumentException>(fun () ->
            FitConfig.validate
                { FitConfig.defaults 2 Identity with
                    Family = ExpertFamily.StudentT
                    DegreesOfFreedom = Some 0.0
                })

    Assert.Contains("> 0", e.Message)

    let e =
        Assert.Throws<ArgumentException>(fun () ->
            FitConfig.validate
                { FitConfig.defaults 2 Relu with
                    Family = ExpertFamily.StudentT
                })

    Assert.Contains("must be identity, not relu", e.Message)

    let gaussian = seededTruth ExpertFamily.Gaussian

    Assert.Throws<ArgumentException>(fun () -> MoeModel.withDegreesOfFreedom [| 3.0; 3.0 |] gaussian |> ignore)
    |> ignore

    // ν counts as a parameter when it is estimated, and not when it is fixed.
    let config =
        { FitConfig.defaults 2 Identity with
            Family = ExpertFamily.StudentT
        }

    Assert.Equal(
        FitConfig.parameterCount config 3 - 2L,
        FitConfig.parameterCount
            { config with
                DegreesOfFreedom = Some 4.0
            }
            3
    )

/// The guards on ν (docs/math.md §14.3): Gaussian errors send ν̂ towards the cap of 200 (at n = 20,000 a sample
/// kurtosis as low as t₅₀'s, 0.13 above the normal's, is 3.7 standard errors away, so ν̂ ≥ 50 is safe), and errors
/// heavier than Cauchy's (t with ν = 0.7) stop at the floor of 1, where the experts' means still exist.
[<Fact>]
let ``nu runs to its cap on Gaussian errors and to its floor on errors heavier than Cauchy's`` () =
    let n = 20_000
    let rng = Xoshiro256StarStar.FromSeed 23UL
    let x = Array2D.init n 1 (fun _ _ -> rng.NextGaussian())

    let gaussian =
        Array.init n (fun r -> 1.0 + 2.0 * x.[r, 0] + 0.5 * rng.NextGaussian())

    let heavy = Array.init n (fun r -> StudentT.draw (1.0 + 2.0 * x.[r, 0]) 0.5 0.7 rng)

    let nuOf (y: float[]) =
        let _, _, _, nu, _ =
            SingleRegression.fit ExpertFamily.StudentT Identity true x y null null None RunContext.silent

        nu

    let nuGaussian = nuOf gaussian
    Assert.InRange(nuGaussian, 50.0, StudentT.MaxDegreesOfFreedom)
    Assert.Equal(StudentT.MinDegreesOfFreedom, nuOf heavy)

/// Standard errors of a fit with ν fixed (`--df`): ν is then no parameter, so the other errors come from the inverse
/// of their own block of the information, not from the full inverse's block (docs/math.md §14.2). The full inverse's
/// block is the block's inverse plus a positive semi-definite term (the Schur complement), so every error with ν fixed
/// is at most the one that treats ν as estimated (up to the central differences' relative error, ~1e-8, of both
/// Hessians: 1e-6 is the headroom), and σ's, which share the tails' information with ν, are strictly smaller.
[<Fact>]
let ``with nu fixed the standard errors do not allow for its estimation`` () =
    let truth = seededTruth ExpertFamily.StudentT
    let data = Sampler.sample truth 4000 12L

    let fit =
        Learner.fit
            { FitConfig.defaults 2 Identity with
                Family = ExpertFamily.StudentT
                DegreesOfFreedom = Some 4.0
                Seed = 3L
            }
            data
            RunContext.silent

    let fixedNu = Inference.standardErrorsWith fit.Model false true false false data
    let estimatedNu = Inference.standardErrorsWith fit.Model false true true false data

    let flat (e: StandardErrors) =
        Array.concat
            [
                Seq.cast<float> e.Regressors |> Array.ofSeq
                e.RegressorIntercepts
                Seq.cast<float> e.Gating |> Array.ofSeq
                e.GatingIntercepts
                e.Sigmas
            ]

    Array.iter2
        (fun (f: float) (e: float) -> Assert.True(f <= e * (1.0 + 1e-6), sprintf "fixed %g > estimated %g" f e))
        (flat fixedNu)
        (flat estimatedNu)

    Array.iter2
        (fun (f: float) (e: float) -> Assert.True(f < e * 0.999, sprintf "sigma: fixed %g, estimated %g" f e))
        fixedNu.Sigmas
        estimatedNu.Sigmas
