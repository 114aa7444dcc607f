namespace MoE.Core

open System

/// <summary>Direct maximisation of the (penalised) log-likelihood by L-BFGS over every parameter at once (docs/math.md
/// §7.5): the end of the polish. EM's rate is the fraction of missing information, near 1 where experts overlap
/// (σ = 0.5 took ~75 maps); a quasi-Newton method on the same objective converges superlinearly from EM's basin.</summary>
/// <remarks>
/// The variables are θ = (ã_1..ã_k, w̃_1..w̃_{k−1}, log σ) with ã_i = (a_i, b_i) and w̃_j = (w_j, c_j) when intercepts are
/// fitted, one log σ for a common level or one per expert, then — for Student-t experts whose ν is estimated — each
/// ν_i inside (1, 200) as v_i = log((ν_i − 1)/(200 − ν_i)) (docs/math.md §14.2). Working with log σ keeps every level positive without
/// bounds. The objective is −(LL(θ) + log prior(σ))/n, with the inverse-gamma prior of EmSettings.SigmaPrior, whose
/// derivative in log σ is −(ν + 2) + ν s₀²/σ² per level. Parameters the settings hold fixed (σ when EstimateSigma is
/// false, intercepts when FitIntercepts is false, regressors when FixRegressors) are not variables.
/// </remarks>
[<RequireQualifiedAccess>]
module Likelihood =

    /// Which entries of the kernel's gradient layout are variables, and how a variable vector maps to a model.
    type private Layout(settings: EmSettings, template: MoeModel) =
        let k, d, dG = template.Experts, template.ExpertDimension, template.GateDimension
        let p = if settings.FitIntercepts then d + 1 else d
        let pG = if settings.FitIntercepts then dG + 1 else dG
        let regressors = not settings.FixRegressors
        let levels = if settings.CommonSigma then 1 else k
        let nA = if regressors then k * p else 0
        let nW = (k - 1) * pG
        let nS = if settings.EstimateSigma then levels else 0
        // Student-t's ν_i inside (1, 200), as v = log((ν − 1)/(200 − ν)) (docs/math.md §14.2); at a bound ν is held.
        let shapes =
            if settings.EstimateDegreesOfFreedom && template.Family = ExpertFamily.StudentT then
                [|
                    for i in 0 .. k - 1 do
                        if StudentT.isInterior template.DegreesOfFreedom.[i] then
                            yield i
                |]
            else
                [||]

        let nV = shapes.Length
        let oV = nA + nW + nS

        /// Entry l of the ν variables' chain factor dν/dv, to the power <paramref name="power"/> (1 for a gradient, 2
        /// for a curvature).
        let chain (power: int) (l: int) =
            StudentT.variableSlope template.DegreesOfFreedom.[shapes.[l]] ** float power

        member _.Width = p
        member _.Count = nA + nW + nS + nV
        /// The variables that are coefficients (the experts' and the gate's), first in the layout.
        member _.Coefficients = nA + nW

        member _.Pack(model: MoeModel) : float[] =
            let v = Array.zeroCreate (nA + nW + nS + nV)

            if regressors then
                for i in 0 .. k - 1 do
                    for t in 0 .. d - 1 do
                        v.[i * p + t] <- model.Regressors.[i, t]

                    if p > d then
                        v.[i * p + d] <- model.RegressorIntercepts.[i]

            for j in 0 .. k - 2 do
                for t in 0 .. dG - 1 do
                    v.[nA + j * pG + t] <- model.Gating.[j, t]

                if pG > dG then
                    v.[nA + j * pG + dG] <- model.GatingIntercepts.[j]

            for l in 0 .. nS - 1 do
                v.[nA + nW + l] <- Math.Log model.Sigmas.[l]

            for l in 0 .. nV - 1 do
                v.[oV + l] <- StudentT.toVariable model.DegreesOfFreedom.[shapes.[l]]

            v

        member _.Unpack(v: float[]) : MoeModel =
            let a =
                if regressors then
                    Array2D.init k d (fun i t -> v.[i * p + t])
                else
                    template.Regressors

            let b =
                if regressors && p > d then
                    Array.init k (fun i -> v.[i * p + d])
                else
                    template.RegressorIntercepts

            let w = Array2D.init (k - 1) dG (fun j t -> v.[nA + j * pG + t])

            let c =
                if pG > dG then
                    Array.init (k - 1) (fun j -> v.[nA + j * pG + dG])
                else
                    template.GatingIntercepts

            let sigmas =
                if nS = 0 then
                    template.Sigmas
                else
                    Array.init k (fun i ->
                        // Clamped so that σ² stays a finite normal number whatever step a line search tries.
                        let s =
                            Math.Exp(Math.Clamp(v.[nA + nW + (if levels = 1 then 0 else i)], -300.0, 300.0))

                        max s (max settings.SigmaFloor 1e-12))

            let dof = Array.copy template.DegreesOfFreedom

            for l in 0 .. nV - 1 do
                dof.[shapes.[l]] <- StudentT.ofVariable v.[oV + l]

            MoeModel.createWith template.Design template.Family a b w c template.Activation sigmas
            |> MoeModel.withDegreesOfFreedom dof

        /// The kernel's full gradient [∂ã (k·p) | ∂w̃ ((k−1)·p) | ∂log σ_i (k) | ∂ν_i (k, Student-t)] restricted to
        /// the variables, by the chain rule (<paramref name="power"/> 1) or, for a curvature, its square (2).
        member _.RestrictWith (power: int) (full: float[]) : float[] =
            let g = Array.zeroCreate (nA + nW + nS + nV)

            if regressors then
                Array.blit full 0 g 0 nA

            Array.blit full (k * p) g nA nW

            if nS = 1 then
                g.[nA + nW] <- Array.sum (Array.sub full (k * p + nW) k)
            elif nS = k then
                Array.blit full (k * p + nW) g (nA + nW) k

            for l in 0 .. nV - 1 do
                g.[oV + l] <- full.[k * p + nW + k + shapes.[l]] * chain power l

            g

        /// The gradient's restriction (<c>RestrictWith 1</c>).
        member this.Restrict(full: float[]) : float[] = this.RestrictWith 1 full

    /// The family's log-prior of the levels and its derivative in each log σ variable.
    let private logPrior (settings: EmSettings) (model: MoeModel) : float * float[] =
        match settings.SigmaPrior with
        | None -> 0.0, [||]
        | Some prior ->
            FamilyKernels.logPrior model.Family prior settings.CommonSigma model.Sigmas,
            FamilyKernels.logPriorGradient model.Family prior settings.CommonSigma model.Sigmas

    /// <summary>The penalised log-likelihood LL + log prior and its gradient in the variables of the settings (the
    /// layout of <c>maximise</c>).</summary>
    /// <param name="settings">What is fitted: intercepts, σ (common or per expert), the prior.</param>
    /// <param name="model">The model.</param>
    /// <param name="source">The data, read in one pass.</param>
    /// <returns>The value and the gradient.</returns>
    let objectiveOn (settings: EmSettings) (model: MoeModel) (source: DataSource) : float * float[] =
        let layout = Layout(settings, model)

        let ll, full =
            LikelihoodKernel.valueAndGradientOf model settings.FitIntercepts source

        let gradient = layout.Restrict full
        let prior, dPrior = logPrior settings model

        if settings.EstimateSigma then
            // The levels follow the coefficients (Student-t's ν variables come after them).
            let offset = layout.Coefficients

            for l in 0 .. dPrior.Length - 1 do
                gradient.[offset + l] <- gradient.[offset + l] + dPrior.[l]

        // The separation guard's N(0, 1/λ) prior on the experts' and the gate's coefficients (every variable but the
        // levels, which a family with the guard does not have).
        let coefficients =
            match settings.CoefficientPrior with
            | Some lambda ->
                let v = layout.Pack model
                let n = layout.Coefficients

                for t in 0 .. n - 1 do
                    gradient.[t] <- gradient.[t] - lambda * v.[t]

                -0.5 * lambda * Seq.sum (seq { for t in 0 .. n - 1 -> v.[t] * v.[t] })
            | None -> 0.0

        ll + prior + coefficients, gradient

    /// <summary>The penalised log-likelihood and its gradient on data in memory (<c>objectiveOn</c>).</summary>
    /// <param name="settings">What is fitted.</param>
    /// <param name="model">The model.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    let objective (settings: EmSettings) (model: MoeModel) (x: float[,]) (y: float[]) : float * float[] =
        objectiveOn settings model (DataSource.ofDataset { X = x; Y = y; Weights = null })

    /// The kernel's full curvature diagonal restricted to the variables of the settings (squared chain factors).
    let internal restrictCurvature (settings: EmSettings) (model: MoeModel) (full: float[]) : float[] =
        Layout(settings, model).RestrictWith 2 full

    /// <summary>The variables of <c>objective</c>'s gradient, packed from a model.</summary>
    /// <param name="settings">What is fitted.</param>
    /// <param name="model">The model.</param>
    let pack (settings: EmSettings) (model: MoeModel) : float[] = Layout(settings, model).Pack model

    /// <summary>The model with the variables <paramref name="v"/> (fixed parts from <paramref name="template"/>).</summary>
    /// <param name="settings">What is fitted.</param>
    /// <param name="template">The model whose fixed parts are kept.</param>
    /// <param name="v">The variables.</param>
    let unpack (settings: EmSettings) (template: MoeModel) (v: float[]) : MoeModel = Layout(settings, template).Unpack v

    /// <summary>Maximises the penalised log-likelihood from <paramref name="start"/> by L-BFGS over a source (one pass
    /// per evaluation), returning the best point seen (never worse than the start).</summary>
    /// <param name="settings">What is fitted; MaxIterations bounds the L-BFGS iterations, and the run has converged
    /// when the objective rose by at most Tolerance (relative) over the last ten evaluations, or when the gradient of
    /// the mean objective has a norm below <paramref name="gradientTolerance"/>.</param>
    /// <param name="gradientTolerance">The norm of the gradient of the mean objective that counts as converged.</param>
    /// <param name="start">The start, normally the end of a few EM maps.</param>
    /// <param name="source">The data, read in passes.</param>
    /// <param name="context">Progress (the mean negative log-likelihood per evaluation) and cancellation.</param>
    /// <returns>The model, the evaluations, its mean negative log-likelihood and the stop reason.</returns>
    /// <exception cref="T:MoE.Core.NonFiniteException">The objective became non-finite.</exception>
    let maximiseOn
        (settings: EmSettings)
        (gradientTolerance: float)
        (start: MoeModel)
        (source: DataSource)
        (context: RunContext)
        : StageOutcome<MoeModel> =
        MoeModel.validate start
        let layout = Layout(settings, start)
        let n = source.Weight
        // Variables scaled by the square root of the complete-data information's diagonal at the start, so that every
        // block starts with unit curvature (L-BFGS's first steps assume it).
        let scale =
            let c =
                layout.RestrictWith 2 (LikelihoodKernel.curvatureOf start settings.FitIntercepts source)

            let floor = 1e-6 * Array.max c
            c |> Array.map (fun v -> sqrt (max v floor / n))

        let f (z: float[]) =
            let m = layout.Unpack(Array.map2 (/) z scale)
            let value, gradient = objectiveOn settings m source
            -value / n, Array.map2 (fun g s -> -g / (n * s)) gradient scale

        let outcome =
            Lbfgs.minimizeScaled
                Stage.Likelihood
                context
                settings.MaxIterations
                gradientTolerance
                settings.Tolerance
                f
                (Array.map2 (*) (layout.Pack start) scale)

        let outcome =
            { outcome with
                Value = Array.map2 (/) outcome.Value scale
            }

        let model = layout.Unpack outcome.Value

        {
            Value = model
            Iterations = outcome.Iterations
            FinalLoss = Some(-(LikelihoodKernel.logLikelihoodOf model source) / n)
            Reason = outcome.Reason
        }

    /// <summary>Maximises the penalised log-likelihood on data in memory (<c>maximiseOn</c>).</summary>
    /// <param name="settings">What is fitted, the budget and the tolerances.</param>
    /// <param name="gradientTolerance">The norm of the gradient of the mean objective that counts as converged.</param>
    /// <param name="start">The start.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <param name="context">Progress and cancellation.</param>
    let maximise
        (settings: EmSettings)
        (gradientTolerance: float)
        (start: MoeModel)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        : StageOutcome<MoeModel> =
        ModelRows.checkLikelihoodInputs start x y
        maximiseOn settings gradientTolerance start (DataSource.ofDataset { X = x; Y = y; Weights = null }) context
