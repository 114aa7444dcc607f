namespace MoE.Core

open System
open System.Threading
open System.Threading.Tasks

/// <summary>The parametric-bootstrap likelihood-ratio test of k experts against k + 1 (<c>ExpertsTest.run</c>).</summary>
type ExpertsTestResult =
    {
        /// k, the null hypothesis's number of experts.
        Experts: int
        /// The observed statistic 2 (LL_{k+1} − LL_k), at least 0.
        Statistic: float
        /// (1 + #{b : λ*_b ≥ λ}) / (1 + B'), B' the replicates that gave a statistic: the chance, were the data from
        /// the fitted k-expert model, of a statistic at least this large.
        P: float
        /// The replicates' statistics λ*_b (NaN for a replicate whose fit failed).
        Replicates: float[]
        /// Replicates whose fits failed (left out of P; the first reason in <c>FirstFailure</c>).
        Failed: int
        /// The first failed replicate's reason, or "".
        FirstFailure: string
    }

/// <summary>
/// A test for the number of experts (docs/inference.md §1.1): is k + 1 better than k? The likelihood-ratio statistic
/// λ = 2 (LL_{k+1} − LL_k) has no χ² law here — under the null the extra expert's parameters are not identified (it
/// can coincide with another, or have no weight), so the regularity conditions fail (McLachlan 1987) — and its null law
/// is taken by a parametric bootstrap instead, as mixtools' <c>boot.comp</c> and mclust's <c>mclustBootstrapLRT</c> do:
/// B data sets drawn from the fitted k-expert model at the observed covariates, each fitted with k and k + 1 experts
/// exactly as the data were, and P the share of their statistics at least the observed one.
/// </summary>
[<RequireQualifiedAccess>]
module ExpertsTest =

    /// The k-expert fit as a model to draw from: a mixture's own model, or — for k = 1, a single regression — two copies
    /// of its expert under a gate that never prefers either, which is the same law.
    let private nullModel (config: FitConfig) (dimension: int) (choice: KChoice) : MoeModel =
        match choice.Model, choice.Single with
        | Some m, _ -> m
        | None, Some(a, b, s, nu) ->
            let design = FitConfig.designFor config dimension
            let levels = ExpertFamily.hasLevels config.Family

            MoeModel.createWith
                design
                config.Family
                (Array2D.init 2 a.Length (fun _ t -> a.[t]))
                [| b; b |]
                (Array2D.zeroCreate 1 design.GateColumns.Length)
                [| 0.0 |]
                config.Activation
                (if levels then [| s; s |] else [| 1.0; 1.0 |])
            |> fun m ->
                // Student-t's two copies carry the single regression's ν.
                if config.Family = ExpertFamily.StudentT then
                    MoeModel.withDegreesOfFreedom [| nu; nu |] m
                else
                    m
        | None, None -> invalidArg "choice" "The fit has neither a model nor a single regression."

    /// λ = 2 (LL_{k+1} − LL_k), at least 0: the k + 1 maximum is never below the k one (an expert can be doubled), so a
    /// negative value is a k + 1 fit that stopped short, and the nested maximum is the better answer.
    let private statistic (nullChoice: KChoice) (alternative: KChoice) =
        max 0.0 (2.0 * (alternative.LogLikelihood - nullChoice.LogLikelihood))

    /// <summary>Tests k experts against k + 1 by a parametric bootstrap of the likelihood ratio (docs/inference.md
    /// §1.1). Replicate b draws responses from the k-expert fit at the data's covariates (<c>Sampler.responsesAt</c>,
    /// the rows' weights kept) from its own stream, fits k and k + 1 experts with the configuration and a seed of its
    /// own (<c>Inference.selectExperts</c>, as the data were), and records λ*_b; the replicates run in parallel, and the
    /// result is the same bits for any parallelism.</summary>
    /// <param name="config">The configuration the fits used.</param>
    /// <param name="data">The data.</param>
    /// <param name="nullChoice">The data's fit with k experts (from <c>Inference.selectExperts</c>).</param>
    /// <param name="alternative">The data's fit with k + 1 experts.</param>
    /// <param name="replicates">B ≥ 1 (99 gives P in steps of 0.01; the test's size is exact for any B).</param>
    /// <param name="seed">The seed: replicate b draws from <c>Rng.stream seed b</c>.</param>
    /// <param name="parallelism">Replicates run at once (≥ 1).</param>
    /// <param name="cancellation">Checked by every fit.</param>
    /// <param name="progress">Called with the number of replicates done.</param>
    /// <exception cref="T:System.ArgumentException">The choices are not k and k + 1 experts, or B &lt; 1.</exception>
    /// <exception cref="T:MoE.Core.NonFiniteException">Every replicate failed.</exception>
    /// <exception cref="T:System.OperationCanceledException">The token was cancelled.</exception>
    [<CompiledName("Run")>]
    let run
        (config: FitConfig)
        (data: Dataset)
        (nullChoice: KChoice)
        (alternative: KChoice)
        (replicates: int)
        (seed: int64)
        (parallelism: int)
        (cancellation: CancellationToken)
        (progress: int -> unit)
        : ExpertsTestResult =
        Guard.notNull "data" (box data)
        Dataset.validate data
        let k = nullChoice.Experts

        if alternative.Experts <> k + 1 then
            invalidArg
                "alternative"
                (Text.format
                    "The test compares k with k + 1 experts, but the fits have %d and %d."
                    [| box k; box alternative.Experts |])

        if replicates < 1 then
            invalidArg
                "replicates"
                (Text.format "The test needs at least 1 replicate, but B = %d." [| box replicates |])

        Guard.positiveInt "parallelism" parallelism
        let model = nullModel config data.Dimension nullChoice
        let observed = statistic nullChoice alternative
        let values = Array.create replicates nan

        let context =
            { RunContext.silent with
                Cancellation = cancellation
            }

        let replicate (b: int) =
            let rng = Rng.stream seed (int64 b)
            let y = Sampler.responsesAt model data.X (int64 (rng.NextUInt64() >>> 1))

            let rows =
                {
                    X = data.X
                    Y = y
                    Weights = data.Weights
                }

            let choices =
                Inference.selectExperts
                    { config with
                        Seed = int64 (rng.NextUInt64() >>> 1)
                    }
                    [| k; k + 1 |]
                    rows
                    context

            values.[b] <- statistic choices.[0] choices.[1]

        let failures =
            Bootstrap.runReplicates replicates parallelism cancellation progress replicate

        let used = values |> Array.filter (fun v -> not (Double.IsNaN v))

        let firstFailure =
            failures |> Array.tryFind (fun f -> f <> "") |> Option.defaultValue ""

        if used.Length = 0 then
            raise (
                NonFiniteException(
                    Stage.Em,
                    0,
                    nan,
                    Text.format
                        "every one of the %d replicates of the test failed to fit; the first failure: %s"
                        [| box replicates; box firstFailure |]
                )
            )

        let exceed = used |> Array.filter (fun v -> v >= observed) |> Array.length

        {
            Experts = k
            Statistic = observed
            P = float (1 + exceed) / float (1 + used.Length)
            Replicates = values
            Failed = replicates - used.Length
            FirstFailure = firstFailure
        }
