/// The lane primitives (Numerics/Lanes.fs) and the block forward pass: exp and log bit-identical to DetMath, reductions
/// whose bits do not depend on where the data sit in memory, and kernels that give the same bits call after call.
[<FsCheck.Xunit.Properties(MaxTest = 100)>]
module MoE.Core.Tests.LaneTests

open System
open FsCheck.FSharp
open FsCheck.Xunit
open Xunit
open MoE.Core
open MoE.Core.Tests.Tolerance

/// Doubles from every regime the kernels meet: differences of log-densities (large negative), ordinary values, the
/// edges of exp's range (−745.13, −708.4, 709.78) and special values.
let private values =
    Gen.oneof
        [
            Gen.choose (-800_000, 800_000) |> Gen.map (fun i -> float i / 1000.0)
            Gen.choose (-1_000_000, 1_000_000) |> Gen.map (fun i -> float i / 1e6)
            Gen.elements
                [
                    -745.1332191019412
                    -745.13
                    -745.2
                    -708.4
                    -708.39
                    -1022.0 * Math.Log 2.0
                    709.782712893384
                    709.79
                    0.0
                    -0.0
                    Double.NaN
                    Double.PositiveInfinity
                    Double.NegativeInfinity
                    1e-310
                    5e-324
                    Double.MaxValue
                    Double.Epsilon
                ]
            ArbMap.defaults
            |> ArbMap.generate<FsCheck.NormalFloat>
            |> Gen.map (fun f -> f.Get)
        ]

/// Arrays of 0..40 values at an offset 0..7 inside a larger array (every alignment and every tail length).
let private placed =
    gen {
        let! xs = Gen.arrayOf values
        let! offset = Gen.choose (0, 7)
        return xs, offset
    }
    |> Arb.fromGen

let private bitsOf (v: float) = BitConverter.DoubleToInt64Bits v

let private sameBits (expected: float) (actual: float) =
    // NaN payloads are not part of the contract: any NaN matches any NaN.
    (Double.IsNaN expected && Double.IsNaN actual)
    || bitsOf expected = bitsOf actual

[<Property>]
let ``lane exp is DetMath.exp bit for bit, at every offset and tail`` () =
    Prop.forAll placed (fun (xs, offset) ->
        let src = Array.append (Array.create offset 3.0) xs
        let dst = Array.zeroCreate src.Length
        Lanes.exp src offset dst offset xs.Length

        xs
        |> Array.mapi (fun i x -> sameBits (DetMath.exp x) dst.[offset + i])
        |> Array.forall id)

[<Property>]
let ``lane log is DetMath.log bit for bit, at every offset and tail`` () =
    Prop.forAll placed (fun (xs, offset) ->
        // Mostly positive values (the kernels' case), with the negative and special ones kept.
        let xs = xs |> Array.map (fun x -> if x < 0.0 && x > -1.0 then -x else x)
        let src = Array.append (Array.create offset 3.0) xs
        Lanes.log src offset src offset xs.Length

        xs
        |> Array.mapi (fun i x -> sameBits (DetMath.log x) src.[offset + i])
        |> Array.forall id)

/// A finite value of one scale (1e-3..1e3), so that a reordered sum agrees with the plain one to reorderedSum.
let private finiteValue =
    Gen.choose (-1_000_000, 1_000_000) |> Gen.map (fun i -> float i / 1000.0)

[<Property>]
let ``lane sums and dot products have the same bits wherever the data sit, and equal the plain sums`` () =
    let arb =
        gen {
            let! u = Gen.arrayOf finiteValue
            let! v = Gen.arrayOfLength u.Length finiteValue
            let! a = Gen.choose (0, 7)
            let! b = Gen.choose (0, 7)
            return u, v, a, b
        }
        |> Arb.fromGen

    Prop.forAll arb (fun (u, v, a, b) ->
        let n = u.Length

        let shifted (offset: int) (w: float[]) =
            Array.append (Array.create offset 1.0) w

        let d0 = Lanes.dot u 0 v 0 n
        let d1 = Lanes.dot (shifted a u) a (shifted b v) b n
        let s0 = Lanes.sum u 0 n
        let s1 = Lanes.sum (shifted a u) a n
        let plainDot = Array.fold2 (fun acc x y -> acc + x * y) 0.0 u v
        let plainSum = Array.sum u
        let scaleDot = Array.fold2 (fun acc x y -> acc + abs (x * y)) 0.0 u v + 1.0
        let scaleSum = Array.sumBy abs u + 1.0

        bitsOf d0 = bitsOf d1
        && bitsOf s0 = bitsOf s1
        && abs (d0 - plainDot) <= reorderedSum * scaleDot
        && abs (s0 - plainSum) <= reorderedSum * scaleSum)

[<Fact>]
let ``the kernels give the same bits on every call, from the first`` () =
    // The first calls of a process run code compiled differently from later ones (tiered compilation); a kernel whose
    // bits depended on that (System.Numerics.Tensors' Exp did) differs between call 1 and call 2. A model mid-way
    // through EM has posteriors spread over (0, 1), where every exp and log matters.
    let truth = GroundTruth.orthogonal 2 10 Identity 0.05
    let data = Sampler.sample truth 5000 3L

    let start =
        GroundTruth.random 2 10 Identity 0.05 1.0 true 9L |> MoeModel.withSigma 0.2

    let settings = EmSettings.paper true 30 1e-12
    let mutable model = start

    for _ in 1..10 do
        model <- Em.stepWith settings model data.X data.Y

    let run () =
        let post = LikelihoodKernel.responsibilities model data.X data.Y
        let stats = EmKernel.statistics model false true data.X data.Y
        let value, gradient = LikelihoodKernel.valueAndGradient model true data.X data.Y

        let gating, _, _ =
            GatingKernel.loss
                (GatingKernel.expertDensities model data.X data.Y)
                data.X
                model.Gating
                model.GatingIntercepts

        Array.concat
            [
                Seq.toArray (Seq.cast<float> post)
                Array.concat stats.Gram
                stats.GateGradient
                [| stats.LogLikelihood; value; gating |]
                gradient
            ]
        |> Array.map bitsOf

    let first = run ()

    for call in 2..40 do
        Assert.True((run () = first), sprintf "call %d differs from the first" call)

[<Property(MaxTest = 30)>]
let ``the block forward pass equals the scalar model functions`` () =
    Prop.forAll (Arb.fromGen Generators.model) (fun model ->
        let data = Sampler.sample model 700 5L
        let post = LikelihoodKernel.responsibilities model data.X data.Y
        let reference = MoeModel.responsibilities model data.X data.Y
        let ll = LikelihoodKernel.logLikelihood model data.X data.Y
        let llReference = MoeModel.logLikelihood model data.X data.Y

        Assert.Equal(llReference, ll, reorderedSum * (abs llReference + 1.0))

        for r in 0..699 do
            for i in 0 .. model.Experts - 1 do
                // Posteriors are ratios of exponentials of O(1)..O(100) log-densities: exact identities computed two ways
                // (lane order, DetMath against the C runtime's exp), a few ulp each.
                Assert.Equal(reference.[r, i], post.[r, i], 1e-12))
