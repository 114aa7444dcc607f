/// An exposure column (docs/math.md §12.4): a count's mean is t·e^η, so log t enters every expert's linear predictor as
/// an offset with no coefficient. The kernels must treat it as a covariate whose coefficient is pinned at 1, the fit
/// must recover the rates per unit of exposure, the model file must remember the column, and a non-positive exposure
/// must be refused naming its row.
[<FsCheck.Xunit.Properties(MaxTest = 60)>]
module MoE.Core.Tests.ExposureTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open MoE.Core
open MoE.Core.Tests.Tolerance

/// A Poisson model of m covariates plus an exposure column (the last input), its rows drawn by the sampler (log t ~
/// N(0, 1)), and the same model written with log t as a last covariate of the experts pinned at coefficient 1.
type ExposureCase =
    {
        Model: MoeModel
        Data: Dataset
        Pinned: MoeModel
        PinnedData: Dataset
    }

    override this.ToString() =
        sprintf
            "k=%d m=%d n=%d\n%s"
            this.Model.Experts
            this.Model.Dimension
            this.Data.Count
            (ModelJson.serialize this.Model)

/// Up to 600 rows: several 256-row blocks and a ragged tail, so the offset meets every kernel's block and tail code.
let private exposureCase: Gen<ExposureCase> =
    gen {
        let! m = Gen.choose (1, 4)
        let! k = Gen.choose (2, 4)
        let! a = Generators.matrix k m -0.8 0.8
        let! w = Generators.matrix (k - 1) m -1.5 1.5
        let! b = Generators.vector k -1.0 1.0
        let! c = Generators.vector (k - 1) -1.0 1.0
        let! n = Gen.choose (1, 600)
        let! seed = Gen.choose (1, 1_000_000)
        let columns = Array.init m id

        let model =
            MoeModel.createWith
                (Design.create (m + 1) columns columns |> Design.withOffset m)
                ExpertFamily.Poisson
                a
                b
                w
                c
                Identity
                (Array.create k 1.0)

        let data = Sampler.sample model n (int64 seed)

        // The offset as a covariate: column m holds log t, and every expert reads it with coefficient 1.
        let pinned =
            MoeModel.createWith
                (Design.create (m + 1) (Array.init (m + 1) id) columns)
                ExpertFamily.Poisson
                (Array2D.init k (m + 1) (fun i t -> if t < m then a.[i, t] else 1.0))
                b
                w
                c
                Identity
                (Array.create k 1.0)

        let logged =
            Array2D.init n (m + 1) (fun r t -> if t < m then data.X.[r, t] else DetMath.log data.X.[r, t])

        return
            {
                Model = model
                Data = data
                Pinned = pinned
                PinnedData = Dataset.create logged data.Y
            }
    }

let private cases = Arb.fromGen exposureCase

/// Equal up to the rounding of η formed in another order (⟨a, x⟩ + b + log t against ⟨a, x⟩ + 1·log t + b: a few ulps
/// of each η, carried into e^η and summed over ≤ 600 rows); reorderedSum's 1e-10 of the largest entry keeps a wide
/// margin, while an offset left out of one row moves the sums by that row's log t, ≥ 1e-6 of the total here.
let private sameSums (expected: float[]) (actual: float[]) (what: string) =
    Assert.Equal(expected.Length, actual.Length)
    let scale = 1.0 + (expected |> Array.map abs |> Array.fold max 0.0)

    for i in 0 .. expected.Length - 1 do
        if abs (expected.[i] - actual.[i]) > reorderedSum * scale then
            failwithf "%s[%d]: pinned covariate %.17g, exposure %.17g" what i expected.[i] actual.[i]

[<Property>]
let ``an exposure is a covariate log t whose coefficient is pinned at 1, in the kernels and in the scalar rows`` () =
    Prop.forAll cases (fun c ->
        let m = c.Model.ExpertDimension
        let p = m + 1
        let v, g = LikelihoodKernel.valueAndGradient c.Model true c.Data.X c.Data.Y

        let v2, g2 =
            LikelihoodKernel.valueAndGradient c.Pinned true c.PinnedData.X c.PinnedData.Y
        // The pinned model's expert blocks are [a | 1 | b], p + 1 wide: drop the pinned coefficient's entry.
        let k = c.Model.Experts

        let g2 =
            Array.append
                (Array.init (k * p) (fun j ->
                    let i, t = j / p, j % p
                    g2.[i * (p + 1) + (if t < m then t else t + 1)]))
                (Array.sub g2 (k * (p + 1)) (g2.Length - k * (p + 1)))

        sameSums (Array.append [| v2 |] g2) (Array.append [| v |] g) "log-likelihood and gradient"

        let scalar = MoeModel.logLikelihood c.Model c.Data.X c.Data.Y
        sameSums [| v |] [| scalar |] "kernel against the scalar rows"

        sameSums [| MoeModel.logLikelihood c.Pinned c.PinnedData.X c.PinnedData.Y |] [| scalar |] "scalar rows"

        let mean2 = MoeModel.predict c.Pinned c.PinnedData.X
        let mean = MoeModel.predict c.Model c.Data.X
        sameSums mean2 mean "predicted means")

[<Property>]
let ``a constant exposure c is the intercepts moved by log c`` () =
    Prop.forAll cases (fun c ->
        let exposure = 0.37
        let o = c.Model.Design.OffsetColumn

        let x =
            Array2D.init c.Data.Count c.Model.Dimension (fun r t -> if t = o then exposure else c.Data.X.[r, t])

        let moved =
            MoeModel.createWith
                (Design.create c.Model.Dimension c.Model.Design.ExpertColumns c.Model.Design.GateColumns)
                ExpertFamily.Poisson
                c.Model.Regressors
                (c.Model.RegressorIntercepts |> Array.map (fun b -> b + Math.Log exposure))
                c.Model.Gating
                c.Model.GatingIntercepts
                Identity
                c.Model.Sigmas

        let v, g = LikelihoodKernel.valueAndGradient c.Model true x c.Data.Y
        let v2, g2 = LikelihoodKernel.valueAndGradient moved true x c.Data.Y
        sameSums (Array.append [| v2 |] g2) (Array.append [| v |] g) "log-likelihood and gradient")

/// Two Poisson experts on x1, x2 with a gate on x1 and an exposure t (input 2).
let private truth =
    MoeModel.createWith
        (Design.create 3 [| 0; 1 |] [| 0; 1 |] |> Design.withOffset 2)
        ExpertFamily.Poisson
        (array2D [ [ 0.8; -0.4 ]; [ -0.5; 0.7 ] ])
        [| 0.5; -0.3 |]
        (array2D [ [ 1.5; 0.0 ] ])
        [| 0.0 |]
        Identity
        [| 1.0; 1.0 |]

[<Fact>]
let ``a fit with an exposure recovers the rates per unit of exposure, in memory and in passes alike`` () =
    let data = Sampler.sample truth 40_000 8L

    let config =
        { FitConfig.defaults 2 Identity with
            Family = ExpertFamily.Poisson
            Design = Some truth.Design
        }

    let fit = Learner.fit config data RunContext.silent
    let e = Metrics.compare fit.Model truth
    // n = 40,000 counts of mean ~1.6: each coefficient's standard error is ~0.01, so 0.01 in E_reg (a squared-error
    // mean over the 6 expert parameters) is several standard errors, and a fit that ignored log t (whose variance is
    // 1 here) would be off by far more.
    Assert.True(e.RegressorError <= 0.01, sprintf "E_reg %.3g" e.RegressorError)
    Assert.True(e.GatingError <= 0.02, sprintf "E_gating %.3g" e.GatingError)
    Assert.Equal(2, fit.Model.Design.OffsetColumn)

    let ll, llTruth =
        MoeModel.logLikelihood fit.Model data.X data.Y, MoeModel.logLikelihood truth data.X data.Y

    Assert.True(ll >= llTruth, sprintf "log-likelihood %.2f below the truth's %.2f" ll llTruth)

    let streamed =
        Learner.fitSource config (DataSource.ofDataset data) 10_000 RunContext.silent

    Assert.True(streamed.Passes > 1)
    Assert.Equal(ModelJson.serialize fit.Model, ModelJson.serialize streamed.Model)

    // The same counts without their exposures: the fit's intercepts soak up the mean of log t and its likelihood is
    // far lower, so the offset is not a detail.
    let blind =
        Learner.fit
            { config with
                Design = Some(Design.create 3 [| 0; 1 |] [| 0; 1 |])
            }
            data
            RunContext.silent

    Assert.True(
        MoeModel.logLikelihood blind.Model data.X data.Y < ll - 1000.0,
        "leaving the exposure out costs less than 1000 nats"
    )

[<Fact>]
let ``one Poisson regression with an exposure (k = 1 of select) finds its coefficients`` () =
    let one =
        MoeModel.createWith
            (Design.create 2 [| 0 |] [| 0 |] |> Design.withOffset 1)
            ExpertFamily.Poisson
            (array2D [ [ 0.6 ]; [ 0.6 ] ])
            [| -0.2; -0.2 |]
            (array2D [ [ 0.0 ] ])
            [| 0.0 |]
            Identity
            [| 1.0; 1.0 |]

    let data = Sampler.sample one 20_000 3L
    let offsets = Array.init data.Count (fun r -> Math.Log data.X.[r, 1])
    let x = Array2D.init data.Count 1 (fun r _ -> data.X.[r, 0])

    let a, b, _, _, _ =
        SingleRegression.fit ExpertFamily.Poisson Identity true x data.Y null offsets None RunContext.silent

    // n = 20,000 counts of mean ~1.3: standard errors ~0.01; 0.04 is four of them.
    Assert.InRange(a.[0], 0.56, 0.64)
    Assert.InRange(b, -0.24, -0.16)

[<Fact>]
let ``the model file names the exposure column, or its index without names`` () =
    let roundTrip (model: MoeModel) =
        let text = ModelJson.serialize model
        let back = ModelJson.deserialize text
        Assert.Equal(text, ModelJson.serialize back)
        Assert.Equal(model.Design.OffsetColumn, back.Design.OffsetColumn)
        text

    let unnamed = roundTrip truth
    Assert.Contains("\"offsetInput\": 2", unnamed)

    let named =
        MoeModel.createWith
            (truth.Design
             |> Design.withColumns
                 {
                     Inputs = [| "x1"; "x2"; "days" |]
                     Response = "y"
                     Levels = [||]
                 })
            truth.Family
            truth.Regressors
            truth.RegressorIntercepts
            truth.Gating
            truth.GatingIntercepts
            truth.Activation
            truth.Sigmas

    Assert.Contains("\"offsetColumn\": \"days\"", roundTrip named)

    let bad = unnamed.Replace("\"offsetInput\": 2", "\"offsetInput\": 0")
    let e = Assert.ThrowsAny<Exception>(fun () -> ModelJson.deserialize bad |> ignore)
    Assert.Contains("also a covariate", e.Message)

[<Fact>]
let ``roles put the exposure last among the inputs, read by neither part, and refuse it in two roles`` () =
    let header = [| "x1"; "t"; "x2"; "y"; "w" |]

    let design =
        ColumnRoles.resolve
            "f.csv"
            header
            header
            [||]
            { ColumnRoles.defaults with
                Offset = Some "t"
                Weights = Some "w"
            }

    Assert.Equal<string[]>([| "x1"; "x2"; "t" |], design.Columns.Value.Inputs)
    Assert.Equal(2, design.OffsetColumn)
    Assert.Equal<int[]>([| 0; 1 |], design.ExpertColumns)
    Assert.Equal(Some "t", design.OffsetName)

    let refused (roles: ColumnRoles) (words: string) =
        let e =
            Assert.Throws<ArgumentException>(fun () -> ColumnRoles.resolve "f.csv" header header [||] roles |> ignore)

        Assert.Contains(words, e.Message)

    refused
        { ColumnRoles.defaults with
            Offset = Some "t"
            Experts = Some [| "x1"; "t" |]
        }
        "the column 't' is the exposure"

    refused
        { ColumnRoles.defaults with
            Offset = Some "y"
        }
        "is the response"

    refused
        { ColumnRoles.defaults with
            Offset = Some "days"
        }
        "there is no column 'days'"

[<Fact>]
let ``a non-positive exposure is refused naming its row, and only Poisson experts take one`` () =
    let data = Sampler.sample truth 500 2L
    data.X.[41, 2] <- 0.0

    let config =
        { FitConfig.defaults 2 Identity with
            Family = ExpertFamily.Poisson
            Design = Some truth.Design
        }

    let e =
        Assert.ThrowsAny<Exception>(fun () -> Learner.fit config data RunContext.silent |> ignore)

    Assert.Contains("exposure in data row 42 is 0", e.Message)

    let e =
        Assert.Throws<ArgumentException>(fun () -> MoeModel.predict truth data.X |> ignore)

    Assert.Contains("data row 42 is 0", e.Message)

    for family in [ ExpertFamily.Gaussian; ExpertFamily.Bernoulli ] do
        let e =
            Assert.Throws<ArgumentException>(fun () -> FitConfig.validate { config with Family = family })

        Assert.Contains("poisson experts", e.Message)

[<Fact>]
let ``the data report is of the covariates: an exposure column is neither counted nor judged for its skew`` () =
    let data = Sampler.sample truth 2_000 5L
    let report = DataReport.createForDesign ExpertFamily.Poisson 2 truth.Design data
    Assert.Equal(2, report.Dimension)
    Assert.Equal(2, report.Columns.Length)
    // The parameters of two Poisson experts on x1, x2 with intercepts and one gate row: 2·3 + 3.
    Assert.Equal(9L, report.Parameters)
    // log t ~ N(0, 1) makes t log-normal (skewness ~6): a report that judged it would say the covariates are skewed.
    Assert.DoesNotContain(report.Verdict, fun v -> v.Contains "skewness")
