namespace MoE.Core

open System

/// <summary>EM on the full likelihood (docs/math.md §7): the polish that takes a moment estimate to maximum-likelihood
/// accuracy, and the baseline from random starts. Each M-step increases the expected complete-data log-likelihood,
/// so the likelihood never decreases (generalised EM); accelerated steps are kept only when they do not lower it
/// either.</summary>
[<RequireQualifiedAccess>]
module Em =

    /// <summary>One EM iteration (generalised: every M-step increases the expected complete-data log-likelihood, so the
    /// likelihood does not decrease).</summary>
    /// <param name="settings">What is fitted.</param>
    /// <param name="model">The current model (every σ_i &gt; 0).</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>The next model.</returns>
    [<CompiledName("StepWith")>]
    let stepWith (settings: EmSettings) (model: MoeModel) (x: float[,]) (y: float[]) : MoeModel =
        MoeModel.validate model
        ModelRows.checkLikelihoodInputs model x y
        let p = EmStep.width settings model.GateDimension
        let newton = (model.Experts - 1) * p <= settings.GateNewtonLimit

        let bohning =
            if newton then
                None
            else
                Some(EmStep.Bohning(EmKernel.design model.Design.GateColumns settings.FitIntercepts x, p))

        let source = DataSource.ofDataset { X = x; Y = y; Weights = null }
        let stats = EmKernel.statisticsOf model settings.FitIntercepts newton source
        EmStep.mStep settings bohning true model source stats

    /// <summary>One EM iteration of the paper's model (common σ, no intercepts).</summary>
    /// <param name="model">The current model (σ &gt; 0).</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <param name="estimateSigma">Whether σ is updated.</param>
    /// <returns>The next model.</returns>
    [<CompiledName("Step")>]
    let step (model: MoeModel) (x: float[,]) (y: float[]) (estimateSigma: bool) : MoeModel =
        stepWith (EmSettings.paper estimateSigma 1 0.0) model x y

    /// <summary>EM iterations from <paramref name="start"/> over a data source until the relative change of the
    /// log-likelihood is below the tolerance or the budget is spent; with acceleration, SQUAREM cycles (two EM maps, an
    /// extrapolation, one stabilising map) whose result replaces the plain EM result only when its likelihood is not
    /// lower. Every map is a pass over the source (docs/math.md §7.6); nothing per row is kept.</summary>
    /// <param name="settings">What is fitted, the budget and the tolerance.</param>
    /// <param name="start">The start (every σ_i &gt; 0).</param>
    /// <param name="source">The data, read in passes.</param>
    /// <param name="context">Progress (mean negative log-likelihood per pass) and cancellation.</param>
    /// <returns>The model, the EM maps run, its mean negative log-likelihood and the stop reason.</returns>
    /// <exception cref="T:MoE.Core.NonFiniteException">The likelihood became non-finite.</exception>
    [<CompiledName("RunOn")>]
    let runOn
        (settings: EmSettings)
        (start: MoeModel)
        (source: DataSource)
        (context: RunContext)
        : StageOutcome<MoeModel> =
        MoeModel.validate start

        if source.Dimension <> start.Dimension then
            invalidArg
                "source"
                (Text.format
                    "The data have d = %d inputs but the model has d = %d."
                    [| box source.Dimension; box start.Dimension |])

        let n = source.Weight
        let p = EmStep.width settings start.GateDimension
        let newton = (start.Experts - 1) * p <= settings.GateNewtonLimit

        let bohning =
            if newton then
                None
            else
                Some(EmStep.Bohning(EmKernel.designOf start.Design.GateColumns settings.FitIntercepts source, p))

        let mutable maps = 0
        let mutable passes = 0

        let evaluate (model: MoeModel) =
            context.Cancellation.ThrowIfCancellationRequested()
            let stats = EmKernel.statisticsOf model settings.FitIntercepts newton source
            passes <- passes + 1

            context.Progress
                {
                    Stage = Stage.Em
                    Iteration = passes
                    Loss = -stats.LogLikelihood / n
                }

            stats


        let objective (m: MoeModel) (s: EmStatistics) = EmStep.objective settings m s

        // Whether a careful M-step differs from an optimistic one: some step is checked by a pass over the data.
        let checkable =
            (start.Activation <> Identity && not settings.FixRegressors) || bohning.IsNone

        /// A candidate of the M-step from (model, stats), with its E-step pass: kept when it does not lower the objective
        /// (beyond rounding), else replaced by the careful M-step from the same statistics.
        let verified (model: MoeModel) (stats: EmStatistics) (candidate: MoeModel) =
            let s = evaluate candidate
            let before = objective model stats

            if not checkable || objective candidate s >= before - 1e-12 * abs before then
                candidate, s
            else
                let careful = EmStep.mStep settings bohning true model source stats
                careful, evaluate careful

        /// One EM map F(model) and its E-step pass: the optimistic M-step, verified.
        let map (model: MoeModel) (stats: EmStatistics) =
            maps <- maps + 1
            verified model stats (EmStep.mStep settings bohning false model source stats)

        let mutable model = start
        // The E-step pass at the current model gives its likelihood and the next M-step.
        let mutable stats = evaluate model
        let mutable ll = objective model stats
        Divergence.check Stage.Em 0 ll [||]
        let mutable reason = StopReason.MaxIterations

        // Gains are measured per row (relative to |LL| when that is larger): a mean log-likelihood near 0 — which its
        // units decide, not the fit — must not make the test stricter.
        let relative (previous: float) (next: float) =
            (next - previous) / max n (abs previous)

        // SQUAREM is switched off after two extrapolations in a row fail: each costs a pass, and where the EM map is not
        // smooth (ReLU's kinks, halved steps) they fail every time (measured: d = 50, k = 6, ReLU).
        let mutable accelerate = settings.Accelerate
        let mutable rejected = 0

        let converged (previous: float) (next: float) =
            relative previous next <= settings.Tolerance

        let mutable lastGain = infinity
        let mutable lastMaps = 0
        // EM's cost to converge against L-BFGS's (docs/math.md §7.5). At a linear rate ρ = gain/previous gain, EM needs
        // about log(tolerance/gain)/log ρ more steps. A map costs two passes, one with the p×p sums, about
        // 1 + p/12 likelihood-and-gradient evaluations (measured 2× at p = 11, 4.6× at p = 51), and L-BFGS took
        // 40–80 evaluations from EM's basin in every measured case: EM hands over when its remaining maps would
        // cost more than 50 evaluations. Above the handover gain EM keeps going: its first steps are the robust ones.
        let evaluationsPerMap =
            1.0 + float (EmStep.width settings start.ExpertDimension) / 12.0

        let slow (previous: float) (next: float) =
            let gain = relative previous next
            let rate = gain / lastGain
            let mapsPerStep = float (maps - lastMaps)

            let isSlow =
                settings.Handover > 0.0
                && gain < settings.Handover
                && gain > settings.Tolerance
                && rate > 0.0
                && (rate >= 1.0
                    || Math.Log(settings.Tolerance / gain) / Math.Log rate
                       * mapsPerStep
                       * evaluationsPerMap
                        >
                        50.0)

            lastGain <- gain
            lastMaps <- maps
            isSlow

        while maps < settings.MaxIterations && reason = StopReason.MaxIterations do
            let m1, s1 = map model stats
            let ll1 = objective m1 s1
            Divergence.check Stage.Em maps ll1 [||]

            if ll1 < ll - 1e-9 * abs ll then
                // Rounding can only cost ~1e-12 relative; a larger drop means a broken step: keep the model.
                reason <- StopReason.NoProgress
            elif converged ll ll1 || not accelerate || maps >= settings.MaxIterations then
                let previous = ll
                model <- m1
                stats <- s1
                ll <- ll1

                if converged previous ll1 then
                    reason <- StopReason.Converged
                elif slow previous ll1 then
                    reason <- StopReason.HandedOver
            else
                // SQUAREM (SqS3): r = θ1 − θ0, v = θ2 − 2θ1 + θ0, α = −‖r‖/‖v‖ ≤ −1, θ' = θ0 − 2αr + α²v.
                // θ2 = F(θ1) unverified: its pass is spent only when the extrapolation is rejected.
                maps <- maps + 1
                let m2 = EmStep.mStep settings bohning false m1 source s1

                let t0, t1, t2 =
                    EmStep.pack settings model, EmStep.pack settings m1, EmStep.pack settings m2

                let r = Array.map2 (-) t1 t0
                let v = Array.init t0.Length (fun i -> t2.[i] - 2.0 * t1.[i] + t0.[i])
                let rn, vn = sqrt (Dense.dot r r), sqrt (Dense.dot v v)
                let alpha = if vn > 0.0 then min -1.0 (-rn / vn) else -1.0

                let extrapolated =
                    let theta =
                        Array.init t0.Length (fun i -> t0.[i] - 2.0 * alpha * r.[i] + alpha * alpha * v.[i])

                    if Array.forall Double.IsFinite theta then
                        try
                            Some(EmStep.unpack settings model theta)
                        with :? ArgumentException ->
                            None
                    else
                        None

                // The extrapolated point counts only when its likelihood is not below the plain EM step's (θ1's);
                // otherwise θ2 = F(F(θ0)), whose likelihood is not below θ1's either.
                let candidate =
                    match extrapolated with
                    | Some m when alpha < -1.0 ->
                        let s = evaluate m
                        let llm = objective m s

                        if Double.IsFinite llm && llm >= ll1 - 1e-12 * abs ll1 then
                            rejected <- 0
                            Some(m, s)
                        else
                            rejected <- rejected + 1
                            accelerate <- rejected < 2
                            None
                    | _ -> None

                let next, nextStats =
                    match candidate with
                    | Some c -> c
                    | None -> verified m1 s1 m2

                let llNext = objective next nextStats
                Divergence.check Stage.Em maps llNext [||]
                let previous = ll
                model <- next
                stats <- nextStats
                ll <- llNext

                if converged previous llNext then
                    reason <- StopReason.Converged
                elif slow previous llNext then
                    reason <- StopReason.HandedOver

        {
            Value = model
            Iterations = maps
            FinalLoss = Some(-stats.LogLikelihood / n)
            Reason = reason
        }

    /// <summary>EM iterations from <paramref name="start"/> on data in memory (<c>runOn</c>).</summary>
    /// <param name="settings">What is fitted, the budget and the tolerance.</param>
    /// <param name="start">The start (every σ_i &gt; 0).</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <param name="context">Progress (mean negative log-likelihood per pass) and cancellation.</param>
    /// <returns>The model, the EM maps run, its mean negative log-likelihood and the stop reason.</returns>
    /// <exception cref="T:MoE.Core.NonFiniteException">The likelihood became non-finite.</exception>
    [<CompiledName("RunWith")>]
    let runWith
        (settings: EmSettings)
        (start: MoeModel)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        : StageOutcome<MoeModel> =
        MoeModel.validate start
        ModelRows.checkLikelihoodInputs start x y
        runOn settings start (DataSource.ofDataset { X = x; Y = y; Weights = null }) context

    /// <summary>EM on the paper's model (common σ, no intercepts, no acceleration) until the relative change of the
    /// log-likelihood is below <paramref name="tolerance"/> or <paramref name="maxIterations"/> is reached.</summary>
    /// <param name="start">The start (σ &gt; 0).</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <param name="estimateSigma">Whether σ is updated.</param>
    /// <param name="maxIterations">The iteration budget.</param>
    /// <param name="tolerance">Convergence: the relative log-likelihood gain below this.</param>
    /// <param name="context">Progress (mean negative log-likelihood per iteration) and cancellation.</param>
    /// <returns>The model, the iterations run, its mean negative log-likelihood and the stop reason.</returns>
    /// <exception cref="T:MoE.Core.NonFiniteException">The likelihood became non-finite.</exception>
    [<CompiledName("Run")>]
    let run
        (start: MoeModel)
        (x: float[,])
        (y: float[])
        (estimateSigma: bool)
        (maxIterations: int)
        (tolerance: float)
        (context: RunContext)
        : StageOutcome<MoeModel> =
        runWith (EmSettings.paper estimateSigma maxIterations tolerance) start x y context
