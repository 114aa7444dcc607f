[<FsCheck.Xunit.Properties(MaxTest = 100)>]
module MoE.Core.Tests.TransformTests

open System
open FsCheck.FSharp
open FsCheck.Xunit
open Xunit
open MoE.Core
open MoE.Core.Tests.Tolerance

let private vectors =
    gen {
        let! d = Gen.choose (1, 6)
        let! u = Generators.vector d -2.0 2.0
        let! v = Generators.vector d -2.0 2.0
        let! x = Generators.vector d -3.0 3.0
        return u, v, x
    }

/// One dimension fewer, or one entry simpler.
let private shrinkVectors ((u: float[], v: float[], x: float[])) =
    seq {
        if x.Length > 1 then
            let drop (w: float[]) = Array.sub w 0 (w.Length - 1)
            yield drop u, drop v, drop x

        for u' in Generators.shrinkEntries u do
            yield u', v, x

        for v' in Generators.shrinkEntries v do
            yield u, v', x

        for x' in Generators.shrinkEntries x do
            yield u, v, x'
    }

let private cf = Coefficients.solve Activation.Relu 0.1

let private contract4 (t: float[,,,]) (a: float[]) (b: float[]) (c: float[]) (e: float[]) =
    let d = a.Length
    let mutable s = 0.0

    for i in 0 .. d - 1 do
        for j in 0 .. d - 1 do
            for k in 0 .. d - 1 do
                for l in 0 .. d - 1 do
                    s <- s + t.[i, j, k, l] * a.[i] * b.[j] * c.[k] * e.[l]

    s

/// An upper bound on the sum of |terms| of the contraction, (‖u‖₁‖v‖₁)²(‖x‖∞ + 1)⁴·16: summing d⁴ ≤ 1296
/// products in double precision errs by at most ~1296·4ε ≈ 1.2e-12 of it.
let private bound (u: float[]) (v: float[]) (x: float[]) =
    let l1 (w: float[]) = Array.sumBy abs w
    (l1 u * l1 v) ** 2.0 * (Array.max (Array.map abs x) + 1.0) ** 4.0 * 16.0

[<Property>]
let ``t1, t2, t3 are the contractions of S4 and S2`` () =
    Prop.forAll (Arb.fromGenShrink (vectors, shrinkVectors)) (fun (u, v, x) ->
        let s4 = Transforms.score4 x
        let s2 = Transforms.score2 x
        let tol = exact * bound u v x / abs cf.C

        abs (Transforms.t1 cf u v x - contract4 s4 u u v v / cf.C) <= tol
        && abs (Transforms.t2 cf u x - contract4 s4 u u u u / cf.C)
           <= exact * bound u u x / abs cf.C
        && abs (
            Transforms.t3 cf u x
            - Seq.sum (
                seq {
                    for i in 0 .. x.Length - 1 do
                        for j in 0 .. x.Length - 1 -> s2.[i, j] * u.[i] * u.[j]
                }
              )
              / cf.CPrime
           )
           <= exact * bound u u x / abs cf.CPrime)

[<Fact>]
let ``S4 is symmetric and has mean zero under Gauss-Hermite quadrature`` () =
    // E[S4(x)] = 0 entrywise: a 5-point rule per axis is exact for these degree-4 polynomials.
    let d = 3
    let rule = Quadrature.gaussHermite 5
    let mean = Array4D.zeroCreate d d d d

    for a in 0..4 do
        for b in 0..4 do
            for c in 0..4 do
                let x = [| rule.Nodes.[a]; rule.Nodes.[b]; rule.Nodes.[c] |]
                let w = rule.Weights.[a] * rule.Weights.[b] * rule.Weights.[c]
                let s = Transforms.score4 x

                for i in 0 .. d - 1 do
                    for j in 0 .. d - 1 do
                        for k in 0 .. d - 1 do
                            for l in 0 .. d - 1 do
                                mean.[i, j, k, l] <- mean.[i, j, k, l] + w * s.[i, j, k, l]

                                // Symmetric up to the rounding of different summation orders (values ≤ ~400).
                                if
                                    abs (s.[i, j, k, l] - s.[j, i, l, k]) > exact
                                    || abs (s.[i, j, k, l] - s.[k, l, i, j]) > exact
                                then
                                    failwith "S4 is not symmetric"

    for v in Seq.cast<float> mean do
        assertClose exact 0.0 v "E[S4]"

[<Fact>]
let ``Gauss-Hermite rules are exact to degree 2n-1 and Hermite polynomials orthogonal`` () =
    let rule = Quadrature.gaussHermite 12
    // E[Z^22] = 21!! and E[He_m He_n] = n! δ_mn for m, n ≤ 11 (degree ≤ 22 < 24).
    let doubleFactorial21 = Seq.fold (*) 1.0 [ 1.0..2.0..21.0 ]
    assertClose quadratureRule doubleFactorial21 (Quadrature.expect rule (fun z -> pown z 22)) "E[Z^22]"

    for m in 0..11 do
        for n in 0..11 do
            let factorial j = Seq.fold (*) 1.0 [ 1.0 .. float j ]
            let expected = if m = n then factorial n else 0.0
            // Scale √(m!·n!) bounds E|He_m He_n| (Cauchy–Schwarz), hence the sum of |terms|; 12 terms with nodes
            // and weights good to ~1e-15 and polynomials of degree ≤ 22 give errors ≤ ~1e-14 of it.
            let scale = sqrt (factorial m * factorial n)

            let value =
                Quadrature.expect rule (fun z -> Quadrature.hermite m z * Quadrature.hermite n z)

            assertClose quadratureRule (expected / scale) (value / scale) (sprintf "E[He_%d He_%d] / sqrt(m! n!)" m n)

[<Fact>]
let ``the panel rule integrates a kinked function to rounding`` () =
    // E[max(Z,0)^3 Z] = ½E[Z^4] = 1.5 and E[max(Z,0)] = 1/√(2π).
    let rule = Quadrature.accurate [| 0.0 |]
    assertClose closedForm 1.5 (Quadrature.expect rule (fun z -> (max z 0.0) ** 3.0 * z)) "E[relu^3 Z]"
    assertClose closedForm (1.0 / sqrt (2.0 * Math.PI)) (Quadrature.expect rule (fun z -> max z 0.0)) "E[relu]"
