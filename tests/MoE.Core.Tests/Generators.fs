/// Domain generators: no raw floats reach the numerics. Models are built valid by construction and shrink
/// to fewer experts and fewer dimensions.
module MoE.Core.Tests.Generators

open FsCheck
open FsCheck.FSharp
open MoE.Core

/// Uniform on [lo, hi] with 10⁹ steps.
let uniform (lo: float) (hi: float) =
    Gen.choose (0, 1_000_000_000)
    |> Gen.map (fun i -> lo + (hi - lo) * float i / 1e9)

let matrix rows cols lo hi =
    Gen.array2DOfDim rows cols (uniform lo hi)

let vector n lo hi = Gen.arrayOfLength n (uniform lo hi)

/// Simpler values for one number: 0, then the value rounded to an integer and to one decimal (those that differ).
let shrinkFloat (v: float) : float seq =
    [ 0.0; round v; round (v * 10.0) / 10.0 ]
    |> Seq.distinct
    |> Seq.filter (fun c -> c <> v)

/// The vector with one entry made simpler.
let shrinkEntries (v: float[]) : float[] seq =
    seq {
        for i in 0 .. v.Length - 1 do
            for c in shrinkFloat v.[i] do
                let w = Array.copy v
                w.[i] <- c
                yield w
    }

/// The matrix with one entry made simpler.
let shrinkMatrixEntries (m: float[,]) : float[,] seq =
    seq {
        for i in 0 .. m.GetLength 0 - 1 do
            for j in 0 .. m.GetLength 1 - 1 do
                for c in shrinkFloat m.[i, j] do
                    let w = Array2D.copy m
                    w.[i, j] <- c
                    yield w
    }

/// The matrix without its last column.
let dropLastColumn (m: float[,]) : float[,] =
    Array2D.init (m.GetLength 0) (m.GetLength 1 - 1) (fun i j -> m.[i, j])

/// The five built-in activations, leaky ReLU with a slope in [0, 0.5].
let activation: Gen<Activation> =
    Gen.oneof
        [
            Gen.constant Activation.Identity
            Gen.constant Activation.Relu
            uniform 0.0 0.5 |> Gen.map Activation.LeakyRelu
            Gen.constant Activation.Sigmoid
            Gen.constant Activation.Tanh
        ]

/// A valid model: k ∈ 2..5, d ∈ 1..8, entries in [−2, 2], σ ∈ [0.05, 2].
let model: Gen<MoeModel> =
    gen {
        let! k = Gen.choose (2, 5)
        let! d = Gen.choose (1, 8)
        let! a = matrix k d -2.0 2.0
        let! w = matrix (k - 1) d -2.0 2.0
        let! g = activation
        let! sigma = uniform 0.05 2.0
        return MoeModel.create a w g sigma
    }

/// A model of the general form (docs/math.md §9): the entries of `model`, intercepts b_i, c_i in [−1, 1] and a
/// noise level per expert σ_i in [0.1, 2].
let generalModel: Gen<MoeModel> =
    gen {
        let! m = model
        let k = m.Experts
        let! b = vector k -1.0 1.0
        let! c = vector (k - 1) -1.0 1.0
        let! sigmas = vector k 0.1 2.0
        return MoeModel.createGeneral m.Regressors b m.Gating c m.Activation sigmas
    }

/// Smaller models: drop the second-to-last expert (its regressor and gating row; the reference expert k
/// stays), or drop the last input column.
let shrinkModel (m: MoeModel) : seq<MoeModel> =
    seq {
        let k, d = m.Experts, m.Dimension

        if k > 2 then
            let keep =
                [|
                    for i in 0 .. k - 1 do
                        if i <> k - 2 then
                            i
                |]

            let a = Array2D.init (k - 1) d (fun i j -> m.Regressors.[keep.[i], j])
            let w = Array2D.init (k - 2) d (fun i j -> m.Gating.[i, j])
            yield MoeModel.create a w m.Activation m.Sigma

        if d > 1 then
            yield
                MoeModel.create
                    (Array2D.init k (d - 1) (fun i j -> m.Regressors.[i, j]))
                    (Array2D.init (k - 1) (d - 1) (fun i j -> m.Gating.[i, j]))
                    m.Activation
                    m.Sigma
    }

/// A model with a small dataset of matching dimension: n ∈ 1..12, x ∈ [−3, 3]^d, y ∈ [−5, 5].
type ModelAndData =
    {
        Model: MoeModel
        X: float[,]
        Y: float[]
    }

let modelAndData: Gen<ModelAndData> =
    gen {
        let! m = model
        let! n = Gen.choose (1, 12)
        let! x = matrix n m.Dimension -3.0 3.0
        let! y = vector n -5.0 5.0
        return { Model = m; X = x; Y = y }
    }

/// Logits for softmax: 1..8 of them in [−50, 50].
type Logits = Logits of float[]

/// Registered with [<Properties(Arbitrary = [| typeof<Arbitraries> |])>].
type Arbitraries =
    static member Model() : Arbitrary<MoeModel> = Arb.fromGenShrink (model, shrinkModel)

    static member ModelAndData() : Arbitrary<ModelAndData> =
        Arb.fromGenShrink (
            modelAndData,
            fun md ->
                shrinkModel md.Model
                |> Seq.map (fun m ->
                    {
                        Model = m
                        X = Array2D.init (md.X.GetLength 0) m.Dimension (fun i j -> md.X.[i, j])
                        Y = md.Y
                    })
        )

    static member Logits() : Arbitrary<Logits> =
        Arb.fromGenShrink (
            Gen.choose (1, 8) |> Gen.bind (fun n -> vector n -50.0 50.0) |> Gen.map Logits,
            fun (Logits v) ->
                seq {
                    if v.Length > 1 then
                        yield Logits(Array.sub v 0 (v.Length - 1))

                    yield! shrinkEntries v |> Seq.map Logits
                }
        )
