namespace MoE.Core

open System
open System.Diagnostics

/// <summary>What a learner returns.</summary>
type FitResult =
    {
        /// The fitted model.
        Model: MoeModel
        /// Every progress report, in order (the trace is exactly what the progress callback saw).
        Trace: TraceEntry[]
        /// Every stage that ran, in order, with its iterations, final loss, stop reason and wall time.
        Stages: StageResult[]
        /// Why the stage that produced the model stopped: EM with the polish, the last gating fit without it, the
        /// ℓ2 schedule for the ℓ2 baseline.
        Reason: StopReason
        /// What deserves a look: the data's departures from the estimator's assumptions (docs/errors.md) and a fit
        /// that stopped before converging. Empty when nothing is wrong.
        Warnings: Finding[]
        /// Every candidate the Auto and EM methods screened, best first (in the data's units; empty for the other
        /// methods).
        Candidates: Candidate[]
        /// The initializer of the model: the winning candidate's, or the method's own.
        Initializer: string
        /// How many times the rows were read from the data source: 1 when they were held in memory, every pass
        /// of every stage when they were read in passes (docs/math.md §7.6).
        Passes: int
    }

/// The stages of one fit, timed as they run (mutable, but owned by one fit).
type internal StageLog() =
    let stages = ResizeArray<StageResult>()
    let notes = ResizeArray<Finding>()

    /// Runs an iterative stage and records its outcome and time.
    member _.Run(stage: string, f: unit -> StageOutcome<'T>) : StageOutcome<'T> =
        let clock = Stopwatch.StartNew()
        let outcome = f ()

        stages.Add
            {
                Stage = stage
                Iterations = outcome.Iterations
                FinalLoss = outcome.FinalLoss
                Reason = outcome.Reason
                Seconds = clock.Elapsed.TotalSeconds
            }

        outcome

    /// Runs a closed-form stage and records its time.
    member this.Direct(stage: string, f: unit -> 'T) : 'T =
        (this.Run(
            stage,
            fun () ->
                {
                    Value = f ()
                    Iterations = 0
                    FinalLoss = None
                    Reason = StopReason.Completed
                }
        ))
            .Value

    /// The stages so far.
    member _.Results = stages.ToArray()

    /// Records a finding about the fit itself (reported with the warnings).
    member _.Note(finding: Finding) = notes.Add finding

    /// The findings recorded.
    member _.Notes = notes.ToArray()

/// <summary>The learners (docs/learners.md): the paper's L4 → directions → signs → gating → scales → EM pipeline,
/// and the ℓ2 and EM baselines, on data in memory or arriving in chunks.</summary>
[<RequireQualifiedAccess>]
module Learner =

    /// The transform the L4 stage uses at a given σ.
    let private outputTransform (config: FitConfig) (sigma: float) =
        match config.Transform with
        | TransformKind.Bounded -> OutputTransforms.bounded config.Activation sigma
        | TransformKind.Polynomial -> OutputTransforms.polynomialFor config.Activation sigma

    /// Stage 1 on data in memory: the L4 estimate A at σ.
    let private l4InMemory (config: FitConfig) (x: float[,]) (y: float[]) (context: RunContext) (sigma: float) =
        let k = config.Experts

        match config.L4Solver with
        | L4Solver.Subspace s ->
            let moments = SubspaceL4.moments (outputTransform config sigma) k x y
            SubspaceL4.solve moments s.Weights k s.Restarts config.Seed context
        | L4Solver.Sgd s -> PaperSgd.l4 (Coefficients.solve config.Activation sigma) s k config.Seed x y context ignore

    /// The paper's stages at a given σ with stage 1 given: L4, directions, signs, gating, scales, gating again.
    let private paperStagesFrom
        (l4: float -> StageOutcome<float[,]>)
        (config: FitConfig)
        (sigma: float)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        (log: StageLog)
        : StageOutcome<MoeModel> =
        let g = config.Activation
        let a = log.Run("l4", (fun () -> l4 sigma)).Value
        let directions = log.Direct("directions", (fun () -> Directions.ofL4Solution a))

        for v in Seq.cast<float> directions do
            if not (Double.IsFinite v) then
                raise (NonFiniteException("l4", 0, v))

        // Up to k = 3 the 2^k patterns are enumerated (8 short gating fits); beyond, the vote is linear in k.
        let signed =
            if config.Experts <= 3 then
                log
                    .Run(
                        "signs",
                        fun () -> Signs.resolve directions g sigma x y config.SignSubsample config.Seed context
                    )
                    .Value
            else
                let voted =
                    log
                        .Run(
                            "signs",
                            fun () -> Signs.vote directions g sigma x y config.SignSubsample config.Seed context
                        )
                        .Value

                MoeModel.create voted (Array2D.zeroCreate (config.Experts - 1) (x.GetLength 1)) g sigma

        let fitGating (m: MoeModel) =
            match config.Gating with
            | GatingMethod.QuasiNewton -> Gating.fit m x y config.GatingIterations context true
            | GatingMethod.ProjectedGradient(radius, rate, iterations, splitting) ->
                Gating.fitProjected m x y radius rate iterations splitting context

        let gated = log.Run("gating", (fun () -> fitGating signed)).Value
        let scaled = log.Direct("scales", (fun () -> Scales.fit gated x y))
        log.Run("gating", (fun () -> fitGating scaled))

    /// How EM runs for a configuration, with the working data's response y (the prior's scale is its variance).
    let private emSettings (config: FitConfig) (ySd: float) : EmSettings =
        let paperModel = not config.Intercepts && config.CommonSigma

        {
            EstimateSigma = config.Sigma.IsNone
            CommonSigma = config.CommonSigma
            FitIntercepts = config.Intercepts
            FixRegressors = false
            SigmaFloor = 0.0
            // The guard of docs/math.md §7.4 for the general model: one pseudo-observation of variance var(y)/k² per σ_i
            // (Fraley and Raftery's default scale); the paper's model keeps plain maximum likelihood.
            SigmaPrior =
                (if paperModel then
                     None
                 else
                     Some(1.0, (ySd ** 2.0) / float (config.Experts * config.Experts)))
            Accelerate = true
            GateNewtonLimit = 64
            Handover = config.EmHandover
            MaxIterations = config.EmIterations
            Tolerance = config.EmTolerance
        }

    /// The guarded chain: EM, then — when EM hands over, its rate having become slow — L-BFGS on the likelihood over
    /// every parameter (docs/math.md §7.5), which converges superlinearly from EM's basin, then EM again to confirm:
    /// one or two maps when L-BFGS reached the optimum, more where it stalled on the kinks of a non-smooth g
    /// (measured on ReLU at n = 3000: L-BFGS stopped 1e-5 of |LL| short). Without <c>confirm</c> the chain ends with
    /// L-BFGS, for a caller whose next step is EM anyway; <c>confirmation</c> then gives that last EM run.
    let private guardedChain
        (settings: EmSettings)
        (start: MoeModel)
        (source: DataSource)
        context
        (log: StageLog)
        (confirm: bool)
        =
        let em = log.Run("em", (fun () -> Em.runOn settings start source context))

        if em.Reason = StopReason.HandedOver then
            let remaining = max 1 (settings.MaxIterations - em.Iterations)

            let quasiNewton =
                log.Run(
                    "likelihood",
                    fun () ->
                        Likelihood.maximiseOn
                            { settings with
                                MaxIterations = 5 * remaining
                            }
                            1e-12
                            em.Value
                            source
                            context
                )

            let confirmation () =
                log.Run(
                    "em",
                    fun () ->
                        Em.runOn
                            { settings with
                                Handover = 0.0
                                MaxIterations = remaining
                            }
                            quasiNewton.Value
                            source
                            context
                )

            if confirm then
                let confirmed = confirmation ()
                confirmed, (fun () -> confirmed)
            else
                quasiNewton, confirmation
        else
            em, (fun () -> em)

    let private guarded settings start source context log =
        fst (guardedChain settings start source context log true)

    /// Maximum likelihood from a start. With the σ prior of docs/math.md §7.4, the guarded chain finds the posterior
    /// mode, and EM without the prior then climbs to the likelihood's own maximum in its basin — a few maps, as the
    /// prior moves σ_i by O(1/N_i). If that climb shrinks a level below half its guarded value, the maximum is the
    /// degenerate one the prior guards against: the guarded model stays, with a warning.
    let private maximumLikelihood
        (settings: EmSettings)
        (start: MoeModel)
        (source: DataSource)
        context
        (log: StageLog)
        =
        match settings.SigmaPrior with
        | None -> guarded settings start source context log
        | Some _ when not settings.EstimateSigma -> guarded settings start source context log
        | Some _ ->
            // The unguarded EM confirms L-BFGS's optimum as the guarded EM would; the guarded confirmation runs only
            // when the guarded model is the answer.
            let map, confirmation = guardedChain settings start source context log false

            let mle =
                log.Run(
                    "unguarded",
                    fun () ->
                        Em.runOn
                            { settings with
                                SigmaPrior = None
                                Handover = 0.0
                            }
                            map.Value
                            source
                            context
                )

            let ratio =
                Array.map2 (fun (m: float) (g: float) -> m / g) mle.Value.Sigmas map.Value.Sigmas
                |> Array.min

            if ratio < 0.5 then
                log.Note
                    {
                        Severity = Severity.Warning
                        Code = "likelihood-degenerate"
                        Message =
                            Text.format
                                "without the guard on the noise levels an expert's sigma falls to %.2g of its guarded value: the likelihood is degenerate here (an expert on a few points or on repeated y values), and the model is the guarded one; fewer experts may fit better."
                                [| box ratio |]
                    }

                confirmation ()
            else
                mle

    /// The EM polish of the paper stages' model when configured (σ re-estimated unless given), else that model.
    let private polish
        (config: FitConfig)
        (staged: StageOutcome<MoeModel>)
        (source: DataSource)
        (ySd: float)
        context
        (log: StageLog)
        =
        if config.Polish then
            maximumLikelihood (emSettings config ySd) staged.Value source context log
        else
            staged

    /// The paper's stages at a given σ on data in memory.
    let private paperStages config sigma (x: float[,]) (y: float[]) context log =
        paperStagesFrom (l4InMemory config x y context) config sigma x y context log

    /// A context whose progress reports are also collected: the trace is exactly the stream of reports.
    let private recording (context: RunContext) =
        let trace = ResizeArray<TraceEntry>()

        trace,
        { context with
            Progress =
                fun entry ->
                    trace.Add entry
                    context.Progress entry
        }

    /// The failure of the L4 stage with its true cause: the data's departures from the estimator's assumptions when
    /// there are any, too few samples otherwise (or, for a fit from chunks, too few rows in memory).
    let private explain (findings: Finding[]) (advice: string) (e: NonFiniteException) : exn =
        let assumptions =
            findings
            |> Array.filter (fun f -> f.Code = "not-standardised" || f.Code = "not-gaussian")
            |> Array.map (fun f -> f.Message.TrimEnd('.'))

        let detail =
            if assumptions.Length > 0 then
                Text.format
                    "The data break the estimator's assumptions: %s. Or fit with the EM method (--method em)."
                    [| box (String.Join("; ", assumptions)) |]
            else
                advice

        let cause =
            if String.IsNullOrEmpty e.Detail then
                "A loss or gradient became non-finite."
            else
                e.Detail

        NonFiniteException(e.Stage, e.Iteration, e.Value, cause + " " + detail) :> exn

    /// Runs f and turns an L4-stage failure into one that names its cause.
    let private explained (findings: Finding[]) (advice: string) (f: unit -> 'T) : 'T =
        try
            f ()
        with :? NonFiniteException as e when e.Stage = "l4" ->
            raise (explain findings advice e)

    /// Too few samples: the advice for a fit in memory.
    let private fewSamples =
        "This happens when n is too small for d and k. Increase n, or fit with the EM method (--method em)."

    /// Warnings about the fit itself: an EM that stopped before converging, a noise level that collapsed.
    let private fitWarnings (config: FitConfig) (stages: StageResult[]) (model: MoeModel) (ySd: float) : Finding[] =
        [|
            for s in stages do
                if
                    (s.Stage = "em" || s.Stage = "likelihood")
                    && s.Reason = StopReason.MaxIterations
                then
                    {
                        Severity = Severity.Warning
                        Code = "em-not-converged"
                        Message =
                            Text.format
                                "EM stopped after its budget of %d iterations before converging; raise the budget (EmIterations) or check the data."
                                [| box config.EmIterations |]
                    }
                elif s.Stage = "em" && s.Reason = StopReason.NoProgress then
                    {
                        Severity = Severity.Warning
                        Code = "em-no-progress"
                        Message =
                            "EM stopped when a step failed to increase the likelihood; the model is the last good one."
                    }

            if config.Sigma.IsNone && model.Sigma < 1e-6 * ySd then
                {
                    Severity = Severity.Warning
                    Code = "sigma-collapsed"
                    Message =
                        Text.format
                            "the fitted noise level σ = %.3g is below 1e-6·sd(y): an expert has collapsed onto a few points and the likelihood is degenerate."
                            [| box model.Sigma |]
                }
        |]

    /// σ from the configuration, or the provisional σ₁ of a first run of the paper's stages (docs/learners.md).
    let private sigmaFor config (x: float[,]) (y: float[]) (sigma0: float) context log =
        match config.Sigma with
        | Some s -> s
        | None ->
            Sigma.provisional
                (fun sigma xs ys -> (paperStages config sigma xs ys context log).Value)
                config.Seed
                sigma0
                x
                y

    /// Random starts of the Auto method when fewer than two moment initializers work.
    [<Literal>]
    let private RandomStartsAlone = 10

    /// The moment statistics the initializers share, at σ, on a seeded subsample of at most 100k rows (they pin the
    /// moments down to a fraction of the initializers' own error).
    let private momentsFor (config: FitConfig) (sigma: float) (source: DataSource) =
        let k = config.Experts

        if k > source.Dimension then
            Error(Text.format "the moment subspace needs d >= k, but d = %d < k = %d" [| box source.Dimension; box k |])
        else
            try
                let sample = Sampling.subsampleOf Sigma.ProvisionalRows config.Seed source
                Ok(SubspaceL4.moments (outputTransform config sigma) k sample.X sample.Y)
            with
            | :? NonFiniteException as e -> Error(Text.format "the moments are not finite (%s)" [| box e.Detail |])
            | :? ArgumentException as e -> Error e.Message

    /// The Auto method's proposals: the moment initializers (or why each failed), subspace starts and random starts.
    let private proposalsFrom
        (config: FitConfig)
        (moments: Result<SubspaceMoments, string>)
        (sigma: float)
        (d: int)
        (context: RunContext)
        =
        let k = config.Experts

        let weights =
            match config.L4Solver with
            | L4Solver.Subspace s -> s
            | L4Solver.Sgd _ ->
                {
                    Weights = L4Weights.create 0.1 10.0 0.01 true
                    Restarts = 5
                }

        let named name (r: Result<Proposal, string>) =
            r |> Result.mapError (fun reason -> name, reason)

        let moment =
            match moments with
            | Error reason -> [| for name in [ "spectral"; "l4"; "l4-whitened" ] -> Error(name, reason) |]
            | Ok moments ->
                Array.append
                    [|
                        named "spectral" (Initializers.spectral moments k config.Seed)
                        named "l4" (Initializers.l4 moments weights k config.Seed { context with Progress = ignore })
                        named "l4-whitened" (Initializers.l4Whitened moments k config.Seed)
                    |]
                    (Initializers.subspaceStarts moments config.SubspaceStarts config.Seed
                     |> Array.map Ok)

        // Without two working moment initializers the likelihood is searched from random starts alone, and one
        // start is a lottery (faithful, d = 1 < k: one start ended 2.8 nats below the best of ten): take ten.
        let working = moment |> Array.filter Result.isOk |> Array.length

        let random =
            if working < 2 then
                max config.RandomStarts RandomStartsAlone
            else
                config.RandomStarts

        Array.append
            moment
            (Initializers.randomStarts k d config.Activation sigma config.Intercepts random config.Seed
             |> Array.map Ok)

    /// Screens proposals and polishes the best; fails only when no candidate gives a model, with every reason.
    let private select
        (config: FitConfig)
        (proposals: Result<Proposal, string * string>[])
        (sigma: float)
        (source: DataSource)
        (ySd: float)
        (context: RunContext)
        (log: StageLog)
        =
        let em = emSettings config ySd

        let candidates =
            log
                .Run(
                    "candidates",
                    fun () ->
                        let c =
                            Selection.screen
                                proposals
                                config.Activation
                                sigma
                                em
                                config.Selection
                                config.Seed
                                source
                                context

                        {
                            Value = c
                            Iterations = c.Length
                            FinalLoss = Some(-c.[0].ValidationLogLikelihood)
                            Reason = StopReason.Completed
                        }
                )
                .Value

        match
            candidates
            |> Array.tryPick (fun c ->
                match c.Outcome with
                | Ok m -> Some(c, m)
                | Error _ -> None)
        with
        | None ->
            let reasons =
                candidates
                |> Array.map (fun c ->
                    match c.Outcome with
                    | Error reason -> Text.format "%s: %s" [| box c.Initializer; box reason |]
                    | Ok _ -> c.Initializer)

            raise (
                NonFiniteException(
                    "candidates",
                    0,
                    nan,
                    Text.format
                        "No candidate gave a model (%s). The data would need more rows per parameter, or fewer experts."
                        [| box (String.Join("; ", reasons)) |]
                )
            )
        | Some(best, model) ->
            let polished = maximumLikelihood em model source context log
            polished, candidates, best.Initializer

    /// The fit's result in the data's units: the model and every candidate mapped back from the standardised
    /// problem (a held-out likelihood per row shifts by −log of y's scale), and the warnings of the data check, the
    /// fit and the stages' notes. Shared by the in-memory and the streamed fit.
    let private result
        (config: FitConfig)
        (standardisation: Standardisation)
        (findings: Finding[])
        (log: StageLog)
        (trace: ResizeArray<TraceEntry>)
        (outcome: StageOutcome<MoeModel>)
        (candidates: Candidate[])
        (initializer: string)
        (ySd: float)
        (passes: int)
        : FitResult =
        let stages = log.Results
        let model = Standardise.toDataUnits standardisation outcome.Value
        let logScale = Math.Log standardisation.YScale

        {
            Model = model
            Trace = trace.ToArray()
            Stages = stages
            Reason = outcome.Reason
            Warnings =
                Array.append
                    (findings |> Array.filter (fun f -> f.Severity = Severity.Warning))
                    (Array.append (fitWarnings config stages model ySd) log.Notes)
            Candidates =
                candidates
                |> Array.map (fun c ->
                    { c with
                        Outcome = c.Outcome |> Result.map (Standardise.toDataUnits standardisation)
                        ValidationLogLikelihood = c.ValidationLogLikelihood - logScale
                    })
            Initializer = initializer
            Passes = passes
        }

    /// <summary>
    /// Fits a mixture of experts to data read in passes (docs/math.md §7.6): a dataset in memory, a CSV or Parquet file,
    /// a directory of shards. Every statistic over all the rows — the data's moments, the standardisation, the moment
    /// initializers' sums, every EM map, every likelihood evaluation — is a pass over the source, and the samples the
    /// estimator takes by design (the moment subsample, the screening and validation rows) are drawn by row position,
    /// so the same shards give the same model, bit for bit, whether they are held in memory or read again for each pass.
    /// </summary>
    /// <param name="config">The configuration (see <c>FitConfig.defaults</c> and <c>FitConfig.paper</c>).</param>
    /// <param name="source">The data.</param>
    /// <param name="maxRows">A memory bound: a source of at most this many rows is read once and held in memory (in its
    /// shards), a larger one is read again for every pass. The Auto, EM, L4 (subspace solver) and Spectral methods
    /// read in passes; the ℓ2 baseline and the paper's SGD need the rows in memory. The stages that work on arrays (σ's
    /// provisional run and the paper's stages for L4, the spectral start) then use a seeded sample of maxRows
    /// rows.</param>
    /// <param name="context">Progress callback and cancellation (checked between batches and passes).</param>
    /// <returns>The model (in the data's units), the trace, every stage's outcome, the final stop reason, the
    /// warnings and the candidates.</returns>
    /// <exception cref="T:System.ArgumentException">An invalid configuration, or data the estimator cannot use (a
    /// constant or collinear column, a constant response, fewer than 2kd samples, d &lt; k for the moment-only
    /// methods, a method that needs the rows in memory on a larger source): the message names the cause.</exception>
    /// <exception cref="T:MoE.Core.NonFiniteException">No candidate gave a model, a paper-pipeline stage failed
    /// (unbounded below, collapsed), or a loss became NaN or infinite.</exception>
    /// <exception cref="T:System.OperationCanceledException">The token was cancelled.</exception>
    /// <remarks>The data are standardised first when configured (docs/math.md §9.2) and the model mapped back. σ, when
    /// not given, is estimated: for L4, a provisional σ₀ = 0.1·sd(y) drives the paper's stages on a seeded subsample
    /// of at most 100k rows, the fitted model's residual RMS σ₁ re-runs them, and EM updates σ; for Auto, Spectral and
    /// EM the screening EM estimates it from σ₀.</remarks>
    [<CompiledName("FitSource")>]
    let fitSource (config: FitConfig) (source: DataSource) (maxRows: int) (context: RunContext) : FitResult =
        FitConfig.validate config
        Guard.notNull "source" (box source)
        Guard.positiveInt "maxRows" maxRows
        let k, g = config.Experts, config.Activation
        let d = source.Dimension
        let n = source.Rows
        // On shard workers every stage is a pass where the rows live: nothing is held here but the samples.
        let remote = DataSource.isRemote source
        let inMemory = n <= int64 maxRows && not remote

        if config.Method = FitMethod.L2 && (config.Intercepts || not config.CommonSigma) then
            invalidArg
                "config"
                "The l2 baseline fits the paper's model only: no intercepts and one sigma (--paper-model)."

        let needsArrays =
            match config.Method, config.L4Solver with
            | FitMethod.L2, _
            | FitMethod.L4, L4Solver.Sgd _ -> true
            | _ -> false

        if needsArrays && remote then
            invalidArg
                "config"
                "The l2 baseline and the paper's SGD need every row in one process; on a cluster use the default method (or em, spectral, or l4 with its subspace solver)."

        if needsArrays && not inMemory then
            invalidArg
                "config"
                (Text.format
                    "The %s needs every row in memory, but the data have %d rows and at most %d may be held (--max-rows); use the default method, or raise the bound."
                    [|
                        box (
                            if config.Method = FitMethod.L2 then
                                "l2 baseline"
                            else
                                "paper's SGD"
                        )
                        box n
                        box maxRows
                    |])

        if not inMemory && int64 maxRows < 10L * Diagnosis.parameters k d then
            raise (
                ArgumentOutOfRangeException(
                    "maxRows",
                    Text.format
                        "maxRows = %d holds too few rows in memory for the stages that work on a sample: k = %d experts in d = %d dimensions have %d parameters and need at least 10 rows each (%d); raise it (moe fit --max-rows)."
                        [|
                            box maxRows
                            box k
                            box d
                            box (Diagnosis.parameters k d)
                            box (10L * Diagnosis.parameters k d)
                        |]
                )
            )

        // Every batch read checks the token.
        let source = DataSource.checking context.Cancellation source
        // A pass reads every shard, the first one first: its reads count the passes.
        let passes = ref 0

        let source =
            { source with
                Shards =
                    source.Shards
                    |> Array.mapi (fun i shard ->
                        if i = 0 then
                            { shard with
                                Read =
                                    fun () ->
                                        passes.Value <- passes.Value + 1
                                        shard.Read()
                                Remote =
                                    shard.Remote
                                    |> Option.map (fun r ->
                                        { r with
                                            Worker =
                                                { new IShardWorker with
                                                    member _.Evaluate request =
                                                        passes.Value <- passes.Value + 1
                                                        r.Worker.Evaluate request

                                                    member _.Gather request =
                                                        passes.Value <- passes.Value + 1
                                                        r.Worker.Gather request
                                                }
                                        })
                            }
                        else
                            shard)
            }

        // Held in memory: each shard read once into one batch (the same chunks, so the same bits, as reading it again).
        let held (source: DataSource) =
            { source with
                Shards =
                    source.Shards
                    |> Array.map (fun shard ->
                        let rows = DataSource.load { Dimension = d; Shards = [| shard |] }

                        { shard with
                            Read = fun () -> Seq.singleton rows
                        })
            }

        let source = if inMemory then held source else source

        let summary = Diagnosis.summarise source
        let findings = Diagnosis.findings config summary
        Diagnosis.throwOnError findings

        let standardisation =
            if config.Standardise then
                Standardise.fitOn source summary config.Intercepts g
            else
                Standardise.none d

        let working = Standardise.source standardisation source
        // In memory, the standardised rows are computed once.
        let working = if inMemory then held working else working

        // The responses' sd in working units (they are y/s, centred or not: the sd scales by 1/s) and in the data's.
        let ySd = summary.Response.Sd
        let workingSd = ySd / standardisation.YScale

        let config =
            { config with
                Sigma = config.Sigma |> Option.map (fun s -> s / standardisation.YScale)
            }

        let log = StageLog()
        let trace, context = recording context
        let sigma0 = defaultArg config.Sigma (0.1 * workingSd)
        // The rows the array stages use: every row in memory, else a seeded sample of maxRows.
        let sample () =
            if inMemory then
                DataSource.load working
            else
                Sampling.subsampleOf maxRows config.Seed working

        let outcome, candidates, initializer =
            match config.Method with
            | FitMethod.L4 ->
                let rows = sample ()
                let x, y = rows.X, rows.Y

                explained findings fewSamples (fun () ->
                    let sigma = sigmaFor config x y (Sigma.initial y) context log

                    let staged =
                        match config.L4Solver with
                        | L4Solver.Subspace subspace when not inMemory ->
                            // The L4 moments of every row: two passes.
                            let fromAllRows (sigma: float) =
                                SubspaceL4.solve
                                    (SubspaceL4.momentsOf (outputTransform config sigma) k working)
                                    subspace.Weights
                                    k
                                    subspace.Restarts
                                    config.Seed
                                    context

                            paperStagesFrom fromAllRows config sigma x y context log
                        | _ -> paperStages config sigma x y context log

                    polish config staged working workingSd context log),
                [||],
                "l4"
            | FitMethod.Auto ->
                let moments = log.Direct("moments", (fun () -> momentsFor config sigma0 working))

                let proposals =
                    log.Direct("initializers", (fun () -> proposalsFrom config moments sigma0 d context))

                select config proposals sigma0 working workingSd context log
            | FitMethod.Em ->
                let starts =
                    Initializers.randomStarts k d g sigma0 config.Intercepts config.RandomStarts config.Seed

                if starts.Length = 1 then
                    // A random start is a model: no rows are needed to make it.
                    let start =
                        Selection.startModel starts.[0] g sigma0 (Array2D.zeroCreate 0 d) [||] config.Seed context

                    maximumLikelihood (emSettings config workingSd) start working context log,
                    [||],
                    starts.[0].Initializer
                else
                    select config (starts |> Array.map Ok) sigma0 working workingSd context log
            | FitMethod.Spectral ->
                let proposal =
                    momentsFor config sigma0 working
                    |> Result.bind (fun moments -> Initializers.spectral moments k config.Seed)
                    |> Result.defaultWith (fun reason ->
                        invalidArg "data" (Text.format "The spectral method cannot start: %s." [| box reason |]))

                let start =
                    log.Direct(
                        "spectral",
                        fun () ->
                            let rows = sample ()
                            Selection.startModel proposal g sigma0 rows.X rows.Y config.Seed context
                    )

                let settings =
                    { emSettings config workingSd with
                        FixRegressors = true
                    }

                maximumLikelihood settings start working context log, [||], "spectral"
            | FitMethod.L2 ->
                let rows = sample ()

                let fitted =
                    log.Run("l2", (fun () -> PaperSgd.l2 config.L2Sgd k g config.Seed rows.X rows.Y context ignore))

                { fitted with
                    Value =
                        MoeModel.withSigma
                            (defaultArg config.Sigma (Sigma.implied fitted.Value rows.X rows.Y))
                            fitted.Value
                },
                [||],
                "random-start-1"

        result config standardisation findings log trace outcome candidates initializer ySd passes.Value

    /// <summary>Fits a mixture of experts to (X, y) in memory (<c>fitSource</c> on one shard held in memory).</summary>
    /// <param name="config">The configuration (see <c>FitConfig.defaults</c> and <c>FitConfig.paper</c>).</param>
    /// <param name="data">The samples.</param>
    /// <param name="context">Progress callback and cancellation.</param>
    /// <returns>The model (in the data's units), the trace, every stage's outcome, the final stop reason, the
    /// warnings and the candidates.</returns>
    /// <exception cref="T:System.ArgumentException">An invalid configuration, or data the estimator cannot use (a
    /// constant or collinear column, a constant response, fewer than 2kd samples, d &lt; k for the moment-only
    /// methods): the message names the cause.</exception>
    /// <exception cref="T:MoE.Core.NonFiniteException">No candidate gave a model, a paper-pipeline stage failed
    /// (unbounded below, collapsed), or a loss became NaN or infinite.</exception>
    /// <exception cref="T:System.OperationCanceledException">The token was cancelled.</exception>
    /// <example>
    /// <code lang="fsharp">
    /// let truth = GroundTruth.orthogonal 2 10 Identity 0.05
    /// let data = Sampler.sample truth 50_000 7L
    /// let result = Learner.fit (FitConfig.defaults 2 Identity) data RunContext.silent
    /// result.Initializer, (Metrics.compare result.Model truth).RegressorError   // e.g. ("spectral", 1e-7)
    /// </code>
    /// </example>
    [<CompiledName("Fit")>]
    let fit (config: FitConfig) (data: Dataset) (context: RunContext) : FitResult =
        FitConfig.validate config
        Dataset.validate data
        fitSource config (DataSource.ofDataset data) Int32.MaxValue context
