[<FsCheck.Xunit.Properties(MaxTest = 60)>]
module MoE.Core.Tests.CoefficientTests

open System
open FsCheck.FSharp
open FsCheck.Xunit
open Xunit
open MoE.Core
open MoE.Core.Tests.Assertions
open MoE.Core.Tests.Tolerance

/// S4(z) = E[Q4(Y) | Z = z] and S2(z) = E[Q2(Y) | Z = z], integrating the noise exactly
/// (E[ξ²] = 1, E[ξ⁴] = 3): written out here independently of the library's moment code.
let private s4 (c: TransformCoefficients) (g: float) =
    let s2 = c.Sigma * c.Sigma

    (g ** 4.0 + 6.0 * s2 * g * g + 3.0 * s2 * s2)
    + c.Alpha * (g ** 3.0 + 3.0 * s2 * g)
    + c.Beta * (g * g + s2)
    + c.Gamma * g

let private s2 (c: TransformCoefficients) (g: float) = g * g + c.Sigma * c.Sigma + c.Delta * g

[<Property>]
let ``Q4 and Q2 satisfy Conditions 1 and 2 for every built-in activation and sigma in 0..1`` () =
    Prop.forAll Numerics.activationAndSigmaArb (fun (g, sigma) ->
        let c = Coefficients.solve g sigma
        // Independent integration: the kink-split panel rule over Z, whatever closed form the solver used.
        let rule = Quadrature.accurate [| 0.0 |]
        let e f = Quadrature.expect rule f

        let ok q =
            abs (e (fun z -> s4 c (g.Value z) * Quadrature.hermite q z))
            <= conditionResidual

        ok 1
        && ok 2
        && ok 3
        && abs (e (fun z -> s2 c (g.Value z) * z)) <= conditionResidual
        // and c, c' are what they claim to be
        && abs (e (fun z -> s4 c (g.Value z) * Quadrature.hermite 4 z) - c.C)
           <= conditionResidual * abs c.C
        && abs (e (fun z -> s2 c (g.Value z) * Quadrature.hermite 2 z) - c.CPrime)
           <= conditionResidual * abs c.CPrime)

/// f(z) = E[S3(Y) | Z = z] for the spectral method's S3, the noise integrated exactly (E[ξ²] = 1, E[ξ³] = 0).
let private f3 (c: ThirdOrderCoefficients) (g: float) =
    let s2 = c.Sigma * c.Sigma
    g * g * g + 3.0 * s2 * g + c.Alpha * (g * g + s2) + c.Beta * g + c.Gamma

[<Property>]
let ``S3 satisfies the spectral method's conditions for every built-in activation and sigma in 0..1`` () =
    Prop.forAll Numerics.activationAndSigmaArb (fun (g, sigma) ->
        let c = Coefficients.solveThird g sigma
        let rule = Quadrature.accurate [| 0.0 |]
        let e f = Quadrature.expect rule f

        let ok q =
            abs (e (fun z -> f3 c (g.Value z) * Quadrature.hermite q z))
            <= conditionResidual

        ok 0
        && ok 1
        && ok 2
        && abs (e (fun z -> f3 c (g.Value z) * Quadrature.hermite 3 z) - c.C3)
           <= conditionResidual * abs c.C3)

[<Fact>]
let ``S3 for the identity is y^3 - 3(1 + sigma^2) y with c3 = 6`` () =
    for sigma in [ 0.0; 0.05; 0.5 ] do
        let c = Coefficients.solveThird Identity sigma
        assertClose exact 0.0 c.Alpha "alpha"
        assertClose exact (-3.0 * (1.0 + sigma * sigma)) c.Beta "beta"
        assertClose exact 0.0 c.Gamma "gamma"
        assertClose exact 6.0 c.C3 "c3"

[<Fact>]
let ``an even activation has no S3 and says so`` () =
    let square = Activation.custom "square" (fun z -> z * z) (fun z -> 2.0 * z)

    throwsArg<ArgumentException> "activation" [ "not valid for the spectral method" ] (fun () ->
        Coefficients.solveThird square 0.1 |> ignore)
    // The polynomial transforms keep Q4/Q2 where they exist and report the missing S3 instead of throwing.
    let cubic =
        Activation.custom "cubic" (fun z -> z + 0.1 * z * z * z) (fun z -> 1.0 + 0.3 * z * z)

    Assert.True((OutputTransforms.polynomialFor cubic 0.1).Third |> Result.isOk)

[<Fact>]
let ``identity matches the closed form: alpha = gamma = delta = 0, beta = -6(1 + sigma^2), c = 24, c' = 2`` () =
    for sigma in [ 0.0; 0.05; 0.5; 1.0 ] do
        let c = Coefficients.solve Activation.Identity sigma
        assertClose exact 0.0 c.Alpha "alpha"
        assertClose exact 0.0 c.Gamma "gamma"
        assertClose exact 0.0 c.Delta "delta"
        assertClose exact (-6.0 * (1.0 + sigma * sigma)) c.Beta "beta"
        assertClose exact 24.0 c.C "c"
        assertClose exact 2.0 c.CPrime "c'"
        // The paper's constant, corrected: Q4 centred by 3(1 + σ²)².
        assertClose exact (-3.0 * (1.0 + sigma * sigma) ** 2.0) c.Q4Mean "E[Q4]"

[<Fact>]
let ``ReLU matches the corrected values of docs/math.md, not the paper's table`` () =
    // docs/math.md gives 5-6 significant digits; the tolerances are half a unit in the last digit shown.
    let c05 = Coefficients.solve Activation.Relu 0.05
    Assert.InRange(c05.Alpha, -5.352485, -5.352475)
    Assert.InRange(c05.Beta, 8.110025, 8.110035)
    Assert.InRange(c05.Gamma, -3.251155, -3.251145)
    assertClose closedForm (-2.0 * sqrt (2.0 / Math.PI)) c05.Delta "delta = -2 sqrt(2/pi)"
    Assert.InRange(c05.C, 0.501045, 0.501055)
    assertClose closedForm (1.0 - 2.0 / Math.PI) c05.CPrime "c' = 1 - 2/pi"
    let c5 = Coefficients.solve Activation.Relu 0.5
    Assert.InRange(c5.Alpha, -5.352485, -5.352475)
    Assert.InRange(c5.Beta, 6.625025, 6.625035)
    Assert.InRange(c5.Gamma, 0.723065, 0.723075)

[<Fact>]
let ``closed-form ReLU moments agree with quadrature of the same function given as a custom activation`` () =
    let custom =
        Activation.custom "my-relu" (fun z -> max z 0.0) (fun z -> if z > 0.0 then 1.0 else 0.0)

    let a, b = Coefficients.solve Activation.Relu 0.3, Coefficients.solve custom 0.3

    for (x, y, name) in
        [
            a.Alpha, b.Alpha, "alpha"
            a.Beta, b.Beta, "beta"
            a.Gamma, b.Gamma, "gamma"
            a.C, b.C, "c"
            a.Q4Mean, b.Q4Mean, "E[Q4]"
        ] do
        assertClose exact x y name

[<Fact>]
let ``an invalid activation gets an error naming the failing condition`` () =
    throwsArg<ArgumentException> "activation" [ "Condition 2"; "E[g'(Z)]" ] (fun () ->
        Coefficients.solve (Activation.custom "square" (fun z -> z * z) (fun z -> 2.0 * z)) 0.1
        |> ignore)

    throwsArg<ArgumentException> "activation" [ "Condition 2" ] (fun () ->
        Coefficients.solve (Activation.custom "constant" (fun _ -> 1.0) (fun _ -> 0.0)) 0.1
        |> ignore)

    throwsArg<ArgumentException> "sigma" [ ">= 0" ] (fun () -> Coefficients.solve Activation.Relu -0.1 |> ignore)

/// Bisects the leaky-ReLU slope on [lo, hi], where `value` changes sign, until the solver rejects the slope;
/// returns the rejection message (or fails if the root is passed without a rejection).
let private bisectToRejection (lo: float) (hi: float) (value: TransformCoefficients -> float) =
    let sign s =
        sign (value (Coefficients.solve (Activation.leakyRelu s) 0.1))

    let mutable lo, hi = lo, hi
    let signLo = sign lo
    let mutable message = None
    let mutable iterations = 0

    while message.IsNone && iterations < 200 do
        let mid = 0.5 * (lo + hi)

        try
            if sign mid = signLo then lo <- mid else hi <- mid
        with :? ArgumentException as e ->
            message <- Some e.Message

        iterations <- iterations + 1

    match message with
    | Some m -> m
    | None -> failwithf "bisection reached [%.17g, %.17g] without a rejection" lo hi

[<Fact>]
let ``a leaky ReLU whose c vanishes fails Condition 1 and one whose c' vanishes fails Condition 2`` () =
    // c(slope) changes sign on [-0.9, -0.7] and c'(slope) on [-0.5, -0.3] (σ = 0.1).
    let m1 = bisectToRejection -0.9 -0.7 (fun c -> c.C)
    Assert.Contains("Condition 1 fails because c = E[S4·He4]", m1)
    let m2 = bisectToRejection -0.5 -0.3 (fun c -> c.CPrime)
    Assert.Contains("Condition 2 fails because c' = E[S2·He2]", m2)
