/// The bootstrap with aligned labels (docs/inference.md §2.2): the matching of a replicate's experts to the original
/// fit's, the parametric draw, and the run's reproducibility.
module MoE.Core.Tests.BootstrapTests

open System
open System.Threading
open FsCheck.FSharp
open FsCheck.Xunit
open Xunit
open MoE.Core

/// A permutation of 0..k−1 from a seed (Fisher–Yates).
let private permutation (k: int) (seed: int) =
    let rng = Random(seed)
    let p = Array.init k id

    for i in k - 1 .. -1 .. 1 do
        let j = rng.Next(i + 1)
        let t = p.[i]
        p.[i] <- p.[j]
        p.[j] <- t

    p

/// Whether two models' parameters agree to 1e-12 relative: relabelling twice rebases the gate twice, a few roundings of
/// differences of O(1)–O(10) values, ~1e-15 each.
let private restored (a: MoeModel) (b: MoeModel) =
    let u = Bootstrap.parameterValues a true
    let v = Bootstrap.parameterValues b true
    Array.forall2 (fun p q -> abs (p - q) <= 1e-12 * (1.0 + abs q)) u v

/// Relabelling a model and aligning it back to itself gives the model again — or, where two experts' memberships
/// cannot be told apart on the rows (an expert the gate never picks), the alignment says it is ambiguous. Never a
/// silent wrong matching.
[<Property(MaxTest = 40)>]
let ``aligning a relabelled model to itself undoes the relabelling`` () =
    Prop.forAll (Arb.fromGen (Gen.zip Generators.generalModel (Gen.choose (0, 1_000_000)))) (fun (m, seed) ->
        let data = Sampler.sample m 400 (int64 seed)
        let shuffled = MoeModel.relabel (permutation m.Experts seed) m
        let alignment = Bootstrap.align m shuffled data
        let back = MoeModel.relabel alignment.Order shuffled

        Assert.True(
            restored back m || alignment.Ambiguous,
            sprintf "order %A, cost %g, next %g" alignment.Order alignment.Cost alignment.RunnerUp
        )

        // The original's own labels cost nothing (the same memberships, to rounding).
        Assert.True(abs alignment.Cost <= 1e-12, sprintf "cost %g" alignment.Cost))

/// k = 10 takes the Hungarian method instead of enumerating 10! matchings: a shuffled model is still put back.
[<Fact>]
let ``ten experts are aligned by the Hungarian method`` () =
    let m0 = GroundTruth.random 10 10 Identity 0.2 1.0 true 5L
    let b, c = GroundTruth.randomIntercepts 10 5L

    let m =
        MoeModel.createGeneral m0.Regressors b m0.Gating c Identity (Array.init 10 (fun i -> 0.2 + 0.02 * float i))

    let data = Sampler.sample m 5000 6L

    for seed in 1..5 do
        let shuffled = MoeModel.relabel (permutation 10 seed) m
        let alignment = Bootstrap.align m shuffled data
        Assert.True(restored (MoeModel.relabel alignment.Order shuffled) m, sprintf "seed %d: %A" seed alignment.Order)
        Assert.False(alignment.Ambiguous)

/// The Hungarian method finds a matching as cheap as the best of all k! (k ≤ 7), to 1e-12: both sum the same k costs
/// in [0, 1), so only the order of the additions differs.
[<Property(MaxTest = 60)>]
let ``the Hungarian method finds the cheapest matching`` () =
    let costs =
        gen {
            let! k = Gen.choose (1, 7)

            let! values =
                Gen.arrayOfLength (k * k) (Gen.choose (0, 1_000_000) |> Gen.map (fun v -> float v / 1e6))

            return Array2D.init k k (fun i j -> values.[i * k + j])
        }

    Prop.forAll (Arb.fromGen costs) (fun cost ->
        let k = cost.GetLength 0
        let order = Bootstrap.hungarian cost
        Assert.Equal<int[]>(Array.init k id, Array.sort order)

        let total (p: int[]) =
            Array.init k (fun j -> cost.[j, p.[j]]) |> Array.sum

        let rec all (items: int list) =
            match items with
            | [] -> [ [] ]
            | _ ->
                items
                |> List.collect (fun x -> all (List.filter ((<>) x) items) |> List.map (fun p -> x :: p))

        let best = all [ 0 .. k - 1 ] |> List.map (List.toArray >> total) |> List.min
        Assert.True(abs (total order - best) <= 1e-12, sprintf "%g against %g" (total order) best))

/// The parametric draw is the model's law at the given covariates: over 20,000 rows of a Gaussian mixture, the mean of
/// y − E[y | x] is within 4 standard errors of 0 (σ_y ≤ 3 here, so 4·3/√20000 ≈ 0.085; a draw from the wrong expert
/// or the wrong gate moves it by ~0.5), and the same seed gives the same bits.
[<Fact>]
let ``the parametric draw follows the model at the observed covariates`` () =
    let truth = Coverage.truth
    let x = (Sampler.sample truth 20_000 3L).X
    let y = Sampler.responsesAt truth x 11L
    let mean = MoeModel.predict truth x
    let residual = Array.map2 (-) y mean
    let sd = sqrt (Array.averageBy (fun r -> r * r) residual)

    Assert.True(
        abs (Array.average residual) <= 4.0 * sd / sqrt 20_000.0,
        sprintf "mean residual %g" (Array.average residual)
    )

    Assert.Equal<float[]>(y, Sampler.responsesAt truth x 11L)
    Assert.NotEqual<float[]>(y, Sampler.responsesAt truth x 12L)

let private bits (m: float[,]) =
    Seq.cast<float> m |> Seq.map BitConverter.DoubleToInt64Bits |> Seq.toArray

/// Replicate b draws from its own stream and is fitted alone, so one core or two give the same replicates, bit for bit,
/// for both kinds.
[<Fact>]
let ``the replicates are the same bits on one core and on two`` () =
    let data = Sampler.sample Coverage.truth 400 21L
    let config = FitConfig.defaults 2 Identity
    let fit = Learner.fit config data RunContext.silent

    for kind in [ BootstrapKind.Nonparametric; BootstrapKind.Parametric ] do
        let run parallelism =
            Bootstrap.run
                config
                fit.Model
                data
                { Bootstrap.defaults with
                    Replicates = 6
                    Kind = kind
                    Parallelism = parallelism
                }
                CancellationToken.None
                ignore

        let one, two = run 1, run 2
        Assert.Equal(6, one.Used)
        Assert.Equal<int64[]>(bits one.Replicates, bits two.Replicates)
        // The replicates differ from each other and from the fit: the rows were resampled.
        Assert.NotEqual<float>(one.Replicates.[0, 0], one.Replicates.[1, 0])

/// The alignment is what makes the intervals mean anything. Fitted from fresh starts, the replicates of a k = 3 fit come
/// out in arbitrary labels (the test checks that some do); aligned, the bootstrap's standard error of every slope is
/// within a factor 2 of the Wald one (at n = 1,500 both estimate the same sd; B = 30 gives the bootstrap's ±13 %), where
/// unaligned replicates would spread over the three experts' slopes, 1 to 2 apart, against a Wald error of ~0.03.
[<Fact>]
let ``aligned replicates from fresh starts give the Wald spread`` () =
    let truth =
        MoeModel.createGeneral
            (array2D [ [ -1.0 ]; [ 1.0 ]; [ 0.0 ] ])
            [| -1.0; -1.0; 1.0 |]
            (array2D [ [ -3.0 ]; [ 3.0 ] ])
            [| -2.0; -2.0 |]
            Identity
            [| 0.3; 0.4; 0.5 |]

    let data = Sampler.sample truth 1500 31L
    let config = FitConfig.defaults 3 Identity
    let fit = Learner.fit config data RunContext.silent
    let wald = Inference.standardErrorsOf fit.Model false true false data

    let boot =
        Bootstrap.run
            config
            fit.Model
            data
            { Bootstrap.defaults with
                Replicates = 30
                FromFit = false
            }
            CancellationToken.None
            ignore

    Assert.Equal(30, boot.Used)
    Assert.Contains(boot.Orders, fun o -> o <> [| 0; 1; 2 |])

    for i in 0..2 do
        let ratio = boot.StandardErrors.[2 * i] / wald.Regressors.[i, 0]

        Assert.True(
            ratio > 0.5 && ratio < 2.0,
            sprintf "expert %d: bootstrap %g, Wald %g" i boot.StandardErrors.[2 * i] wald.Regressors.[i, 0]
        )

/// Settings out of range and a start of another kind are refused with what is wrong.
[<Fact>]
let ``bad settings and a mismatched start are refused`` () =
    let data = Sampler.sample Coverage.truth 300 41L
    let config = FitConfig.defaults 2 Identity
    let fit = Learner.fit config data RunContext.silent

    let e =
        Assert.Throws<ArgumentException>(fun () ->
            Bootstrap.run
                config
                fit.Model
                data
                { Bootstrap.defaults with
                    Replicates = 1
                }
                CancellationToken.None
                ignore
            |> ignore)

    Assert.Contains("at least 2 replicates", e.Message)

    let e =
        Assert.Throws<ArgumentException>(fun () ->
            Learner.fitFrom (FitConfig.defaults 3 Identity) fit.Model data RunContext.silent
            |> ignore)

    Assert.Contains("k = 2 experts where the configuration has 3", e.Message)

    use cancelled = new CancellationTokenSource()
    cancelled.Cancel()

    Assert.ThrowsAny<OperationCanceledException>(fun () ->
        Bootstrap.run config fit.Model data Bootstrap.defaults cancelled.Token ignore
        |> ignore)
    |> ignore

/// A seeded slice of the bootstrap coverage study (docs/inference.md §2.2 has the full runs): 12 data sets of n = 300
/// from the k = 3 truth, B = 100. Per group, 24–36 intervals at 95 % have a binomial sd of 0.04, so a share below 0.8 is
/// ~4 sd low — what intervals around the wrong labels, or of the wrong width, give — and the percentile intervals are
/// within 0.1 of Wald's overall (both are asymptotically right here).
[<Fact>]
let ``a seeded slice of the bootstrap coverage study covers`` () =
    let study =
        Coverage.runBootstrap 12 300 100 0.95 BootstrapKind.Nonparametric CancellationToken.None ignore

    Assert.True(study.DataSets >= 10, sprintf "only %d data sets used" study.DataSets)

    for row in study.Rows do
        Assert.True(row.Percentile >= 0.8, sprintf "%s: percentile coverage %g" row.Group row.Percentile)

    let overall (f: BootstrapCoverageRow -> float) =
        (study.Rows |> Array.sumBy (fun r -> f r * float r.Intervals))
        / float (study.Rows |> Array.sumBy _.Intervals)

    Assert.True(abs (overall _.Percentile - overall _.Wald) <= 0.1)

/// The test for k (docs/inference.md §1.1) on data with two well-separated experts: one expert against two is
/// rejected as strongly as B replicates can say (P = 1/(B + 1): no replicate drawn from the one-expert fit comes near
/// the observed ratio), P is its own formula over the replicates, and one core or two give the same replicates.
[<Fact>]
let ``the bootstrap test for k rejects one expert where there are two, the same on any core count`` () =
    let data = Sampler.sample Coverage.truth 600 61L
    let config = FitConfig.defaults 2 Identity
    let choices = Inference.selectExperts config [| 1; 2 |] data RunContext.silent

    let run parallelism =
        ExpertsTest.run config data choices.[0] choices.[1] 9 3L parallelism CancellationToken.None ignore

    let one, two = run 1, run 2
    Assert.Equal(0.1, one.P, 12)
    Assert.Equal(0, one.Failed)
    Assert.Equal(2.0 * (choices.[1].LogLikelihood - choices.[0].LogLikelihood), one.Statistic, 9)
    Assert.True(one.Replicates |> Array.forall (fun v -> v >= 0.0 && v < one.Statistic))
    Assert.Equal<float[]>(one.Replicates, two.Replicates)

    let e =
        Assert.Throws<ArgumentException>(fun () ->
            ExpertsTest.run config data choices.[0] choices.[0] 9 3L 1 CancellationToken.None ignore
            |> ignore)

    Assert.Contains("compares k with k + 1 experts, but the fits have 1 and 1", e.Message)

/// Under the null the data's statistic and its replicates' have one law: drawn from a two-expert model and tested
/// against three, the observed ratio sits among its 19 replicates (P in [0.1, 0.95], where a right test lands with
/// probability 0.85 — this seed does). Replicates of another law land at an extreme: fitted less well than the data
/// (their k + 1 fits stopping short) P falls to 0.05, fitted better P rises to 1. The size itself is measured over 200
/// data sets in docs/inference.md §1.1.
[<Fact>]
let ``under the null the observed ratio is one of its replicates`` () =
    let data = Sampler.sample Coverage.truth 300 62L
    let config = FitConfig.defaults 2 Identity
    let choices = Inference.selectExperts config [| 2; 3 |] data RunContext.silent

    let result =
        ExpertsTest.run config data choices.[0] choices.[1] 19 4L 2 CancellationToken.None ignore

    let exceed =
        result.Replicates
        |> Array.filter (fun v -> v >= result.Statistic)
        |> Array.length

    Assert.Equal(float (1 + exceed) / 20.0, result.P, 12)
    Assert.InRange(result.P, 0.1, 0.95)
