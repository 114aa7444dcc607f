namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra

/// <summary>One M-step of EM (docs/math.md §7.1–7.2) from the statistics of an E-step pass: the experts by their
/// family's solution (Gaussian: weighted least squares, a Gauss–Newton step for a non-linear g), the gate by a Newton
/// step or Böhning's bound, then the family's levels; the parameters as one vector for SQUAREM's extrapolation; and the
/// objective EM increases.</summary>
module internal EmStep =

    /// The design's width p: d, or d + 1 with the intercept column.
    let width (settings: EmSettings) (d: int) =
        if settings.FitIntercepts then d + 1 else d

    /// Regressors with intercepts as p-vectors (the intercept last when fitted).
    let expertVectors (settings: EmSettings) (model: MoeModel) =
        let d = model.ExpertDimension

        Array.init model.Experts (fun i ->
            Array.init (width settings d) (fun t ->
                if t < d then
                    model.Regressors.[i, t]
                else
                    model.RegressorIntercepts.[i]))

    /// The gate's rows with intercepts as vectors of the gate's width.
    let gateVectors (settings: EmSettings) (model: MoeModel) =
        let d = model.GateDimension

        Array.init (model.Experts - 1) (fun j ->
            Array.init (width settings d) (fun t ->
                if t < d then
                    model.Gating.[j, t]
                else
                    model.GatingIntercepts.[j]))

    /// The model with the given p-vectors and noise levels (fixed intercepts kept when they are not fitted; Student-t's
    /// degrees of freedom the model's).
    let rebuild (settings: EmSettings) (model: MoeModel) (experts: float[][]) (gates: float[][]) (sigmas: float[]) =
        let k, d, dG = model.Experts, model.ExpertDimension, model.GateDimension
        let fit = settings.FitIntercepts

        MoeModel.createWith
            model.Design
            model.Family
            (Array2D.init k d (fun i t -> experts.[i].[t]))
            (if fit then
                 Array.init k (fun i -> experts.[i].[d])
             else
                 model.RegressorIntercepts)
            (Array2D.init (k - 1) dG (fun j t -> gates.[j].[t]))
            (if fit then
                 Array.init (k - 1) (fun j -> gates.[j].[dG])
             else
                 model.GatingIntercepts)
            model.Activation
            sigmas
        |> MoeModel.withDegreesOfFreedom model.DegreesOfFreedom

    /// Böhning's bound of the multinomial-logit Hessian, B = A ⊗ X̃ᵀX̃ with A = ½(I − 11ᵀ/k): the step B⁻¹g
    /// = A⁻¹·G·(X̃ᵀX̃)⁻¹ with A⁻¹ = 2(I + 11ᵀ) always increases Q (docs/math.md §7.2).
    type Bohning(design: float[], p: int) =
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
    let mStep
        (settings: EmSettings)
        (bohning: Bohning option)
        (careful: bool)
        (model: MoeModel)
        (source: DataSource)
        (stats: EmStatistics)
        : MoeModel =
        let n, k = source.Weight, model.Experts
        let p, pG = width settings model.ExpertDimension, width settings model.GateDimension
        let km1 = k - 1
        let g = model.Activation
        let family = model.Family
        let identity = ExpertFamily.exactMStep family g
        let a0 = expertVectors settings model
        let w0 = gateVectors settings model
        // Experts: the family's solution (Gaussian: the identity's exact weighted least squares, otherwise a
        // Gauss–Newton direction).
        // With the separation guard's N(0, 1/λ) prior (a direction's step only, never the identity's exact solution),
        // the penalised Newton step: (G + λI)Δ = Rhs − λa, and the expert's loss gains λ‖a‖²/2.
        let prior = if identity then None else settings.CoefficientPrior

        let penalty (a: float[]) =
            match prior with
            | Some lambda -> 0.5 * lambda * Dense.dot a a
            | None -> 0.0

        let solutions =
            if settings.FixRegressors then
                a0
            else
                Array.init k (fun i ->
                    match prior with
                    | None -> FamilyKernels.expertSolution family p stats.Gram.[i] stats.Rhs.[i]
                    | Some lambda ->
                        let gram = Array.copy stats.Gram.[i]

                        for t in 0 .. p - 1 do
                            gram.[t * p + t] <- gram.[t * p + t] + lambda

                        let rhs = Array.init p (fun t -> stats.Rhs.[i].[t] - lambda * a0.[i].[t])
                        FamilyKernels.expertSolution family p gram rhs)

        let expertsAt (steps: float[]) =
            Array.init k (fun i ->
                if settings.FixRegressors || steps.[i] = 0.0 then
                    a0.[i]
                elif identity then
                    solutions.[i]
                else
                    Array.init p (fun t -> a0.[i].[t] + steps.[i] * solutions.[i].[t]))

        // Gate: Newton with halving, or Böhning's guaranteed step. With the separation guard's prior the gate's part of
        // Q loses λ‖w̃‖²/2: its gradient −λw̃, its Hessian +λI (Böhning's bound is then only a direction, halved as
        // Newton's is).
        let gatePenalty (gates: float[][]) =
            match prior with
            | Some lambda -> 0.5 * lambda * (gates |> Array.sumBy (fun w -> Dense.dot w w))
            | None -> 0.0

        let gradient =
            Array.init km1 (fun j ->
                Array.init pG (fun t ->
                    stats.GateGradient.[j * pG + t]
                    - (match prior with
                       | Some lambda -> lambda * w0.[j].[t]
                       | None -> 0.0)))

        let direction =
            match bohning with
            | Some b -> b.Step gradient
            | None ->
                let hessian = Dense.mirror (km1 * pG) stats.GateHessian

                match prior with
                | Some lambda ->
                    for t in 0 .. km1 * pG - 1 do
                        hessian.[t, t] <- hessian.[t, t] + lambda
                | None -> ()

                let newton = Dense.solveSpd hessian (Array.concat gradient)
                Array.init km1 (fun j -> Array.sub newton (j * pG) pG)

        let gatesAt (step: float) =
            Array.init km1 (fun j -> Array.init pG (fun t -> w0.[j].[t] + step * direction.[j].[t]))

        let steps = Array.create k (if settings.FixRegressors then 0.0 else 1.0)
        let mutable gateStep = 1.0
        // Each expert's expected loss at the statistics' model (Gaussian: its weighted SSE).
        let current =
            Array.init k (fun i -> FamilyKernels.expectedLoss family stats.Sums.[i] + penalty a0.[i])

        let needsPass =
            careful
            && (not identity && not settings.FixRegressors || bohning.IsNone || prior.IsSome)

        let mutable sse = current
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
                    if
                        steps.[i] > 0.0
                        && sseTrial.[i] + penalty experts.[i] > current.[i] * (1.0 + 1e-12)
                    then
                        accepted <- false
                        steps.[i] <- (if steps.[i] * 0.5 > 1e-6 then steps.[i] * 0.5 else 0.0)

            let gateNow = stats.GateObjective - gatePenalty w0

            if
                (bohning.IsNone || prior.IsSome)
                && gateStep > 0.0
                && q - gatePenalty gates < gateNow - 1e-12 * abs gateNow
            then
                accepted <- false
                gateStep <- (if gateStep * 0.5 > 1e-6 then gateStep * 0.5 else 0.0)

            if accepted then
                sse <- sseTrial

        let experts = expertsAt steps

        // The identity's SSE at its new experts is known without a pass; otherwise an optimistic step keeps the SSE at the
        // current experts (σ first, then the experts).
        if identity && not settings.FixRegressors && not needsPass then
            sse <-
                Array.init k (fun i ->
                    FamilyKernels.closedFormLoss family p stats.Gram.[i] stats.Rhs.[i] stats.Sums.[i] experts.[i])

        // The levels maximise the expected complete-data log-likelihood (plus the log-prior, when there is one).
        let sigmas =
            if not settings.EstimateSigma then
                model.Sigmas
            else
                FamilyKernels.levels
                    family
                    settings.SigmaPrior
                    settings.SigmaFloor
                    settings.CommonSigma
                    sse
                    stats.Weight
                    n
                    model.Sigmas

        // Student-t's degrees of freedom: the ECM step from the E-step's sums, at the levels that E-step used.
        let dof =
            if settings.EstimateDegreesOfFreedom then
                FamilyKernels.degreesOfFreedom family stats.Sums stats.Weight n model.Sigmas model.DegreesOfFreedom
            else
                model.DegreesOfFreedom

        rebuild settings model experts (gatesAt gateStep) sigmas
        |> MoeModel.withDegreesOfFreedom dof

    /// Parameters as one vector for extrapolation: experts, gates, log σ_i.
    let pack (settings: EmSettings) (model: MoeModel) =
        Array.concat
            [
                Array.concat (expertVectors settings model)
                Array.concat (gateVectors settings model)
                model.Sigmas |> Array.map Math.Log
            ]

    let unpack (settings: EmSettings) (template: MoeModel) (v: float[]) =
        let k = template.Experts

        let p, pG =
            width settings template.ExpertDimension, width settings template.GateDimension

        let experts = Array.init k (fun i -> Array.sub v (i * p) p)
        let gates = Array.init (k - 1) (fun j -> Array.sub v (k * p + j * pG) pG)

        let sigmas =
            Array.init k (fun i -> max (Math.Exp v.[k * p + (k - 1) * pG + i]) (max settings.SigmaFloor 1e-12))

        rebuild settings template experts gates sigmas

    /// The objective EM increases: the log-likelihood, plus the family's log-prior on its levels when there is one
    /// (docs/math.md §7.4), and the separation guard's log-prior on the experts' and the gate's coefficients (§12.3).
    let objective (settings: EmSettings) (m: MoeModel) (s: EmStatistics) =
        let levels =
            match settings.SigmaPrior with
            | None -> s.LogLikelihood
            | Some prior ->
                s.LogLikelihood
                + FamilyKernels.logPrior m.Family prior settings.CommonSigma m.Sigmas

        match settings.CoefficientPrior with
        | Some lambda when not (ExpertFamily.exactMStep m.Family m.Activation) ->
            levels
            - 0.5
              * lambda
              * (Array.append (expertVectors settings m) (gateVectors settings m)
                 |> Array.sumBy (fun a -> Dense.dot a a))
        | _ -> levels
