/// Separate gate and expert columns (Model/Design.fs): a model whose experts read some input columns and whose gate
/// reads others is, entry for entry, the shared-design model whose rows are zero off its own columns — the scalar
/// paths, every kernel (likelihood and gradient, curvature, EM statistics, gating loss) and EM agree with that padded
/// model; the model file and the wire carry the design; and a fit with the default method recovers a model whose gate
/// reads other columns than its experts.
[<FsCheck.Xunit.Properties(MaxTest = 60)>]
module MoE.Core.Tests.DesignTests

open System
open FsCheck.FSharp
open FsCheck.Xunit
open Xunit
open MoE.Core
open MoE.Core.Tests.Tolerance

/// A split design of m ∈ 2..6 inputs (each part a random non-empty subset in a random order), a general model over it,
/// and n ∈ 1..40 rows of x ∈ [−3, 3]^m with y ∈ [−5, 5].
type SplitCase =
    {
        Model: MoeModel
        X: float[,]
        Y: float[]
    }

let private subset (m: int) =
    gen {
        let! order = Gen.shuffle [| 0 .. m - 1 |]
        let! size = Gen.choose (1, m)
        return Array.sub order 0 size
    }

let private splitCase: FsCheck.Gen<SplitCase> =
    gen {
        let! m = Gen.choose (2, 6)
        let! experts = subset m
        let! gate = subset m
        let! k = Gen.choose (2, 4)
        let! g = Generators.activation
        let! a = Generators.matrix k experts.Length -2.0 2.0
        let! w = Generators.matrix (k - 1) gate.Length -2.0 2.0
        let! b = Generators.vector k -1.0 1.0
        let! c = Generators.vector (k - 1) -1.0 1.0
        let! sigmas = Generators.vector k 0.2 2.0
        let! n = Gen.choose (1, 40)
        let! x = Generators.matrix n m -3.0 3.0
        let! y = Generators.vector n -5.0 5.0

        return
            {
                Model = MoeModel.createWith (Design.create m experts gate) ExpertFamily.Gaussian a b w c g sigmas
                X = x
                Y = y
            }
    }

let private cases = Arb.fromGen splitCase

/// The same mixture with the shared design: rows of A and W zero off their part's columns.
let private padded (m: MoeModel) =
    let k, inputs = m.Experts, m.Dimension
    let a = Array2D.zeroCreate k inputs
    let w = Array2D.zeroCreate (k - 1) inputs

    m.Design.ExpertColumns
    |> Array.iteri (fun t col ->
        for i in 0 .. k - 1 do
            a.[i, col] <- m.Regressors.[i, t])

    m.Design.GateColumns
    |> Array.iteri (fun t col ->
        for j in 0 .. k - 2 do
            w.[j, col] <- m.Gating.[j, t])

    MoeModel.createGeneral a m.RegressorIntercepts w m.GatingIntercepts m.Activation m.Sigmas

/// The padded model's gradient layout [k·(m+1) | (k−1)·(m+1) | k] restricted to the split model's entries.
let private restrict (m: MoeModel) (full: float[]) =
    let k, inputs = m.Experts, m.Dimension
    let p = inputs + 1
    let e, g = m.Design.ExpertColumns, m.Design.GateColumns

    [|
        for i in 0 .. k - 1 do
            for col in e do
                full.[i * p + col]

            full.[i * p + inputs]
        for j in 0 .. k - 2 do
            for col in g do
                full.[k * p + j * p + col]

            full.[k * p + j * p + inputs]
        for i in 0 .. k - 1 do
            full.[k * p + (k - 1) * p + i]
    |]

/// Zero entries add exact zeros, and a dot product over a different count of terms groups its sums differently:
/// O(m) terms of size ≤ 2·3 per logit, so the padded model's values agree to the rounding of reordered sums.
let private agree (what: string) (expected: float seq) (actual: float seq) =
    Seq.iteri2
        (fun i (u: float) v ->
            Assert.True(
                abs (u - v) <= reorderedSum * max 1.0 (abs u),
                sprintf "%s[%d]: padded %.17g, split %.17g" what i u v
            ))
        expected
        actual

[<Property>]
let ``the scalar paths of a split design are those of the padded shared model`` () =
    Prop.forAll cases (fun c ->
        let m, shared = c.Model, padded c.Model
        agree "log-likelihood" (MoeModel.logLikelihoods shared c.X c.Y) (MoeModel.logLikelihoods m c.X c.Y)
        agree "prediction" (MoeModel.predict shared c.X) (MoeModel.predict m c.X)

        agree
            "gate"
            (Seq.cast<float>(MoeModel.gateProbabilities shared c.X))
            (Seq.cast<float>(MoeModel.gateProbabilities m c.X)))

[<Property>]
let ``every kernel on a split design equals the padded shared model's, restricted to the design's entries`` () =
    Prop.forAll cases (fun c ->
        let m, shared = c.Model, padded c.Model
        let k = m.Experts
        let ll, gradient = LikelihoodKernel.valueAndGradient m true c.X c.Y
        let llShared, gradientShared = LikelihoodKernel.valueAndGradient shared true c.X c.Y
        agree "likelihood" [ llShared ] [ ll ]
        agree "gradient" (restrict m gradientShared) gradient

        agree
            "curvature"
            (restrict m (LikelihoodKernel.curvature shared true c.X c.Y))
            (LikelihoodKernel.curvature m true c.X c.Y)

        agree
            "responsibilities"
            (Seq.cast<float>(MoeModel.responsibilities m c.X c.Y))
            (Seq.cast<float>(LikelihoodKernel.responsibilities m c.X c.Y))

        let stats = EmKernel.statistics m true true c.X c.Y
        let statsShared = EmKernel.statistics shared true true c.X c.Y
        let inputs = m.Dimension
        let p = inputs + 1
        let e = Array.append m.Design.ExpertColumns [| inputs |]
        let g = Array.append m.Design.GateColumns [| inputs |]
        let pe, pg = e.Length, g.Length
        agree "EM log-likelihood" [ statsShared.LogLikelihood ] [ stats.LogLikelihood ]
        agree "EM gate objective" [ statsShared.GateObjective ] [ stats.GateObjective ]
        agree "EM weights" statsShared.Weight stats.Weight

        for i in 0 .. k - 1 do
            agree "EM sums" statsShared.Sums.[i] stats.Sums.[i]
            agree "EM rhs" (e |> Array.map (fun t -> statsShared.Rhs.[i].[t])) stats.Rhs.[i]

            // Upper triangles: entry (t, u), t ≤ u, of the split Gram is entry (e_t, e_u) of the padded one, or its
            // mirror image when the design's order reverses the two columns.
            for t in 0 .. pe - 1 do
                for u in t .. pe - 1 do
                    let a, b = min e.[t] e.[u], max e.[t] e.[u]
                    agree "EM gram" [ statsShared.Gram.[i].[a * p + b] ] [ stats.Gram.[i].[t * pe + u] ]

        for j in 0 .. k - 2 do
            agree
                "EM gate gradient"
                (g |> Array.map (fun t -> statsShared.GateGradient.[j * p + t]))
                (Array.sub stats.GateGradient (j * pg) pg))

[<Property>]
let ``the gating kernel on a split design is the padded model's on the gate's columns`` () =
    Prop.forAll cases (fun c ->
        let m, shared = c.Model, padded c.Model

        let value, gradient, intercepts =
            GatingKernel.loss (GatingKernel.expertDensities m c.X c.Y) c.X m.Gating m.GatingIntercepts

        let valueShared, gradientShared, interceptsShared =
            GatingKernel.loss (GatingKernel.expertDensities shared c.X c.Y) c.X shared.Gating shared.GatingIntercepts

        agree "loss" [ valueShared ] [ value ]
        agree "intercepts" interceptsShared intercepts

        for j in 0 .. m.Experts - 2 do
            agree
                "gradient"
                (m.Design.GateColumns |> Array.map (fun col -> gradientShared.[j, col]))
                (Array.init m.GateDimension (fun t -> gradient.[j, t])))

[<Property>]
let ``the model file and the wire carry a split design, and a shared one writes no design`` () =
    Prop.forAll cases (fun c ->
        let m = c.Model
        let json = ModelJson.serialize m
        let back = ModelJson.deserialize json
        Assert.True(Design.same m.Design back.Design, sprintf "%O vs %O" m.Design back.Design)
        Assert.Equal(json, ModelJson.serialize back)
        Assert.Equal(not m.Design.IsShared, json.Contains "expertInputs")
        Assert.DoesNotContain("expertInputs", ModelJson.serialize (padded m))

        let request = PassRequest.LogLikelihood m
        let _, decoded = Requests.decode (Requests.encode None request)

        match decoded with
        | PassRequest.LogLikelihood d -> Assert.True(Design.same m.Design d.Design)
        | other -> failwithf "decoded %A" other)

[<Fact>]
let ``a design refuses columns out of range, repeated, or none`` () =
    for experts, gate, fragment in
        [
            [| 0; 3 |], [| 1 |], "column 3, outside the 3 input columns"
            [| 0; 0 |], [| 1 |], "list a column twice"
            [||], [| 1 |], "expert columns are empty"
            [| 0 |], [| -1 |], "column -1"
        ] do
        let e =
            Assert.Throws<ArgumentException>(fun () -> Design.create 3 experts gate |> ignore)

        Assert.Contains(fragment, e.Message)

/// Experts on x1, x2 and a gate on x3, x4 (disjoint columns), intercepts and a σ per expert, n = 40,000: the default
/// method, seeded, recovers the slopes and the gate (E_reg and aligned E_gating ≤ 0.01, the tables' rule), its
/// likelihood (by the scalar reference, which reads the columns independently of the kernels) is at least the
/// truth's — the maximum of the likelihood is above the truth's by O(parameters) nats, and a gate on the wrong columns
/// falls hundreds of nats below — and the same fit read in passes of 10,000 rows gives the same model, bit for bit.
[<Fact>]
let ``the default method recovers a gate that reads other columns than its experts, in memory and in passes`` () =
    let design = Design.create 4 [| 0; 1 |] [| 2; 3 |]

    let truth =
        MoeModel.createWith
            design
            ExpertFamily.Gaussian
            (array2D [ [ 1.0; -1.0 ]; [ -0.5; 2.0 ] ])
            [| 0.5; -1.0 |]
            (array2D [ [ 2.0; -1.5 ] ])
            [| 0.3 |]
            Identity
            [| 0.1; 0.2 |]

    let data = Sampler.sample truth 40_000 21L

    let config =
        { FitConfig.defaults 2 Identity with
            Design = Some design
        }

    let fit = Learner.fit config data RunContext.silent
    let e = Metrics.compare fit.Model truth
    Assert.True(e.RegressorError <= 0.01, sprintf "E_reg %.3g" e.RegressorError)
    Assert.True(e.GatingError <= 0.01, sprintf "E_gating %.3g" e.GatingError)
    Assert.True(Design.same design fit.Model.Design)

    let ll, llTruth =
        MoeModel.logLikelihood fit.Model data.X data.Y, MoeModel.logLikelihood truth data.X data.Y

    Assert.True(ll >= llTruth, sprintf "log-likelihood %.2f below the truth's %.2f" ll llTruth)

    let streamed =
        Learner.fitSource config (DataSource.ofDataset data) 10_000 RunContext.silent

    Assert.True(streamed.Passes > 1)
    Assert.Equal(ModelJson.serialize fit.Model, ModelJson.serialize streamed.Model)

    // The moment-only methods need a shared design, and say so.
    let e =
        Assert.Throws<ArgumentException>(fun () ->
            Learner.fit
                { config with
                    Method = FitMethod.Spectral
                }
                data
                RunContext.silent
            |> ignore)

    Assert.Contains("same columns", e.Message)
