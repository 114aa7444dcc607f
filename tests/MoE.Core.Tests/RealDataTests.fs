/// The general model on data as they come (docs/math.md §9): three public data sets against R flexmix's reference
/// fits of the same model (tests/data/README.md), narrow experts that are not degenerate, and recovery in the user's units from
/// shifted, scaled covariates with intercepts and a noise level per expert.
module MoE.Core.Tests.RealDataTests

open System
open System.IO
open Xunit
open MoE.Core

let private load (name: string) =
    DataCsv.load (Path.Combine(AppContext.BaseDirectory, "data", name))

let private sd (v: float[]) =
    let m = Array.average v
    sqrt (Array.averageBy (fun t -> (t - m) * (t - m)) v)

/// flexmix's EM stops at a relative tolerance of 1e-10 from the best of 20 starts; ours converges further, so at
/// least its value less 0.05 nats (the issue's bound) is expected on every seed of 1–10, and the seeds agree to
/// 0.5 nats (small data: every start runs to convergence on every row, so the seed only changes which random starts
/// are tried). Measured: mcycle −577.6252, faithful −851.3149, tone 145.6503 on all ten seeds (docs/math.md §7.4).
/// None is degenerate by the rule of §7.4, and none is called merged (§7.8: mcycle's wide expert stands out at 3.1×
/// the others' median, its residuals within a standard error of normal).
[<Theory>]
[<InlineData("faithful.csv", 2, -851.3191)>]
[<InlineData("tone.csv", 2, 142.8382)>]
[<InlineData("mcycle.csv", 3, -580.5257)>]
let ``the defaults reach flexmix's log-likelihood on public data from every seed, and the seeds agree``
    (file: string)
    (k: int)
    (reference: float)
    =
    let data = load file

    let lls =
        [|
            for seed in 1L .. 10L do
                let fit =
                    Learner.fit
                        { FitConfig.defaults k Identity with
                            Seed = seed
                        }
                        data
                        RunContext.silent

                Assert.DoesNotContain(
                    fit.Warnings,
                    fun w ->
                        w.Code = FindingCode.LikelihoodDegenerate
                        || w.Code = FindingCode.SigmaCollapsed
                        || w.Code = FindingCode.MergedExperts
                )

                MoeModel.logLikelihood fit.Model data.X data.Y
        |]

    for ll in lls do
        Assert.True(ll >= reference - 0.05, sprintf "%s: log-likelihood %.4f, flexmix %.4f" file ll reference)

    Assert.True(Array.max lls - Array.min lls <= 0.5, sprintf "%s: the seeds spread over %A" file lls)

/// A narrow expert on a real regime is a maximum, not a degeneracy: tone's k = 4 fit (flexmix 253.0444) has an
/// expert of σ/sd(y) = 0.016 on the 58 rows with y = x to ±0.008, recorded to 0.001 — 58 rows for 3 parameters, σ
/// 4.6 times the resolution, 16 times its rounding noise δ/√12; mcycle's quiet stretch (k = 3) likewise. Neither
/// fit warns, and both keep their narrow expert.
[<Theory>]
[<InlineData("tone.csv", 4, 253.0444, 0.02)>]
[<InlineData("mcycle.csv", 3, -580.5257, 0.04)>]
let ``a narrow expert on a real regime is kept, not guarded``
    (file: string)
    (k: int)
    (reference: float)
    (narrow: float)
    =
    let data = load file
    let fit = Learner.fit (FitConfig.defaults k Identity) data RunContext.silent

    Assert.DoesNotContain(
        fit.Warnings,
        fun w -> w.Code = FindingCode.LikelihoodDegenerate || w.Code = FindingCode.MergedExperts
    )

    let ll = MoeModel.logLikelihood fit.Model data.X data.Y
    Assert.True(ll >= reference - 0.05, sprintf "%s: log-likelihood %.4f, flexmix %.4f" file ll reference)
    // flexmix's narrow experts: 0.016·sd(y) on tone, 0.031·sd(y) on mcycle.
    Assert.True(Array.min fit.Model.Sigmas / sd data.Y <= narrow, sprintf "sigmas %A" fit.Model.Sigmas)

/// A ground truth for standard covariates u with intercepts and a level per expert, expressed in the units of
/// x = μ + s ⊙ u (μ far from 0, scales from 0.5 to 3).
let private shiftedTruth (k: int) (d: int) (g: Activation) =
    let standard = GroundTruth.random k d g 0.2 1.0 true 3L
    let mu = Array.sub [| 5.0; -3.0; 10.0; 1.0 |] 0 d
    let scale = Array.sub [| 2.0; 0.5; 3.0; 1.5 |] 0 d

    GroundTruth.inCovariateUnits
        standard
        (Array.sub [| 1.0; -1.0; 0.5 |] 0 k)
        (Array.sub [| 0.5; -0.3 |] 0 (k - 1))
        (Array.sub [| 0.15; 0.4; 0.25 |] 0 k)
        mu
        scale,
    mu,
    scale

[<Theory>]
[<InlineData("identity", 20000)>]
[<InlineData("relu", 50000)>]
let ``intercepts, noise levels and slopes are recovered in the user's units from shifted, scaled covariates``
    (activation: string)
    (n: int)
    =
    let g = Activation.parse activation 0.0
    let truth, mu, scale = shiftedTruth 2 3 g
    let data = Sampler.sampleCovariates mu scale truth n 11L
    let fit = Learner.fit (FitConfig.defaults 2 g) data RunContext.silent
    let e = Metrics.compare fit.Model truth
    // The issue's bounds: E_reg ≤ 0.01 on the slopes, intercepts and σ_i within 5 % (measured: 2.5e-6..2.3e-5,
    // 2.5 % and 0.8 % at these n).
    Assert.True(e.RegressorError <= 0.01, sprintf "E_reg %.3g" e.RegressorError)
    Assert.True(e.GatingError <= 0.01, sprintf "E_gating %.3g" e.GatingError)

    for i in 0..1 do
        let j = e.Permutation.[i]
        let b, bStar = fit.Model.RegressorIntercepts.[i], truth.RegressorIntercepts.[j]
        Assert.True(abs (b - bStar) <= 0.05 * abs bStar, sprintf "b_%d = %.4g, truth %.4g" i b bStar)
        let s, sStar = fit.Model.Sigmas.[i], truth.Sigmas.[j]
        Assert.True(abs (s - sStar) <= 0.05 * sStar, sprintf "sigma_%d = %.4g, truth %.4g" i s sStar)

/// The CI slice of `moe acceptance --frontier` (docs/acceptance.md): three cells where the paper's pipeline ended in
/// an error from its L4 stage (ReLU with k = 4 at d = 10, ReLU at σ = 0.5, identity with k = 6 at d = 20), one seed
/// each at the frontier's n = 200,000, fitted with a user's defaults. Success is the tables' rule, E_reg and aligned
/// E_gating ≤ 0.01; the full grid measured 2/2 in each of these cells at E_reg ≤ 1.2e-4, so the rule has two orders
/// of magnitude of room on the regressors and about one on the gating.
[<Fact>]
let ``a seeded slice of the frontier is recovered with the defaults`` () =
    let cells =
        [
            "d=10, k=4, relu, σ=0.1"
            "d=10, k=3, relu, σ=0.5"
            "d=20, k=6, identity, σ=0.05"
        ]

    let rows = Acceptance.runCases (Acceptance.frontierCases 1 [ "auto" ] cells) ignore
    Assert.Equal(cells.Length, rows.Length)

    for row in rows do
        let o = row.Outcomes.[0]

        Assert.True(
            o.Success,
            sprintf "%s: E_reg %.2e, E_gating %.2e %A" row.Setting o.RegressorError o.GatingError o.Failure
        )
