namespace MoE.Core

/// <summary>
/// The default estimator (<c>FitMethod.Auto</c>; docs/learners.md): every initializer that applies — the spectral
/// method, L4, whitened L4, random frames of the moment subspace, random starts — screened by a short EM and scored
/// on held-out rows, the best taken to the maximum of the likelihood.
/// </summary>
module internal AutoMethod =

    open System

    /// Random starts when fewer than two moment initializers work.
    [<Literal>]
    let private RandomStartsAlone = 10

    /// The proposals: the moment initializers (or why each failed), subspace starts, segment starts (small data
    /// with intercepts and Gaussian experts: every start then runs on every row) and random starts.
    let private proposals
        (config: FitConfig)
        (moments: Result<SubspaceMoments, string>)
        (sigma: float)
        (problem: Problem)
        (context: RunContext)
        =
        let design = problem.Design
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

        let moments =
            if not (ExpertFamily.hasMomentInitializers config.Family) then
                Error(
                    Text.format
                        "the moment initializers are derived for Gaussian experts, not %s"
                        [| box config.Family.Name |]
                )
            elif not design.IsShared then
                Error "the moment initializers need the experts and the gate to read the same columns"
            else
                moments

        let moment =
            match moments with
            | Error _ when GlmTransform.applies config.Family ->
                // The GLM families' own spectral start (docs/math.md §12.6); L4 is derived for Gaussian experts.
                let spectral =
                    try
                        Sampling.subsampleOf Sigma.ProvisionalRows config.Seed problem.Working
                        |> GlmSpectral.propose config.Family design config.Activation config.Intercepts k config.Seed
                        |> Result.map (fun m ->
                            {
                                Initializer = "spectral"
                                Start = Start.Model m
                            })
                    with :? ArgumentException as e ->
                        Error e.Message

                let gaussianOnly name =
                    Error(
                        name,
                        Text.format
                            "the fourth-order moments are derived for Gaussian experts, not %s"
                            [| box config.Family.Name |]
                    )

                [| named "spectral" spectral; gaussianOnly "l4"; gaussianOnly "l4-whitened" |]
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

        let segments =
            if
                FitConfig.everyStartOnAllRows config problem.Working.Dimension problem.Working.Rows
                && config.Intercepts
                && (config.Family = ExpertFamily.Gaussian || config.Family = ExpertFamily.StudentT)
            then
                let data = problem.Sample()

                Array.append
                    (Initializers.segmentStarts
                        k
                        design
                        config.Activation
                        sigma
                        config.Intercepts
                        config.CommonSigma
                        config.SegmentStarts
                        config.Seed
                        data.X
                        data.Y)
                    (Initializers.sampleStarts
                        k
                        design
                        config.Activation
                        sigma
                        config.Intercepts
                        config.CommonSigma
                        config.SegmentStarts
                        config.Seed
                        data.X
                        data.Y)
                |> Array.map (Initializers.inFamily config.Family config.DegreesOfFreedom >> Ok)
            else
                [||]

        Array.append
            (Array.append moment segments)
            (Initializers.randomStarts
                config.Family
                problem.WorkingMean
                k
                design
                config.Activation
                sigma
                config.Intercepts
                random
                config.Seed
             |> Array.map (Initializers.inFamily config.Family config.DegreesOfFreedom >> Ok))

    /// <summary>The Auto method on a prepared problem.</summary>
    let run (problem: Problem) : MethodResult =
        let config, log, sigma0 = problem.Config, problem.Log, problem.Sigma0

        let moments =
            log.Direct(
                Stage.Moments,
                fun () ->
                    // Families without the Gaussian moments skip the pass (the GLM spectral start reads its own).
                    if ExpertFamily.hasMomentInitializers config.Family then
                        Candidates.moments config sigma0 problem.Working
                    else
                        Error "not derived for the family"
            )

        let proposed =
            log.Direct(Stage.Initializers, fun () -> proposals config moments sigma0 problem problem.Context)

        Candidates.screenAndPolish problem proposed sigma0
