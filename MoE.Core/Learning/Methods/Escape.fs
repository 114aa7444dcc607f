namespace MoE.Core

open System

/// <summary>Moves from a maximum of the likelihood to a higher one (docs/math.md §7.8–7.9, docs/learners.md step 7): a
/// dead expert revived (DeadExperts), then a merged pair split (SplitMerge). Every move is kept only if the whole chain
/// climbed from it on every row ends higher by more than 1e-6 nats per row, so a maximum no move improves is returned
/// bit for bit. The budgets are counts, not times: a fit stays a function of its data and seed.</summary>
module internal Escape =

    /// <summary>Rounds of moves from a maximum, recorded as one stage (its iterations are the chains climbed): each
    /// round climbs the moves of the current best (<paramref name="movesOf"/>) by the whole chain on every row, in
    /// order, and keeps the first that ends higher by more than 1e-6 nats per row; a round that keeps none ends it, and
    /// so does <paramref name="rounds"/>. The chain of the last kept move is the fit's from there (appended after the
    /// stage). Returns the best.</summary>
    let private climbMoves
        (problem: Problem)
        (em: EmSettings)
        (stage: Stage)
        (rounds: int)
        (movesOf: MoeModel -> (string * MoeModel)[])
        (outcome: StageOutcome<MoeModel>)
        : StageOutcome<MoeModel> =
        let log = problem.Log
        let rows = problem.Working.Weight

        let perRow (m: MoeModel) =
            LikelihoodKernel.logLikelihoodOf m problem.Working / rows

        let mutable best, bestLl, kept = outcome, perRow outcome.Value, None
        let mutable climbed, round, improved = 0, 0, true

        log.Run(
            stage,
            fun () ->
                while improved && round < rounds do
                    improved <- false
                    round <- round + 1

                    for _, start in movesOf best.Value do
                        if not improved then
                            climbed <- climbed + 1
                            let chain = StageLog()

                            try
                                let result = Chain.maximumLikelihood em start problem.Working problem.Context chain
                                let ll = perRow result.Value

                                if Double.IsFinite ll && ll > bestLl + 1e-6 then
                                    best <- result
                                    bestLl <- ll
                                    kept <- Some chain
                                    improved <- true
                            with
                            | :? NonFiniteException
                            | :? ArgumentException -> ()

                {
                    Value = ()
                    Iterations = climbed
                    FinalLoss = Some(-bestLl)
                    Reason = StopReason.Completed
                }
        )
        |> ignore

        kept |> Option.iter log.Append
        best

    /// <summary>Revives dead experts (docs/math.md §7.9; DeadExperts): when an expert's activation is flat on nearly
    /// every row it holds (an activation with a flat region, a family with a noise level, intercepts), each move — its
    /// regression replaced by that of the rows explained worst, or, for a dead one, its kink moved to the middle of its
    /// rows — is climbed by the whole chain on every row, in order, and the first that raises the log-likelihood by
    /// more than 1e-6 nats per row is kept; after a kept move, another look (<c>DeadExperts.Rounds</c>). Such experts
    /// are rare and their moves few (one or two each), so they are climbed without screening: a move starts far below
    /// the maximum (0.01–0.5 nats per row measured) and a short EM on the screening rows does not show where it leads.
    /// Recorded as one revive stage (its iterations are the chains climbed) only when a move was tried; the chain of a
    /// kept move is the fit's from there. A dead expert left after the moves is reported (the warning
    /// dead-expert).</summary>
    let private revive (problem: Problem) (em: EmSettings) (outcome: StageOutcome<MoeModel>) : StageOutcome<MoeModel> =
        let config, log = problem.Config, problem.Log

        if not config.Intercepts || not (DeadExperts.applies outcome.Value) then
            outcome
        else
            let criteria =
                Sampling.subsampleOf (DeadExperts.criteriaRows problem.Working.Dimension) config.Seed problem.Working

            match DeadExperts.moves outcome.Value criteria.X criteria.Y with
            | [||] -> outcome
            | first ->
                // The first round's moves are the ones just found; later rounds look again at the kept maximum.
                let movesOf (m: MoeModel) =
                    if obj.ReferenceEquals(m, outcome.Value) then
                        first
                    else
                        DeadExperts.moves m criteria.X criteria.Y

                let best = climbMoves problem em Stage.Revive DeadExperts.Rounds movesOf outcome

                DeadExperts.describe best.Value problem.Working.Weight criteria.X criteria.Y
                |> Option.iter (fun message -> log.Warn(FindingCode.DeadExpert, message))

                best

    /// <summary>Split-and-merge moves from a maximum (docs/math.md §7.8; SplitMerge): when one expert's noise level
    /// stands out (a level per expert, intercepts, k ≥ 3), every move (the split of that expert with each merge pair)
    /// competes with the maximum itself. Small data (<c>FitConfig.everyStartOnAllRows</c>): each move is climbed by
    /// the whole chain on every row, in order. Larger data: the moves and the maximum are screened like the starts
    /// (Selection.screen: a short EM on the screening rows, scored on held-out rows) and only a move that beats the
    /// maximum there is climbed on every row. A move is kept when it raises the log-likelihood by more than 1e-6 nats
    /// per row; after a kept move, one more look (<c>SplitMerge.Rounds</c>). The budget is a count, not a time, so a
    /// fit stays a function of its data and seed. Recorded as one split-merge stage (its iterations are the chains
    /// climbed); the chain of a kept move is the fit's from there. A maximum that still looks merged after the moves
    /// (MergedExperts.describe) is returned with the warning merged-experts, which names the expert.</summary>
    let private merged (problem: Problem) (em: EmSettings) (outcome: StageOutcome<MoeModel>) : StageOutcome<MoeModel> =
        let config, log = problem.Config, problem.Log

        if
            not config.Intercepts
            || config.CommonSigma
            || config.Sigma.IsSome
            || config.Experts < 3
            || (SplitMerge.standsOut outcome.Value.Sigmas).IsNone
        then
            outcome
        else
            let rows = problem.Working.Weight

            let allRows =
                FitConfig.everyStartOnAllRows config problem.Working.Dimension problem.Working.Rows

            let criteria =
                Sampling.subsampleOf SplitMerge.CriteriaRows config.Seed problem.Working

            let quiet =
                { problem.Context with
                    Progress = ignore
                }

            // The starts worth a climb on every row, in order.
            let starts (current: MoeModel) =
                let moves = SplitMerge.moves current criteria.X criteria.Y

                if allRows || moves.Length = 0 then
                    moves
                else
                    let proposal (name, model) =
                        Ok
                            {
                                Initializer = name
                                Start = Start.Model model
                            }

                    let screened =
                        Selection.screen
                            (Array.append [| proposal ("maximum", current) |] (moves |> Array.map proposal))
                            config.Activation
                            problem.Sigma0
                            em
                            config.Selection
                            config.Seed
                            problem.Working
                            quiet

                    match screened.[0] with
                    | {
                          Initializer = name
                          Outcome = Ok model
                      } when name <> "maximum" -> [| name, model |]
                    | _ -> [||]

            let best = climbMoves problem em Stage.SplitMerge SplitMerge.Rounds starts outcome

            MergedExperts.describe best.Value rows criteria.X criteria.Y
            |> Option.iter (fun message -> log.Warn(FindingCode.MergedExperts, message))

            best

    /// <summary>The moves from a maximum, in order: dead experts revived, then a merged pair split; with the warning
    /// merged-experts when a maximum still looks merged after them.</summary>
    let fromMaximum (problem: Problem) (em: EmSettings) (outcome: StageOutcome<MoeModel>) : StageOutcome<MoeModel> =
        outcome |> revive problem em |> merged problem em
