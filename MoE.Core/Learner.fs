namespace MoE.Core

open System
open System.Diagnostics

/// <summary>Which estimator to run.</summary>
[<RequireQualifiedAccess>]
type FitMethod =
    /// L4 → recovered regressors → L_log gating → (optional) EM polish: the paper's estimator.
    | L4
    /// Baseline: mini-batch SGD on ℓ2 over (A, W) from a random start.
    | L2
    /// Baseline: EM on the likelihood from a random start.
    | Em

/// <summary>How the L4 stage is minimised.</summary>
[<RequireQualifiedAccess>]
type L4SolverKind =
    /// Q2 moment subspace, projected moments in one pass, L-BFGS with restarts (MATH.md §5).
    | Subspace
    /// The paper's mini-batch SGD on the full-dimensional empirical L4.
    | Sgd

/// <summary>Which output transforms the L4 stage uses.</summary>
[<RequireQualifiedAccess>]
type TransformKind =
    /// The variance-reduced bounded transforms (MATH.md §5): the default, measured ~10× lower E_reg for ReLU.
    | Bounded
    /// The paper's polynomial Q4, Q2 (centred).
    | Polynomial

/// <summary>How the gating is fitted with the regressors fixed.</summary>
[<RequireQualifiedAccess>]
type GatingMethod =
    /// L-BFGS on L_log (unconstrained): the default.
    | QuasiNewton
    /// The paper's projected gradient descent: rows of W kept in the ball of radius R; with sample splitting,
    /// iteration t uses the t-th of T disjoint batches of n/T samples (Theorem 4).
    | ProjectedGradient of radius: float * learningRate: float * iterations: int * sampleSplitting: bool

/// <summary>Settings of the paper's SGD (and of the ℓ2 baseline's SGD).</summary>
type SgdSettings =
    {
        /// Passes over the data.
        Epochs: int
        /// Mini-batch size.
        BatchSize: int
        /// Learning rate for the first half of the epochs.
        LearningRate: float
        /// Learning rate reached by linear decay at the last epoch.
        FinalLearningRate: float
        /// Gradient-norm clipping threshold (∞ disables it).
        Clip: float
    }

/// <summary>A learner's configuration: every knob explicit, with <c>FitConfig.defaults</c> as the starting point.</summary>
type FitConfig =
    {
        /// k ≥ 2.
        Experts: int
        /// g.
        Activation: Activation
        /// σ if known; None to estimate it (see docs/learners.md).
        Sigma: float option
        /// The estimator.
        Method: FitMethod
        /// The L4 solver.
        L4Solver: L4SolverKind
        /// The L4 output transforms.
        Transform: TransformKind
        /// Whether the EM polish follows the paper's stages.
        Polish: bool
        /// The seed of every random choice (restarts, subsamples, SGD order, random starts).
        Seed: int64
        /// L4 regularisers (subspace solver: ridge 0.01; SGD: ridge 4, MATH.md §5).
        Weights: L4Weights
        /// L-BFGS restarts of the subspace solver.
        Restarts: int
        /// Subsample size for the sign search.
        SignSubsample: int
        /// How the gating is fitted.
        Gating: GatingMethod
        /// L-BFGS iterations of the gating fit.
        GatingIterations: int
        /// EM iteration budget.
        EmIterations: int
        /// EM stops when the relative log-likelihood gain falls below this.
        EmTolerance: float
        /// SGD settings of the paper's L4 solver.
        L4Sgd: SgdSettings
        /// SGD settings of the ℓ2 baseline.
        L2Sgd: SgdSettings
    }

/// <summary>Wall time of one stage.</summary>
type StageTiming =
    {
        /// The stage.
        Stage: string
        /// Seconds.
        Seconds: float
    }

/// <summary>What a learner returns.</summary>
type FitResult =
    {
        /// The fitted model.
        Model: MoeModel
        /// Every stage's losses, in order.
        Trace: TraceEntry[]
        /// Why the last iterative stage stopped.
        StopReason: StopReason
        /// Stage wall times.
        Timings: StageTiming[]
    }

/// Defaults and validation of <see cref="T:MoE.Core.FitConfig"/>.
[<RequireQualifiedAccess>]
module FitConfig =

    /// <summary>The defaults: L4 with the subspace solver and bounded transforms, EM polish on, σ estimated.</summary>
    [<CompiledName("Defaults")>]
    let defaults (experts: int) (activation: Activation) : FitConfig =
        {
            Experts = experts
            Activation = activation
            Sigma = None
            Method = FitMethod.L4
            L4Solver = L4SolverKind.Subspace
            Transform = TransformKind.Bounded
            Polish = true
            Seed = 1L
            Weights = L4Weights.create 0.1 10.0 0.01 true
            Restarts = 5
            SignSubsample = 20_000
            Gating = GatingMethod.QuasiNewton
            GatingIterations = 200
            EmIterations = 200
            EmTolerance = 1e-11
            L4Sgd =
                {
                    Epochs = 60
                    BatchSize = 1024
                    LearningRate = 0.003
                    FinalLearningRate = 0.0003
                    Clip = 5.0
                }
            L2Sgd =
                {
                    Epochs = 60
                    BatchSize = 1024
                    LearningRate = 0.05
                    FinalLearningRate = 0.005
                    Clip = 5.0
                }
        }

    /// <summary>Checks every field; the message names the field and the value.</summary>
    [<CompiledName("Validate")>]
    let validate (config: FitConfig) : unit =
        Guard.notNull "config" (box config)

        if config.Experts < 2 then
            raise (
                ArgumentOutOfRangeException(
                    "Experts",
                    config.Experts,
                    sprintf "A mixture needs k >= 2 experts, but Experts = %d." config.Experts
                )
            )

        Activation.validate config.Activation
        config.Sigma |> Option.iter (Guard.positive "Sigma")
        L4Weights.validate config.Weights
        Guard.positiveInt "Restarts" config.Restarts
        Guard.positiveInt "SignSubsample" config.SignSubsample
        Guard.positiveInt "GatingIterations" config.GatingIterations

        match config.Gating with
        | GatingMethod.ProjectedGradient(radius, rate, iterations, _) ->
            Guard.positive "Gating.Radius" radius
            Guard.positive "Gating.LearningRate" rate
            Guard.positiveInt "Gating.Iterations" iterations
        | GatingMethod.QuasiNewton -> ()

        Guard.positiveInt "EmIterations" config.EmIterations
        Guard.positive "EmTolerance" config.EmTolerance

        for name, s in [ "L4Sgd", config.L4Sgd; "L2Sgd", config.L2Sgd ] do
            Guard.positiveInt (name + ".Epochs") s.Epochs
            Guard.positiveInt (name + ".BatchSize") s.BatchSize
            Guard.positive (name + ".LearningRate") s.LearningRate
            Guard.positive (name + ".FinalLearningRate") s.FinalLearningRate

            if not (s.Clip > 0.0) then
                invalidArg (name + ".Clip") (sprintf "%s.Clip must be > 0, but was %s." name (string s.Clip))

/// <summary>The learners: the paper's L4 → gating → EM pipeline and the ℓ2 and EM baselines.</summary>
[<RequireQualifiedAccess>]
module Learner =

    let private std (y: float[]) =
        let m = Array.average y
        sqrt (Array.averageBy (fun v -> (v - m) * (v - m)) y)

    /// Learning rate at epoch e: constant for the first half, then linear decay to the final rate.
    let private schedule (s: SgdSettings) (epoch: int) =
        let half = s.Epochs / 2

        if epoch < half then
            s.LearningRate
        else
            let f = float (epoch - half) / float (max 1 (s.Epochs - half - 1))
            s.LearningRate + (s.FinalLearningRate - s.LearningRate) * f

    /// Mini-batch SGD over a parameter vector; `loss xb yb p` returns the value and gradient on a batch.
    let private sgd
        (stage: string)
        (settings: SgdSettings)
        (seed: int64)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        (loss: float[,] -> float[] -> float[] -> float * float[])
        (snapshot: int -> float[] -> unit)
        (p0: float[])
        =
        let n, d = x.GetLength 0, x.GetLength 1
        let b = min settings.BatchSize n
        let xb = Array2D.zeroCreate b d
        let yb = Array.zeroCreate b
        let order = Array.init n id
        let rng = Rng.stream seed 11L
        let p = Array.copy p0
        let trace = ResizeArray<TraceEntry>()
        snapshot 0 (Array.copy p)

        for epoch in 0 .. settings.Epochs - 1 do
            for i in n - 1 .. -1 .. 1 do
                let j = rng.NextInt(i + 1)
                let t = order.[i]
                order.[i] <- order.[j]
                order.[j] <- t

            let lr = schedule settings epoch
            let mutable sum = 0.0
            let mutable batches = 0

            for start in 0..b .. n - b do
                context.Cancellation.ThrowIfCancellationRequested()

                for i in 0 .. b - 1 do
                    let r = order.[start + i]
                    yb.[i] <- y.[r]

                    for t in 0 .. d - 1 do
                        xb.[i, t] <- x.[r, t]

                let value, g = loss xb yb p
                Optim.checkFinite stage epoch value g
                let norm = sqrt (Array.sumBy (fun v -> v * v) g)
                let factor = if norm > settings.Clip then settings.Clip / norm else 1.0

                for i in 0 .. p.Length - 1 do
                    p.[i] <- p.[i] - lr * factor * g.[i]

                sum <- sum + value
                batches <- batches + 1

            let entry =
                {
                    Stage = stage
                    Iteration = epoch + 1
                    Loss = sum / float (max 1 batches)
                }

            snapshot (epoch + 1) (Array.copy p)
            trace.Add entry
            context.Progress entry

        p, List.ofSeq trace

    /// SGD on the empirical L4 from A ~ N(0, 1/d); `snapshot` sees A after every epoch (and the start).
    let private runSgdL4
        coefficients
        weights
        settings
        experts
        seed
        (x: float[,])
        y
        context
        (snapshot: float[,] -> unit)
        =
        let d = x.GetLength 1
        let rng = Rng.stream seed 3L
        let a0 = Array.init (experts * d) (fun _ -> rng.NextGaussian() / sqrt (float d))

        let unflat (v: float[]) =
            Array2D.init experts d (fun i t -> v.[i * d + t])

        let loss xb yb (p: float[]) =
            let e = Losses.l4 coefficients weights (unflat p) xb yb
            e.Value, Array.init (experts * d) (fun idx -> e.Gradient.[idx / d, idx % d])

        let p, trace =
            sgd "l4-sgd" settings seed x y context loss (fun _ p -> snapshot (unflat p)) a0

        unflat p, trace

    /// <summary>The paper's SGD on the full-dimensional empirical L4 (init A ~ N(0, 1/d)).</summary>
    [<CompiledName("SgdL4")>]
    let sgdL4
        (coefficients: TransformCoefficients)
        (weights: L4Weights)
        (settings: SgdSettings)
        (experts: int)
        (seed: int64)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        : float[,] * TraceEntry list =
        runSgdL4 coefficients weights settings experts seed x y context ignore

    /// <summary>The paper's SGD on the empirical L4, returning A after every epoch (index 0: the start).</summary>
    [<CompiledName("SgdL4Path")>]
    let sgdL4Path
        (coefficients: TransformCoefficients)
        (weights: L4Weights)
        (settings: SgdSettings)
        (experts: int)
        (seed: int64)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        : float[,][] =
        let path = ResizeArray<float[,]>()

        runSgdL4 coefficients weights settings experts seed x y context path.Add
        |> ignore

        path.ToArray()

    /// SGD on ℓ2 over (A, W) from A, W ~ N(0, 1/d) (σ = 1 placeholder); `snapshot` sees the model after every epoch
    /// (and the start). Returns the final model.
    let private runSgdL2 settings experts activation seed (x: float[,]) y context (snapshot: MoeModel -> unit) =
        let k, d = experts, x.GetLength 1
        let rng = Rng.stream seed 5L
        let na, nw = k * d, (k - 1) * d
        let p0 = Array.init (na + nw) (fun _ -> rng.NextGaussian() / sqrt (float d))

        let split (p: float[]) =
            MoeModel.create
                (Array2D.init k d (fun i t -> p.[i * d + t]))
                (Array2D.init (k - 1) d (fun i t -> p.[na + i * d + t]))
                activation
                1.0

        let loss xb yb (p: float[]) =
            let e = Losses.squaredLoss (split p) xb yb

            e.Value,
            Array.append
                (Seq.cast<float> e.RegressorGradient |> Seq.toArray)
                (Seq.cast<float> e.GatingGradient |> Seq.toArray)

        let p, _ =
            sgd "l2" settings seed x y context loss (fun _ p -> snapshot (split p)) p0

        split p

    /// <summary>Mini-batch SGD on ℓ2 over (A, W) from A, W ~ N(0, 1/d), returning the model after every epoch.</summary>
    [<CompiledName("SgdL2Path")>]
    let sgdL2Path
        (settings: SgdSettings)
        (experts: int)
        (activation: Activation)
        (seed: int64)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        : MoeModel[] =
        let path = ResizeArray<MoeModel>()
        runSgdL2 settings experts activation seed x y context path.Add |> ignore
        path.ToArray()

    /// <summary>Mini-batch SGD on L_log over W with A, g and σ of <paramref name="model"/> fixed (paper §3.2, Fig. 2b),
    /// from W = 0, returning W after every epoch.</summary>
    [<CompiledName("SgdGatingPath")>]
    let sgdGatingPath
        (settings: SgdSettings)
        (model: MoeModel)
        (seed: int64)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        : float[,][] =
        let km1, d = model.Experts - 1, model.Dimension

        let unflat (v: float[]) =
            Array2D.init km1 d (fun i t -> v.[i * d + t])

        let path = ResizeArray<float[,]>()

        let loss xb yb (p: float[]) =
            let e = Losses.logLikelihoodLoss { model with Gating = unflat p } xb yb
            e.Value, Array.init (km1 * d) (fun idx -> e.Gradient.[idx / d, idx % d])

        sgd "gating-sgd" settings seed x y context loss (fun _ p -> path.Add(unflat p)) (Array.zeroCreate (km1 * d))
        |> ignore

        path.ToArray()

    let private timed (timings: ResizeArray<StageTiming>) (stage: string) (f: unit -> 'T) =
        let sw = Stopwatch.StartNew()
        let result = f ()

        timings.Add
            {
                Stage = stage
                Seconds = sw.Elapsed.TotalSeconds
            }

        result

    /// The paper's stages at a given σ: L4, directions, signs, gating, scales.
    /// The transform the subspace solver uses at a given σ.
    let private outputTransform (config: FitConfig) (sigma: float) =
        match config.Transform with
        | TransformKind.Bounded -> OutputTransforms.bounded config.Activation sigma
        | TransformKind.Polynomial -> OutputTransforms.polynomial (Coefficients.solve config.Activation sigma)

    /// Stage 1 on data in memory: the L4 estimate A at σ.
    let private l4InMemory (config: FitConfig) (x: float[,]) (y: float[]) (context: RunContext) (sigma: float) =
        let k, g = config.Experts, config.Activation

        match config.L4Solver with
        | L4SolverKind.Subspace ->
            let moments = SubspaceL4.moments (outputTransform config sigma) k x y

            let a, _, _ =
                SubspaceL4.solve moments config.Weights k config.Restarts config.Seed context

            a
        | L4SolverKind.Sgd ->
            let a, _ =
                sgdL4 (Coefficients.solve g sigma) config.Weights config.L4Sgd k config.Seed x y context

            a

    /// The paper's stages at a given σ, with stage 1 given: L4, directions, signs, gating, scales.
    let private paperStagesFrom
        (l4: float -> float[,])
        (config: FitConfig)
        (sigma: float)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        (timings: ResizeArray<StageTiming>)
        =
        let g = config.Activation
        let a = timed timings "l4" (fun () -> l4 sigma)
        let directions = timed timings "directions" (fun () -> SubspaceL4.directions a)

        for v in Seq.cast<float> directions do
            if not (Double.IsFinite v) then
                raise (NonFiniteException("l4", 0, v))

        let signed =
            timed timings "signs" (fun () ->
                Polish.resolveSigns directions g sigma x y config.SignSubsample config.Seed context)

        let fitGating (m: MoeModel) =
            match config.Gating with
            | GatingMethod.QuasiNewton -> Polish.fitGating m x y config.GatingIterations context true
            | GatingMethod.ProjectedGradient(radius, rate, iterations, splitting) ->
                Polish.fitGatingProjected m x y radius rate iterations splitting context

        let gated = timed timings "gating" (fun () -> fitGating signed)

        let scaled = timed timings "scales" (fun () -> Polish.fitScales gated x y)
        timed timings "gating" (fun () -> fitGating scaled)

    /// The EM polish on the paper stages' model when configured (σ re-estimated unless given), else that model.
    let private polish (config: FitConfig) (staged: MoeModel) x y context timings =
        if config.Polish then
            let m, _, r =
                timed timings "em" (fun () ->
                    Polish.em staged x y config.Sigma.IsNone config.EmIterations config.EmTolerance context)

            m, r
        else
            staged, StopReason.Converged

    /// The paper's stages at a given σ on data in memory.
    let private paperStages config sigma (x: float[,]) (y: float[]) context timings =
        paperStagesFrom (l4InMemory config x y context) config sigma x y context timings

    /// A context whose progress reports are also collected: the trace is exactly the stream of reports.
    let private recording (context: RunContext) =
        let trace = ResizeArray<TraceEntry>()

        trace,
        { context with
            Progress =
                fun entry ->
                    trace.Add entry
                    context.Progress entry
        }

    /// Rows the provisional run of σ estimation uses at most.
    let private provisionalRows = 100_000

    /// Posterior-weighted residual RMS: the σ a fitted model implies for the data.
    let private impliedSigma (model: MoeModel) (x: float[,]) (y: float[]) =
        let post = MoeModel.responsibilities model x y

        let means =
            Polish.projections model.Regressors x |> Array2D.map model.Activation.Value

        let mutable s = 0.0

        for r in 0 .. y.Length - 1 do
            for i in 0 .. model.Experts - 1 do
                let e = y.[r] - means.[r, i]
                s <- s + post.[r, i] * e * e

        max (sqrt (s / float y.Length)) 1e-6

    /// <summary>Fits a mixture of experts to (X, y).</summary>
    /// <param name="config">The configuration (see <c>FitConfig.defaults</c>).</param>
    /// <param name="data">The samples.</param>
    /// <param name="context">Progress callback and cancellation.</param>
    /// <returns>The model, the trace, the stop reason and the stage timings.</returns>
    /// <exception cref="T:MoE.Core.NonFiniteException">A loss or gradient became NaN or infinite.</exception>
    /// <exception cref="T:System.OperationCanceledException">The token was cancelled.</exception>
    /// <remarks>σ, when not given, is estimated: a provisional σ₀ = 0.1·sd(y) drives the L4 and gating stages on a
    /// seeded subsample of at most 100k rows, the fitted model's posterior-weighted residual RMS σ₁ then re-runs them
    /// on all the data, and EM updates σ to convergence.</remarks>
    [<CompiledName("Fit")>]
    let fit (config: FitConfig) (data: Dataset) (context: RunContext) : FitResult =
        FitConfig.validate config
        Dataset.validate data
        let x, y = data.X, data.Y
        let k, d, g = config.Experts, data.Dimension, config.Activation

        if data.Count < 2 * k * d then
            invalidArg
                "data"
                (sprintf
                    "%d samples cannot determine k = %d experts in d = %d dimensions; need at least 2kd = %d."
                    data.Count
                    k
                    d
                    (2 * k * d))

        let timings = ResizeArray<StageTiming>()
        let trace, context = recording context

        let estimate = config.Sigma.IsNone

        let model, reason =
            match config.Method with
            | FitMethod.L4 ->
                let staged =
                    match config.Sigma with
                    | Some sigma -> paperStages config sigma x y context timings
                    | None ->
                        // The provisional run only yields σ₁, which a subsample of 100k rows pins down to a
                        // fraction of a percent; should the subsample be too small for L4 (collapse), the
                        // provisional run falls back to all the data.
                        let sigma0 = 0.1 * std y

                        let provisional =
                            let xs, ys = Polish.subsample provisionalRows config.Seed x y

                            try
                                let m = paperStages config sigma0 xs ys context timings
                                impliedSigma m xs ys
                            with :? NonFiniteException when ys.Length < y.Length ->
                                impliedSigma (paperStages config sigma0 x y context timings) x y

                        paperStages config provisional x y context timings

                polish config staged x y context timings
            | FitMethod.Em ->
                let rng = Rng.stream config.Seed 5L
                let a = Array2D.init k d (fun _ _ -> rng.NextGaussian() / sqrt (float d))
                let w = Array2D.init (k - 1) d (fun _ _ -> rng.NextGaussian() / sqrt (float d))
                let start = MoeModel.create a w g (defaultArg config.Sigma (std y))

                let m, _, r =
                    timed timings "em" (fun () ->
                        Polish.em start x y estimate config.EmIterations config.EmTolerance context)

                m, r
            | FitMethod.L2 ->
                let fitted =
                    timed timings "l2" (fun () -> runSgdL2 config.L2Sgd k g config.Seed x y context ignore)

                { fitted with
                    Sigma = defaultArg config.Sigma (impliedSigma fitted x y)
                },
                StopReason.MaxIterations

        {
            Model = model
            Trace = trace.ToArray()
            StopReason = reason
            Timings = timings.ToArray()
        }

    /// <summary>A seeded uniform sample of at most <paramref name="rows"/> rows of data that arrive in chunks
    /// (reservoir sampling, Vitter's Algorithm R), and the total row count: one pass, holding the sample and one
    /// chunk.</summary>
    /// <exception cref="T:System.ArgumentException">No rows, or chunks of different dimensions.</exception>
    [<CompiledName("Reservoir")>]
    let reservoir (rows: int) (seed: int64) (chunks: seq<Dataset>) : Dataset * int64 =
        Guard.positiveInt "rows" rows
        Guard.notNull "chunks" chunks
        let rng = Rng.stream seed 11L
        let mutable x: float[,] = null
        let y = Array.zeroCreate rows
        let mutable seen = 0L

        for chunk in chunks do
            if isNull x then
                x <- Array2D.zeroCreate rows chunk.Dimension
            elif chunk.Dimension <> x.GetLength 1 then
                invalidArg
                    "chunks"
                    (sprintf "A chunk has d = %d columns after chunks of d = %d." chunk.Dimension (x.GetLength 1))

            for r in 0 .. chunk.Count - 1 do
                // Row t (0-based) replaces a uniform slot with probability rows/(t+1).
                let slot =
                    if seen < int64 rows then
                        int seen
                    else
                        let j = int64 (rng.NextDouble() * float (seen + 1L))
                        if j < int64 rows then int j else -1

                if slot >= 0 then
                    for t in 0 .. chunk.Dimension - 1 do
                        x.[slot, t] <- chunk.X.[r, t]

                    y.[slot] <- chunk.Y.[r]

                seen <- seen + 1L

        if seen = 0L then
            invalidArg "chunks" "The chunk source yielded no rows."

        let m = int (min seen (int64 rows))

        let sample =
            if m = rows then
                { X = x; Y = y }
            else
                {
                    X = Array2D.init m (x.GetLength 1) (fun i t -> x.[i, t])
                    Y = Array.sub y 0 m
                }

        sample, seen

    /// <summary>
    /// Fits data that need not fit in memory, arriving in chunks (e.g. <c>DataCsv.loadChunks</c>): the L4 stage
    /// uses every row through the mergeable moment sums (two passes over the chunks), and the likelihood stages
    /// (σ estimation, signs, gating, scales, EM polish) use a seeded uniform sample of at most
    /// <paramref name="maxRows"/> rows (one more pass). Memory: the sample plus one chunk. When the data have no
    /// more than maxRows rows this is <c>fit</c> on all of them.
    /// </summary>
    /// <param name="config">The configuration; the L4 method with the subspace solver (the one whose data are
    /// moments).</param>
    /// <param name="chunks">The data, re-enumerable: each enumeration must yield the same rows.</param>
    /// <param name="maxRows">Rows held in memory for the likelihood stages.</param>
    /// <param name="context">Progress callback and cancellation.</param>
    [<CompiledName("FitChunks")>]
    let fitChunks (config: FitConfig) (chunks: seq<Dataset>) (maxRows: int) (context: RunContext) : FitResult =
        FitConfig.validate config
        Guard.positiveInt "maxRows" maxRows

        if config.Method <> FitMethod.L4 || config.L4Solver <> L4SolverKind.Subspace then
            invalidArg
                "config"
                "Fitting from chunks needs Method = L4 with the subspace solver (its data are moment sums); the baselines and the SGD solver need the data in memory."

        let sample, total = reservoir maxRows config.Seed chunks

        if total <= int64 maxRows then
            fit config sample context
        else
            let x, y = sample.X, sample.Y
            let k = config.Experts
            let timings = ResizeArray<StageTiming>()
            let trace, context = recording context

            let fromAllRows (sigma: float) =
                let moments = SubspaceL4.momentsOfChunks (outputTransform config sigma) k chunks

                let a, _, _ =
                    SubspaceL4.solve moments config.Weights k config.Restarts config.Seed context

                a

            let sigma =
                match config.Sigma with
                | Some s -> s
                | None -> impliedSigma (paperStages config (0.1 * std y) x y context timings) x y

            let staged = paperStagesFrom fromAllRows config sigma x y context timings

            let model, reason = polish config staged x y context timings

            {
                Model = model
                Trace = trace.ToArray()
                StopReason = reason
                Timings = timings.ToArray()
            }
