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

    /// Σ_r w[r]·(y[r] − g(s_r))² for projections s_r = <v, x_r>.
    let private weightedSse (g: Activation) (v: float[]) (x: float[,]) (y: float[]) (weight: int -> float) =
        let n, d = x.GetLength 0, x.GetLength 1
        let mutable total = 0.0

        for r in 0 .. n - 1 do
            let w = weight r

            if w > 0.0 then
                let mutable s = 0.0

                for t in 0 .. d - 1 do
                    s <- s + v.[t] * x.[r, t]

                let e = y.[r] - g.Value s
                total <- total + w * e * e

        total

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
        let km1, d = model.Experts - 1, model.Dimension

        let f (v: float[]) =
            let e =
                Losses.logLikelihoodLoss
                    { model with
                        Gating = unflatten km1 d v
                    }
                    x
                    y

            e.Value, flatten e.Gradient

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

            for _ in 1..20 do
                // Gauss–Newton on Σ r (y − g(t s))² in t.
                let mutable num = 0.0
                let mutable den = 0.0

                for r in 0 .. n - 1 do
                    let u = scale * s.[r]
                    let jac = g.Derivative u * s.[r]
                    num <- num + post.[r, i] * jac * (y.[r] - g.Value u)
                    den <- den + post.[r, i] * jac * jac

                if den > 0.0 then
                    scale <- scale + num / den

            if Double.IsFinite scale && scale > 0.0 then
                for t in 0 .. d - 1 do
                    a.[i, t] <- a.[i, t] * scale

        { model with Regressors = a }

    /// Weighted Gram Σ w_n x_n x_nᵀ and Σ w_n t_n x_n.
    let private weightedNormal (x: float[,]) (weights: int -> float) (targets: int -> float) =
        let n, d = x.GetLength 0, x.GetLength 1
        let gram = Array2D.zeroCreate d d
        let rhs = Array.zeroCreate d

        for r in 0 .. n - 1 do
            let w = weights r

            if w <> 0.0 then
                let tr = targets r

                for i in 0 .. d - 1 do
                    let wi = w * x.[r, i]
                    rhs.[i] <- rhs.[i] + wi * tr

                    for j in i .. d - 1 do
                        gram.[i, j] <- gram.[i, j] + wi * x.[r, j]

        for i in 0 .. d - 1 do
            for j in 0 .. i - 1 do
                gram.[i, j] <- gram.[j, i]

        gram, rhs

    /// Solves (G + εI)δ = b with ε = 1e-12·(trace G/d + 1e-300): a guard for experts with almost no weight.
    let private solveSpd (gram: float[,]) (rhs: float[]) =
        let d = rhs.Length
        let trace = Seq.sum (seq { for i in 0 .. d - 1 -> gram.[i, i] })

        let g =
            Matrix<float>.Build.DenseOfArray(gram)
            + Matrix<float>.Build.DenseIdentity(d) * (1e-12 * trace / float d + 1e-300)

        g.Solve(Vector<float>.Build.DenseOfArray rhs).ToArray()

    /// <summary>One EM iteration on the full likelihood: posterior E-step; weighted least squares for identity
    /// experts (Gauss–Newton steps with step halving for the others); σ² = posterior-weighted residual mean square
    /// when estimated; one damped Newton step of weighted multinomial logistic regression for the gate. Each M-step
    /// increases the expected complete log-likelihood, so the likelihood does not decrease (GEM).</summary>
    [<CompiledName("EmStep")>]
    let emStep (model: MoeModel) (x: float[,]) (y: float[]) (estimateSigma: bool) : MoeModel =
        let n, k, d = y.Length, model.Experts, model.Dimension
        let g = model.Activation
        let post = MoeModel.responsibilities model x y
        let a = Array2D.copy model.Regressors

        let current = projections a x

        for i in 0 .. k - 1 do
            let ai = Array.init d (fun t -> a.[i, t])

            let updated =
                match g with
                | Identity ->
                    let gram, rhs = weightedNormal x (fun r -> post.[r, i]) (fun r -> y.[r])
                    solveSpd gram rhs
                | _ ->
                    let s = Array.init n (fun r -> current.[r, i])

                    let sse (v: float[]) =
                        weightedSse g v x y (fun r -> post.[r, i])

                    let gram, rhs =
                        weightedNormal x (fun r -> let gd = g.Derivative s.[r] in post.[r, i] * gd * gd) (fun r ->
                            let gd = g.Derivative s.[r] in if gd = 0.0 then 0.0 else (y.[r] - g.Value s.[r]) / gd)

                    let step = solveSpd gram rhs
                    let before = sse ai
                    let mutable t = 1.0
                    let mutable result = ai
                    let mutable searching = true

                    while searching && t > 1e-6 do
                        let candidate = Array.init d (fun j -> ai.[j] + t * step.[j])

                        if sse candidate <= before then
                            result <- candidate
                            searching <- false
                        else
                            t <- t * 0.5

                    result

            for t in 0 .. d - 1 do
                a.[i, t] <- updated.[t]

        let sigma =
            if estimateSigma then
                let updated = projections a x
                let mutable s = 0.0

                for r in 0 .. n - 1 do
                    for i in 0 .. k - 1 do
                        let e = y.[r] - g.Value updated.[r, i]
                        s <- s + post.[r, i] * e * e

                max (sqrt (s / float n)) 1e-12
            else
                model.Sigma

        // Gate: maximise Q(W) = Σ_n Σ_i r_ni log p_i(x_n; W) by one damped Newton step.
        let km1 = k - 1
        let dim = km1 * d

        let probabilities (w: float[,]) =
            MoeModel.gateProbabilities { model with Gating = w } x

        let q (w: float[,]) =
            let p = probabilities w

            let mutable total = 0.0

            for r in 0 .. n - 1 do
                for i in 0 .. k - 1 do
                    if post.[r, i] > 0.0 then
                        total <- total + post.[r, i] * log (max p.[r, i] 1e-300)

            total

        let w0 = model.Gating
        let p = probabilities w0
        let grad = Array.zeroCreate dim
        let hess = Array2D.zeroCreate dim dim

        for r in 0 .. n - 1 do
            for j in 0 .. km1 - 1 do
                let gj = post.[r, j] - p.[r, j]

                for t in 0 .. d - 1 do
                    grad.[j * d + t] <- grad.[j * d + t] + gj * x.[r, t]

                for l in j .. km1 - 1 do
                    let c = p.[r, j] * ((if j = l then 1.0 else 0.0) - p.[r, l])

                    for t in 0 .. d - 1 do
                        let ct = c * x.[r, t]

                        for u in 0 .. d - 1 do
                            hess.[j * d + t, l * d + u] <- hess.[j * d + t, l * d + u] + ct * x.[r, u]

        for j in 0 .. km1 - 1 do
            for l in 0 .. j - 1 do
                for t in 0 .. d - 1 do
                    for u in 0 .. d - 1 do
                        hess.[j * d + t, l * d + u] <- hess.[l * d + u, j * d + t]

        let step = solveSpd hess grad
        let before = q w0
        let mutable tStep = 1.0
        let mutable w = w0
        let mutable searching = true

        while searching && tStep > 1e-6 do
            let candidate = Array2D.init km1 d (fun j t -> w0.[j, t] + tStep * step.[j * d + t])

            if q candidate >= before then
                w <- candidate
                searching <- false
            else
                tStep <- tStep * 0.5

        MoeModel.create a w g sigma

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
        let n = float y.Length
        let mutable model = start
        let mutable ll = MoeModel.logLikelihood model x y
        let trace = ResizeArray<TraceEntry>()
        let mutable reason = StopReason.MaxIterations
        let mutable iteration = 0

        while iteration < maxIterations && reason = StopReason.MaxIterations do
            context.Cancellation.ThrowIfCancellationRequested()
            let next = emStep model x y estimateSigma
            let llNext = MoeModel.logLikelihood next x y
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

                if change <= tolerance then
                    reason <- StopReason.Converged

        model, List.ofSeq trace, reason
