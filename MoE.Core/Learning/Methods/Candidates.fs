namespace MoE.Core

open System

/// <summary>The candidates of a fit (docs/learners.md): the moment statistics the initializers share, and the
/// screening of several starts with maximum likelihood from the best — what the Auto method does, and the EM method
/// with several starts.</summary>
module internal Candidates =

    /// <summary>The moment statistics the initializers share, at σ, on a seeded subsample of at most 100k rows (they pin
    /// the moments down to a fraction of the initializers' own error), or why they cannot be had.</summary>
    let moments (config: FitConfig) (sigma: float) (source: DataSource) : Result<SubspaceMoments, string> =
        let k = config.Experts

        if k > source.Dimension then
            Error(Text.format "the moment subspace needs d >= k, but d = %d < k = %d" [| box source.Dimension; box k |])
        else
            try
                let sample = Sampling.subsampleOf Sigma.ProvisionalRows config.Seed source
                Ok(SubspaceL4.moments (FitConfig.outputTransform config sigma) k sample.X sample.Y)
            with
            | :? NonFiniteException as e -> Error(Text.format "the moments are not finite (%s)" [| box e.Detail |])
            | :? ArgumentException as e -> Error e.Message

    /// <summary>Screens proposals (Selection.screen) and takes the best to the maximum of the likelihood; fails only
    /// when no candidate gives a model, with every reason.</summary>
    let screenAndPolish (problem: Problem) (proposals: Result<Proposal, string * string>[]) (sigma: float) =
        let config, log = problem.Config, problem.Log
        let em = Chain.settings config problem.WorkingSd

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
                    Stage.Candidates,
                    0,
                    nan,
                    Text.format
                        "No candidate gave a model (%s). The data would need more rows per parameter, or fewer experts."
                        [| box (String.Join("; ", reasons)) |]
                )
            )
        | Some(best, model) ->
            {
                Outcome = Chain.maximumLikelihood em model problem.Working problem.Context log
                Candidates = candidates
                Initializer = best.Initializer
            }
