/// Dead experts (docs/math.md §7.9, Learning/MaximumLikelihood/DeadExperts.fs): which experts the rule calls dead, a
/// maximum built to hold one — a ReLU expert off on every row it holds — that the chain cannot leave by itself, and a
/// revival move that takes it to the truth. That the d = 50 grid's fits are revived is in docs/acceptance.md.
module MoE.Core.Tests.DeadExpertsTests

open Xunit
open MoE.Core

/// ReLU experts, d = 4, k = 3, σ = 0.1, free gating, intercepts b = (0.5, −0.5, 0.3): every expert on for 30–70 % of
/// the rows (|a_i| = 1, x ~ N(0, I)).
let private truthWith (b: float[]) =
    let t = GroundTruth.random 3 4 Activation.Relu 0.1 1.0 true 11L
    GroundTruth.inCovariateUnits t b [| 0.4; -0.3 |] t.Sigmas (Array.zeroCreate 4) (Array.create 4 1.0)

let private withActivation (g: Activation) (m: MoeModel) =
    MoeModel.createWith m.Design m.Family m.Regressors m.RegressorIntercepts m.Gating m.GatingIntercepts g m.Sigmas

/// The model with these regressors and expert intercepts, everything else kept.
let private withExperts (a: float[,]) (b: float[]) (m: MoeModel) =
    MoeModel.createWith m.Design m.Family a b m.Gating m.GatingIntercepts m.Activation m.Sigmas

[<Fact>]
let ``the rule applies to activations with a flat region and families with a level`` () =
    let truth = truthWith [| 0.5; -0.5; 0.3 |]
    Assert.True(DeadExperts.applies truth)
    Assert.True(DeadExperts.applies (withActivation Activation.Sigmoid truth))
    Assert.False(DeadExperts.applies (withActivation Activation.Identity truth))
    Assert.False(DeadExperts.applies (withActivation (Activation.leakyRelu 0.1) truth))

/// A true expert that is rarely on (b = −1.75: on for 4 % of x) is alive by the rule at the truth: the rule's 2 % sits
/// below the rarest-on experts of good fits measured (docs/math.md §7.9). An expert pushed off everywhere (b = −30) is dead.
[<Fact>]
let ``a rarely-on true expert is alive and an expert off everywhere is dead`` () =
    let truth = truthWith [| 0.5; -1.75; 0.3 |]
    let data = Sampler.sample truth 20_000 3L
    let gamma = LikelihoodKernel.responsibilities truth data.X data.Y
    let shares = DeadExperts.liveShares truth gamma data.X
    Assert.True(shares.[1] > 2.0 * DeadExperts.LiveShare, sprintf "%A" shares)
    Assert.Empty(fst (DeadExperts.find truth data.X data.Y))

    let off = withExperts truth.Regressors [| 0.5; -30.0; 0.3 |] truth
    Assert.Equal<int[]>([| 1 |], fst (DeadExperts.find off data.X data.Y))

/// The start is the truth with expert 3 given expert 1's direction and pushed off everywhere (a_1, b = −30): a plateau where its coefficients have no
/// gradient. Seeded, so the numbers are fixed; the assertions say what the construction is for (the chain stays there,
/// well below the truth) before what the move must do (find the truth, E_reg ≤ 0.01, the acceptance rule of
/// docs/acceptance.md, with a higher likelihood and no dead expert left).
[<Fact>]
let ``a revival move takes a maximum with a dead expert to the truth and raises the likelihood`` () =
    let truth = truthWith [| 0.5; -0.5; 0.3 |]
    let data = Sampler.sample truth 20_000 5L
    let source = DataSource.ofDataset data

    let start =
        withExperts
            (Array2D.init 3 4 (fun i t -> truth.Regressors.[(if i = 2 then 0 else i), t]))
            [| 0.5; -0.5; -30.0 |]
            truth

    let config = FitConfig.defaults 3 Activation.Relu
    let em = Chain.settings config (Dense.std data.Y)

    let climb (m: MoeModel) =
        (Chain.maximumLikelihood em m source RunContext.silent (StageLog())).Value

    let ll (m: MoeModel) =
        LikelihoodKernel.logLikelihood m data.X data.Y

    let stuck = climb start
    Assert.Equal<int[]>([| 2 |], fst (DeadExperts.find stuck data.X data.Y))
    Assert.False(Success.isRecovered (Metrics.compare stuck truth), "the start's maximum found the truth by itself")

    // Had no move been kept, the warning would name it.
    match DeadExperts.describe stuck (float data.Y.Length) data.X data.Y with
    | Some message -> Assert.StartsWith("expert 3 (", message)
    | None -> failwith "the dead expert was not reported"

    let moves = DeadExperts.moves stuck data.X data.Y
    Assert.NotEmpty moves
    Assert.All(moves, (fun (name, _) -> Assert.StartsWith("revived expert 3 ", name)))
    let best = moves |> Array.map (snd >> climb) |> Array.maxBy ll

    Assert.True(ll best > ll stuck, sprintf "%g <= %g" (ll best) (ll stuck))
    Assert.True(Success.isRecovered (Metrics.compare best truth), sprintf "%A" (Metrics.compare best truth))
    Assert.Empty(fst (DeadExperts.find best data.X data.Y))
    Assert.Equal(None, DeadExperts.describe best (float data.Y.Length) data.X data.Y)

/// Which experts get which move (docs/math.md §7.9): the rows-explained-worst move for every expert live on fewer
/// than 5 % of its rows, the re-centring too only for a dead one (below 2 %), none for the others; checked against the
/// live shares themselves on models whose expert 2 is pushed from live to rare to dead.
[<Fact>]
let ``moves are offered exactly to the rarely live experts, the re-centring only to the dead`` () =
    let truth = truthWith [| 0.5; -0.5; 0.3 |]
    let data = Sampler.sample truth 20_000 3L
    let mutable rareSeen = false

    for b in [ -0.5; -1.6; -1.9; -2.2; -30.0 ] do
        let model = withExperts truth.Regressors [| 0.5; b; 0.3 |] truth

        let shares =
            DeadExperts.liveShares model (LikelihoodKernel.responsibilities model data.X data.Y) data.X

        let names = DeadExperts.moves model data.X data.Y |> Array.map fst

        for i in 0..2 do
            let offered (how: string) =
                names |> Array.contains (sprintf "revived expert %d %s" (i + 1) how)

            let context = sprintf "b = %g, shares %A, moves %A" b shares names
            Assert.True(offered "on the rows explained worst" = (shares.[i] < DeadExperts.RareShare), context)
            Assert.True(offered "at the middle of its rows" = (shares.[i] < DeadExperts.LiveShare), context)

        // The sweep reaches every case: live, rare and dead.
        if b = -0.5 then
            Assert.Empty names

        if b = -30.0 then
            Assert.True(shares.[1] < DeadExperts.LiveShare)

        if shares.[1] >= DeadExperts.LiveShare && shares.[1] < DeadExperts.RareShare then
            rareSeen <- true

    Assert.True(rareSeen, "no b made expert 2 rare but alive")

/// After a kept escape move the fit's convergence warnings read the kept move's chain only: the climb left behind ran
/// out of iterations on its plateau (d = 50 seed 2: 186 EM iterations), which says nothing of the model returned.
[<Fact>]
let ``convergence warnings read the chain that returned the model`` () =
    let stage s reason =
        {
            Stage = s
            Iterations = 1
            FinalLoss = None
            Reason = reason
            Seconds = 0.0
        }

    let stuck = stage Stage.Em StopReason.MaxIterations
    let converged = stage Stage.Em StopReason.Converged
    let revive = stage Stage.Revive StopReason.Completed
    let split = stage Stage.SplitMerge StopReason.Completed
    // No move kept: every stage is the returned chain's.
    Assert.Equal<StageResult[]>([| stuck; revive; split |], FitResults.returnedChain [| stuck; revive; split |])
    // A revival kept, split-and-merge tried after it and not kept.
    Assert.Equal<StageResult[]>([| converged |], FitResults.returnedChain [| stuck; revive; converged; split |])
    // Both kept: the last kept chain.
    Assert.Equal<StageResult[]>([| converged |], FitResults.returnedChain [| stuck; revive; stuck; split; converged |])

/// The warning reports only what the data cannot determine: a true expert pushed nearly off (b = −2.6) is dead by its
/// live share, but it is live on dozens of rows for 5 coefficients, so it is not reported (d = 50 seed 19's rarely
/// live true expert: 1.7 % of 69,000 rows); the same expert off everywhere (b = −30, no live row) is.
[<Fact>]
let ``the dead-expert warning names only experts with fewer live rows than coefficients plus one`` () =
    let rare = truthWith [| 0.5; -2.6; 0.3 |]
    let data = Sampler.sample rare 20_000 3L
    Assert.Equal<int[]>([| 1 |], fst (DeadExperts.find rare data.X data.Y))
    Assert.Equal(None, DeadExperts.describe rare (float data.Y.Length) data.X data.Y)

    let off = withExperts rare.Regressors [| 0.5; -30.0; 0.3 |] rare

    match DeadExperts.describe off (float data.Y.Length) data.X data.Y with
    | Some message -> Assert.StartsWith("expert 2 (", message)
    | None -> failwith "an expert off everywhere was not reported"
