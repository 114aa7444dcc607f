[<FsCheck.Xunit.Properties(MaxTest = 40)>]
module MoE.Core.Tests.LossTests

open System
open FsCheck.FSharp
open FsCheck.Xunit
open Xunit
open MoE.Core
open MoE.Core.Tests.Numerics
open MoE.Core.Tests.Tolerance

/// A truth of a generated shape, a sample of 40 points from it, and a parameter point of the same shape.
type private Case =
    {
        Truth: MoeModel
        Data: Dataset
        Point: MoeModel
    }

let private case: FsCheck.Gen<Case> =
    gen {
        let! k, d = shape
        let! g, sigma = activationAndSigma
        let! free = Gen.elements [ true; false ]
        let! truth = truth k d g (max sigma 0.05) free
        let! seed = Gen.choose (0, 100_000)
        let! a = Generators.matrix k d -1.0 1.0
        let! w = Generators.matrix (k - 1) d -1.0 1.0
        let data = Sampler.sample truth 40 (int64 seed)
        // The point's σ = 0.5 keeps L_log of order 10, so the difference quotient's rounding (ε|f|/h) stays ~1e-9.
        return
            {
                Truth = truth
                Data = data
                Point = MoeModel.create a w g 0.5
            }
    }

/// Simpler evaluation points (one entry of A or W rounded or zeroed); the truth and its sample stay.
let private shrinkCase (c: Case) : Case seq =
    seq {
        for a in Generators.shrinkMatrixEntries c.Point.Regressors do
            yield
                { c with
                    Point = { c.Point with Regressors = a }
                }

        for w in Generators.shrinkMatrixEntries c.Point.Gating do
            yield
                { c with
                    Point = { c.Point with Gating = w }
                }
    }

let private cases = Arb.fromGenShrink (case, shrinkCase)

let private weights = L4Weights.create 0.1 10.0 0.5 true

/// Rows whose projections all stay 1e-3 away from a kink of g (ReLU-type), so that the finite difference
/// (step ~6e-6·|x|) never straddles one; other activations keep every row.
let private awayFromKinks (m: MoeModel) (data: Dataset) =
    let keep =
        [|
            for r in 0 .. data.Count - 1 do
                let projections =
                    [
                        for i in 0 .. m.Experts - 1 ->
                            Seq.sum (seq { for t in 0 .. m.Dimension - 1 -> m.Regressors.[i, t] * data.X.[r, t] })
                    ]

                match m.Activation with
                | Relu
                | LeakyRelu _ when projections |> List.exists (fun s -> abs s < 1e-3) -> ()
                | _ -> yield r
        |]

    Dataset.create
        (Array2D.init keep.Length m.Dimension (fun i t -> data.X.[keep.[i], t]))
        (keep |> Array.map (fun r -> data.Y.[r]))

[<Property>]
let ``the empirical L4 gradient equals central differences`` () =
    Prop.forAll cases (fun c ->
        let cf = Coefficients.solve c.Truth.Activation c.Truth.Sigma

        let f a =
            (Losses.l4 cf weights a c.Data.X c.Data.Y).Value

        gradientsAgree
            (Losses.l4 cf weights c.Point.Regressors c.Data.X c.Data.Y).Gradient
            (fdGradient f c.Point.Regressors))

[<Property>]
let ``the empirical L_log gradient equals central differences`` () =
    Prop.forAll cases (fun c ->
        let f w =
            (Losses.logLikelihoodLoss { c.Point with Gating = w } c.Data.X c.Data.Y).Value

        gradientsAgree (Losses.logLikelihoodLoss c.Point c.Data.X c.Data.Y).Gradient (fdGradient f c.Point.Gating))

[<Property>]
let ``the empirical l2 gradients equal central differences`` () =
    Prop.forAll cases (fun c ->
        let data = awayFromKinks c.Point c.Data
        let e = Losses.squaredLoss c.Point data.X data.Y

        let fa a =
            (Losses.squaredLoss { c.Point with Regressors = a } data.X data.Y).Value

        let fw w =
            (Losses.squaredLoss { c.Point with Gating = w } data.X data.Y).Value

        gradientsAgree e.RegressorGradient (fdGradient fa c.Point.Regressors)
        && gradientsAgree e.GatingGradient (fdGradient fw c.Point.Gating))

[<Fact>]
let ``the empirical L4 equals eq. 7 written with t1, t2, t3 term by term`` () =
    let truth = GroundTruth.random 3 7 Activation.Relu 0.1 1.0 true 5L
    let data = Sampler.sample truth 200 9L
    let cf = Coefficients.solve truth.Activation truth.Sigma
    let w = L4Weights.create 0.3 2.0 0.7 false
    let a = Array2D.init 3 7 (fun i j -> sin (float (i * 7 + j)))
    let rows = Array.init 3 (fun i -> Array.init 7 (fun j -> a.[i, j]))
    let xs = Array.init data.Count (fun r -> Array.init 7 (fun j -> data.X.[r, j]))

    let mean f =
        Array.averageBy f [| 0 .. data.Count - 1 |]

    let direct =
        Seq.sum (
            seq {
                for i in 0..2 do
                    for j in 0..2 do
                        if i <> j then
                            yield
                                mean (fun r -> Transforms.q4 cf data.Y.[r] * Transforms.t1 cf rows.[i] rows.[j] xs.[r])
            }
        )
        - w.Mu
          * Seq.sum (
              seq { for i in 0..2 -> mean (fun r -> Transforms.q4 cf data.Y.[r] * Transforms.t2 cf rows.[i] xs.[r]) }
          )
        + w.Lambda
          * Seq.sum (
              seq {
                  for i in 0..2 ->
                      (mean (fun r -> Transforms.q2 cf data.Y.[r] * Transforms.t3 cf rows.[i] xs.[r])
                       - 1.0)
                      ** 2.0
              }
          )
        + 0.5 * w.Ridge * Seq.sumBy (fun v -> v * v) (Seq.cast<float> a)

    // Two summation orders of ~2000 terms of size up to ~1e3.
    assertClose reorderedSum direct (Losses.l4 cf w a data.X data.Y).Value "L4"

[<Fact>]
let ``losses reject mismatched shapes`` () =
    let cf = Coefficients.solve Activation.Identity 0.1
    let w = L4Weights.create 0.1 10.0 0.0 true

    Assertions.throwsArg<ArgumentException> "x" [ "3 columns"; "d = 4" ] (fun () ->
        Losses.l4 cf w (Array2D.zeroCreate 2 4) (Array2D.zeroCreate 5 3) (Array.zeroCreate 5)
        |> ignore)

    Assertions.throwsArg<ArgumentException> "mu" [ ">= 0" ] (fun () -> L4Weights.create -1.0 1.0 1.0 true |> ignore)

    Assertions.throwsArg<ArgumentException> "y" [ "empty" ] (fun () ->
        Losses.l4 cf w (Array2D.zeroCreate 2 4) (Array2D.zeroCreate 0 4) [||] |> ignore)
