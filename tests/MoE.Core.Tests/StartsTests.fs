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
