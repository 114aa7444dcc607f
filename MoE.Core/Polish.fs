namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra

/// <summary>Gating fits with the regressors fixed, sign and scale resolution, and the EM polish on the full
/// likelihood. Derivations: docs/learners.md.</summary>
[<RequireQualifiedAccess>]
module Polish =

    /// A seeded random subset of at most `count` rows (partial Fisher–Yates), or the data itself.
    let internal subsample (count: int) (seed: int64) (x: float[,]) (y: float[]) =
        let n, d = x.GetLength 0, x.GetLength 1

        if n <= count then
            x, y
        else
            let rng = Rng.stream seed 7L
            let index = Array.init n id

            for i in 0 .. count - 1 do
                let j = i + rng.NextInt(n - i)
                let t = index.[i]
                index.[i] <- index.[j]
                index.[j] <- t

            Array2D.init count d (fun i t -> x.[index.[i], t]), Array.init count (fun i -> y.[index.[i]])

    /// s[r, i] = <a_i, x_r> for every sample and expert, in one pass.
    let internal projections (a: float[,]) (x: float[,]) : float[,] =
        let n, k, d = x.GetLength 0, a.GetLength 0, a.GetLength 1
        let s = Array2D.zeroCreate n k

        for r in 0 .. n - 1 do
            for i in 0 .. k - 1 do
                let mutable acc = 0.0

                for t in 0 .. d - 1 do
                    acc <- acc + a.[i, t] * x.[r, t]

                s.[r, i] <- acc

        s

    let private flatten (w: float[,]) =
        Array.init w.Length (fun idx -> w.[idx / w.GetLength 1, idx % w.GetLength 1])

    let private unflatten rows cols (v: float[]) =
        Array2D.init rows cols (fun i j -> v.[i * cols + j])

    /// <summary>W minimising the empirical L_log with A, g and σ of <paramref name="model"/> fixed, by L-BFGS from
    /// the model's W. Unconstrained (the ball of radius R in the theory is inactive in practice); see
    /// <c>fitGatingProjected</c> for the constrained projected-gradient form.</summary>
    [<CompiledName("FitGating")>]
    let fitGating
        (model: MoeModel)
        (x: float[,])
        (y: float[])
        (maxIterations: int)
        (context: RunContext)
        (report: bool)
        : MoeModel =
        MoeModel.validate model
        MoeModel.checkLikelihoodInputs model x y
        let km1, d = model.Experts - 1, model.Dimension
        // A, g and σ are fixed: the experts' log-densities are computed once, and each evaluation is a gate pass.
        let densities = Kernels.expertDensities model x y

        let f (v: float[]) =
            let value, gradient = Kernels.gatingLoss densities x (unflatten km1 d v)
            value, flatten gradient

        let w, _, _, _ =
            Optim.lbfgs "gating" context report maxIterations 1e-9 f (flatten model.Gating)

        { model with
            Gating = unflatten km1 d w
        }

    /// <summary>Projected gradient descent on L_log (paper §3.2): W ← Π_Ω(W − η∇L_log), each row of W kept in the
    /// ball of radius R. With <paramref name="splitting"/>, iteration t uses the t-th of T disjoint batches of n/T
    /// samples (Theorem 4's sample-splitting variant).</summary>
    [<CompiledName("FitGatingProjected")>]
    let fitGatingProjected
        (model: MoeModel)
        (x: float[,])
        (y: float[])
        (radius: float)
        (learningRate: float)
        (iterations: int)
        (splitting: bool)
        (context: RunContext)
        : MoeModel =
        Guard.positive "radius" radius
        Guard.positive "learningRate" learningRate
        Guard.positiveInt "iterations" iterations
        let n, d = x.GetLength 0, x.GetLength 1
        let batch = if splitting then max 1 (n / iterations) else n
        let mutable w = Array2D.copy model.Gating

        for t in 0 .. iterations - 1 do
            context.Cancellation.ThrowIfCancellationRequested()

            let xb, yb =
                if splitting then
                    let start = (t * batch) % (n - batch + 1)
                    Array2D.init batch d (fun i j -> x.[start + i, j]), Array.init batch (fun i -> y.[start + i])
                else
                    x, y

            let e = Losses.logLikelihoodLoss { model with Gating = w } xb yb
            Optim.checkFinite "gating" t e.Value (flatten e.Gradient)

            context.Progress
                {
                    Stage = "gating"
                    Iteration = t
                    Loss = e.Value
                }

            w <- Array2D.mapi (fun i j v -> v - learningRate * e.Gradient.[i, j]) w

            for i in 0 .. w.GetLength 0 - 1 do
                let norm = sqrt (Seq.sum (seq { for j in 0 .. d - 1 -> w.[i, j] * w.[i, j] }))

                if norm > radius then
                    for j in 0 .. d - 1 do
                        w.[i, j] <- w.[i, j] * radius / norm

        { model with Gating = w }

    /// <summary>Chooses the sign of each unit direction by likelihood: for each of the 2^k sign patterns, a short
    /// gating fit on a seeded subsample, keeping the pattern of highest log-likelihood.</summary>
    [<CompiledName("ResolveSigns")>]
    let resolveSigns
        (directions: float[,])
        (activation: Activation)
        (sigma: float)
        (x: float[,])
        (y: float[])
        (subsampleSize: int)
        (seed: int64)
        (context: RunContext)
        : MoeModel =
        let k, d = directions.GetLength 0, directions.GetLength 1
        let xs, ys = subsample subsampleSize seed x y

        let candidates =
            [
                for pattern in 0 .. (1 <<< k) - 1 ->
                    let a =
                        Array2D.init k d (fun i t ->
                            (if (pattern >>> i) &&& 1 = 1 then -1.0 else 1.0) * directions.[i, t])

                    let start = MoeModel.create a (Array2D.zeroCreate (k - 1) d) activation sigma
                    let fitted = fitGating start xs ys 40 context false
                    let ll = MoeModel.logLikelihood fitted xs ys

                    context.Progress
                        {
                            Stage = "signs"
                            Iteration = pattern
                            Loss = -ll / float ys.Length
                        }

                    fitted, ll
            ]

        fst (List.maxBy snd candidates)

    /// <summary>Rescales each regressor by a 1-D least-squares fit of y on g(t·&lt;a_i, x&gt;) weighted by the
    /// posterior responsibilities (closed form for the identity, Gauss–Newton otherwise).</summary>
    [<CompiledName("FitScales")>]
    let fitScales (model: MoeModel) (x: float[,]) (y: float[]) : MoeModel =
        let post = MoeModel.responsibilities model x y
        let n, k, d = y.Length, model.Experts, model.Dimension
        let g = model.Activation
        let a = Array2D.copy model.Regressors

        let proj = projections a x

        for i in 0 .. k - 1 do
            let s = Array.init n (fun r -> proj.[r, i])

            let mutable scale = 1.0
            let mutable iteration = 0

            while iteration < 20 do
                // Gauss–Newton on Σ r (y − g(t s))² in t (one step is exact for the identity).
                let mutable num = 0.0
                let mutable den = 0.0

                for r in 0 .. n - 1 do
                    let u = scale * s.[r]
                    let jac = g.Derivative u * s.[r]
                    num <- num + post.[r, i] * jac * (y.[r] - g.Value u)
                    den <- den + post.[r, i] * jac * jac

                let step = if den > 0.0 then num / den else 0.0
                scale <- scale + step
                // Converged to rounding (or linear): stop.
                iteration <-
                    if abs step <= 1e-12 * abs scale || g = Identity then
                        20
                    else
                        iteration + 1

            if Double.IsFinite scale && scale > 0.0 then
                for t in 0 .. d - 1 do
                    a.[i, t] <- a.[i, t] * scale

        { model with Regressors = a }

    /// The full symmetric matrix from its upper triangle (row-major, size×size).
    let private mirror (size: int) (upper: float[]) =
        Array2D.init size size (fun i j ->
            if i <= j then
                upper.[i * size + j]
            else
                upper.[j * size + i])

    /// Solves (G + εI)δ = b with ε = 1e-12·(trace G/d + 1e-300): a guard for experts with almost no weight.
    let private solveSpd (gram: float[,]) (rhs: float[]) =
        let d = rhs.Length
        let trace = Seq.sum (seq { for i in 0 .. d - 1 -> gram.[i, i] })

        let g =
            Matrix<float>.Build.DenseOfArray(gram)
            + Matrix<float>.Build.DenseIdentity(d) * (1e-12 * trace / float d + 1e-300)

        g.Solve(Vector<float>.Build.DenseOfArray rhs).ToArray()

    /// The M-step from the statistics of one E-step pass (Kernels.emStatistics), with step halving per component
    /// judged by one fused pass (Kernels.mStepObjectives) per trial.
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
            Array.init k (fun i -> solveSpd (mirror d stats.Gram.[i]) stats.Rhs.[i])

        let a0 = model.Regressors

        let regressorsAt (steps: float[]) =
            Array2D.init k d (fun i t ->
                if identity then
                    (if steps.[i] > 0.0 then solutions.[i].[t] else a0.[i, t])
                else
                    a0.[i, t] + steps.[i] * solutions.[i].[t])

        // Gate: one damped Newton step of weighted multinomial logistic regression, maximising Q(W).
        let hd = km1 * d
        let newton = solveSpd (mirror hd stats.GateHessian) stats.GateGradient
        let w0 = model.Gating

        let gatingAt (step: float) =
            Array2D.init km1 d (fun j t -> w0.[j, t] + step * newton.[j * d + t])

        let steps = Array.create k 1.0
        let mutable gateStep = 1.0
        let mutable result = None

        while result.IsNone do
            let sse, q =
                Kernels.mStepObjectives (regressorsAt steps) (gatingAt gateStep) g posterior x y

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
    [<CompiledName("EmStep")>]
    let emStep (model: MoeModel) (x: float[,]) (y: float[]) (estimateSigma: bool) : MoeModel =
        MoeModel.validate model
        MoeModel.checkLikelihoodInputs model x y
        let posterior = Array2D.zeroCreate y.Length model.Experts
        let stats = Kernels.emStatistics model x y posterior
        mStep model x y estimateSigma posterior stats

    /// <summary>EM iterations from <paramref name="start"/> until the relative change of the log-likelihood is
    /// below <paramref name="tolerance"/> or <paramref name="maxIterations"/> is reached.</summary>
    /// <returns>The model, its trace (mean negative log-likelihood per iteration) and the stop reason.</returns>
    [<CompiledName("Em")>]
    let em
        (start: MoeModel)
        (x: float[,])
        (y: float[])
        (estimateSigma: bool)
        (maxIterations: int)
        (tolerance: float)
        (context: RunContext)
        : MoeModel * TraceEntry list * StopReason =
        MoeModel.validate start
        MoeModel.checkLikelihoodInputs start x y
        let n = float y.Length
        let posterior = Array2D.zeroCreate y.Length start.Experts
        let mutable model = start
        // The E-step pass of iteration t also gives the likelihood of the model of iteration t − 1.
        let mutable stats = Kernels.emStatistics model x y posterior
        let mutable ll = stats.LogLikelihood
        let trace = ResizeArray<TraceEntry>()
        let mutable reason = StopReason.MaxIterations
        let mutable iteration = 0

        while iteration < maxIterations && reason = StopReason.MaxIterations do
            context.Cancellation.ThrowIfCancellationRequested()
            let next = mStep model x y estimateSigma posterior stats
            let nextStats = Kernels.emStatistics next x y posterior
            let llNext = nextStats.LogLikelihood
            Optim.checkFinite "em" iteration llNext [||]
            iteration <- iteration + 1

            let entry =
                {
                    Stage = "em"
                    Iteration = iteration
                    Loss = -llNext / n
                }

            trace.Add entry
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

        model, List.ofSeq trace, reason
