/// Binomial experts (Model/Families/Binomial.fs; docs/math.md §12.5): y successes out of each row's n trials, the
/// trials a column of the data. The density is a probability mass function and Binomial's, with one trial it is the
/// Bernoulli expert bit for bit, the kernels equal the scalar reference, the gradient equals central differences, a
/// careful EM step never lowers the likelihood, the sampler draws Binomial(n, μ), a fit recovers seeded truth in memory
/// and in passes alike, and the data check names the row whose successes exceed its trials.
module MoE.Core.Tests.BinomialTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open MoE.Core
open MoE.Core.Tests.Tolerance
open MoE.Core.Tests.Generators

type BinomialCase =
    {
        Model: MoeModel
        X: float[,]
        Y: float[]
    }

    override this.ToString() =
        sprintf
            "k=%d m=%d n=%d\n%s"
            this.Model.Experts
            this.Model.Dimension
            this.Y.Length
            (ModelJson.serialize this.Model)

/// A binomial model over d covariates and a last input column of trials.
let private binomialModel (a: float[,]) (b: float[]) (w: float[,]) (c: float[]) =
    MoeModel.createGeneral a b w c Identity (Array.create (a.GetLength 0) 1.0)
    |> MoeModel.withTrialsColumn

/// A binomial model (k ≤ 4, d ≤ 4, linear predictors of order 1) and a draw of 1..700 rows with trials of 1 to ~30.
let private binomialCases: Arbitrary<BinomialCase> =
    gen {
        let! k = Gen.choose (2, 4)
        let! d = Gen.choose (1, 4)
        let! a = matrix k d -1.0 1.0
        let! b = vector k -1.0 1.0
        let! w = matrix (k - 1) d -1.5 1.5
        let! c = vector (k - 1) -1.0 1.0
        let! n = Gen.choose (1, 700)
        let! seed = Gen.choose (1, 1_000_000)
        let model = binomialModel a b w c
        let data = Sampler.sample model n (int64 seed)

        return
            {
                Model = model
                X = data.X
                Y = data.Y
            }
    }
    |> Arb.fromGen

/// Σ_y f(y | n, η) = 1 over 0..n, and each term is MathNet's Binomial PMF (log C(n, y) from the same exact table up to
/// 255, Stirling beyond: 1e-12 relative).
[<Fact>]
let ``the binomial density is a probability mass function and Binomial's`` () =
    for n in [ 1.0; 7.0; 40.0; 300.0 ] do
        for eta in [ -3.0; -0.4; 0.0; 1.2; 5.0 ] do
            let terms = Array.init (int n + 1) (fun y -> Binomial.logDensity (float y) n eta)
            assertClose 1e-12 1.0 (terms |> Array.sumBy exp) (sprintf "n %g eta %g: total" n eta)

            for y in [ 0; int n / 3; int n ] do
                let expected =
                    MathNet.Numerics.Distributions.Binomial.PMFLn(DetMath.sigmoid eta, int n, y)

                assertClose 1e-11 expected terms.[y] (sprintf "n %g eta %g y %d" n eta y)

/// With one trial per row the binomial expert is the Bernoulli one: the same log-likelihood, bit for bit (n·x = x and
/// log C(1, y) = 0 exactly).
[<Fact>]
let ``with one trial per row a binomial mixture is the Bernoulli mixture, bit for bit`` () =
    let a, w = array2D [ [ 1.5; -0.5 ]; [ -1.0; 2.0 ] ], array2D [ [ 0.7; -0.3 ] ]

    let bernoulli =
        MoeModel.createGeneral a [| 0.2; -0.4 |] w [| 0.1 |] Identity [| 1.0; 1.0 |]
        |> MoeModel.withFamily ExpertFamily.Bernoulli

    let data = Sampler.sample bernoulli 2_000 4L
    let binomial = binomialModel a [| 0.2; -0.4 |] w [| 0.1 |]
    let x1 = Array2D.init data.Count 3 (fun r t -> if t < 2 then data.X.[r, t] else 1.0)
    let expected = LikelihoodKernel.logLikelihood bernoulli data.X data.Y

    Assert.Equal(
        BitConverter.DoubleToInt64Bits expected,
        BitConverter.DoubleToInt64Bits(LikelihoodKernel.logLikelihood binomial x1 data.Y)
    )

    Assert.Equal(MoeModel.logLikelihood bernoulli data.X data.Y, MoeModel.logLikelihood binomial x1 data.Y)

[<Property(MaxTest = 60)>]
let ``the kernels' likelihood and posterior equal the scalar reference for binomial experts`` () =
    Prop.forAll binomialCases (fun c -> Numerics.kernelsEqualReference c.Model c.X c.Y)

/// The analytic gradient in (a_i, b_i, w_j, c_j) — the score r·(y − nμ) — against central differences of the scalar
/// log-likelihood (Numerics.fdGradient's step; Tolerance.gradientCheck).
[<Property(MaxTest = 40)>]
let ``the binomial likelihood's gradient equals central differences`` () =
    Prop.forAll binomialCases (fun c ->
        let m = c.Model
        let k, d = m.Experts, m.ExpertDimension
        let p = d + 1

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
            binomialModel
                (Array2D.init k d (fun i j -> v.[0, i * p + j]))
                (Array.init k (fun i -> v.[0, i * p + d]))
                (Array2D.init (k - 1) d (fun i j -> v.[0, k * p + i * p + j]))
                (Array.init (k - 1) (fun i -> v.[0, k * p + i * p + d]))

        let _, gradient = LikelihoodKernel.valueAndGradient m true c.X c.Y
        let analytic = Array2D.init 1 (theta.GetLength 1) (fun _ t -> gradient.[t])

        let numeric =
            Numerics.fdGradient (fun v -> MoeModel.logLikelihood (modelOf v) c.X c.Y) theta

        Numerics.gradientsAgree analytic numeric)

/// A careful EM step (the IRLS direction with weights r·nμ(1 − μ), halved until the expert's part of Q does not grow)
/// never lowers the likelihood (Tolerance.likelihoodDrop of |LL|).
[<Property(MaxTest = 60)>]
let ``a careful EM step never lowers a binomial mixture's likelihood`` () =
    Prop.forAll binomialCases (fun c ->
        let settings =
            { EmSettings.paper false 1 0.0 with
                FitIntercepts = true
            }

        let before = MoeModel.logLikelihood c.Model c.X c.Y
        let next = Em.stepWith settings c.Model c.X c.Y
        let after = MoeModel.logLikelihood next c.X c.Y
        Assert.Equal(ExpertFamily.Binomial, next.Family)
        Assert.True(after >= before - likelihoodDrop * abs before, sprintf "%.12g -> %.12g" before after))

/// 200,000 draws per (n, μ), on both sides of ½ (the inversion counts from the nearer end): the mean nμ and variance
/// nμ(1 − μ) within 5 standard errors, every draw a whole number in [0, n].
[<Fact>]
let ``the binomial sampler draws Binomial(n, mu)`` () =
    let draws = 200_000

    for n, mu in [ 1.0, 0.3; 12.0, 0.05; 12.0, 0.8; 150.0, 0.5; 40.0, 0.97 ] do
        let rng = Xoshiro256StarStar.FromSeed(uint64 (n * 1000.0 + mu * 100.0))
        let y = Array.init draws (fun _ -> Binomial.draw n mu rng)
        Assert.All(y, fun v -> Assert.True(v >= 0.0 && v <= n && v = Math.Floor v))
        let mean = Array.average y
        let var = Array.averageBy (fun v -> (v - mean) * (v - mean)) y
        let v = n * mu * (1.0 - mu)
        Assert.True(abs (mean - n * mu) <= 5.0 * sqrt (v / float draws), sprintf "n %g mu %g: mean %g" n mu mean)
        // The variance's own variance is ≈ 2v²/N for these near-normal counts (μ₄ ≈ 3v²), generously 4v²/N.
        Assert.True(abs (var - v) <= 5.0 * sqrt (4.0 * v * v / float draws), sprintf "n %g mu %g: variance %g" n mu var)

/// Seeded recovery: k = 2, d = 3, intercepts, free gating, trials of 3 to 30 (round(10·e^(z/2))), 20,000 rows; the
/// defaults find the truth to E_reg, E_gating ≤ 0.01, and a fit in passes (at most 7,000 rows in memory) is the same
/// fit, bit for bit.
[<Fact>]
let ``the defaults recover seeded binomial experts, in memory and in passes alike`` () =
    let truth =
        binomialModel
            (array2D [ [ 0.8; -0.4; 0.3 ]; [ -0.5; 0.6; 0.2 ] ])
            [| 1.0; -0.5 |]
            (array2D [ [ 1.5; 1.0; -1.0 ] ])
            [| 0.3 |]

    let data = Sampler.sample truth 20_000 11L

    let config =
        { FitConfig.defaults 2 Identity with
            Family = ExpertFamily.Binomial
            Design = Some truth.Design
            Seed = 3L
        }

    let fit = Learner.fit config data RunContext.silent
    let errors = Metrics.compare fit.Model truth

    Assert.True(
        errors.RegressorError <= 0.01 && errors.GatingError <= 0.01,
        sprintf "E_reg %g, E_gating %g\n%s" errors.RegressorError errors.GatingError (ModelJson.serialize fit.Model)
    )

    let llFit = MoeModel.logLikelihood fit.Model data.X data.Y
    let llTruth = MoeModel.logLikelihood truth data.X data.Y
    Assert.True(llFit >= llTruth - 1e-6 * abs llTruth, sprintf "fit %.6f, truth %.6f" llFit llTruth)

    let streamed =
        Learner.fitSource config (DataSource.ofDataset data) 7_000 RunContext.silent

    Assert.Equal(ModelJson.serialize fit.Model, ModelJson.serialize streamed.Model)

    // The model file names the family and the trials' column, and reads back to the same model.
    let json = ModelJson.serialize fit.Model
    Assert.Contains("\"family\": \"binomial\"", json)
    Assert.Contains("\"offsetInput\": 3", json)
    Assert.Equal(json, ModelJson.serialize (ModelJson.deserialize json))

    // Predictions: the means are probabilities of a success; the interval is of the row's successes, within [0, n].
    let p = Inference.predict fit.Model 0.9 data.X

    for r in 0..99 do
        Assert.InRange(p.Mean.[r], 0.0, 1.0)
        Assert.InRange(p.Lower.[r], 0.0, data.X.[r, 3])
        Assert.InRange(p.Upper.[r], p.Lower.[r], data.X.[r, 3])

[<Fact>]
let ``the data check names a row whose successes exceed its trials, and binomial experts need their trials`` () =
    let truth =
        binomialModel (array2D [ [ 0.8 ]; [ -0.5 ] ]) [| 1.0; -0.5 |] (array2D [ [ 1.5 ] ]) [| 0.3 |]

    let data = Sampler.sample truth 500 2L
    data.Y.[41] <- data.X.[41, 1] + 1.0

    let config =
        { FitConfig.defaults 2 Identity with
            Family = ExpertFamily.Binomial
            Design = Some truth.Design
        }

    let e =
        Assert.ThrowsAny<Exception>(fun () -> Learner.fit config data RunContext.silent |> ignore)

    Assert.Contains("data row 42", e.Message)
    Assert.Contains("from 0 to the row's trials", e.Message)

    let e =
        Assert.Throws<ArgumentException>(fun () -> FitConfig.validate { config with Design = None })

    Assert.Contains("name the trials column", e.Message)

/// The coverage study's split design for binomial experts: the gate on x3, the experts on x1, x2, the trials in x4,
/// and one replicate runs end to end (before, the split truth had no trials column and the study stopped).
[<Fact>]
let ``the coverage study's gate-apart truth reads its trials from a fourth column`` () =
    let truth = Coverage.splitTruthOf ExpertFamily.Binomial
    Assert.Equal(3, truth.Design.OffsetColumn)
    Assert.Equal<int[]>([| 2 |], truth.Design.GateColumns)
    Assert.Equal<int[]>([| 0; 1 |], truth.Design.ExpertColumns)
    let data = Sampler.sample truth 200 5L

    for r in 0..199 do
        Assert.InRange(data.Y.[r], 0.0, data.X.[r, 3])

    let rows = Coverage.runDesign ExpertFamily.Binomial true 2 1000 0.95 false ignore

    Assert.NotEmpty(rows)
