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
    }

/// The stages of one fit, timed as they run (mutable, but owned by one fit).
type internal StageLog() =
    let stages = ResizeArray<StageResult>()

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

        let signed =
            log
                .Run("signs", fun () -> Signs.resolve directions g sigma x y config.SignSubsample config.Seed context)
                .Value

        let fitGating (m: MoeModel) =
            match config.Gating with
            | GatingMethod.QuasiNewton -> Gating.fit m x y config.GatingIterations context true
            | GatingMethod.ProjectedGradient(radius, rate, iterations, splitting) ->
                Gating.fitProjected m x y radius rate iterations splitting context

        let gated = log.Run("gating", (fun () -> fitGating signed)).Value
        let scaled = log.Direct("scales", (fun () -> Scales.fit gated x y))
        log.Run("gating", (fun () -> fitGating scaled))

    /// The EM polish of the paper stages' model when configured (σ re-estimated unless given), else that model.
    let private polish (config: FitConfig) (staged: StageOutcome<MoeModel>) x y context (log: StageLog) =
        if config.Polish then
            log.Run(
                "em",
                fun () -> Em.run staged.Value x y config.Sigma.IsNone config.EmIterations config.EmTolerance context
            )
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
                sprintf
                    "The data break the estimator's assumptions: %s. Or fit with the EM method (--method em)."
                    (String.Join("; ", assumptions))
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
    let private fitWarnings (config: FitConfig) (stages: StageResult[]) (model: MoeModel) (y: float[]) : Finding[] =
        [|
            for s in stages do
                if s.Stage = "em" && s.Reason = StopReason.MaxIterations then
                    {
                        Severity = Severity.Warning
                        Code = "em-not-converged"
                        Message =
                            sprintf
                                "EM stopped after its budget of %d iterations before converging; raise the budget (EmIterations) or check the data."
                                config.EmIterations
                    }
                elif s.Stage = "em" && s.Reason = StopReason.NoProgress then
                    {
                        Severity = Severity.Warning
                        Code = "em-no-progress"
                        Message =
                            "EM stopped when a step failed to increase the likelihood; the model is the last good one."
                    }

            if config.Sigma.IsNone && model.Sigma < 1e-6 * Dense.std y then
                {
                    Severity = Severity.Warning
                    Code = "sigma-collapsed"
                    Message =
                        sprintf
                            "the fitted noise level σ = %.3g is below 1e-6·sd(y): an expert has collapsed onto a few points and the likelihood is degenerate."
                            model.Sigma
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

    /// <summary>Fits a mixture of experts to (X, y).</summary>
    /// <param name="config">The configuration (see <c>FitConfig.defaults</c>).</param>
    /// <param name="data">The samples.</param>
    /// <param name="context">Progress callback and cancellation.</param>
    /// <returns>The model, the trace, every stage's outcome and the final stop reason.</returns>
    /// <exception cref="T:System.ArgumentException">An invalid configuration, or data the estimator cannot use (a
    /// constant column or response, fewer than 2kd samples, d &lt; k for L4): the message names the cause.</exception>
    /// <exception cref="T:MoE.Core.NonFiniteException">A loss or gradient became NaN or infinite, or the L4 stage
    /// failed (unbounded below, collapsed).</exception>
    /// <exception cref="T:System.OperationCanceledException">The token was cancelled.</exception>
    /// <remarks>σ, when not given, is estimated: a provisional σ₀ = 0.1·sd(y) drives the L4 and gating stages on a
    /// seeded subsample of at most 100k rows, the fitted model's posterior-weighted residual RMS σ₁ then re-runs them
    /// on all the data, and EM updates σ to convergence.</remarks>
    /// <example>
    /// <code lang="fsharp">
    /// let truth = GroundTruth.orthogonal 2 10 Identity 0.05
    /// let data = Sampler.sample truth 50_000 7L
    /// let result = Learner.fit (FitConfig.defaults 2 Identity) data RunContext.silent
    /// (Metrics.compare result.Model truth).RegressorError   // ≈ 1e-7
    /// </code>
    /// </example>
    [<CompiledName("Fit")>]
    let fit (config: FitConfig) (data: Dataset) (context: RunContext) : FitResult =
        FitConfig.validate config
        Dataset.validate data
        let findings = Diagnosis.check config data
        Diagnosis.throwOnError findings
        let x, y = data.X, data.Y
        let k, d, g = config.Experts, data.Dimension, config.Activation
        let log = StageLog()
        let trace, context = recording context

        let outcome =
            match config.Method with
            | FitMethod.L4 ->
                explained findings fewSamples (fun () ->
                    let sigma = sigmaFor config x y (Sigma.initial y) context log
                    polish config (paperStages config sigma x y context log) x y context log)
            | FitMethod.Em ->
                let rng = Rng.stream config.Seed Streams.RandomStart
                let a = Array2D.init k d (fun _ _ -> rng.NextGaussian() / sqrt (float d))
                let w = Array2D.init (k - 1) d (fun _ _ -> rng.NextGaussian() / sqrt (float d))
                let start = MoeModel.create a w g (defaultArg config.Sigma (Dense.std y))

                log.Run(
                    "em",
                    fun () -> Em.run start x y config.Sigma.IsNone config.EmIterations config.EmTolerance context
                )
            | FitMethod.L2 ->
                let fitted =
                    log.Run("l2", (fun () -> PaperSgd.l2 config.L2Sgd k g config.Seed x y context ignore))

                { fitted with
                    Value = MoeModel.withSigma (defaultArg config.Sigma (Sigma.implied fitted.Value x y)) fitted.Value
                }

        let stages = log.Results

        {
            Model = outcome.Value
            Trace = trace.ToArray()
            Stages = stages
            Reason = outcome.Reason
            Warnings =
                Array.append
                    (findings |> Array.filter (fun f -> f.Severity = Severity.Warning))
                    (fitWarnings config stages outcome.Value y)
        }

    /// <summary>
    /// Fits data that need not fit in memory, arriving in chunks (e.g. <c>DataCsv.loadChunks</c>): the L4 stage
    /// uses every row through the mergeable moment sums (two passes over the chunks), and the likelihood stages
    /// (σ estimation, signs, gating, scales, EM polish) use a seeded uniform sample of at most
    /// <paramref name="maxRows"/> rows (one more pass). Memory: the sample plus one chunk. When the data have no
    /// more than maxRows rows this is <c>fit</c> on all of them.
    /// </summary>
    /// <param name="config">The configuration; the L4 method with the subspace solver (the one whose data are
    /// moments).</param>
    /// <param name="chunks">The data, re-enumerable: each enumeration must yield the same rows.</param>
    /// <param name="maxRows">Rows held in memory for the likelihood stages: at least 10 per model parameter.</param>
    /// <param name="context">Progress callback and cancellation.</param>
    /// <returns>As <c>fit</c>.</returns>
    /// <exception cref="T:System.ArgumentException">A method other than L4 with the subspace solver, too small a
    /// maxRows, or bad chunks.</exception>
    /// <exception cref="T:System.OperationCanceledException">The token was cancelled (checked before every chunk).</exception>
    [<CompiledName("FitChunks")>]
    let fitChunks (config: FitConfig) (chunks: seq<Dataset>) (maxRows: int) (context: RunContext) : FitResult =
        FitConfig.validate config
        Guard.positiveInt "maxRows" maxRows

        let subspace =
            match config.Method, config.L4Solver with
            | FitMethod.L4, L4Solver.Subspace s -> s
            | _ ->
                invalidArg
                    "config"
                    "Fitting from chunks needs Method = L4 with the subspace solver (its data are moment sums); the baselines and the SGD solver need the data in memory."

        Guard.notNull "chunks" chunks
        // Every pass checks the token before each chunk, so a cancellation waits for one chunk, not a whole read.
        let chunks =
            chunks
            |> Seq.map (fun chunk ->
                context.Cancellation.ThrowIfCancellationRequested()
                chunk)

        let d = (Seq.head chunks).Dimension
        let k = config.Experts
        let needed = 10L * Diagnosis.parameters k d

        if int64 maxRows < needed then
            raise (
                ArgumentOutOfRangeException(
                    "maxRows",
                    sprintf
                        "maxRows = %d holds too few rows in memory for the likelihood stages: k = %d experts in d = %d dimensions have %d parameters and need at least 10 rows each (%d); raise it (moe fit --max-rows)."
                        maxRows
                        k
                        d
                        (Diagnosis.parameters k d)
                        needed
                )
            )

        let sample, total = Sampling.reservoir maxRows config.Seed chunks

        if total <= int64 maxRows then
            fit config sample context
        else
            let x, y = sample.X, sample.Y
            let findings = Diagnosis.check config sample
            Diagnosis.throwOnError findings
            let log = StageLog()
            let trace, context = recording context

            let fromAllRows (sigma: float) =
                let moments = SubspaceL4.momentsOfChunks (outputTransform config sigma) k chunks
                SubspaceL4.solve moments subspace.Weights k subspace.Restarts config.Seed context

            let sigma =
                explained
                    findings
                    (sprintf
                        "The provisional σ run uses the %d rows held in memory, too few here; raise maxRows (moe fit --max-rows), or give σ."
                        maxRows)
                    (fun () -> sigmaFor config x y (Sigma.initial y) context log)

            let outcome =
                explained findings fewSamples (fun () ->
                    let staged = paperStagesFrom fromAllRows config sigma x y context log
                    polish config staged x y context log)

            let stages = log.Results

            {
                Model = outcome.Value
                Trace = trace.ToArray()
                Stages = stages
                Reason = outcome.Reason
                Warnings =
                    Array.append
                        (findings |> Array.filter (fun f -> f.Severity = Severity.Warning))
                        (fitWarnings config stages outcome.Value y)
            }
