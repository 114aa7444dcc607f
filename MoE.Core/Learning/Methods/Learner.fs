namespace MoE.Core

open System

/// <summary>The learners (docs/learners.md): a fit's preparation — the data's check, the standardisation, the passes
/// — and its method (Methods/: the default Auto, the paper's L4, the spectral method, the EM and ℓ2 baselines), on data
/// in memory or read in passes.</summary>
[<RequireQualifiedAccess>]
module Learner =

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

    /// The preparation every fit shares — the checks, the passes, the standardisation, the problem — then the method
    /// `run` chooses, given the standardisation it maps a start through.
    let private fitWith
        (config: FitConfig)
        (source: DataSource)
        (maxRows: int)
        (context: RunContext)
        (run: Standardisation -> Problem -> MethodResult)
        : FitResult =
        FitConfig.validate config
        Guard.notNull "source" (box source)
        Guard.positiveInt "maxRows" maxRows
        let k, g = config.Experts, config.Activation
        let d = source.Dimension
        let n = source.Rows
        // On shard workers every stage is a pass where the rows live: nothing is held here but the samples.
        let remote = DataSource.isRemote source
        let inMemory = n <= int64 maxRows && not remote
        let design = FitConfig.designFor config d

        if design.Inputs <> d then
            invalidArg
                "config"
                (Text.format
                    "The design reads %d input columns, but the data have d = %d."
                    [| box design.Inputs; box d |])

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

        // The paper's pipelines (its L4 with the gate's own fit, and the l2 baseline) are the paper's estimators on
        // unweighted samples; weighted rows (docs/math.md §13) are fitted by the likelihood methods.
        if
            source.IsWeighted
            && (config.Method = FitMethod.L4 || config.Method = FitMethod.L2)
        then
            invalidArg
                "config"
                (Text.format
                    "The rows carry weights, and the %s method fits unweighted samples only; fit weighted rows with the default method, em or spectral."
                    [| box (if config.Method = FitMethod.L4 then "l4" else "l2") |])

        let parameters = FitConfig.parameterCount config d

        if not inMemory && int64 maxRows < 10L * parameters then
            raise (
                ArgumentOutOfRangeException(
                    "maxRows",
                    Text.format
                        "maxRows = %d holds too few rows in memory for the stages that work on a sample: k = %d experts in d = %d dimensions have %d parameters and need at least 10 rows each (%d); raise it (moe fit --max-rows)."
                        [| box maxRows; box k; box d; box parameters; box (10L * parameters) |]
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

        // Responses the family has no density at (a fractional count, a 0/1 outcome that is neither) stop the fit
        // first, naming the row.
        Responses.check config.Family (FitConfig.designFor config source.Dimension) source
        |> Option.iter (fun f -> Diagnosis.throwOnError [| f |])

        let summary = Diagnosis.summarise source
        // Rows the readers left out for a missing value (as asked: MissingValues.Drop) are said, with their count.
        let dropped = source.Shards |> Array.sumBy (fun s -> fst s.Dropped)

        let droppedNote =
            if dropped = 0L then
                [||]
            else
                let first = snd (DataSource.dropped source)

                [|
                    {
                        Severity = Severity.Warning
                        Code = FindingCode.RowsDropped
                        Message =
                            Text.format
                                "%d of %d rows were left out for a missing value in a column read (the first at %s), as the missing-value policy 'drop' asked; the fit uses the other %d."
                                [| box dropped; box (n + dropped); box first; box n |]
                    }
                |]

        let findings = Array.append droppedNote (Diagnosis.findings config summary)
        Diagnosis.throwOnError findings

        let standardisation =
            if config.Standardise then
                Standardise.fitOn source summary config.Intercepts config.Family g design
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

        let problem =
            {
                Config = config
                Working = working
                Design = design
                InMemory = inMemory
                // The rows the array stages use: every row in memory, else a seeded sample of maxRows.
                Sample =
                    fun () ->
                        if inMemory then
                            DataSource.load working
                        else
                            Sampling.subsampleOf maxRows config.Seed working
                WorkingSd = workingSd
                // With an exposure column the starts' centre is the rate per unit of exposure, ȳ / t̄ (docs/math.md §12.4).
                WorkingMean =
                    (summary.Response.Mean - standardisation.YShift)
                    / standardisation.YScale
                    / (if design.HasOffset then
                           summary.Columns.[design.OffsetColumn].Mean
                       else
                           1.0)
                Sigma0 = defaultArg config.Sigma (0.1 * workingSd)
                Findings = findings
                Context = context
                Log = log
            }

        let fitted = run standardisation problem

        let result =
            FitResults.assemble config standardisation findings log trace fitted ySd passes.Value

        // The design's names are labels the stages need not carry: the model gets them back here (the same columns).
        match design.Columns with
        | Some _ when Design.same design result.Model.Design ->
            { result with
                Model = { result.Model with Design = design }
            }
        | _ -> result

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
        fitWith config source maxRows context (fun _ problem ->
            match problem.Config.Method with
            | FitMethod.L4 -> PaperMethod.run problem
            | FitMethod.Auto -> AutoMethod.run problem
            | FitMethod.Em -> EmMethod.run problem
            | FitMethod.Spectral -> SpectralMethod.run problem
            | FitMethod.L2 -> L2Method.run problem)

    /// <summary>
    /// Maximum likelihood from a given model (docs/math.md §7.4–7.5): the chain every method ends with — EM, L-BFGS
    /// when EM slows, EM again, with the degeneracy rule and its guard — run from <paramref name="start"/> instead of
    /// the configuration's initializers, after the same checks and standardisation as <c>fitSource</c>. What a
    /// bootstrap replicate starts from (the original fit), and how a model is refitted to new rows of the same kind.
    /// The configuration's method, starts and seed are not used; its experts, family, activation, design, intercepts,
    /// σ and EM settings are.
    /// </summary>
    /// <param name="config">The configuration the start was fitted with.</param>
    /// <param name="start">The start, in the data's units: k, family, activation and design as in the configuration,
    /// with intercepts exactly when it has them.</param>
    /// <param name="source">The data.</param>
    /// <param name="maxRows">The memory bound, as for <c>fitSource</c>.</param>
    /// <param name="context">Progress callback and cancellation.</param>
    /// <exception cref="T:System.ArgumentException">The start does not match the configuration (the message names
    /// what differs), or the data as for <c>fitSource</c>.</exception>
    [<CompiledName("FitFromSource")>]
    let fitFromSource
        (config: FitConfig)
        (start: MoeModel)
        (source: DataSource)
        (maxRows: int)
        (context: RunContext)
        : FitResult =
        Guard.notNull "start" (box start)
        MoeModel.validate start
        Guard.notNull "source" (box source)
        let design = FitConfig.designFor config source.Dimension

        let differs =
            [
                if start.Experts <> config.Experts then
                    Text.format
                        "k = %d experts where the configuration has %d"
                        [| box start.Experts; box config.Experts |]
                if start.Family <> config.Family then
                    Text.format
                        "%s experts where the configuration has %s"
                        [| box start.Family.Name; box config.Family.Name |]
                if start.Activation <> config.Activation then
                    Text.format
                        "the activation %s where the configuration has %s"
                        [| box start.Activation.Name; box config.Activation.Name |]
                if not (Design.same start.Design design) then
                    Text.format "the design %s where the configuration reads %s" [| box start.Design; box design |]
                if start.HasIntercepts <> config.Intercepts then
                    (if config.Intercepts then
                         "no intercepts where the configuration fits them"
                     else
                         "intercepts where the configuration has none")
            ]

        if not differs.IsEmpty then
            invalidArg
                "start"
                (Text.format
                    "The start does not match the configuration: it has %s."
                    [| box (String.Join("; ", differs)) |])

        fitWith config source maxRows context (fun standardisation problem ->
            let working = Standardise.fromDataUnits standardisation start

            {
                Outcome =
                    Chain.maximumLikelihood
                        (Chain.settings problem.Config problem.WorkingSd)
                        working
                        problem.Working
                        problem.Context
                        problem.Log
                Candidates = [||]
                Initializer = "start"
            })

    /// <summary>Maximum likelihood from a given model on (X, y) in memory (<c>fitFromSource</c> on one shard held in
    /// memory).</summary>
    /// <param name="config">The configuration the start was fitted with.</param>
    /// <param name="start">The start, in the data's units.</param>
    /// <param name="data">The samples.</param>
    /// <param name="context">Progress callback and cancellation.</param>
    /// <exception cref="T:System.ArgumentException">The start does not match the configuration, or the data as for
    /// <c>fit</c>.</exception>
    [<CompiledName("FitFrom")>]
    let fitFrom (config: FitConfig) (start: MoeModel) (data: Dataset) (context: RunContext) : FitResult =
        FitConfig.validate config
        Dataset.validate data
        fitFromSource config start (DataSource.ofDataset data) Int32.MaxValue context

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
