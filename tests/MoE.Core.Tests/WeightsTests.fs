/// Frequency weights (docs/math.md §13): a row of weight w counts w times in every sum, so rows with integer weights
/// give the statistics, the fit, the standard errors and the criteria of the data with each row repeated that many
/// times; weights of 1 change no bit; a bad weight is refused naming its row.
[<FsCheck.Xunit.Properties(MaxTest = 60)>]
module MoE.Core.Tests.WeightsTests

open System
open System.Globalization
open System.IO
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open MoE.Core
open MoE.Core.Tests.Tolerance

/// A model of any design and family with rows and integer weights 0..3 (the first at least 1, so they do not all
/// vanish).
type WeightedCase =
    {
        Model: MoeModel
        Data: Dataset
    }

    override this.ToString() =
        sprintf
            "%s k=%d m=%d n=%d weights=%A\n%s"
            this.Model.Family.Name
            this.Model.Experts
            this.Model.Dimension
            this.Data.Count
            this.Data.Weights
            (ModelJson.serialize this.Model)

let private subset (m: int) =
    gen {
        let! order = Gen.shuffle [| 0 .. m - 1 |]
        let! size = Gen.choose (1, m)
        return Array.sub order 0 size
    }

/// Up to 600 rows: several 256-row blocks and a ragged tail, so the weights meet every kernel's block and tail code.
let private weightedCase: Gen<WeightedCase> =
    gen {
        let! family =
            Gen.elements [ ExpertFamily.Gaussian; ExpertFamily.Poisson; ExpertFamily.Bernoulli ]

        let! m = Gen.choose (1, 5)
        let! experts = subset m
        let! gate = subset m
        let! k = Gen.choose (2, 4)
        let! a = Generators.matrix k experts.Length -1.0 1.0
        let! w = Generators.matrix (k - 1) gate.Length -1.5 1.5
        let! b = Generators.vector k -1.0 1.0
        let! c = Generators.vector (k - 1) -1.0 1.0
        let! sigmas = Generators.vector k 0.2 2.0
        let! n = Gen.choose (1, 600)
        let! seed = Gen.choose (1, 1_000_000)
        let! weights = Gen.arrayOfLength n (Gen.choose (0, 3))

        let model =
            MoeModel.createWith
                (Design.create m experts gate)
                family
                a
                b
                w
                c
                Identity
                (if family = ExpertFamily.Gaussian then
                     sigmas
                 else
                     Array.create k 1.0)

        let data = Sampler.sample model n (int64 seed)
        weights.[0] <- max 1 weights.[0]

        return
            {
                Model = model
                Data = Dataset.weighted data.X data.Y (Array.map float weights)
            }
    }

let private cases = Arb.fromGen weightedCase

/// Each row repeated as many times as its weight says (a weight of 0 leaves it out).
let private repeated (data: Dataset) : Dataset =
    let rows =
        [|
            for r in 0 .. data.Count - 1 do
                for _ in 1 .. int data.Weights.[r] -> r
        |]

    Dataset.create
        (Array2D.init rows.Length data.Dimension (fun i t -> data.X.[rows.[i], t]))
        (Array.map (fun r -> data.Y.[r]) rows)

/// Entries equal up to the rounding of sums taken in another order: the weighted sum adds w·f once where the repeated
/// data add f w times, ≤ 1800 terms, so each entry is off by at most ~n·ε of the sum of magnitudes (4e-13);
/// reorderedSum's 1e-10, relative to the largest entry of the vector, keeps 100× headroom, while a weight dropped from
/// one term is off by that term, ≥ 1e-3 of the total here.
let private sameSums (expected: float[]) (actual: float[]) (what: string) =
    Assert.Equal(expected.Length, actual.Length)
    let scale = 1.0 + (expected |> Array.map abs |> Array.fold max 0.0)

    for i in 0 .. expected.Length - 1 do
        if abs (expected.[i] - actual.[i]) > reorderedSum * scale then
            failwithf "%s[%d]: repeated rows %.17g, weighted rows %.17g" what i expected.[i] actual.[i]

let private statisticsVector (s: EmStatistics) =
    Array.concat
        [
            [| s.LogLikelihood; s.GateObjective |]
            Array.concat s.Gram
            Array.concat s.Rhs
            Array.concat s.Sums
            s.Weight
            s.GateGradient
            s.GateHessian
        ]

[<Property>]
let ``every pass over weighted rows is the pass over the rows repeated as often as their weights say`` () =
    Prop.forAll cases (fun c ->
        let weighted = DataSource.ofDataset c.Data
        let copies = DataSource.ofDataset (repeated c.Data)
        let m = c.Model
        Assert.Equal(float (repeated c.Data).Count, weighted.Weight)

        sameSums
            (statisticsVector (EmKernel.statisticsOf m true true copies))
            (statisticsVector (EmKernel.statisticsOf m true true weighted))
            "EM statistics"

        let v0, g0 = LikelihoodKernel.valueAndGradientOf m true copies
        let v1, g1 = LikelihoodKernel.valueAndGradientOf m true weighted
        sameSums (Array.append [| v0 |] g0) (Array.append [| v1 |] g1) "log-likelihood and gradient"
        // A family without levels has no σ: the last k entries of its curvature are an unused constant per block.
        let curvature (source: DataSource) =
            let full = LikelihoodKernel.curvatureOf m true source

            if ExpertFamily.hasLevels m.Family then
                full
            else
                Array.sub full 0 (full.Length - m.Experts)

        sameSums (curvature copies) (curvature weighted) "curvature"

        let loss0, q0 = EmKernel.mStepObjectivesOf m m copies
        let loss1, q1 = EmKernel.mStepObjectivesOf m m weighted
        sameSums (Array.append loss0 [| q0 |]) (Array.append loss1 [| q1 |]) "M-step objectives"

        sameSums
            (EmKernel.designOf m.Design.GateColumns true copies)
            (EmKernel.designOf m.Design.GateColumns true weighted)
            "gate's Gram"

        let mean0, cov0 = EmKernel.covarianceOf true copies
        let mean1, cov1 = EmKernel.covarianceOf true weighted
        sameSums (Array.append mean0 cov0) (Array.append mean1 cov1) "covariance"

        let moments (s: DataSummary) =
            Array.append
                [|
                    s.Response.Mean
                    s.Response.Sd
                    s.Response.Skewness
                    s.Response.ExcessKurtosis
                |]
                (s.Columns
                 |> Array.collect (fun c -> [| c.Mean; c.Sd; c.Skewness; c.ExcessKurtosis |]))

        sameSums (moments (Diagnosis.summarise copies)) (moments (Diagnosis.summarise weighted)) "summary"

        if m.Family = ExpertFamily.Gaussian then
            let transform = OutputTransforms.polynomialFor m.Activation 1.0

            let second (s: SecondMomentSums) =
                Array.append [| s.Count; s.SumQ2 |] s.Sums

            sameSums
                (second (MomentSums.secondOf transform copies))
                (second (MomentSums.secondOf transform weighted))
                "moment sums")

[<Property>]
let ``weights of 1 give every pass the bits of unweighted rows`` () =
    Prop.forAll cases (fun c ->
        let plain = DataSource.ofDataset { c.Data with Weights = null }

        let ones =
            DataSource.ofDataset
                { c.Data with
                    Weights = Array.create c.Data.Count 1.0
                }

        let m = c.Model

        Assert.Equal<float[]>(
            statisticsVector (EmKernel.statisticsOf m true true plain),
            statisticsVector (EmKernel.statisticsOf m true true ones)
        )

        Assert.Equal<float[]>(
            snd (LikelihoodKernel.valueAndGradientOf m true plain),
            snd (LikelihoodKernel.valueAndGradientOf m true ones)
        )

        Assert.Equal<float[]>(LikelihoodKernel.curvatureOf m true plain, LikelihoodKernel.curvatureOf m true ones))

/// 3,000 rows of a separated two-expert model, weights 1..3 (6,000 rows repeated).
let private acceptanceData () =
    let truth = GroundTruth.orthogonal 2 3 Identity 0.1
    let data = Sampler.sample truth 3_000 21L
    Dataset.weighted data.X data.Y (Array.init data.Count (fun i -> float (1 + (i * 7) % 3)))

let private config =
    { FitConfig.defaults 2 Identity with
        Seed = 3L
    }

/// The fits' parameters, labels aligned by the first regressor's first entry (both fits may name the experts in
/// either order).
let private parameters (m: MoeModel) =
    let order =
        if m.Regressors.[0, 0] <= m.Regressors.[1, 0] then
            [| 0; 1 |]
        else
            [| 1; 0 |]

    let aligned = MoeModel.relabel order m

    Array.concat
        [
            Seq.cast<float> aligned.Regressors |> Seq.toArray
            aligned.RegressorIntercepts
            Seq.cast<float> aligned.Gating |> Seq.toArray
            aligned.GatingIntercepts
            aligned.Sigmas
        ]

/// The acceptance of issue 32: integer weights give the fit of the rows repeated — the log-likelihood to 1e-8
/// relative and every parameter to 1e-4. Both fits converge to the one maximum of a separated mixture, each to EM's and
/// L-BFGS's tolerance (relative changes of 1e-10 per row), far inside both bounds; a weight left out of any sum moves
/// the maximum by ~1/√n ≈ 0.02.
[<Fact>]
let ``rows with integer weights fit as the rows repeated that many times`` () =
    let data = acceptanceData ()
    let copies = repeated data
    let weighted = Learner.fit config data RunContext.silent
    let plain = Learner.fit config copies RunContext.silent
    let ll0 = MoeModel.logLikelihood plain.Model copies.X copies.Y

    let ll1 =
        LikelihoodKernel.logLikelihoodOf weighted.Model (DataSource.ofDataset data)

    Assert.True(abs (ll1 - ll0) <= 1e-8 * abs ll0, sprintf "log-likelihood %.12f weighted, %.12f repeated" ll1 ll0)
    let p0, p1 = parameters plain.Model, parameters weighted.Model

    for i in 0 .. p0.Length - 1 do
        Assert.True(abs (p0.[i] - p1.[i]) <= 1e-4, sprintf "parameter %d: %.9f repeated, %.9f weighted" i p0.[i] p1.[i])

    // The standard errors assume frequency weights: those of the repeated rows (finite differences of the gradient at
    // steps of 1e-4 on sums that agree to 1e-12: 1e-6 relative).
    let se0 = Inference.standardErrorsOf plain.Model false true false copies
    let se1 = Inference.standardErrorsOf weighted.Model false true false data

    let flat (s: StandardErrors) =
        Array.concat
            [
                Seq.cast<float> s.Regressors |> Seq.toArray
                Seq.cast<float> s.Gating |> Seq.toArray
            ]

    for a, b in Array.zip (flat se0) (flat se1) do
        Assert.True(abs (a - b) <= 1e-3 * a, sprintf "standard error %.9f repeated, %.9f weighted" a b)

/// The criteria count n as Σw: BIC's log n of the weighted rows is that of the repeated rows, for the single
/// regression and for k = 2.
[<Fact>]
let ``the choice of k counts weighted rows as the rows repeated`` () =
    let data = acceptanceData ()
    let copies = repeated data
    let weighted = Inference.selectExperts config [| 1; 2 |] data RunContext.silent
    let plain = Inference.selectExperts config [| 1; 2 |] copies RunContext.silent

    for a, b in Array.zip plain weighted do
        Assert.Equal(a.Parameters, b.Parameters)

        Assert.True(
            abs (a.Bic - b.Bic) <= 1e-8 * abs a.Bic,
            sprintf "k = %d: BIC %.10f repeated, %.10f weighted" a.Experts a.Bic b.Bic
        )

let private withDir (f: string -> unit) =
    let dir = Directory.CreateTempSubdirectory("moe-weights-")

    try
        f dir.FullName
    finally
        dir.Delete true

let private r (v: float) =
    v.ToString("R", CultureInfo.InvariantCulture)

/// A weights column named in the roles is read with the rows and never enters the model's inputs; the file's fit is
/// the weighted rows' fit, bit for bit, in memory and streamed.
[<Fact>]
let ``a weights column in the roles weighs the rows it is read with`` () =
    let data = acceptanceData ()

    withDir (fun dir ->
        let path = Path.Combine(dir, "weighted.csv")

        File.WriteAllLines(
            path,
            Array.append
                [| "y,x1,freq,x2,x3" |]
                (Array.init data.Count (fun i ->
                    String.Join(
                        ",",
                        [|
                            r data.Y.[i]
                            r data.X.[i, 0]
                            r data.Weights.[i]
                            r data.X.[i, 1]
                            r data.X.[i, 2]
                        |]
                    )))
        )

        let roles =
            { ColumnRoles.defaults with
                Weights = Some "freq"
            }

        let source, design = DataFiles.withRoles path roles
        Assert.Equal<string[]>([| "x1"; "x2"; "x3" |], design.Columns.Value.Inputs)
        Assert.Equal(Array.sum data.Weights, source.Weight)
        let loaded = DataSource.load source
        Assert.Equal<float[]>(data.Weights, loaded.Weights)
        let inMemory = Learner.fit config data RunContext.silent

        let read =
            Learner.fitSource { config with Design = Some design } source 1_000_000 RunContext.silent

        let streamed =
            Learner.fitSource { config with Design = Some design } source 1_000 RunContext.silent

        Assert.Equal<float[]>(parameters inMemory.Model, parameters read.Model)

        Assert.True(
            (parameters streamed.Model, parameters read.Model)
            ||> Array.forall2 (fun a b -> abs (a - b) <= 1e-4)
        )

        // A bad weight is named with its row; a weights column cannot be an input too, nor hold text.
        let bad = Path.Combine(dir, "bad.csv")
        File.WriteAllLines(bad, [| "x1,w,y"; "1,1,2"; "2,-1,3"; "3,1,4" |])

        let e =
            Assert.Throws<ArgumentException>(fun () -> DataFiles.withRoles bad roles |> ignore)

        Assert.Contains("there is no column 'freq' (the weights)", e.Message)

        let e =
            Assert.Throws<InvalidDataException>(fun () ->
                DataFiles.withRoles bad { roles with Weights = Some "w" } |> ignore)

        Assert.Contains("the weights column 'w' is -1 on data row 2", e.Message)

        let e =
            Assert.Throws<ArgumentException>(fun () ->
                DataFiles.withRoles
                    bad
                    { roles with
                        Weights = Some "w"
                        Experts = Some [| "x1"; "w" |]
                    }
                |> ignore)

        Assert.Contains("the column 'w' is the weights; it cannot also be one of the experts' columns", e.Message))

[<Fact>]
let ``negative, non-finite and all-zero weights are refused naming the row`` () =
    let x = array2D [ [ 1.0 ]; [ 2.0 ]; [ 3.0 ] ]
    let y = [| 1.0; 2.0; 3.0 |]

    let e =
        Assert.Throws<ArgumentException>(fun () -> Dataset.weighted x y [| 1.0; Double.NaN; 1.0 |] |> ignore)

    Assert.Contains("Row 1 has the weight NaN", e.Message)

    let e =
        Assert.Throws<ArgumentException>(fun () -> Dataset.weighted x y [| 1.0; 1.0; -2.0 |] |> ignore)

    Assert.Contains("Row 2 has the weight -2", e.Message)

    let e =
        Assert.Throws<ArgumentException>(fun () -> Dataset.weighted x y [| 0.0; 0.0; 0.0 |] |> ignore)

    Assert.Contains("Every row has the weight 0", e.Message)

    let e =
        Assert.Throws<ArgumentException>(fun () -> Dataset.weighted x y [| 1.0; 1.0 |] |> ignore)

    Assert.Contains("2 weights for 3 rows", e.Message)

    let l4 =
        { FitConfig.defaults 2 Identity with
            Method = FitMethod.L4
        }

    let e =
        Assert.Throws<ArgumentException>(fun () ->
            Learner.fit l4 (Dataset.weighted x y [| 1.0; 2.0; 1.0 |]) RunContext.silent
            |> ignore)

    Assert.Contains("the l4 method fits unweighted samples only", e.Message)
