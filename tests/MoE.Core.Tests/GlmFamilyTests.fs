/// The generalised-linear expert families (Model/Families/Canonical.fs, Poisson.fs, Bernoulli.fs; docs/math.md §12):
/// their densities are probability mass functions, the vectorised kernels equal the scalar reference, the gradient
/// equals central differences, a careful EM step never lowers the likelihood, the sampler draws the distribution it
/// names, a fit recovers seeded truth, and on public data the defaults reach R flexmix's log-likelihood.
module MoE.Core.Tests.GlmFamilyTests

open System
open System.IO
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open MoE.Core
open MoE.Core.Tests.Tolerance
open MoE.Core.Tests.Generators

type GlmCase =
    {
        Model: MoeModel
        X: float[,]
        Y: float[]
    }

    override this.ToString() =
        sprintf
            "%s k=%d d=%d n=%d\n%s"
            this.Model.Family.Name
            this.Model.Experts
            this.Model.Dimension
            this.Y.Length
            (ModelJson.serialize this.Model)

let private glmModel (family: ExpertFamily) (a: float[,]) (b: float[]) (w: float[,]) (c: float[]) =
    MoeModel.createWith (Design.shared (a.GetLength 1)) family a b w c Identity (Array.create (a.GetLength 0) 1.0)

/// A Poisson or Bernoulli model (k ≤ 4, d ≤ 5, linear predictors of order 1, so counts of order e^3) and a draw of
/// 1..700 rows from it: several 256-row blocks and a ragged tail.
let private glmCases: Arbitrary<GlmCase> =
    gen {
        let! family = Gen.elements [ ExpertFamily.Poisson; ExpertFamily.Bernoulli ]
        let! k = Gen.choose (2, 4)
        let! d = Gen.choose (1, 5)
        let! a = matrix k d -1.0 1.0
        let! b = vector k -1.0 2.0
        let! w = matrix (k - 1) d -1.5 1.5
        let! c = vector (k - 1) -1.0 1.0
        let! n = Gen.choose (1, 700)
        let! seed = Gen.choose (1, 1_000_000)
        let model = glmModel family a b w c
        let data = Sampler.sample model n (int64 seed)

        return
            {
                Model = model
                X = data.X
                Y = data.Y
            }
    }
    |> Arb.fromGen

[<Fact>]
let ``the family names parse, and a GLM expert refuses an activation other than the identity`` () =
    Assert.Equal(ExpertFamily.Poisson, ExpertFamily.parse "Poisson")
    Assert.Equal(ExpertFamily.Bernoulli, ExpertFamily.parse "bernoulli")
    let a, w = array2D [ [ 1.0 ]; [ -1.0 ] ], array2D [ [ 0.5 ] ]

    let e =
        Assert.Throws<ArgumentException>(fun () ->
            MoeModel.createWith (Design.shared 1) ExpertFamily.Poisson a [| 0.0; 0.0 |] w [| 0.0 |] Relu [| 1.0; 1.0 |]
            |> ignore)

    Assert.Equal("activation", e.ParamName)
    Assert.Contains("must be identity, not relu", e.Message)

    let e =
        Assert.Throws<ArgumentException>(fun () ->
            FitConfig.validate
                { FitConfig.defaults 2 Tanh with
                    Family = ExpertFamily.Bernoulli
                })

    Assert.Equal("Activation", e.ParamName)

    let e =
        Assert.Throws<ArgumentException>(fun () ->
            FitConfig.validate
                { FitConfig.defaults 2 Identity with
                    Family = ExpertFamily.Poisson
                    Sigma = Some 0.5
                })

    Assert.Equal("Sigma", e.ParamName)
    // The family's own parameters: none.
    Assert.Equal(2L * 2L + 2L, ExpertFamily.parameterCount ExpertFamily.Poisson 2 2 2 false)

/// Σ_y f(y | η) = 1. Poisson: summed to μ + 40√μ + 60, beyond which the tail is below 1e-30 of the total. Each
/// log f = y·η − μ − log y! cancels terms of size ~μ(1 + |η|) down to O(1), so its rounding is a few ε·μ(1 + |η|) and
/// e^(log f) carries that relative error (measured 4.8e-13 at η = 7, μ = 1097); the bound 1e-13 + 20ε·μ(1 + |η|)
/// leaves ~10× headroom and is still 1e-11 at η = 7, where a wrong term would be off by O(1). Bernoulli:
/// two terms, each through one exp and one log: 1e-15 would do; Tolerance.exact (1e-12) is the named bound.
[<Fact>]
let ``the GLM densities are probability mass functions`` () =
    for eta in [ -6.0; -2.5; -0.3; 0.0; 0.7; 2.0; 4.5; 7.0 ] do
        let mu = exp eta
        let top = int (mu + 40.0 * sqrt mu + 60.0)

        let total =
            Seq.sum (seq { for y in 0..top -> exp (Poisson.logDensity (float y) eta) })

        let cancellation = 20.0 * 2.220446049250313e-16 * mu * (1.0 + abs eta)
        assertClose (1e-13 + cancellation) 1.0 total (sprintf "Poisson, eta = %g" eta)

    for eta in [ -40.0; -5.0; -0.1; 0.0; 0.1; 5.0; 40.0 ] do
        let total = exp (Bernoulli.logDensity 0.0 eta) + exp (Bernoulli.logDensity 1.0 eta)

        assertClose exact 1.0 total (sprintf "Bernoulli, eta = %g" eta)
        // The stable form: log(1 + e^η) without overflow, and log f(1 | η) = −log(1 + e^−η).
        Assert.True(Double.IsFinite(Bernoulli.logDensity 1.0 (-800.0)))
        assertClose exact -800.0 (Bernoulli.logDensity 1.0 -800.0) "log f(1 | -800)"

/// log y! against MathNet's GammaLn: the table sums exact logs (a rounding per term, ~1e-16·log y! per term) and the
/// series past 256 is below 1e-17 relative; 1e-14 relative is a few dozen ulp and catches a wrong coefficient
/// (the series' next term alone is 1e-13 at y = 256).
[<Fact>]
let ``log y! is exact to rounding on both sides of the table`` () =
    for y in Seq.append (seq { 0..600 }) [ 1000; 12345; 1_000_000; 1_000_000_000 ] do
        let expected = MathNet.Numerics.SpecialFunctions.GammaLn(float y + 1.0)
        let actual = Canonical.logFactorial (float y)

        Assert.True(
            abs (actual - expected) <= 1e-14 * max 1.0 (abs expected),
            sprintf "y = %d: %.17g, %.17g" y actual expected
        )

/// The lanes against the scalar reference (MoeModel.logLikelihood, row by row): Tolerance.reorderedSum.
[<Property>]
let ``the kernels' likelihood and posterior equal the scalar reference for GLM experts`` () =
    Prop.forAll glmCases (fun c -> Numerics.kernelsEqualReference c.Model c.X c.Y)

/// The analytic gradient in (a_i, b_i, w_j, c_j) against central differences of the scalar log-likelihood
/// (Numerics.fdGradient's step; Tolerance.gradientCheck, 1e-6 of the gradient's scale).
[<Property(MaxTest = 40)>]
let ``the GLM likelihood's gradient equals central differences`` () =
    Prop.forAll glmCases (fun c ->
        let m = c.Model
        let k, d = m.Experts, m.Dimension
        let p = d + 1
        // θ as a 1×(k·p + (k−1)·p) matrix, in the kernel's layout.
        let theta =
            Array2D.init 1 (k * p + (k - 1) * p) (fun _ t ->
                if t < k * p then
                    let i, j = t / p, t % p

                    if j < d then
                        m.Regressors.[i, j]
                    else
                        m.RegressorIntercepts.[i]
                else
                    let u = t - k * p
                    let i, j = u / p, u % p
                    if j < d then m.Gating.[i, j] else m.GatingIntercepts.[i])

        let modelOf (v: float[,]) =
            glmModel
                m.Family
                (Array2D.init k d (fun i j -> v.[0, i * p + j]))
                (Array.init k (fun i -> v.[0, i * p + d]))
                (Array2D.init (k - 1) d (fun i j -> v.[0, k * p + i * p + j]))
                (Array.init (k - 1) (fun i -> v.[0, k * p + i * p + d]))

        let _, gradient = LikelihoodKernel.valueAndGradient m true c.X c.Y
        let analytic = Array2D.init 1 (theta.GetLength 1) (fun _ t -> gradient.[t])

        let numeric =
            Numerics.fdGradient (fun v -> MoeModel.logLikelihood (modelOf v) c.X c.Y) theta

        Numerics.gradientsAgree analytic numeric)

/// A careful EM step (the IRLS direction halved until the expert's part of Q does not grow, the gate's Newton step
/// likewise) is a generalised EM step: the likelihood does not fall (Tolerance.likelihoodDrop of |LL|).
[<Property(MaxTest = 60)>]
let ``a careful EM step never lowers a GLM mixture's likelihood`` () =
    Prop.forAll glmCases (fun c ->
        let settings =
            { EmSettings.paper false 1 0.0 with
                FitIntercepts = true
            }

        let before = MoeModel.logLikelihood c.Model c.X c.Y
        let next = Em.stepWith settings c.Model c.X c.Y
        let after = MoeModel.logLikelihood next c.X c.Y
        Assert.Equal(c.Model.Family, next.Family)
        Assert.True(after >= before - likelihoodDrop * abs before, sprintf "%.12g -> %.12g" before after))

/// 200,000 draws per mean, on both sides of the sampler's switch at μ = 10 (inversion below, PTRS above): the mean,
/// the variance and P(Y = j) near the mode within 5 standard errors (a false alarm about once in 3·10⁶ per check).
[<Fact>]
let ``the Poisson sampler draws Poisson counts`` () =
    let n = 200_000

    for mu in [ 0.3; 4.0; 9.99; 10.0; 25.0; 300.0 ] do
        let rng = Xoshiro256StarStar.FromSeed(uint64 (mu * 1000.0))
        let draws = Array.init n (fun _ -> Poisson.draw mu rng)
        Assert.All(draws, fun v -> Assert.True(v >= 0.0 && v = Math.Floor v))
        let mean = Array.average draws
        let var = Array.averageBy (fun v -> (v - mean) * (v - mean)) draws
        Assert.True(abs (mean - mu) <= 5.0 * sqrt (mu / float n), sprintf "mu = %g: mean %g" mu mean)

        Assert.True(
            abs (var - mu) <= 5.0 * sqrt ((mu + 2.0 * mu * mu) / float n),
            sprintf "mu = %g: variance %g" mu var
        )

        let mode = Math.Floor mu

        for j in [ mode - 1.0; mode; mode + 1.0 ] do
            if j >= 0.0 then
                let p = exp (Poisson.logDensity j (log mu))

                let observed =
                    float (draws |> Array.filter (fun v -> v = j) |> Array.length) / float n

                Assert.True(
                    abs (observed - p) <= 5.0 * sqrt (p * (1.0 - p) / float n),
                    sprintf "mu = %g: P(Y = %g) %g, expected %g" mu j observed p
                )

/// Seeded recovery: k = 2, d = 3, intercepts, free gating, n = 20,000; the defaults (random starts screened by
/// held-out likelihood, EM, L-BFGS) find the truth to E_reg, E_gating ≤ 0.01 — the issue's success rule.
[<Theory>]
[<InlineData("poisson")>]
[<InlineData("bernoulli")>]
let ``the defaults recover seeded GLM experts`` (family: string) =
    let family = ExpertFamily.parse family

    let a =
        if family = ExpertFamily.Poisson then
            array2D [ [ 0.8; -0.4; 0.3 ]; [ -0.5; 0.6; 0.2 ] ]
        else
            array2D [ [ 2.5; -1.5; 1.0 ]; [ -2.0; 2.0; 1.5 ] ]

    let truth =
        glmModel family a [| 1.0; -0.5 |] (array2D [ [ 1.5; 1.0; -1.0 ] ]) [| 0.3 |]

    let n = if family = ExpertFamily.Poisson then 20_000 else 100_000
    let data = Sampler.sample truth n 11L

    let fit =
        Learner.fit
            { FitConfig.defaults 2 Identity with
                Family = family
                Seed = 3L
            }
            data
            RunContext.silent

    Assert.Equal(family, fit.Model.Family)
    let errors = Metrics.compare fit.Model truth

    Assert.True(
        errors.RegressorError <= 0.01 && errors.GatingError <= 0.01,
        sprintf
            "%s: E_reg %g, E_gating %g\n%s"
            family.Name
            errors.RegressorError
            errors.GatingError
            (ModelJson.serialize fit.Model)
    )

    // The fit is at least as likely as the truth (the maximum of the likelihood, up to its tolerance).
    let llFit = MoeModel.logLikelihood fit.Model data.X data.Y
    let llTruth = MoeModel.logLikelihood truth data.X data.Y
    Assert.True(llFit >= llTruth - 1e-6 * abs llTruth, sprintf "fit %.6f, truth %.6f" llFit llTruth)

let private load (name: string) =
    DataCsv.load (Path.Combine(AppContext.BaseDirectory, "data", name))

/// flexmix's FLXMRglm fits of NPreg (tests/data/README.md), best of 20 starts: the defaults reach them less 0.05
/// nats from every seed of 1–5, with no expert on fewer rows than its parameters.
[<Theory>]
[<InlineData("npreg-poisson.csv", "poisson", -440.5527)>]
[<InlineData("npreg-bernoulli.csv", "bernoulli", -138.1849)>]
let ``the defaults reach flexmix's GLM fits on NPreg from every seed``
    (file: string)
    (family: string)
    (reference: float)
    =
    let data = load file

    for seed in 1L .. 5L do
        let fit =
            Learner.fit
                { FitConfig.defaults 2 Identity with
                    Family = ExpertFamily.parse family
                    Seed = seed
                }
                data
                RunContext.silent

        let ll = MoeModel.logLikelihood fit.Model data.X data.Y

        Assert.True(
            ll >= reference - 0.05,
            sprintf "%s seed %d: log-likelihood %.4f, flexmix %.4f" file seed ll reference
        )

        let post = MoeModel.responsibilities fit.Model data.X data.Y

        for i in 0..1 do
            let size = Seq.sum (seq { for r in 0 .. data.Count - 1 -> post.[r, i] })
            Assert.True(size >= 3.0, sprintf "%s seed %d: expert %d holds %.2f rows" file seed i size)

[<Fact>]
let ``a GLM model file names its family and no noise level, and reads back to the same model`` () =
    let model =
        glmModel
            ExpertFamily.Poisson
            (array2D [ [ 0.5; -1.0 ]; [ 2.0; 0.25 ] ])
            [| 1.0; -2.0 |]
            (array2D [ [ 0.5; 1.0 ] ])
            [| 0.1 |]

    let json = ModelJson.serialize model
    Assert.Contains("\"family\": \"poisson\"", json)
    Assert.DoesNotContain("sigma", json)
    let back = ModelJson.deserialize json
    Assert.Equal(ExpertFamily.Poisson, back.Family)
    Assert.Equal<float[]>([| 1.0; 1.0 |], back.Sigmas)
    Assert.Equal(json, ModelJson.serialize back)
    // The prediction is the mixture of the experts' mean responses e^η.
    let x = array2D [ [ 0.3; -0.7 ] ]
    let p = Inference.predict model 0.9 x
    let gate = MoeModel.gateProbabilities model x

    let eta i =
        model.Regressors.[i, 0] * 0.3
        + model.Regressors.[i, 1] * -0.7
        + model.RegressorIntercepts.[i]

    assertClose exact (exp (eta 0)) p.ExpertMeans.[0, 0] "expert mean"
    assertClose exact (gate.[0, 0] * exp (eta 0) + gate.[0, 1] * exp (eta 1)) p.Mean.[0] "mean"
    // Count quantiles are whole numbers.
    Assert.Equal(Math.Round p.Lower.[0], p.Lower.[0])
    Assert.Equal(Math.Round p.Upper.[0], p.Upper.[0])
    Assert.True(p.Lower.[0] <= p.Mean.[0] && p.Mean.[0] <= p.Upper.[0])

/// The separation guard's objective, LL − λ‖θ‖²/2 over every coefficient (docs/math.md §12.3), and its gradient
/// against central differences of its value (Numerics.fdGradient; Tolerance.gradientCheck).
[<Property(MaxTest = 30)>]
let ``the guarded objective's gradient equals central differences`` () =
    Prop.forAll glmCases (fun c ->
        let settings =
            { EmSettings.paper false 1 0.0 with
                FitIntercepts = true
                CoefficientPrior = Some Degeneracy.SeparationPrecision
            }

        let theta = Likelihood.pack settings c.Model

        let value (v: float[,]) =
            fst (
                Likelihood.objective
                    settings
                    (Likelihood.unpack settings c.Model (Array.init theta.Length (fun t -> v.[0, t])))
                    c.X
                    c.Y
            )

        let _, gradient = Likelihood.objective settings c.Model c.X c.Y
        let plain, _ = LikelihoodKernel.valueAndGradient c.Model true c.X c.Y
        // The prior's part is exactly −λ‖θ‖²/2.
        assertClose
            reorderedSum
            (plain
             - 0.5 * Degeneracy.SeparationPrecision * Array.sumBy (fun v -> v * v) theta)
            (value (Array2D.init 1 theta.Length (fun _ t -> theta.[t])))
            "guarded value"

        Numerics.gradientsAgree
            (Array2D.init 1 theta.Length (fun _ t -> gradient.[t]))
            (Numerics.fdGradient value (Array2D.init 1 theta.Length (fun _ t -> theta.[t]))))

/// Pima (tests/data/README.md): one logistic regression is flexmix's k = 1 fit (−233.1611, the same maximum of a
/// concave likelihood: 1e-4 is flexmix's printed precision), BIC prefers it as flexmix's does, and the mixtures of
/// k = 2 and 3, whose plain likelihood separates (flexmix: "fitted probabilities numerically 0 or 1"), come back
/// guarded: a warning, and coefficients that stay finite and moderate.
[<Fact>]
let ``on Pima one logistic regression is flexmix's, and the separating mixtures are guarded`` () =
    let data = load "pima.csv"

    let config =
        { FitConfig.defaults 2 Identity with
            Family = ExpertFamily.Bernoulli
        }

    let choices = Inference.selectExperts config [| 1; 2 |] data RunContext.silent
    assertClose 1e-6 -233.1611 choices.[0].LogLikelihood "k = 1 log-likelihood"
    Assert.Equal(8, choices.[0].Parameters)
    Assert.Equal(24, choices.[1].Parameters)
    Assert.Equal(1, fst (Inference.choose choices))
    let guarded = choices.[1]
    Assert.True(Inference.isDegenerate guarded)
    Assert.Contains(guarded.Warnings, fun w -> w.Message.Contains "complete separation")
    let model = guarded.Model.Value
    // In standardised units (slope × the covariate's sd) the posterior mode's slopes stay within a few prior sds.
    let sds = Diagnosis.columns data |> Array.map _.Sd

    for i in 0 .. model.Experts - 1 do
        for t in 0 .. model.Dimension - 1 do
            let standardised = abs (model.Regressors.[i, t] * sds.[t])
            Assert.True(standardised < 25.0, sprintf "expert %d, x%d: %g per sd" (i + 1) (t + 1) standardised)

[<Fact>]
let ``standard errors of a GLM fit are finite and positive, and name no noise level`` () =
    let data = load "npreg-poisson.csv"

    let fit =
        Learner.fit
            { FitConfig.defaults 2 Identity with
                Family = ExpertFamily.Poisson
            }
            data
            RunContext.silent

    let se = Inference.standardErrors fit.Model false true false data.X data.Y
    Assert.Empty(se.Sigmas)
    Assert.All(Seq.cast<float> se.Regressors, fun v -> Assert.True(v > 0.0 && Double.IsFinite v))
    Assert.All(se.RegressorIntercepts, fun v -> Assert.True(v > 0.0 && Double.IsFinite v))
