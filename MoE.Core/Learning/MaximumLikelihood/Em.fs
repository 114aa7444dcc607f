namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra

/// <summary>What EM fits and how (docs/math.md §7).</summary>
type EmSettings =
    {
        /// Whether the noise levels are updated (false: the model's levels stay).
        EstimateSigma: bool
        /// One σ for every expert (the paper's model) or one per expert.
        CommonSigma: bool
        /// Whether the intercepts b_i and c_i are fitted (false: they stay as in the start).
        FitIntercepts: bool
        /// Whether the regressors (and their intercepts) stay fixed: EM on the gate and σ only.
        FixRegressors: bool
        /// A floor under every σ_i (0 for none).
        SigmaFloor: float
        /// The guard against degenerate likelihoods (docs/math.md §7.4): an inverse-gamma prior on each σ_i² with
        /// ν pseudo-observations of variance s₀² — (ν, s₀²) — or None. EM then maximises the posterior, and
        /// σ_i² = (SSE_i + ν s₀²)/(N_i + ν + 2) can never reach 0.
        SigmaPrior: (float * float) option
        /// SQUAREM acceleration (Varadhan and Roland 2008) with a fallback that keeps every accepted step monotone.
        Accelerate: bool
        /// The gate takes a Newton step (its per-sample Hessian costs ((k−1)p)²/2 per row) when (k−1)·p is at most
        /// this, and Böhning's fixed-bound step beyond (docs/math.md §7.2).
        GateNewtonLimit: int
        /// EM hands over to a quasi-Newton method once an accepted step gains less than this (per row, as Tolerance)
        /// and its linear rate predicts that converging would cost more than L-BFGS (docs/math.md §7.5). 0: EM runs
        /// to Tolerance.
        Handover: float
        /// The budget of EM maps (M-steps).
        MaxIterations: int
        /// Convergence: the log-likelihood gain of an accepted step per row (relative to |LL| when that is larger)
        /// below this.
        Tolerance: float
    }

/// Settings of EM.
[<RequireQualifiedAccess>]
module EmSettings =

    /// <summary>The paper's model: a common σ (estimated or not), no intercepts, no acceleration.</summary>
    /// <param name="estimateSigma">Whether σ is updated.</param>
    /// <param name="maxIterations">The iteration budget.</param>
    /// <param name="tolerance">The relative log-likelihood gain that counts as converged.</param>
    [<CompiledName("Paper")>]
    let paper (estimateSigma: bool) (maxIterations: int) (tolerance: float) : EmSettings =
        {
            EstimateSigma = estimateSigma
            CommonSigma = true
            FitIntercepts = false
            FixRegressors = false
            SigmaFloor = 0.0
            SigmaPrior = None
            Accelerate = false
            GateNewtonLimit = 64
            Handover = 0.0
            MaxIterations = maxIterations
            Tolerance = tolerance
        }

/// <summary>EM on the full likelihood (docs/math.md §7): the polish that takes a moment estimate to maximum-likelihood
/// accuracy, and the baseline from random starts. Each M-step increases the expected complete-data log-likelihood,
/// so the likelihood never decreases (generalised EM); accelerated steps are kept only when they do not lower it
/// either.</summary>
[<RequireQualifiedAccess>]
module Em =

    /// The design's width p: d, or d + 1 with the intercept column.
    let private width (settings: EmSettings) (d: int) =
        if settings.FitIntercepts then d + 1 else d

    /// Regressors with intercepts as p-vectors (the intercept last when fitted).
    let private expertVectors (settings: EmSettings) (model: MoeModel) =
        let d = model.Dimension

        Array.init model.Experts (fun i ->
            Array.init (width settings d) (fun t ->
                if t < d then
                    model.Regressors.[i, t]
                else
                    model.RegressorIntercepts.[i]))

    let private gateVectors (settings: EmSettings) (model: MoeModel) =
        let d = model.Dimension

        Array.init (model.Experts - 1) (fun j ->
            Array.init (width settings d) (fun t ->
                if t < d then
                    model.Gating.[j, t]
                else
                    model.GatingIntercepts.[j]))

    /// The model with the given p-vectors and noise levels (fixed intercepts kept when they are not fitted).
    let private rebuild
        (settings: EmSettings)
        (model: MoeModel)
        (experts: float[][])
        (gates: float[][])
        (sigmas: float[])
        =
        let k, d = model.Experts, model.Dimension
        let fit = settings.FitIntercepts

        MoeModel.createGeneral
            (Array2D.init k d (fun i t -> experts.[i].[t]))
            (if fit then
                 Array.init k (fun i -> experts.[i].[d])
             else
                 model.RegressorIntercepts)
            (Array2D.init (k - 1) d (fun j t -> gates.[j].[t]))
            (if fit then
                 Array.init (k - 1) (fun j -> gates.[j].[d])
             else
                 model.GatingIntercepts)
            model.Activation
            sigmas

    /// Böhning's bound of the multinomial-logit Hessian, B = A ⊗ X̃ᵀX̃ with A = ½(I − 11ᵀ/k): the step B⁻¹g
    /// = A⁻¹·G·(X̃ᵀX̃)⁻¹ with A⁻¹ = 2(I + 11ᵀ) always increases Q (docs/math.md §7.2).
    type private Bohning(design: float[], p: int) =
        let chol =
            let m = Dense.mirror p design
            let trace = Seq.sum (seq { for i in 0 .. p - 1 -> m.[i, i] })

            (Matrix<float>.Build.DenseOfArray(m)
             + Matrix<float>.Build.DenseIdentity(p) * (1e-12 * trace / float p + 1e-300))
                .Cholesky()

        /// The step for a gradient given as (k−1) rows of p.
        member _.Step(gradient: float[][]) : float[][] =
            let km1 = gradient.Length

            let solved =
                gradient
                |> Array.map (fun g -> chol.Solve(Vector<float>.Build.DenseOfArray g).ToArray())

            let total = Array.init p (fun t -> solved |> Array.sumBy (fun s -> s.[t]))
            Array.init km1 (fun j -> Array.init p (fun t -> 2.0 * (solved.[j].[t] + total.[t])))

    /// The M-step from the statistics of one E-step pass (EmKernel.statistics): the experts by weighted least squares
    /// (the identity's exact solution, a Gauss–Newton step otherwise), the gate by a Newton step or Böhning's step,
    /// then σ. Careful, the Gauss–Newton and Newton steps are halved until a pass over the data shows that they do not
    /// lower their part of Q. Optimistic, the full steps are taken without that pass and σ is updated from the SSE at
    /// the current experts (a conditional maximisation of Q in σ before the one in the experts: ECM, docs/math.md
    /// §7.1); the caller then checks the likelihood and falls back to the careful step if it fell.
    let private mStep
        (settings: EmSettings)
        (bohning: Bohning option)
        (careful: bool)
        (model: MoeModel)
        (source: DataSource)
        (stats: EmStatistics)
        : MoeModel =
        let n, k, d = source.Rows, model.Experts, model.Dimension
        let p = width settings d
        let km1 = k - 1
        let g = model.Activation
        let identity = g = Identity
        let a0 = expertVectors settings model
        let w0 = gateVectors settings model
        // Experts: identity — the exact weighted least squares; otherwise a Gauss–Newton direction.
        let solutions =
            if settings.FixRegressors then
                a0
            else
                Array.init k (fun i -> Dense.solveSpd (Dense.mirror p stats.Gram.[i]) stats.Rhs.[i])

        let expertsAt (steps: float[]) =
            Array.init k (fun i ->
                if settings.FixRegressors || steps.[i] = 0.0 then
                    a0.[i]
                elif identity then
                    solutions.[i]
                else
                    Array.init p (fun t -> a0.[i].[t] + steps.[i] * solutions.[i].[t]))

        // Gate: Newton with halving, or Böhning's guaranteed step.
        let gradient = Array.init km1 (fun j -> Array.sub stats.GateGradient (j * p) p)

        let direction =
            match bohning with
            | Some b -> b.Step gradient
            | None ->
                let newton =
                    Dense.solveSpd (Dense.mirror (km1 * p) stats.GateHessian) stats.GateGradient

                Array.init km1 (fun j -> Array.sub newton (j * p) p)

        let gatesAt (step: float) =
            Array.init km1 (fun j -> Array.init p (fun t -> w0.[j].[t] + step * direction.[j].[t]))

        let steps = Array.create k (if settings.FixRegressors then 0.0 else 1.0)
        let mutable gateStep = 1.0
        // The identity's SSE after its exact step, from the sufficient statistics: Σr(y − ãᵀx̃)² = Σry² − 2ãᵀRhs + ãᵀGã
        // (its cancellation costs a few of 16 digits when the fit is tight; used only when no pass checks the step).
        let closedFormSse (i: int) (ai: float[]) =
            let gram = Dense.mirror p stats.Gram.[i]

            let q =
                Array.init p (fun t -> Seq.sum (seq { for u in 0 .. p - 1 -> gram.[t, u] * ai.[u] }))

            max 0.0 (stats.SumY2.[i] - 2.0 * Dense.dot ai stats.Rhs.[i] + Dense.dot ai q)

        let needsPass =
            careful && (not identity && not settings.FixRegressors || bohning.IsNone)

        let mutable sse = stats.Sse
        let mutable accepted = not needsPass

        while not accepted do
            let experts = expertsAt steps
            let gates = gatesAt gateStep
            let candidate = rebuild settings model experts gates model.Sigmas

            let sseTrial, q = EmKernel.mStepObjectivesOf model candidate source

            accepted <- true
            // Accept no increase beyond rounding (1e-12 relative: far above a reordered sum, far below a real step).
            if not identity && not settings.FixRegressors then
                for i in 0 .. k - 1 do
                    if steps.[i] > 0.0 && sseTrial.[i] > stats.Sse.[i] * (1.0 + 1e-12) then
                        accepted <- false
                        steps.[i] <- (if steps.[i] * 0.5 > 1e-6 then steps.[i] * 0.5 else 0.0)

            if
                bohning.IsNone
                && gateStep > 0.0
                && q < stats.GateObjective - 1e-12 * abs stats.GateObjective
            then
                accepted <- false
                gateStep <- (if gateStep * 0.5 > 1e-6 then gateStep * 0.5 else 0.0)

            if accepted then
                sse <- sseTrial

        let experts = expertsAt steps

        // The identity's SSE at its new experts is known without a pass; otherwise an optimistic step keeps the SSE at the
        // current experts (σ first, then the experts).
        if identity && not settings.FixRegressors && not needsPass then
            sse <- Array.init k (fun i -> closedFormSse i experts.[i])

        // σ² maximises the expected complete-data log-likelihood (plus the log-prior, when there is one).
        let level (sse: float) (count: float) =
            let variance =
                match settings.SigmaPrior with
                | Some(nu, s0) -> (sse + nu * s0) / (count + nu + 2.0)
                | None -> sse / count

            max (max (sqrt variance) 1e-12) settings.SigmaFloor

        let sigmas =
            if not settings.EstimateSigma then
                model.Sigmas
            elif settings.CommonSigma then
                Array.create k (level (Array.sum sse) (float n))
            else
                Array.init k (fun i ->
                    let w = stats.Weight.[i]
                    // An expert with no weight keeps its level (its σ is not identified), unless a prior defines one.
                    if w > 1e-9 * float n || settings.SigmaPrior.IsSome then
                        level sse.[i] w
                    else
                        model.Sigmas.[i])

        rebuild settings model experts (gatesAt gateStep) sigmas

    /// Parameters as one vector for extrapolation: experts, gates, log σ_i.
    let private pack (settings: EmSettings) (model: MoeModel) =
        Array.concat
            [
                Array.concat (expertVectors settings model)
                Array.concat (gateVectors settings model)
                model.Sigmas |> Array.map Math.Log
            ]

    let private unpack (settings: EmSettings) (template: MoeModel) (v: float[]) =
        let k, d = template.Experts, template.Dimension
        let p = width settings d
        let experts = Array.init k (fun i -> Array.sub v (i * p) p)
        let gates = Array.init (k - 1) (fun j -> Array.sub v (k * p + j * p) p)

        let sigmas =
            Array.init k (fun i -> max (Math.Exp v.[k * p + (k - 1) * p + i]) (max settings.SigmaFloor 1e-12))

        rebuild settings template experts gates sigmas

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
        MoeModel.checkLikelihoodInputs model x y
        let p = width settings model.Dimension
        let newton = (model.Experts - 1) * p <= settings.GateNewtonLimit

        let bohning =
            if newton then
                None
            else
                Some(Bohning(EmKernel.design settings.FitIntercepts x, p))

        let source = DataSource.ofDataset { X = x; Y = y }
        let stats = EmKernel.statisticsOf model settings.FitIntercepts newton source
        mStep settings bohning true model source stats

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

        let n = float source.Rows
        let p = width settings start.Dimension
        let newton = (start.Experts - 1) * p <= settings.GateNewtonLimit

        let bohning =
            if newton then
                None
            else
                Some(Bohning(EmKernel.designOf settings.FitIntercepts source, p))

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


        // The objective EM increases: the log-likelihood, plus the log-prior of the σ_i when there is one
        // (Σ_i −(ν/2 + 1)·log σ_i² − ν s₀²/(2σ_i²), per shared σ once).
        let objective (m: MoeModel) (s: EmStatistics) =
            match settings.SigmaPrior with
            | None -> s.LogLikelihood
            | Some(nu, s0) ->
                let levels =
                    if settings.CommonSigma then
                        [| m.Sigmas.[0] |]
                    else
                        m.Sigmas

                s.LogLikelihood
                + Array.sumBy
                    (fun sigma -> -(nu / 2.0 + 1.0) * Math.Log(sigma * sigma) - nu * s0 / (2.0 * sigma * sigma))
                    levels

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
                let careful = mStep settings bohning true model source stats
                careful, evaluate careful

        /// One EM map F(model) and its E-step pass: the optimistic M-step, verified.
        let map (model: MoeModel) (stats: EmStatistics) =
            maps <- maps + 1
            verified model stats (mStep settings bohning false model source stats)

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
        let evaluationsPerMap = 1.0 + float p / 12.0

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
                let m2 = mStep settings bohning false m1 source s1
                let t0, t1, t2 = pack settings model, pack settings m1, pack settings m2
                let r = Array.map2 (-) t1 t0
                let v = Array.init t0.Length (fun i -> t2.[i] - 2.0 * t1.[i] + t0.[i])
                let rn, vn = sqrt (Dense.dot r r), sqrt (Dense.dot v v)
                let alpha = if vn > 0.0 then min -1.0 (-rn / vn) else -1.0

                let extrapolated =
                    let theta =
                        Array.init t0.Length (fun i -> t0.[i] - 2.0 * alpha * r.[i] + alpha * alpha * v.[i])

                    if Array.forall Double.IsFinite theta then
                        try
                            Some(unpack settings model theta)
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
        MoeModel.checkLikelihoodInputs start x y
        runOn settings start (DataSource.ofDataset { X = x; Y = y }) context

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
