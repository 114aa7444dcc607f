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

            let confirmation () =
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
    let maximumLikelihood (settings: EmSettings) (start: MoeModel) (source: DataSource) context (log: StageLog) =
        match settings.SigmaPrior with
        | None -> guarded settings start source context log
        | Some _ when not settings.EstimateSigma -> guarded settings start source context log
        | Some _ ->
            // The unguarded EM confirms L-BFGS's optimum as the guarded EM would; the guarded confirmation runs only
            // when the guarded model is the answer.
            let map, confirmation = guardedChain settings start source context log false

            let mle =
                log.Run(
                    Stage.Unguarded,
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
                        Code = FindingCode.LikelihoodDegenerate
                        Message =
                            Text.format
                                "without the guard on the noise levels an expert's sigma falls to %.2g of its guarded value: the likelihood is degenerate here (an expert on a few points or on repeated y values), and the model is the guarded one; fewer experts may fit better."
                                [| box ratio |]
                    }

                confirmation ()
            else
                mle
