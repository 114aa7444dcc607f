/// Escape from merged-expert optima (docs/math.md §7.8, Learning/MaximumLikelihood/SplitMerge.fs): which expert
/// stands out, and a maximum built to hold a merged pair — two true experts under one, a third held twice — that the
/// chain cannot leave by itself, that is called merged, and that a split-and-merge move takes to the truth. That the
/// real data sets' wide experts are not called merged is in RealDataTests.
module MoE.Core.Tests.SplitMergeTests

open Xunit
open MoE.Core

[<Fact>]
let ``an expert stands out at twice the others' median level, not below it, and never with k = 2`` () =
    Assert.Equal(Some(2, 1.0), SplitMerge.standsOut [| 1.0; 0.5; 2.0; 1.5 |] |> Option.map (fun (l, m) -> l, m))
    Assert.Equal(None, SplitMerge.standsOut [| 1.0; 0.5; 1.999; 1.5 |])
    // A narrow expert (mcycle's quiet regime) does not stand out: only a level far above the others does.
    Assert.Equal(None, SplitMerge.standsOut [| 22.9; 37.6; 20.0; 1.5 |])
    Assert.Equal(None, SplitMerge.standsOut [| 0.1; 5.0 |])

/// Identity experts, d = 4, k = 3, σ = 0.1, free gating; the start puts expert 1 on the mean of true experts 1 and 2
/// and experts 2 and 3 both on true expert 3. Seeded, so the numbers are fixed; the assertions say what the
/// construction is for (the chain stays merged) before what the move must do (find the truth, E_reg ≤ 0.01, the
/// acceptance rule of docs/acceptance.md).
[<Fact>]
let ``a split-and-merge move takes a merged maximum to the truth and raises the likelihood`` () =
    let truth = GroundTruth.random 3 4 Activation.Identity 0.1 1.0 true 3L
    let data = Sampler.sample truth 20_000 5L
    let source = DataSource.ofDataset data
    let a = truth.Regressors

    let start =
        MoeModel.createGeneral
            (Array2D.init 3 4 (fun i t ->
                match i with
                | 0 -> 0.5 * (a.[0, t] + a.[1, t])
                | 1 -> a.[2, t] + 0.01
                | _ -> a.[2, t]))
            [| 0.0; 0.0; 0.0 |]
            (Array2D.zeroCreate 2 4)
            [| 0.0; 0.0 |]
            Activation.Identity
            [| 0.5; 0.1; 0.1 |]

    let config = FitConfig.defaults 3 Activation.Identity
    let em = Chain.settings config (Dense.std data.Y)

    let climb (m: MoeModel) =
        (Chain.maximumLikelihood em m source RunContext.silent (StageLog())).Value

    let ll (m: MoeModel) =
        LikelihoodKernel.logLikelihood m data.X data.Y

    let merged = climb start

    Assert.True((SplitMerge.standsOut merged.Sigmas).IsSome, sprintf "no expert stands out: %A" merged.Sigmas)
    Assert.True((Metrics.compare merged truth).RegressorError > 0.1, "the start's maximum is not merged")

    // The maximum is called merged, by name: the expert that stands out is the one on two true experts.
    let l = fst (SplitMerge.standsOut merged.Sigmas).Value

    match MergedExperts.describe merged (float data.Y.Length) data.X data.Y with
    | Some message -> Assert.StartsWith(sprintf "expert %d (" (l + 1), message)
    | None -> failwith "the merged maximum was not called merged"

    let moves = SplitMerge.moves merged data.X data.Y
    Assert.NotEmpty moves
    let best = moves |> Array.map (snd >> climb) |> Array.maxBy ll

    Assert.True(ll best > ll merged, sprintf "%g <= %g" (ll best) (ll merged))
    Assert.True((Metrics.compare best truth).RegressorError <= 0.01, sprintf "%A" (Metrics.compare best truth))
    Assert.Equal(None, MergedExperts.describe best (float data.Y.Length) data.X data.Y)
