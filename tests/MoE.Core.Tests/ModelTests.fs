[<FsCheck.Xunit.Properties(Arbitrary = [| typeof<MoE.Core.Tests.Generators.Arbitraries> |], MaxTest = 200)>]
module MoE.Core.Tests.ModelTests

open System
open FsCheck.Xunit
open Xunit
open MoE.Core
open MoE.Core.Tests.Assertions
open MoE.Core.Tests.Generators
open MoE.Core.Tests.Tolerance

// ---- Direct formulas (no log-sum-exp, no buffers), valid for the generators' moderate values ----

let private gateDirect (m: MoeModel) (x: float[,]) (r: int) =
    let logits =
        Array.init m.Experts (fun i ->
            if i = m.Experts - 1 then
                0.0
            else
                Seq.sum (seq { for j in 0 .. m.Dimension - 1 -> m.Gating.[i, j] * x.[r, j] }))

    let e = logits |> Array.map exp
    e |> Array.map (fun v -> v / Array.sum e)

let private meanDirect (m: MoeModel) (x: float[,]) (r: int) (i: int) =
    m.Activation.Value(Seq.sum (seq { for j in 0 .. m.Dimension - 1 -> m.Regressors.[i, j] * x.[r, j] }))

let private densityDirect (m: MoeModel) (y: float) (mean: float) =
    exp (-((y - mean) ** 2.0) / (2.0 * m.Sigma ** 2.0))
    / sqrt (2.0 * Math.PI * m.Sigma ** 2.0)

[<Property>]
let ``the log-likelihood equals log Σ p_i N(y; g(a_i·x), σ²) computed directly`` (md: ModelAndData) =
    let m = md.Model
    let ll = MoeModel.logLikelihoods m md.X md.Y

    ll
    |> Array.mapi (fun r v ->
        let p = gateDirect m md.X r

        let total =
            Array.sum (Array.init m.Experts (fun i -> p.[i] * densityDirect m md.Y.[r] (meanDirect m md.X r i)))
        // The direct form underflows when every residual exceeds ~37σ; compare where it is a normal double.
        total < 1e-290 || close exact (log total) v)
    |> Array.forall id

[<Property>]
let ``the total log-likelihood is the sum of the per-sample values`` (md: ModelAndData) =
    close exact (Array.sum (MoeModel.logLikelihoods md.Model md.X md.Y)) (MoeModel.logLikelihood md.Model md.X md.Y)

[<Property>]
let ``gate probabilities match the direct softmax, are non-negative and sum to one`` (md: ModelAndData) =
    let p = MoeModel.gateProbabilities md.Model md.X

    [
        for r in 0 .. md.X.GetLength 0 - 1 do
            let direct = gateDirect md.Model md.X r
            let row = Array.init md.Model.Experts (fun i -> p.[r, i])

            yield
                Array.forall (fun v -> v >= 0.0) row
                && close exact 1.0 (Array.sum row)
                && Array.forall2 (close exact) direct row
    ]
    |> List.forall id

[<Property>]
let ``responsibilities are Bayes' rule: non-negative, sum to one, proportional to p_i N_i`` (md: ModelAndData) =
    let m = md.Model
    let post = MoeModel.responsibilities m md.X md.Y

    [
        for r in 0 .. md.X.GetLength 0 - 1 do
            let p = gateDirect m md.X r

            let joint =
                Array.init m.Experts (fun i -> p.[i] * densityDirect m md.Y.[r] (meanDirect m md.X r i))

            let row = Array.init m.Experts (fun i -> post.[r, i])
            let total = Array.sum joint

            yield
                Array.forall (fun v -> v >= 0.0) row
                && close exact 1.0 (Array.sum row)
                && (total < 1e-290
                    || Array.forall2 (close exact) (joint |> Array.map (fun j -> j / total)) row)
    ]
    |> List.forall id

[<Property>]
let ``the prediction is Σ p_i(x) g(a_i·x)`` (md: ModelAndData) =
    let m = md.Model
    let yhat = MoeModel.predict m md.X

    yhat
    |> Array.mapi (fun r v ->
        let p = gateDirect m md.X r
        close exact (Array.sum (Array.init m.Experts (fun i -> p.[i] * meanDirect m md.X r i))) v)
    |> Array.forall id

[<Property>]
let ``one row at a time gives the batch kernels' bits, through reused buffers`` (md: ModelAndData) =
    // predictRowInto runs the batch kernels' arithmetic on one row, so equality is exact (no tolerance): a
    // different summation order would already differ in the last bit for some generated model.
    let m = md.Model
    let yhat = MoeModel.predict m md.X
    let gate = MoeModel.gateProbabilities m md.X
    let g, mu = Array.zeroCreate (m.Experts + 2), Array.zeroCreate m.Experts
    let one = Array2D.zeroCreate 1 m.Dimension

    [
        for r in 0 .. md.X.GetLength 0 - 1 do
            for j in 0 .. m.Dimension - 1 do
                one.[0, j] <- md.X.[r, j]

            let v = MoeModel.predictRowInto m one 0 g mu
            yield BitConverter.DoubleToInt64Bits v = BitConverter.DoubleToInt64Bits yhat.[r]
            yield Array.init m.Experts (fun i -> g.[i] = gate.[r, i]) |> Array.forall id

            yield
                Array.init m.Experts (fun i ->
                    mu.[i] = meanDirect m md.X r i || close exact (meanDirect m md.X r i) mu.[i])
                |> Array.forall id
    ]
    |> List.forall id

[<Property>]
let ``relabelling the experts (gating rebased on the new reference) leaves the likelihood unchanged``
    (md: ModelAndData)
    (rotation: int)
    =
    // New expert i is old expert π(i) = (i + s) mod k; new logits are old logits minus the new reference's,
    // so w'_i = w_π(i) − w_π(k) with w_k = 0. Logits reach |w'·x| ≤ 4·3·8 ≈ 100, where rounding the
    // rebased weights and the dot products moves a logit by ~1e-13, hence 1e-11 (100× that).
    let m = md.Model
    let k, d = m.Experts, m.Dimension
    let s = abs rotation % k
    let pi i = (i + s) % k

    let wFull i j =
        if i = k - 1 then 0.0 else m.Gating.[i, j]

    let a' = Array2D.init k d (fun i j -> m.Regressors.[pi i, j])
    let w' = Array2D.init (k - 1) d (fun i j -> wFull (pi i) j - wFull (pi (k - 1)) j)
    let m' = MoeModel.create a' w' m.Activation m.Sigma
    Array.forall2 (close rebased) (MoeModel.logLikelihoods m md.X md.Y) (MoeModel.logLikelihoods m' md.X md.Y)

// ---- Every bad input has its own error, naming the parameter and the offending value or shape ----

let private a2 = array2D [ [ 1.0; 0.0; 0.0 ]; [ 0.0; 1.0; 0.0 ] ]
let private w2 = array2D [ [ 0.0; 0.0; 1.0 ] ]

[<Fact>]
let ``a single expert is rejected with its shape`` () =
    throwsArg<ArgumentException> "regressors" [ "k >= 2"; "1x3" ] (fun () ->
        MoeModel.create (array2D [ [ 1.0; 0.0; 0.0 ] ]) (Array2D.zeroCreate 0 3) Identity 0.1
        |> ignore)

[<Fact>]
let ``a gating matrix of the wrong shape is rejected with both shapes`` () =
    throwsArg<ArgumentException> "gating" [ "1x3"; "2x3" ] (fun () ->
        MoeModel.create a2 (Array2D.zeroCreate 2 3) Identity 0.1 |> ignore)

    throwsArg<ArgumentException> "gating" [ "1x3"; "1x2" ] (fun () ->
        MoeModel.create a2 (Array2D.zeroCreate 1 2) Identity 0.1 |> ignore)

[<Fact>]
let ``non-finite parameters are rejected with their position`` () =
    let bad = Array2D.copy a2
    bad.[1, 2] <- nan

    throwsArg<ArgumentException> "regressors" [ "regressors[1,2]"; "NaN" ] (fun () ->
        MoeModel.create bad w2 Identity 0.1 |> ignore)

    let badW = Array2D.copy w2
    badW.[0, 0] <- Double.PositiveInfinity

    throwsArg<ArgumentException> "gating" [ "gating[0,0]"; "Infinity" ] (fun () ->
        MoeModel.create a2 badW Identity 0.1 |> ignore)

[<Fact>]
let ``a negative or non-finite sigma is rejected with its value`` () =
    throwsArg<ArgumentException> "sigma" [ ">= 0"; "-0.5" ] (fun () -> MoeModel.create a2 w2 Identity -0.5 |> ignore)
    throwsArg<ArgumentException> "sigma" [ "finite"; "NaN" ] (fun () -> MoeModel.create a2 w2 Identity nan |> ignore)

[<Fact>]
let ``null arrays are rejected by name`` () =
    throwsArg<ArgumentNullException> "regressors" [] (fun () -> MoeModel.create null w2 Identity 0.1 |> ignore)
    throwsArg<ArgumentNullException> "gating" [] (fun () -> MoeModel.create a2 null Identity 0.1 |> ignore)

[<Fact>]
let ``bad activations are rejected`` () =
    throwsArg<ArgumentException> "slope" [ "finite"; "NaN" ] (fun () -> Activation.leakyRelu nan |> ignore)

    throwsArg<ArgumentException> "name" [ "Unknown activation 'softplus'"; "leaky-relu" ] (fun () ->
        Activation.parse "softplus" 0.0 |> ignore)

    throwsArg<ArgumentException> "slope" [ "only meaningful for leaky-relu"; "relu" ] (fun () ->
        Activation.parse "relu" 0.2 |> ignore)

    throwsArg<ArgumentException> "name" [ "reserved" ] (fun () -> Activation.custom "tanh" id id |> ignore)
    throwsArg<ArgumentException> "name" [ "non-empty" ] (fun () -> Activation.custom " " id id |> ignore)

[<Fact>]
let ``kernels reject inputs of the wrong width or length`` () =
    let m = MoeModel.create a2 w2 Identity 0.1

    throwsArg<ArgumentException> "x" [ "2 columns"; "d = 3" ] (fun () ->
        MoeModel.predict m (Array2D.zeroCreate 4 2) |> ignore)

    throwsArg<ArgumentException> "y" [ "4 rows"; "length 3" ] (fun () ->
        MoeModel.logLikelihoods m (Array2D.zeroCreate 4 3) [| 0.0; 0.0; 0.0 |] |> ignore)

[<Fact>]
let ``likelihoods need sigma > 0`` () =
    let m = MoeModel.create a2 w2 Identity 0.0

    throwsArg<ArgumentException> "model" [ "sigma > 0"; "sigma = 0" ] (fun () ->
        MoeModel.responsibilities m (Array2D.zeroCreate 1 3) [| 0.0 |] |> ignore)

[<Fact>]
let ``datasets reject mismatched rows, emptiness and non-finite values`` () =
    throwsArg<ArgumentException> "y" [ "3 rows"; "length 2" ] (fun () ->
        Dataset.create (Array2D.zeroCreate 3 2) [| 0.0; 0.0 |] |> ignore)

    throwsArg<ArgumentException> "x" [ "0 rows" ] (fun () -> Dataset.create (Array2D.zeroCreate 0 2) [||] |> ignore)
    let x = Array2D.zeroCreate 3 2
    x.[2, 0] <- Double.NegativeInfinity

    throwsArg<ArgumentException> "x" [ "x[2,0]"; "-Infinity" ] (fun () ->
        Dataset.create x [| 0.0; 0.0; 0.0 |] |> ignore)

    throwsArg<ArgumentException> "y" [ "y[1]"; "NaN" ] (fun () ->
        Dataset.create (Array2D.zeroCreate 2 2) [| 0.0; nan |] |> ignore)

[<Fact>]
let ``presets check k, d and the radius`` () =
    throwsArg<ArgumentOutOfRangeException> "dimension" [ "2k-1 = 5"; "d = 4" ] (fun () ->
        GroundTruth.orthogonal 3 4 Identity 0.1 |> ignore)

    throwsArg<ArgumentOutOfRangeException> "experts" [ "k >= 2"; "k = 1" ] (fun () ->
        GroundTruth.orthogonal 1 4 Identity 0.1 |> ignore)

    throwsArg<ArgumentException> "radius" [ "> 0"; "0" ] (fun () ->
        GroundTruth.randomGating 2 4 Identity 0.1 0.0 1L |> ignore)

    throwsArg<ArgumentOutOfRangeException> "dimension" [ "k+1 = 4"; "d = 3" ] (fun () ->
        GroundTruth.random 3 3 Identity 0.1 1.0 false 1L |> ignore)

[<Fact>]
let ``presets have the documented structure`` () =
    let o = GroundTruth.orthogonal 3 6 Relu 0.1
    Assert.Equal(1.0, o.Regressors.[2, 2])
    Assert.Equal(1.0, o.Gating.[0, 3])
    Assert.Equal(1.0, o.Gating.[1, 4])

    let dot (u: float[]) (v: float[]) =
        Array.fold2 (fun s a b -> s + a * b) 0.0 u v

    let row (m: float[,]) i =
        Array.init (m.GetLength 1) (fun j -> m.[i, j])

    let r = GroundTruth.random 3 8 Identity 0.1 2.0 false 9L

    for i in 0..2 do
        assertClose exact 1.0 (dot (row r.Regressors i) (row r.Regressors i)) "unit regressor"

        for g in 0..1 do
            assertClose exact 0.0 (dot (row r.Regressors i) (row r.Gating g)) "gating orthogonal to the regressors"

    for g in 0..1 do
        assertClose exact 4.0 (dot (row r.Gating g) (row r.Gating g)) "gating norm R = 2"

    let free = GroundTruth.random 3 8 Identity 0.1 1.0 true 9L

    Assert.True(
        abs (dot (row free.Regressors 0) (row free.Gating 0)) > 1e-6,
        "free gating is not orthogonal to the regressors"
    )

[<Fact>]
let ``the row predictor refuses a row outside x, short buffers and a non-finite row`` () =
    let m = MoeModel.create a2 w2 Identity 0.1
    let x = Array2D.zeroCreate 2 3
    let k = Array.zeroCreate 2
    throwsArg<ArgumentException> "row" [ "Row 2"; "2 rows" ] (fun () -> MoeModel.predictRowInto m x 2 k k |> ignore)
    throwsArg<ArgumentException> "gate" [ "k = 2" ] (fun () -> MoeModel.predictRowInto m x 0 [| 0.0 |] k |> ignore)
    throwsArg<ArgumentException> "means" [ "k = 2" ] (fun () -> MoeModel.predictRowInto m x 0 k [| 0.0 |] |> ignore)
    x.[1, 2] <- nan
    throwsArg<ArgumentException> "x" [ "x[1, 2]"; "not finite" ] (fun () -> MoeModel.predictRowInto m x 1 k k |> ignore)

    throwsArg<ArgumentException> "x" [ "d = 3" ] (fun () ->
        MoeModel.predictRowInto m (Array2D.zeroCreate 1 2) 0 k k |> ignore)
