namespace MoE.Core

/// <summary>EM on the full likelihood (docs/math.md §7): the polish that takes a moment estimate to maximum-likelihood
/// accuracy, and the baseline from a random start. Each M-step increases the expected complete-data log-likelihood,
/// so the likelihood never decreases (generalised EM).</summary>
[<RequireQualifiedAccess>]
module Em =

    /// The M-step from the statistics of one E-step pass (EmKernel.statistics), with step halving per component
    /// judged by one fused pass (EmKernel.mStepObjectives) per trial.
    let private mStep
        (model: MoeModel)
        (x: float[,])
        (y: float[])
        (estimateSigma: bool)
        (posterior: float[,])
        (stats: EmStatistics)
        =
        let n, k, d = y.Length, model.Experts, model.Dimension
        let km1 = k - 1
        let g = model.Activation
        let identity = g = Identity
        // Regressors: weighted least squares (identity: the solution; otherwise a Gauss–Newton step).
        let solutions =
            Array.init k (fun i -> Dense.solveSpd (Dense.mirror d stats.Gram.[i]) stats.Rhs.[i])

        let a0 = model.Regressors

        let regressorsAt (steps: float[]) =
            Array2D.init k d (fun i t ->
                if identity then
                    (if steps.[i] > 0.0 then solutions.[i].[t] else a0.[i, t])
                else
                    a0.[i, t] + steps.[i] * solutions.[i].[t])

        // Gate: one damped Newton step of weighted multinomial logistic regression, maximising Q(W).
        let hd = km1 * d
        let newton = Dense.solveSpd (Dense.mirror hd stats.GateHessian) stats.GateGradient
        let w0 = model.Gating

        let gatingAt (step: float) =
            Array2D.init km1 d (fun j t -> w0.[j, t] + step * newton.[j * d + t])

        let steps = Array.create k 1.0
        let mutable gateStep = 1.0
        let mutable result = None

        while result.IsNone do
            let sse, q =
                EmKernel.mStepObjectives (regressorsAt steps) (gatingAt gateStep) g posterior x y

            let mutable accepted = true
            // The identity's solution is the exact minimiser; otherwise accept no increase beyond rounding (1e-12
            // relative: far above the ~1e-15 of a reordered sum, far below any real step), so a converged
            // iteration does not halve its way through twenty passes.
            for i in 0 .. k - 1 do
                if not identity && steps.[i] > 0.0 && sse.[i] > stats.Sse.[i] * (1.0 + 1e-12) then
                    accepted <- false
                    // Halve; below 1e-6 give up on this expert (step 0 keeps its regressor).
                    steps.[i] <- (if steps.[i] * 0.5 > 1e-6 then steps.[i] * 0.5 else 0.0)

            if gateStep > 0.0 && q < stats.GateObjective - 1e-12 * abs stats.GateObjective then
                accepted <- false
                gateStep <- (if gateStep * 0.5 > 1e-6 then gateStep * 0.5 else 0.0)

            if accepted then
                result <- Some sse

        let sse = result.Value

        let sigma =
            if estimateSigma then
                max (sqrt (Array.sum sse / float n)) 1e-12
            else
                model.Sigma

        MoeModel.create (regressorsAt steps) (gatingAt gateStep) g sigma

    /// <summary>One EM iteration on the full likelihood: posterior E-step; weighted least squares for identity
    /// experts (Gauss–Newton steps with step halving for the others); σ² = posterior-weighted residual mean square
    /// when estimated; one damped Newton step of weighted multinomial logistic regression for the gate. Each M-step
    /// increases the expected complete log-likelihood, so the likelihood does not decrease (GEM). Two fused passes
    /// over the data (E-step statistics, M-step check), split over all cores.</summary>
    /// <param name="model">The current model (σ &gt; 0).</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <param name="estimateSigma">Whether σ is updated.</param>
    /// <returns>The next model.</returns>
    [<CompiledName("Step")>]
    let step (model: MoeModel) (x: float[,]) (y: float[]) (estimateSigma: bool) : MoeModel =
        MoeModel.validate model
        MoeModel.checkLikelihoodInputs model x y
        let posterior = Array2D.zeroCreate y.Length model.Experts
        let stats = EmKernel.statistics model x y posterior
        mStep model x y estimateSigma posterior stats

    /// <summary>EM iterations from <paramref name="start"/> until the relative change of the log-likelihood is
    /// below <paramref name="tolerance"/> or <paramref name="maxIterations"/> is reached.</summary>
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
        MoeModel.validate start
        MoeModel.checkLikelihoodInputs start x y
        let n = float y.Length
        let posterior = Array2D.zeroCreate y.Length start.Experts
        let mutable model = start
        // The E-step pass of iteration t also gives the likelihood of the model of iteration t − 1.
        let mutable stats = EmKernel.statistics model x y posterior
        let mutable ll = stats.LogLikelihood
        let mutable reason = StopReason.MaxIterations
        let mutable iteration = 0

        while iteration < maxIterations && reason = StopReason.MaxIterations do
            context.Cancellation.ThrowIfCancellationRequested()
            let next = mStep model x y estimateSigma posterior stats
            let nextStats = EmKernel.statistics next x y posterior
            let llNext = nextStats.LogLikelihood
            Divergence.check "em" iteration llNext [||]
            iteration <- iteration + 1

            let entry =
                {
                    Stage = "em"
                    Iteration = iteration
                    Loss = -llNext / n
                }

            context.Progress entry

            if llNext < ll - 1e-9 * abs ll then
                // Rounding can only cost ~1e-12 relative; a larger drop means a broken step: keep the previous model.
                reason <- StopReason.NoProgress
            else
                let change = (llNext - ll) / max 1.0 (abs ll)
                model <- next
                ll <- llNext
                stats <- nextStats

                if change <= tolerance then
                    reason <- StopReason.Converged

        {
            Value = model
            Iterations = iteration
            FinalLoss = Some(-ll / n)
            Reason = reason
        }
