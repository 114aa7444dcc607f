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
    member _.Run(stage: Stage, f: unit -> StageOutcome<'T>) : StageOutcome<'T> =
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
    member this.Direct(stage: Stage, f: unit -> 'T) : 'T =
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

    /// Records a warning about the fit itself (reported with the data's and the stages' warnings).
    member _.Warn(code: FindingCode, message: string) =
        notes.Add
            {
                Severity = Severity.Warning
                Code = code
                Message = message
            }

    /// The findings recorded.
    member _.Notes = notes.ToArray()

    /// Records another log's stages and findings after this one's (a candidate's chain, run on its own log, once it
    /// has won).
    member _.Append(other: StageLog) =
        stages.AddRange other.Results
        notes.AddRange other.Notes

/// <summary>What every method of a fit is given (Methods/*.fs): the problem in working units, prepared once by
/// <c>Learner.fitSource</c>.</summary>
type internal Problem =
    {
        /// The configuration, σ (when given) in working units.
        Config: FitConfig
        /// The data in working units (standardised when configured; held in memory when they fit).
        Working: DataSource
        /// Which of the data's columns the experts and the gate read.
        Design: Design
        /// Whether the rows are held in memory.
        InMemory: bool
        /// The at most <c>maxRows</c> rows the stages that work on arrays use: every row in memory, else a seeded
        /// sample (computed on request).
        Sample: unit -> Dataset
        /// sd(y) in working units (the σ prior's scale).
        WorkingSd: float
        /// The responses' mean in working units (a GLM expert's start: its link is the starts' intercept).
        WorkingMean: float
        /// The provisional noise level in working units: the given σ, or 0.1·sd(y).
        Sigma0: float
        /// The data's findings (an L4 failure is explained by them).
        Findings: Finding[]
        /// Progress and cancellation.
        Context: RunContext
        /// The stages' record.
        Log: StageLog
    }

/// <summary>What a method returns: the model in working units, the candidates it screened and its
/// initializer.</summary>
type internal MethodResult =
    {
        /// The model and how its last stage stopped.
        Outcome: StageOutcome<MoeModel>
        /// The candidates screened, best first (empty for the methods that screen none).
        Candidates: Candidate[]
        /// The initializer of the model.
        Initializer: string
    }

/// The result of a fit in the data's units, with the fit's own warnings.
module internal FitResults =

    /// <summary>The stages of the chain that returned the model: after a kept escape move (a revive or split-merge stage
    /// followed by the kept move's chain, Escape) that chain's stages, else every stage. A climb a move left behind may
    /// have run out of iterations on the plateau it was stuck on; that says nothing of the model returned.</summary>
    let internal returnedChain (stages: StageResult[]) : StageResult[] =
        let escape (s: StageResult) =
            s.Stage = Stage.Revive || s.Stage = Stage.SplitMerge

        match
            [| 0 .. stages.Length - 2 |]
            |> Array.filter (fun i -> escape stages.[i] && not (escape stages.[i + 1]))
            |> Array.tryLast
        with
        | Some i -> stages.[i + 1 ..] |> Array.filter (escape >> not)
        | None -> stages

    /// Warnings about the fit itself: an EM that stopped before converging (in the chain that returned the model), a
    /// noise level that collapsed.
    let private fitWarnings (config: FitConfig) (stages: StageResult[]) (model: MoeModel) (ySd: float) : Finding[] =
        [|
            for s in returnedChain stages do
                if
                    (s.Stage = Stage.Em || s.Stage = Stage.Likelihood)
                    && s.Reason = StopReason.MaxIterations
                then
                    {
                        Severity = Severity.Warning
                        Code = FindingCode.EmNotConverged
                        Message =
                            Text.format
                                "EM stopped after its budget of %d iterations before converging; raise the budget (EmIterations) or check the data."
                                [| box config.EmIterations |]
                    }
                elif s.Stage = Stage.Em && s.Reason = StopReason.NoProgress then
                    {
                        Severity = Severity.Warning
                        Code = FindingCode.EmNoProgress
                        Message =
                            "EM stopped when a step failed to increase the likelihood; the model is the last good one."
                    }

            if config.Sigma.IsNone && model.Sigma < 1e-6 * ySd then
                {
                    Severity = Severity.Warning
                    Code = FindingCode.SigmaCollapsed
                    Message =
                        Text.format
                            "the fitted noise level σ = %.3g is below 1e-6·sd(y): an expert has collapsed onto a few points and the likelihood is degenerate."
                            [| box model.Sigma |]
                }
        |]

    /// The fit's result in the data's units: the model and every candidate mapped back from the standardised problem
    /// (a held-out likelihood per row shifts by −log of y's scale), and the warnings of the data check, the fit and the
    /// stages' notes.
    let assemble
        (config: FitConfig)
        (standardisation: Standardisation)
        (findings: Finding[])
        (log: StageLog)
        (trace: ResizeArray<TraceEntry>)
        (fitted: MethodResult)
        (ySd: float)
        (passes: int)
        : FitResult =
        let stages = log.Results
        let model = Standardise.toDataUnits standardisation fitted.Outcome.Value
        let logScale = Math.Log standardisation.YScale

        {
            Model = model
            Trace = trace.ToArray()
            Stages = stages
            Reason = fitted.Outcome.Reason
            Warnings =
                Array.append
                    (findings |> Array.filter (fun f -> f.Severity = Severity.Warning))
                    (Array.append (fitWarnings config stages model ySd) log.Notes)
            Candidates =
                fitted.Candidates
                |> Array.map (fun c ->
                    { c with
                        Outcome = c.Outcome |> Result.map (Standardise.toDataUnits standardisation)
                        LogLikelihood = c.LogLikelihood - logScale
                    })
            Initializer = fitted.Initializer
            Passes = passes
        }
