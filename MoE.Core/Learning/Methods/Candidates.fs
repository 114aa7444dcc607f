namespace MoE.Core

open System

/// <summary>The candidates of a fit (docs/learners.md): the moment statistics the initializers share, and the
/// screening of several starts with maximum likelihood from the best — what the Auto method does, and the EM method
/// with several starts.</summary>
module internal Candidates =

    /// How many screened candidates besides the best may climb on every row when the held-out rows cannot separate
    /// them from it (Selection.unresolved).
    [<Literal>]
    let private Challengers = 3

    /// <summary>The moment statistics the initializers share, at σ, on a seeded subsample of at most 100k rows (they pin
    /// the moments down to a fraction of the initializers' own error), or why they cannot be had.</summary>
    let moments (config: FitConfig) (sigma: float) (source: DataSource) : Result<SubspaceMoments, string> =
        let k = config.Experts

        if k > source.Dimension then
            Error(Text.format "the moment subspace needs d >= k, but d = %d < k = %d" [| box source.Dimension; box k |])
        else
            try
                let sample = Sampling.subsampleOf Sigma.ProvisionalRows config.Seed source
                let transform = FitConfig.outputTransform config sigma

                // Weighted rows: the moments weigh them as every sum does (docs/math.md §13).
                if sample.IsWeighted then
                    Ok(SubspaceL4.momentsOf transform k (DataSource.ofDataset sample))
                else
                    Ok(SubspaceL4.moments transform k sample.X sample.Y)
            with
            | :? NonFiniteException as e -> Error(Text.format "the moments are not finite (%s)" [| box e.Detail |])
            | :? ArgumentException as e -> Error e.Message

    /// <summary>Every proposal taken through the whole chain (Chain.maximumLikelihood) on every row, each on its own
    /// stage log, ranked by the likelihood of the model it returns; ties keep the proposals' order, so the first m of
    /// m + 1 proposals never do better than all of them. A failure is recorded, not raised.</summary>
    let private convergeEach
        (problem: Problem)
        (em: EmSettings)
        (proposals: Result<Proposal, string * string>[])
        (sigma: float)
        =
        let config = problem.Config
        // The starts' rows: every row in memory, the bounded sample when the rows are read in passes; the likelihood
        // that ranks the candidates is a pass over every row either way.
        let data = problem.Sample()
        let rows = problem.Working.Weight

        let quiet =
            { problem.Context with
                Progress = ignore
            }

        let run (index: int) (proposal: Result<Proposal, string * string>) =
            let clock = System.Diagnostics.Stopwatch.StartNew()
            let log = StageLog()

            let failed name reason =
                {
                    Initializer = name
                    Outcome = Error reason
                    LogLikelihood = Double.NegativeInfinity
                    AllRows = true
                    ScreeningMaps = 0
                    Seconds = clock.Elapsed.TotalSeconds
                },
                None

            let result =
                match proposal with
                | Error(name, reason) -> failed name reason
                | Ok p ->
                    try
                        let start =
                            Selection.startModel p config.Activation sigma data.X data.Y config.Seed quiet

                        let outcome = Chain.maximumLikelihood em start problem.Working problem.Context log

                        let ll = LikelihoodKernel.logLikelihoodOf outcome.Value problem.Working / rows

                        {
                            Initializer = p.Initializer
                            Outcome = Ok outcome.Value
                            LogLikelihood = (if Double.IsFinite ll then ll else Double.NegativeInfinity)
                            AllRows = true
                            ScreeningMaps = log.Results |> Array.sumBy (fun s -> s.Iterations)
                            Seconds = clock.Elapsed.TotalSeconds
                        },
                        Some(outcome, log)
                    with
                    | :? NonFiniteException as e ->
                        failed
                            p.Initializer
                            (if String.IsNullOrEmpty e.Detail then
                                 e.Message
                             else
                                 e.Detail)
                    | :? ArgumentException as e -> failed p.Initializer e.Message

            problem.Context.Progress
                {
                    Stage = Stage.Candidates
                    Iteration = index + 1
                    Loss = -(fst result).LogLikelihood
                }

            result

        // A stable sort: equal likelihoods keep the proposals' order.
        proposals
        |> Array.mapi run
        |> List.ofArray
        |> List.sortBy (fun (c, _) -> -c.LogLikelihood)
        |> Array.ofList

    /// The error when no candidate gave a model, with every reason.
    let private noCandidate (candidates: Candidate[]) =
        let reasons =
            candidates
            |> Array.map (fun c ->
                match c.Outcome with
                | Error reason -> Text.format "%s: %s" [| box c.Initializer; box reason |]
                | Ok _ -> c.Initializer)

        NonFiniteException(
            Stage.Candidates,
            0,
            nan,
            Text.format
                "No candidate gave a model (%s). The data would need more rows per parameter, or fewer experts."
                [| box (String.Join("; ", reasons)) |]
        )

    /// <summary>Chooses among proposals and returns the maximum of the likelihood from the best. Small data
    /// (<c>FitConfig.everyStartOnAllRows</c>): every proposal runs to convergence on every row and the highest
    /// likelihood wins (convergeEach). Larger data: the proposals are screened (Selection.screen) and the best
    /// taken to the maximum. Fails only when no candidate gives a model, with every reason.</summary>
    let screenAndPolish (problem: Problem) (proposals: Result<Proposal, string * string>[]) (sigma: float) =
        let config, log = problem.Config, problem.Log
        let em = Chain.settings config problem.WorkingSd

        if FitConfig.everyStartOnAllRows config problem.Working.Dimension problem.Working.Rows then
            let ranked =
                log
                    .Run(
                        Stage.Candidates,
                        fun () ->
                            let r = convergeEach problem em proposals sigma

                            {
                                Value = r
                                Iterations = r.Length
                                FinalLoss = Some(-(fst r.[0]).LogLikelihood)
                                Reason = StopReason.Completed
                            }
                    )
                    .Value

            let candidates = ranked |> Array.map fst

            match ranked.[0] with
            | best, Some(outcome, chain) when Double.IsFinite best.LogLikelihood ->
                // The winner's stages and warnings are the fit's (its time is inside the candidates stage too).
                log.Append chain

                {
                    Outcome = Escape.fromMaximum problem em outcome
                    Candidates = candidates
                    Initializer = best.Initializer
                }
            | _ -> raise (noCandidate candidates)
        else

            let candidates =
                log
                    .Run(
                        Stage.Candidates,
                        fun () ->
                            let c =
                                Selection.screen
                                    proposals
                                    config.Activation
                                    sigma
                                    em
                                    config.Selection
                                    config.Seed
                                    problem.Working
                                    problem.Context

                            {
                                Value = c
                                Iterations = c.Length
                                FinalLoss = Some(-c.[0].LogLikelihood)
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
            | None -> raise (noCandidate candidates)
            | Some(best, model) ->
                let finalists =
                    Selection.unresolved config.Selection config.Seed problem.Working candidates Challengers

                if finalists.Length <= 1 then
                    {
                        Outcome =
                            Chain.maximumLikelihood em model problem.Working problem.Context log
                            |> Escape.fromMaximum problem em
                        Candidates = candidates
                        Initializer = best.Initializer
                    }
                else
                    // The held-out rows cannot separate them: each climbs on every row (its own stage log), and a
                    // challenger replaces the best only if its maximum is higher by more than 1e-6 nats per row, so a
                    // tie keeps the screening's choice and its bits.
                    let rows = problem.Working.Weight

                    let climbed =
                        finalists
                        |> Array.map (fun (c, m) ->
                            let chain = StageLog()

                            try
                                let outcome = Chain.maximumLikelihood em m problem.Working problem.Context chain
                                let ll = LikelihoodKernel.logLikelihoodOf outcome.Value problem.Working / rows
                                Some(c, outcome, chain, (if Double.IsFinite ll then ll else Double.NegativeInfinity))
                            with
                            | :? NonFiniteException
                            | :? ArgumentException when c.Initializer <> best.Initializer -> None)
                        |> Array.choose id

                    let first = climbed.[0]

                    let winner =
                        climbed
                        |> Array.fold
                            (fun ((_, _, _, bestLl) as acc) ((_, _, _, ll) as next) ->
                                if ll > bestLl + 1e-6 then next else acc)
                            first

                    let c, outcome, chain, _ = winner
                    log.Append chain

                    {
                        Outcome = Escape.fromMaximum problem em outcome
                        Candidates = candidates
                        Initializer = c.Initializer
                    }
