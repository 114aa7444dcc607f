/// What degenerate means (docs/math.md §7.4, Learning/MaximumLikelihood/Degeneracy.fs): the two rules on numbers
/// built to sit on either side of them, the responses' resolution, and the chain on data with a pile of tied
/// responses, where the likelihood's climb collapses an expert and the guarded model is kept with a warning that
/// names it. The narrow experts of real regimes that must pass are in RealDataTests.
[<FsCheck.Xunit.Properties(MaxTest = 100)>]
module MoE.Core.Tests.DegeneracyTests

open System
open FsCheck.FSharp
open FsCheck.Xunit
open Xunit
open MoE.Core

[<Fact>]
let ``an expert on fewer rows than its parameters plus one is degenerate, on exactly that many it is not`` () =
    // d = 1 with an intercept and its own level: 3 parameters, so 4 rows are needed.
    let sigmas = [| 1.0; 1.0; 1.0 |]

    match Degeneracy.judge [| 50.0; 3.999; 50.0 |] sigmas 3 0.001 with
    | Some(DegenerateExpert.TooFewRows(i, rows, p)) ->
        Assert.Equal(1, i)
        Assert.Equal(3.999, rows)
        Assert.Equal(3, p)
    | other -> failwithf "expected too few rows, got %A" other

    Assert.Equal(None, Degeneracy.judge [| 50.0; 4.0; 50.0 |] sigmas 3 0.001)
    // A vanished expert (N_i = 0, or NaN from an empty expert) is degenerate too.
    Assert.True((Degeneracy.judge [| 50.0; nan; 50.0 |] sigmas 3 0.001).IsSome)

[<Fact>]
let ``a level below the responses' rounding noise is degenerate, at it it is not`` () =
    let delta = 0.001
    let rounding = delta / sqrt 12.0
    let rows = [| 40.0; 40.0 |]

    match Degeneracy.judge rows [| 0.5; rounding * (1.0 - 1e-12) |] 3 delta with
    | Some(DegenerateExpert.BelowResolution(i, _, sigma, resolution)) ->
        Assert.Equal(1, i)
        Assert.Equal(delta, resolution)
        Assert.True(sigma < rounding)
    | other -> failwithf "expected below resolution, got %A" other

    Assert.Equal(None, Degeneracy.judge rows [| 0.5; rounding |] 3 delta)
    // Continuous responses have no resolution to speak of: only the rows rule is left.
    Assert.Equal(None, Degeneracy.judge rows [| 0.5; 1e-9 |] 3 1e-12)

/// Responses on a grid of step δ (integers times δ, some repeated): the resolution is δ times the smallest positive
/// gap of the integers. The integers are below 10⁴, so each product is within 10⁴·δ·2⁻⁵³ of its value and a gap of
/// at least δ is exact to 1e-9 relative.
[<Property>]
let ``the resolution of gridded responses is the grid's smallest gap`` () =
    let case =
        gen {
            let! steps = Gen.elements [ 0.001; 0.1; 0.25; 1.0; 7.0 ]
            let! ints = Gen.arrayOfLength 30 (Gen.choose (-5000, 5000))
            return steps, ints
        }

    Prop.forAll (Arb.fromGen case) (fun (delta, ints) ->
        let distinct = ints |> Array.distinct |> Array.sort

        let expected =
            if distinct.Length < 2 then
                Double.PositiveInfinity
            else
                delta
                * float (Array.pairwise distinct |> Array.map (fun (a, b) -> b - a) |> Array.min)

        let actual = Degeneracy.resolution (ints |> Array.map (fun i -> float i * delta))

        if Double.IsInfinity expected then
            Double.IsPositiveInfinity actual
        else
            abs (actual - expected) <= 1e-9 * expected)

/// 300 rows in three regimes along x ∈ [0, 10]: below x = 3.3 the response is recorded as exactly 0 (a detection
/// limit), above it two noisy lines. An expert on the zeros fits them exactly, so the likelihood's climb sends its σ
/// to the floor: degenerate by the resolution rule (or not finite). The guarded model stays, the warning names the
/// expert, and the prior bounds every level: σ_i² ≥ ν s₀²/(N_i + ν + 2) with s₀² = var(y)/k², so σ_i/sd(y) ≥
/// 1/(3·√303) ≈ 0.0191 for N_i ≤ 300.
[<Fact>]
let ``an expert on tied responses is caught, named and guarded`` () =
    let rng = Random(5)
    let n = 300

    let x = Array.init n (fun _ -> 10.0 * rng.NextDouble())

    let y =
        x
        |> Array.map (fun v ->
            let noise =
                sqrt (-2.0 * log (rng.NextDouble())) * cos (2.0 * Math.PI * rng.NextDouble())

            if v < 3.3 then 0.0
            elif v < 6.6 then 2.0 * v - 4.0 + 0.5 * noise
            else 12.0 - v + 0.5 * noise)

    let data =
        {
            X = Array2D.init n 1 (fun r _ -> x.[r])
            Y = y
            Weights = null
        }

    let fit = Learner.fit (FitConfig.defaults 3 Identity) data RunContext.silent

    let warning =
        fit.Warnings
        |> Array.tryFind (fun w -> w.Code = FindingCode.LikelihoodDegenerate)

    Assert.True(warning.IsSome, sprintf "no degeneracy warning: %A" fit.Warnings)
    // The resolution rule names the expert on the zeros (about 98 rows), its rows and its unguarded σ.
    Assert.Matches(@"expert \d \(\d[\d.]* rows\) reaches sigma = [0-9.e+-]+·sd\(y\)", warning.Value.Message)
    let sd = Dense.std y

    for s in fit.Model.Sigmas do
        Assert.True(s / sd >= 0.0191 * 0.99, sprintf "sigma %.3g against sd(y) %.3g" s sd)
