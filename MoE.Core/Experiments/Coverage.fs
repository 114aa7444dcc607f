namespace MoE.Core

open System

/// <summary>The coverage of one group of parameters' Wald intervals over the replicates.</summary>
type CoverageRow =
    {
        /// The group: "regressors", "expert intercepts", "gating", "gate intercepts", "sigmas".
        Group: string
        /// The fraction of (replicate, parameter) intervals that contain the truth.
        Coverage: float
        /// The lowest and highest coverage of a single parameter of the group.
        Lowest: float
        /// See Lowest.
        Highest: float
        /// The intervals counted.
        Intervals: int
        /// Replicates left out because their fit or its standard errors failed (a degenerate sample: the information
        /// singular, the likelihood not finite); the coverage is over the others.
        Skipped: int
    }

/// <summary>The coverage of one group of parameters' intervals in the bootstrap study (<c>Coverage.runBootstrap</c>):
/// Wald's, the bootstrap's percentile and basic intervals, over the same data sets.</summary>
type BootstrapCoverageRow =
    {
        /// The group: "regressors", "expert intercepts", "gating", "gate intercepts", "sigmas".
        Group: string
        /// The share of (data set, parameter) Wald intervals θ̂ ± z·SE (observed information) that contain the truth.
        Wald: float
        /// The same for the bootstrap's percentile intervals.
        Percentile: float
        /// The same for the bootstrap's basic intervals.
        Basic: float
        /// The intervals counted per kind.
        Intervals: int
    }

/// <summary>The bootstrap coverage study's totals beside its rows.</summary>
type BootstrapCoverage =
    {
        /// Per group of parameters.
        Rows: BootstrapCoverageRow[]
        /// Data sets used.
        DataSets: int
        /// Data sets left out: the fit degenerate or failed, the Wald errors undefined, or the fit's labels not clearly
        /// the truth's.
        Skipped: int
        /// Replicates whose alignment was ambiguous, over all data sets, and the replicates run.
        Ambiguous: int
        /// See Ambiguous.
        Replicates: int
        /// Replicates whose fit failed, over all data sets.
        Failed: int
    }

/// <summary>A simulation check of the standard errors (docs/inference.md): seeded replicates from a known model,
/// each fitted with the defaults, each parameter's Wald interval θ̂ ± z·SE checked against the truth.</summary>
[<RequireQualifiedAccess>]
module Coverage =

    /// <summary>The coverage study's truth: two linear experts in d = 2 with intercepts and their own noise levels,
    /// a gate with an intercept, and covariates N(0, I) — every kind of parameter of the general model.</summary>
    [<CompiledName("Truth")>]
    let truth: MoeModel =
        MoeModel.createGeneral
            (array2D [ [ 1.0; -0.5 ]; [ -0.5; 1.0 ] ])
            [| 0.5; -0.5 |]
            (array2D [ [ 1.5; 0.5 ] ])
            [| 0.3 |]
            Identity
            [| 0.3; 0.5 |]

    /// <summary>The coverage study's truth for an expert family: <c>truth</c>'s linear predictors and gate with the
    /// family's experts (Poisson: rates e^η; Bernoulli: probabilities σ(η); no noise levels).</summary>
    /// <param name="family">The family.</param>
    [<CompiledName("TruthOf")>]
    let truthOf (family: ExpertFamily) : MoeModel =
        // Binomial experts read each row's trials: one more input column (docs/math.md §12.5).
        if family = ExpertFamily.Binomial then
            MoeModel.withTrialsColumn truth
        else
            MoeModel.withFamily family truth

    /// <summary>The coverage study's truth with a gate that reads its own covariate (docs/data.md): three N(0, 1)
    /// inputs, the experts <c>truth</c>'s on x1, x2, the gate on x3 alone (w = 1.5, c = 0.3), so the gate's
    /// information comes from a column the experts never see. Binomial experts read their trials from a fourth
    /// column.</summary>
    /// <param name="family">The family.</param>
    [<CompiledName("SplitTruthOf")>]
    let splitTruthOf (family: ExpertFamily) : MoeModel =
        let t = truthOf family

        let design =
            if family = ExpertFamily.Binomial then
                Design.create 4 [| 0; 1 |] [| 2 |] |> Design.withOffset 3
            else
                Design.create 3 [| 0; 1 |] [| 2 |]

        MoeModel.createWith
            design
            family
            t.Regressors
            t.RegressorIntercepts
            (array2D [ [ 1.5 ] ])
            t.GatingIntercepts
            Identity
            t.Sigmas

    /// <summary>Runs the replicates for an expert family: replicate r samples <paramref name="samples"/> rows of
    /// <c>truthOf family</c> (or <c>splitTruthOf family</c>) with seed r, fits with the defaults and the family (seed r), computes the standard errors
    /// and checks the intervals at <paramref name="level"/> (no "sigmas" group for a family without levels). With
    /// k = 2 the labels are aligned exactly: when the fit's experts are the truth's swapped, the experts are swapped
    /// back and the gate's sign flipped (w, c → −w, −c), which leaves every standard error unchanged. A replicate
    /// whose fit warns of a degenerate likelihood (a collapsed σ, a separated expert) is skipped: its guarded
    /// estimate is not the maximum the intervals are about.</summary>
    /// <param name="family">The experts' family.</param>
    /// <param name="replicates">The number of replicates (≥ 1).</param>
    /// <param name="samples">Rows per replicate.</param>
    /// <param name="level">The intervals' probability, e.g. 0.95.</param>
    /// <param name="sandwich">Sandwich standard errors instead of the observed information's.</param>
    /// <param name="progress">Called after each replicate with the number done.</param>
    /// <param name="split">The gate reads its own covariate (<c>splitTruthOf</c>), and each replicate is fitted with that
    /// design; otherwise the gate and the experts read both columns (<c>truthOf</c>).</param>
    [<CompiledName("RunDesign")>]
    let runDesign
        (family: ExpertFamily)
        (split: bool)
        (replicates: int)
        (samples: int)
        (level: float)
        (sandwich: bool)
        (progress: int -> unit)
        : CoverageRow[] =
        Guard.positiveInt "replicates" replicates
        let truth = if split then splitTruthOf family else truthOf family
        let gateWidth = truth.GateDimension
        let levels = ExpertFamily.hasLevels family

        if not (level > 0.0 && level < 1.0) then
            invalidArg "level" (Text.format "The level must be in (0, 1), but is %g." [| box level |])

        let z = MathNet.Numerics.Distributions.Normal.InvCDF(0.0, 1.0, (1.0 + level) / 2.0)
        // hits.[group].[parameter] counts the intervals that contain the truth.
        let groups =
            [| "regressors"; "expert intercepts"; "gating"; "gate intercepts"; "sigmas" |]

        let counts = [| 4; 2; gateWidth; 1; 2 |]
        let hits = counts |> Array.map (fun c -> Array.zeroCreate<int> c)

        let mutable skipped = 0

        for r in 1..replicates do
            let data = Sampler.sample truth samples (int64 r)

            let fitted =
                try
                    let fit =
                        Learner.fit
                            { FitConfig.defaults 2 Identity with
                                Family = family
                                Seed = int64 r
                                Design =
                                    (if split || truth.Design.HasOffset then
                                         Some truth.Design
                                     else
                                         None)
                            }
                            data
                            RunContext.silent

                    if
                        not levels
                        && fit.Warnings
                           |> Array.exists (fun w -> w.Code = FindingCode.LikelihoodDegenerate)
                    then
                        None
                    else
                        Some(fit.Model, Inference.standardErrors fit.Model false true sandwich data.X data.Y)
                with
                | :? NonFiniteException
                | :? ArgumentException -> None

            match fitted with
            | None -> skipped <- skipped + 1
            | Some(m, se) ->
                let swapped = (Metrics.compare m truth).Permutation.[0] = 1
                let e i = if swapped then 1 - i else i
                let sign = if swapped then -1.0 else 1.0

                let check (group: int) (index: int) (estimate: float) (error: float) (target: float) =
                    if abs (estimate - target) <= z * error then
                        hits.[group].[index] <- hits.[group].[index] + 1

                for i in 0..1 do
                    for t in 0..1 do
                        check 0 (2 * i + t) m.Regressors.[e i, t] se.Regressors.[e i, t] truth.Regressors.[i, t]

                    check 1 i m.RegressorIntercepts.[e i] se.RegressorIntercepts.[e i] truth.RegressorIntercepts.[i]

                    if levels then
                        check 4 i m.Sigmas.[e i] se.Sigmas.[e i] truth.Sigmas.[i]

                for t in 0 .. gateWidth - 1 do
                    check 2 t (sign * m.Gating.[0, t]) se.Gating.[0, t] truth.Gating.[0, t]

                check 3 0 (sign * m.GatingIntercepts.[0]) se.GatingIntercepts.[0] truth.GatingIntercepts.[0]

            progress r

        let used = replicates - skipped

        if used = 0 then
            raise (
                NonFiniteException(
                    Stage.Em,
                    0,
                    nan,
                    Text.format
                        "every one of the %d replicates failed to fit or to give standard errors; use more rows per replicate (--n)."
                        [| box replicates |]
                )
            )

        groups
        |> Array.truncate (if levels then groups.Length else groups.Length - 1)
        |> Array.mapi (fun g name ->
            let rates = hits.[g] |> Array.map (fun h -> float h / float used)

            {
                Group = name
                Coverage = float (Array.sum hits.[g]) / float (used * counts.[g])
                Lowest = Array.min rates
                Highest = Array.max rates
                Intervals = used * counts.[g]
                Skipped = skipped
            })

    /// <summary>The coverage study of an expert family on the shared design (<c>runDesign</c> with both columns read by
    /// the gate and the experts).</summary>
    /// <param name="family">The experts' family.</param>
    /// <param name="replicates">The number of replicates (≥ 1).</param>
    /// <param name="samples">Rows per replicate.</param>
    /// <param name="level">The intervals' probability, e.g. 0.95.</param>
    /// <param name="sandwich">Sandwich standard errors instead of the observed information's.</param>
    /// <param name="progress">Called after each replicate with the number done.</param>
    [<CompiledName("RunFamily")>]
    let runFamily
        (family: ExpertFamily)
        (replicates: int)
        (samples: int)
        (level: float)
        (sandwich: bool)
        (progress: int -> unit)
        : CoverageRow[] =
        runDesign family false replicates samples level sandwich progress

    /// <summary>The coverage study of Gaussian experts (<c>runFamily</c> with <c>ExpertFamily.Gaussian</c>).</summary>
    /// <param name="replicates">The number of replicates (≥ 1).</param>
    /// <param name="samples">Rows per replicate.</param>
    /// <param name="level">The intervals' probability, e.g. 0.95.</param>
    /// <param name="sandwich">Sandwich standard errors instead of the observed information's.</param>
    /// <param name="progress">Called after each replicate with the number done.</param>
    [<CompiledName("Run")>]
    let run (replicates: int) (samples: int) (level: float) (sandwich: bool) (progress: int -> unit) : CoverageRow[] =
        runFamily ExpertFamily.Gaussian replicates samples level sandwich progress

    /// <summary>The bootstrap study's truth (docs/inference.md §2.2): k = 3 linear experts on one covariate x ~ N(0, 1)
    /// with intercepts and their own noise levels — slopes −1, 1, 0, intercepts −1, −1, 1, σ = 0.3, 0.4, 0.5 — and a
    /// gate that gives x &lt; −0.67 to expert 1, x &gt; 0.67 to expert 2 and the middle to expert 3 (w = −3, 3;
    /// c = −2, −2): 13 parameters, every kind.</summary>
    [<CompiledName("BootstrapTruth")>]
    let bootstrapTruth: MoeModel =
        MoeModel.createGeneral
            (array2D [ [ -1.0 ]; [ 1.0 ]; [ 0.0 ] ])
            [| -1.0; -1.0; 1.0 |]
            (array2D [ [ -3.0 ]; [ 3.0 ] ])
            [| -2.0; -2.0 |]
            Identity
            [| 0.3; 0.4; 0.5 |]

    /// <summary>The bootstrap coverage study (docs/inference.md §2.2): data set s draws <paramref name="samples"/> rows
    /// of <c>bootstrapTruth</c> with seed s, fits them with the defaults (seed s), puts the fit in the truth's labels
    /// (<c>Bootstrap.align</c> against the truth), and checks three intervals of every parameter against the truth:
    /// Wald's from the observed information, and the percentile and basic intervals of a bootstrap of
    /// <paramref name="replicates"/> replicates (seed s). A data set whose fit warns of a degenerate likelihood, fails,
    /// has no Wald errors or whose labels are ambiguous against the truth is skipped and counted.</summary>
    /// <param name="dataSets">The number of data sets (≥ 1).</param>
    /// <param name="samples">Rows per data set.</param>
    /// <param name="replicates">Bootstrap replicates per data set (≥ 2).</param>
    /// <param name="level">The intervals' probability.</param>
    /// <param name="kind">Nonparametric or parametric.</param>
    /// <param name="cancellation">Checked by every fit.</param>
    /// <param name="progress">Called after each data set with the number done.</param>
    [<CompiledName("RunBootstrap")>]
    let runBootstrap
        (dataSets: int)
        (samples: int)
        (replicates: int)
        (level: float)
        (kind: BootstrapKind)
        (cancellation: Threading.CancellationToken)
        (progress: int -> unit)
        : BootstrapCoverage =
        Guard.positiveInt "dataSets" dataSets
        let truth = bootstrapTruth
        let target = Bootstrap.parameterValues truth true
        let names = Bootstrap.parameterNames truth true

        let groupOf (name: string) =
            match name.[0] with
            | 'a' -> 0
            | 'b' -> 1
            | 'w' -> 2
            | 'c' -> 3
            | _ -> 4

        let groups =
            [| "regressors"; "expert intercepts"; "gating"; "gate intercepts"; "sigmas" |]

        let z = MathNet.Numerics.Distributions.Normal.InvCDF(0.0, 1.0, (1.0 + level) / 2.0)
        // hits.[kind].[group]: Wald, percentile, basic.
        let hits = Array.init 3 (fun _ -> Array.zeroCreate<int> groups.Length)
        let counts = Array.zeroCreate<int> groups.Length
        let mutable used, skipped, ambiguous, failed = 0, 0, 0, 0
        let config = FitConfig.defaults 3 Identity

        for s in 1..dataSets do
            let data = Sampler.sample truth samples (int64 s)

            let prepared =
                try
                    let fit =
                        Learner.fit
                            { config with Seed = int64 s }
                            data
                            { RunContext.silent with
                                Cancellation = cancellation
                            }

                    let alignment = Bootstrap.align truth fit.Model data

                    if
                        alignment.Ambiguous
                        || fit.Warnings
                           |> Array.exists (fun w -> w.Code = FindingCode.LikelihoodDegenerate)
                    then
                        None
                    else
                        let model = MoeModel.relabel alignment.Order fit.Model
                        let se = Inference.standardErrorsOf model false true false data

                        let boot =
                            Bootstrap.run
                                config
                                model
                                data
                                { Bootstrap.defaults with
                                    Replicates = replicates
                                    Kind = kind
                                    Level = level
                                    Seed = int64 s
                                }
                                cancellation
                                ignore

                        Some(model, se, boot)
                with
                | :? OperationCanceledException -> reraise ()
                | :? NonFiniteException
                | :? ArgumentException
                | :? InvalidOperationException -> None

            match prepared with
            | None -> skipped <- skipped + 1
            | Some(model, se, boot) ->
                used <- used + 1
                ambiguous <- ambiguous + boot.Ambiguous
                failed <- failed + boot.Failed
                let estimate = Bootstrap.parameterValues model true

                let waldSe =
                    [|
                        for i in 0..2 do
                            yield se.Regressors.[i, 0]
                            yield se.RegressorIntercepts.[i]
                        for j in 0..1 do
                            yield se.Gating.[j, 0]
                            yield se.GatingIntercepts.[j]
                        yield! se.Sigmas
                    |]

                let inside lo hi (v: float) = lo <= v && v <= hi

                for t in 0 .. names.Length - 1 do
                    let g = groupOf names.[t]
                    counts.[g] <- counts.[g] + 1
                    let v = target.[t]

                    if inside (estimate.[t] - z * waldSe.[t]) (estimate.[t] + z * waldSe.[t]) v then
                        hits.[0].[g] <- hits.[0].[g] + 1

                    if inside boot.PercentileLower.[t] boot.PercentileUpper.[t] v then
                        hits.[1].[g] <- hits.[1].[g] + 1

                    if inside boot.BasicLower.[t] boot.BasicUpper.[t] v then
                        hits.[2].[g] <- hits.[2].[g] + 1

            progress s

        if used = 0 then
            raise (
                NonFiniteException(
                    Stage.Em,
                    0,
                    nan,
                    Text.format
                        "every one of the %d data sets failed to fit or to give standard errors; use more rows per data set (--n)."
                        [| box dataSets |]
                )
            )

        {
            Rows =
                Array.init groups.Length (fun g ->
                    {
                        Group = groups.[g]
                        Wald = float hits.[0].[g] / float counts.[g]
                        Percentile = float hits.[1].[g] / float counts.[g]
                        Basic = float hits.[2].[g] / float counts.[g]
                        Intervals = counts.[g]
                    })
            DataSets = used
            Skipped = skipped
            Ambiguous = ambiguous
            Replicates = used * replicates
            Failed = failed
        }

    /// <summary>The size or power of the test for the number of experts (docs/inference.md §1.1): data set s draws
    /// <paramref name="samples"/> rows of <paramref name="truth"/> with seed s, fits <paramref name="experts"/> and one
    /// more with the defaults (seed s), and runs <c>ExpertsTest.run</c> with <paramref name="replicates"/> replicates
    /// (seed s). With the truth's own k the share of P ≤ α is the test's size; with a truth of more experts, its
    /// power.</summary>
    /// <param name="truth">The model the data sets are drawn from (<c>truth</c>: k = 2; <c>bootstrapTruth</c>: k = 3).</param>
    /// <param name="experts">k, the null hypothesis's number of experts.</param>
    /// <param name="dataSets">The number of data sets (≥ 1).</param>
    /// <param name="samples">Rows per data set.</param>
    /// <param name="replicates">The test's bootstrap replicates per data set.</param>
    /// <param name="cancellation">Checked by every fit.</param>
    /// <param name="progress">Called after each data set with the number done.</param>
    /// <returns>Each data set's P (NaN where its own fits failed).</returns>
    [<CompiledName("RunExpertsTest")>]
    let runExpertsTest
        (truth: MoeModel)
        (experts: int)
        (dataSets: int)
        (samples: int)
        (replicates: int)
        (cancellation: Threading.CancellationToken)
        (progress: int -> unit)
        : float[] =
        Guard.positiveInt "dataSets" dataSets
        Guard.positiveInt "experts" experts

        let context =
            { RunContext.silent with
                Cancellation = cancellation
            }

        [|
            for s in 1..dataSets do
                let data = Sampler.sample truth samples (int64 s)

                let config =
                    { FitConfig.defaults (max 2 experts) truth.Activation with
                        Seed = int64 s
                    }

                let p =
                    try
                        let choices = Inference.selectExperts config [| experts; experts + 1 |] data context

                        (ExpertsTest.run
                            config
                            data
                            choices.[0]
                            choices.[1]
                            replicates
                            (int64 s)
                            Environment.ProcessorCount
                            cancellation
                            ignore)
                            .P
                    with
                    | :? OperationCanceledException -> reraise ()
                    | :? NonFiniteException
                    | :? ArgumentException
                    | :? InvalidOperationException -> nan

                progress s
                yield p
        |]
