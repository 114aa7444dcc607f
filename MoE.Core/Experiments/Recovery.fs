namespace MoE.Core

open System.Diagnostics

/// <summary>One fit of a recovery study.</summary>
type RecoveryRun =
    {
        /// The study: "paper" (d = 10, k = 2, identity) or "frontier" (d = 20, k = 3, ReLU).
        Study: string
        /// The method's label.
        Method: string
        /// Samples n.
        Samples: int
        /// The seed index (1-based).
        Seed: int
        /// E_reg.
        RegressorError: float
        /// Aligned E_gating.
        GatingError: float
        /// Fit seconds.
        Seconds: float
        /// Whether the fit meets the success rule.
        Success: bool
    }

/// <summary>Beyond the paper: recovery against n for the paper's estimator, the estimator with the polish, and the
/// ℓ2 and EM baselines from random starts (random gating, d = 10, k = 2, identity, σ = 0.05 known).</summary>
[<RequireQualifiedAccess>]
module Recovery =

    let private sigma = 0.05

    /// <summary>The sample sizes studied.</summary>
    /// <param name="quick">Three sizes instead of seven.</param>
    [<CompiledName("Sizes")>]
    let sizes (quick: bool) : int[] =
        if quick then
            [| 1_000; 10_000; 100_000 |]
        else
            [| 1_000; 3_000; 10_000; 30_000; 100_000; 300_000; 1_000_000 |]

    /// <summary>Seeds per size.</summary>
    /// <param name="quick">Two seeds instead of five.</param>
    [<CompiledName("Seeds")>]
    let seeds (quick: bool) : int = if quick then 2 else 5

    /// <summary>The methods compared, each a label and its configuration for a seed.</summary>
    [<CompiledName("Methods")>]
    let methods: (string * (int64 -> FitConfig)) list =
        let known (s: int64) =
            { FitConfig.paper 2 Identity with
                Sigma = Some sigma
                Seed = s
            }

        [
            "L4 (paper's estimator)", (fun s -> { known s with Polish = false })
            "L4 + polish", known
            "ℓ2 (random start)", (fun s -> { known s with Method = FitMethod.L2 })
            "EM (random start)", (fun s -> { known s with Method = FitMethod.Em })
        ]

    /// <summary>Runs the study: for every size and seed, one truth (random gating, seed + s) and one sample
    /// (seed·7919 + s), fitted by every method.</summary>
    /// <param name="quick">Fewer sizes and seeds.</param>
    /// <param name="seed">The study's seed.</param>
    /// <param name="progress">One message per size and seed.</param>
    /// <returns>Every fit, in order.</returns>
    [<CompiledName("Run")>]
    let run (quick: bool) (seed: int64) (progress: string -> unit) : RecoveryRun[] =
        let count = seeds quick

        [|
            for size in sizes quick do
                for s in 1..count do
                    progress (Text.format "recovery n = %d, seed %d/%d" [| box size; box s; box count |])
                    let truth = GroundTruth.randomGating 2 10 Identity sigma 1.0 (seed + int64 s)
                    let data = Sampler.sample truth size (seed * 7919L + int64 s)

                    for label, configure in methods do
                        let clock = Stopwatch.StartNew()
                        let fit = Learner.fit (configure (seed + int64 s)) data RunContext.silent
                        let e = Metrics.compare fit.Model truth

                        {
                            Study = "paper"
                            Method = label
                            Samples = size
                            Seed = s
                            RegressorError = e.RegressorError
                            GatingError = e.GatingError
                            Seconds = clock.Elapsed.TotalSeconds
                            Success = Success.isRecovered e
                        }
        |]

    /// <summary>The second study's setting, where the paper's estimator and EM from random starts both fail: d = 20,
    /// k = 3, ReLU, σ = 0.1, random unit regressors, free random gating (the paper's model: no intercepts, one σ).</summary>
    /// <param name="seed">The truth's seed.</param>
    [<CompiledName("FrontierTruth")>]
    let frontierTruth (seed: int64) : MoeModel =
        GroundTruth.random 3 20 Relu 0.1 1.0 true seed

    /// <summary>The sample sizes of the second study.</summary>
    /// <param name="quick">One size instead of four.</param>
    [<CompiledName("FrontierSizes")>]
    let frontierSizes (quick: bool) : int[] =
        if quick then
            [| 50_000 |]
        else
            [| 20_000; 50_000; 100_000; 200_000 |]

    /// <summary>Seeds per size of the second study.</summary>
    /// <param name="quick">One seed instead of three.</param>
    [<CompiledName("FrontierSeeds")>]
    let frontierSeeds (quick: bool) : int = if quick then 1 else 3

    /// <summary>The methods of the second study, side by side on the paper's model (σ estimated): the paper's L4,
    /// the spectral method of [31], EM from five random starts, ℓ2, and the combined fit (Auto).</summary>
    [<CompiledName("FrontierMethods")>]
    let frontierMethods: (string * (int64 -> FitConfig)) list =
        let paper (s: int64) =
            { FitConfig.paper 3 Relu with Seed = s }

        let standardised (m: FitMethod) (s: int64) =
            { paper s with
                Method = m
                Standardise = true
            }

        [
            "L4 + polish", paper
            "spectral", standardised FitMethod.Spectral
            "EM, 5 random starts",
            (fun s ->
                { standardised FitMethod.Em s with
                    RandomStarts = 5
                })
            "ℓ2 (random start)", (fun s -> { paper s with Method = FitMethod.L2 })
            "combined (Auto)", standardised FitMethod.Auto
        ]

    /// <summary>Runs the second study: for every size and seed, one truth (seed + s) and one sample (seed·7919 + s),
    /// fitted by every method; a fit that fails (an L4 stage that collapses) counts as a failure.</summary>
    /// <param name="quick">Fewer sizes and seeds.</param>
    /// <param name="seed">The study's seed.</param>
    /// <param name="progress">One message per size and seed.</param>
    /// <returns>Every fit, in order.</returns>
    [<CompiledName("RunFrontier")>]
    let runFrontier (quick: bool) (seed: int64) (progress: string -> unit) : RecoveryRun[] =
        let count = frontierSeeds quick

        [|
            for size in frontierSizes quick do
                for s in 1..count do
                    progress (
                        Text.format "recovery (d = 20, k = 3, ReLU) n = %d, seed %d/%d" [| box size; box s; box count |]
                    )

                    let truth = frontierTruth (seed + int64 s)
                    let data = Sampler.sample truth size (seed * 7919L + int64 s)

                    for label, configure in frontierMethods do
                        let clock = Stopwatch.StartNew()

                        let e =
                            try
                                let fit = Learner.fit (configure (seed + int64 s)) data RunContext.silent
                                let e = Metrics.compare fit.Model truth
                                e.RegressorError, e.GatingError
                            with :? NonFiniteException ->
                                infinity, infinity

                        {
                            Study = "frontier"
                            Method = label
                            Samples = size
                            Seed = s
                            RegressorError = fst e
                            GatingError = snd e
                            Seconds = clock.Elapsed.TotalSeconds
                            Success = Success.within (fst e) && Success.within (snd e)
                        }
        |]
