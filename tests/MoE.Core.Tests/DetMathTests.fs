module MoE.Core.Tests.DetMathTests

open System
open Xunit
open MoE.Core
open MoE.Core.Tests.Tolerance

/// A deterministic spread of arguments: a fine grid plus points from our own generator.
let private points (lo: float) (hi: float) =
    let rng = Rng.create 2024L

    Array.append
        (Array.init 20001 (fun i -> lo + (hi - lo) * float i / 20000.0))
        (Array.init 20000 (fun _ -> lo + (hi - lo) * rng.NextDouble()))

let private relClose (expected: float) (actual: float) =
    abs (actual - expected) <= ulps * abs expected

[<Fact>]
let ``exp agrees with Math.Exp to a few ulp over the normal range`` () =
    for x in points -700.0 709.0 do
        if not (relClose (Math.Exp x) (DetMath.exp x)) then
            failwithf "exp %.17g: Math %.17g, DetMath %.17g" x (Math.Exp x) (DetMath.exp x)

[<Fact>]
let ``exp handles its special values`` () =
    Assert.Equal(1.0, DetMath.exp 0.0)
    Assert.Equal(Double.PositiveInfinity, DetMath.exp 710.0)
    Assert.Equal(0.0, DetMath.exp -746.0)
    Assert.True(Double.IsNaN(DetMath.exp nan))
    // Subnormal results: few significant bits remain there by definition.
    let x = -740.0
    Assert.True(abs (DetMath.exp x - Math.Exp x) <= subnormal * Math.Exp x)

[<Fact>]
let ``log agrees with Math.Log to a few ulp from 1e-300 to 1e300`` () =
    for t in points -300.0 300.0 do
        let x = Math.Pow(10.0, t)
        let expected = Math.Log x
        // Near x = 1 the value is near 0: compare absolutely there (log(1+h) ≈ h, error ~ ulp(h)).
        if
            not (
                abs (DetMath.log x - expected) <= ulps * max (abs expected) 1e-300
                || abs (DetMath.log x - expected) <= 1e-17
            )
        then
            failwithf "log %.17g: Math %.17g, DetMath %.17g" x expected (DetMath.log x)

[<Fact>]
let ``log near one and of subnormals`` () =
    for h in [ 1e-15; 1e-10; 1e-5; -1e-5; -1e-10 ] do
        assertClose ulps (Math.Log(1.0 + h)) (DetMath.log (1.0 + h)) "log near 1"

    assertClose ulps (Math.Log 5e-324) (DetMath.log 5e-324) "log of the smallest subnormal"
    assertClose ulps (Math.Log 1e-310) (DetMath.log 1e-310) "log of a subnormal"
    Assert.Equal(Double.NegativeInfinity, DetMath.log 0.0)
    Assert.True(Double.IsNaN(DetMath.log -1.0))

[<Fact>]
let ``tanh and sigmoid agree with their Math definitions, including tiny arguments`` () =
    for x in Array.append (points -20.0 20.0) [| 1e-300; 1e-12; -1e-8; 3e-5 |] do
        if not (relClose (Math.Tanh x) (DetMath.tanh x)) then
            failwithf "tanh %.17g: Math %.17g, DetMath %.17g" x (Math.Tanh x) (DetMath.tanh x)

    for x in points -700.0 700.0 do
        let expected =
            if x >= 0.0 then
                1.0 / (1.0 + Math.Exp(-x))
            else
                Math.Exp x / (1.0 + Math.Exp x)

        if not (relClose expected (DetMath.sigmoid x)) then
            failwithf "sigmoid %.17g: expected %.17g, DetMath %.17g" x expected (DetMath.sigmoid x)
