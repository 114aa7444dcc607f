namespace MoE.Core

open System.Diagnostics

/// <summary>One fit of a recovery study.</summary>
type RecoveryRun =
    {
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
                    progress (sprintf "recovery n = %d, seed %d/%d" size s count)
                    let truth = GroundTruth.randomGating 2 10 Identity sigma 1.0 (seed + int64 s)
                    let data = Sampler.sample truth size (seed * 7919L + int64 s)

                    for label, configure in methods do
                        let clock = Stopwatch.StartNew()
                        let fit = Learner.fit (configure (seed + int64 s)) data RunContext.silent
                        let e = Metrics.compare fit.Model truth

                        {
                            Method = label
                            Samples = size
                            Seed = s
                            RegressorError = e.RegressorError
                            GatingError = e.GatingError
                            Seconds = clock.Elapsed.TotalSeconds
                            Success = Success.isRecovered e
                        }
        |]
