namespace MoE.Core

/// <summary>
/// Maximum likelihood from a start, as every method ends (docs/learners.md, docs/math.md §7.4–7.5): EM, handing over to
/// L-BFGS on the likelihood when its rate becomes slow, then EM again to confirm; with the σ prior of the general
/// model, the guarded optimum first and the likelihood's own maximum in its basin after, unless that maximum is
/// degenerate.
/// </summary>
module internal Chain =

    /// How EM runs for a configuration, with the working data's response sd (the prior's scale is its variance).
    let settings (config: FitConfig) (ySd: float) : EmSettings =
        let paperModel = not config.Intercepts && config.CommonSigma
        // A family without levels (the GLM experts) has no σ to estimate and no σ prior.
        let levels = ExpertFamily.hasLevels config.Family

        {
            EstimateSigma = config.Sigma.IsNone && levels
            CommonSigma = config.CommonSigma
            EstimateDegreesOfFreedom = config.Family = ExpertFamily.StudentT && config.DegreesOfFreedom.IsNone
            FitIntercepts = config.Intercepts
            FixRegressors = false
            SigmaFloor = 0.0
            // The guard of docs/math.md §7.4 for the general model: one pseudo-observation of variance var(y)/k² per σ_i
            // (Fraley and Raftery's default scale); the paper's model keeps plain maximum likelihood.
            SigmaPrior =
                (if paperModel || not levels then
                     None
                 else
                     Some(1.0, (ySd ** 2.0) / float (config.Experts * config.Experts)))
            // Used only where the plain maximum separates (maximumLikelihood).
            CoefficientPrior = None
            Accelerate = true
            GateNewtonLimit = 64
            Handover = config.EmHandover
            MaxIterations = config.EmIterations
            Tolerance = config.EmTolerance
        }

    /// The chain: EM, then — when EM hands over, its rate having become slow — L-BFGS on the likelihood over every
    /// parameter (docs/math.md §7.5), which converges superlinearly from EM's basin, then EM again to confirm: one or
    /// two maps when L-BFGS reached the optimum, more where it stalled on the kinks of a non-smooth g (measured on ReLU
    /// at n = 3000: L-BFGS stopped 1e-5 of |LL| short). With a σ prior in the settings it climbs the posterior.
    let private guarded (settings: EmSettings) (start: MoeModel) (source: DataSource) context (log: StageLog) =
        let em = log.Run(Stage.Em, (fun () -> Em.runOn settings start source context))

        if em.Reason = StopReason.HandedOver then
            let remaining = max 1 (settings.MaxIterations - em.Iterations)

            let quasiNewton =
                log.Run(
                    Stage.Likelihood,
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

            log.Run(
                Stage.Em,
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
        else
            em

    /// Maximum likelihood from a start (docs/math.md §7.4). With a level per expert the likelihood is unbounded, so
    /// the chain first climbs the likelihood itself and judges the maximum it reaches by the rule of §7.4
    /// (Degeneracy: an expert on fewer rows than its parameters plus one, or with σ_i below the responses' rounding
    /// noise). A maximum the rule passes is the answer, whatever its levels — a quiet regime's narrow expert is kept.
    /// Only where the rule fires, or the climb collapses a level until the likelihood is not finite, is the σ prior
    /// used: the guarded chain runs from the same start and its posterior mode is the answer, with a warning that
    /// names the expert. The rejected climb is recorded as one Unguarded stage.
    let maximumLikelihood (settings: EmSettings) (start: MoeModel) (source: DataSource) context (log: StageLog) =
        // The climb a guard rejected, as one Unguarded stage.
        let rejectClimb (climb: StageLog) =
            let rejected = climb.Results

            log.Run(
                Stage.Unguarded,
                fun () ->
                    {
                        Value = ()
                        Iterations = rejected |> Array.sumBy (fun r -> r.Iterations)
                        FinalLoss = rejected |> Array.tryLast |> Option.bind (fun r -> r.FinalLoss)
                        Reason = StopReason.Completed
                    }
            )
            |> ignore

        match settings.SigmaPrior with
        | None when not (ExpertFamily.hasLevels start.Family) ->
            // GLM experts (docs/math.md §12.3): the plain maximum, unless an expert separates its rows; then the
            // posterior mode under the coefficients' prior, from the same start, with a warning naming the experts.
            let climb = StageLog()
            let mle = guarded settings start source context climb

            match Degeneracy.separated mle.Value settings.FitIntercepts source with
            | [||], false ->
                log.Append climb
                mle
            | experts, gate ->
                rejectClimb climb

                let guardedModel =
                    guarded
                        { settings with
                            CoefficientPrior = Some Degeneracy.SeparationPrecision
                        }
                        start
                        source
                        context
                        log

                log.Warn(FindingCode.LikelihoodDegenerate, Degeneracy.describeSeparation start.Family experts gate)

                guardedModel
        | None -> guarded settings start source context log
        | Some _ when not settings.EstimateSigma -> guarded settings start source context log
        | Some _ ->
            let climb = StageLog()

            let plain =
                try
                    let mle = guarded { settings with SigmaPrior = None } start source context climb

                    // The resolution's subsample is every row up to 100k; beyond, a fixed seed keeps the rule a
                    // function of the data alone.
                    match Degeneracy.check mle.Value settings.FitIntercepts settings.CommonSigma 0L source with
                    | None -> Ok mle
                    | Some(verdict, ySd) -> Error(fun (levels: float[]) -> Degeneracy.describe verdict levels ySd)
                with :? NonFiniteException as e ->
                    Error(fun (_: float[]) -> Degeneracy.describeCollapse e.Message)

            match plain with
            | Ok mle ->
                log.Append climb
                mle
            | Error describe ->
                rejectClimb climb

                let guardedModel = guarded settings start source context log

                log.Warn(FindingCode.LikelihoodDegenerate, describe guardedModel.Value.Sigmas)

                guardedModel
