/// The starts of a fit on small data (docs/learners.md): every start runs to convergence on every row, the random
/// starts are a prefix family and ties keep the proposals' order, so more starts never give a lower likelihood.
[<FsCheck.Xunit.Properties(MaxTest = 12)>]
module MoE.Core.Tests.StartsTests

open FsCheck.FSharp
open FsCheck.Xunit
open Xunit
open MoE.Core

/// A small data set: n ∈ 40..150 rows from a random two- or three-expert model on d ∈ 1..2 standard covariates with
/// intercepts and levels per expert, and a number of random starts m ∈ 0..3.
let private smallCase =
    gen {
        let! d = Gen.choose (1, 2)
        let! k = Gen.choose (2, 3)
        let! n = Gen.choose (40, 150)
        let! seed = Gen.choose (1, 1_000_000)
        let! m = Gen.choose (0, 3)
        let! a = Generators.matrix k d -2.0 2.0
        let! w = Generators.matrix (k - 1) d -2.0 2.0
        let! b = Generators.vector k -1.0 1.0
        let! c = Generators.vector (k - 1) -1.0 1.0
        let! sigmas = Generators.vector k 0.1 1.0

        let truth =
            MoeModel.createWith (Design.shared d) ExpertFamily.Gaussian a b w c Identity sigmas

        return truth, n, int64 seed, m
    }

/// Exact: the m + 1 starts include the m starts bit for bit (each draws from its own stream and runs alone), so
/// the best of them cannot be lower — no tolerance.
[<Property>]
let ``on small data the starts of m random starts are a prefix of m + 1, and the likelihood never falls`` () =
    Prop.forAll (Arb.fromGen smallCase) (fun (truth, n, seed, m) ->
        let data = Sampler.sample truth n seed

        let fitWith starts =
            let config =
                { FitConfig.defaults truth.Experts Identity with
                    RandomStarts = starts
                    Seed = seed
                }

            Learner.fit config data RunContext.silent

        let fewer, more = fitWith m, fitWith (m + 1)
        Assert.True(fewer.Candidates |> Array.forall (fun c -> c.AllRows))

        let names (f: FitResult) =
            f.Candidates |> Array.map (fun c -> c.Initializer) |> Set.ofArray

        Assert.True(Set.isSubset (names fewer) (names more))

        MoeModel.logLikelihood more.Model data.X data.Y
        >= MoeModel.logLikelihood fewer.Model data.X data.Y)

/// The finalists of a screened fit (Selection.unresolved): a challenger whose held-out likelihood trails the best's by
/// less than two standard errors of the paired per-row difference climbs too; one that is the best's model again
/// (within the duplicate tolerance) or clearly worse does not. Bernoulli experts, 60,000 rows (20,000 held out),
/// measured: the truth's slopes scaled by 0.97 are 1.6e-5 nats per row *ahead* (standard error 4.4e-5), by 0.8
/// 7.8e-4 behind (standard error 3.2e-4: 2.5 of them), negated 0.29 behind; scaled by 1.001 they are the same model.
[<Fact>]
let ``the held-out rows' noise decides which screened candidates climb on every row`` () =
    let truth =
        MoeModel.createWith
            (Design.shared 2)
            ExpertFamily.Bernoulli
            (array2D [ [ 2.0; -1.0 ]; [ -1.5; 1.5 ] ])
            [| 0.5; -0.5 |]
            (array2D [ [ 1.0; 1.0 ] ])
            [| 0.2 |]
            Identity
            [| 1.0; 1.0 |]

    let data = Sampler.sample truth 60_000 9L
    let source = DataSource.ofDataset data
    let settings = (FitConfig.defaults 2 Identity).Selection

    let scaled (f: float) =
        { truth with
            Regressors = Array2D.map (fun v -> f * v) truth.Regressors
        }

    let candidate name (m: MoeModel) =
        {
            Initializer = name
            Outcome = Ok m
            LogLikelihood = -0.5
            AllRows = false
            ScreeningMaps = 30
            Seconds = 0.0
        }

    let candidates =
        [|
            candidate "best" truth
            candidate "same" (scaled 1.001)
            candidate "close" (scaled 0.97)
            candidate "separated" (scaled 0.8)
            candidate "negated" (scaled -1.0)
            candidate "failed" truth |> fun c -> { c with Outcome = Error "diverged" }
        |]

    let names =
        Selection.unresolved settings 3L source candidates 3
        |> Array.map (fun (c, _) -> c.Initializer)

    Assert.Equal<string[]>([| "best"; "close" |], names)
    // No challengers asked for: the best alone.
    Assert.Equal(1, (Selection.unresolved settings 3L source candidates 0).Length)
