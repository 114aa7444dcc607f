namespace MoE.Core

open System
open System.Threading
open System.Threading.Tasks

/// <summary>How a bootstrap replicate's data are made (docs/inference.md §2.2).</summary>
[<RequireQualifiedAccess>]
type BootstrapKind =
    /// The rows resampled with replacement: n draws (Σ w_r units of weighted rows, each drawn with probability
    /// w_r / Σ w), held as each row's count — a frequency weight, so no row is copied.
    | Nonparametric
    /// The responses drawn from the fitted model at the observed covariates (the rows' weights kept).
    | Parametric

/// <summary>What a bootstrap runs (<c>Bootstrap.defaults</c> gives the usual values).</summary>
type BootstrapSettings =
    {
        /// B, the number of replicates (≥ 2; 200 for standard errors, 1000 or more for the ends of 95 % intervals).
        Replicates: int
        /// Nonparametric (rows resampled) or parametric (responses drawn from the fit).
        Kind: BootstrapKind
        /// The intervals' probability, in (0, 1).
        Level: float
        /// The seed: replicate b draws from <c>Rng.stream Seed b</c> alone, so the result is the same bits for any
        /// number of replicates run at once.
        Seed: int64
        /// Each replicate fitted from the original fit (true, the default: its basin, as mixtools' and mclust's
        /// bootstraps do), or from the configuration's own initializers with a seed of its own (false: slower, and it
        /// also samples which optimum the fit finds).
        FromFit: bool
        /// Replicates fitted at once (≥ 1): the wall time changes, the result does not.
        Parallelism: int
    }

/// <summary>One replicate's labels matched to the original fit's (<c>Bootstrap.align</c>).</summary>
type Alignment =
    {
        /// The replicate's expert matched to the original's expert j is <c>Order[j]</c>: <c>MoeModel.relabel Order</c>
        /// puts the replicate in the original's labels.
        Order: int[]
        /// The matching's cost: the mean over the rows (weighted) of the Kullback–Leibler divergence from the original
        /// fit's memberships to the relabelled replicate's, in nats per row.
        Cost: float
        /// The cost of the next best matching (+∞ for k = 1).
        RunnerUp: float
        /// The best matching is less than twice as close as the next: the replicate's experts do not clearly
        /// correspond to the original's (docs/inference.md §2.2).
        Ambiguous: bool
    }

/// <summary>A bootstrap's result: every parameter's estimate, bootstrap standard error, percentile and basic
/// intervals, and the replicates themselves, aligned to the original fit's labels.</summary>
type BootstrapResult =
    {
        /// The parameters' names, in the order of every array here (<c>Bootstrap.parameterNames</c>).
        Names: string[]
        /// The original fit's values.
        Estimates: float[]
        /// B×p: replicate b's values after its alignment; a failed replicate's row is NaN.
        Replicates: float[,]
        /// The replicates' standard deviation per parameter.
        StandardErrors: float[]
        /// The percentile interval: the replicates' α/2 and 1 − α/2 quantiles (R's type 7).
        PercentileLower: float[]
        /// See PercentileLower.
        PercentileUpper: float[]
        /// The basic interval: 2θ̂ − q(1 − α/2), 2θ̂ − q(α/2).
        BasicLower: float[]
        /// See BasicLower.
        BasicUpper: float[]
        /// The intervals' probability.
        Level: float
        /// How the replicates were made.
        Kind: BootstrapKind
        /// Replicates whose fit gave a model (the intervals are over these).
        Used: int
        /// Replicates whose fit failed (a degenerate resample: a constant column, a non-finite likelihood); the first
        /// failure's message is in <c>FirstFailure</c>.
        Failed: int
        /// The first failed replicate's reason, or "" when none failed.
        FirstFailure: string
        /// Replicates whose alignment was ambiguous (<c>Alignment.Ambiguous</c>): kept, and counted so the reader
        /// knows how much of the spread may be label noise.
        Ambiguous: int
        /// Each replicate's matching (empty for a failed one).
        Orders: int[][]
    }

/// <summary>
/// The bootstrap with aligned labels (docs/inference.md §2.2): B replicates of the data — rows resampled, or responses
/// drawn from the fit — each fitted, each replicate's experts matched to the original fit's by an optimal assignment,
/// and percentile and basic intervals from the aligned replicates. A mixture's labels are not identified, so a
/// replicate's expert 1 need not be the original's expert 1; unaligned, the replicates of two experts mix and the
/// intervals span both. The matching minimises the divergence between the original fit's memberships of the rows and
/// the replicate's (Stephens' relabelling, 2000), which reads every parameter of an expert at once, is free of units,
/// and treats the gate's reference expert like any other: after the matching the gate is rebased on the new last expert
/// (<c>MoeModel.relabel</c>).
/// </summary>
[<RequireQualifiedAccess>]
module Bootstrap =

    /// <summary>B = 200, nonparametric, 95 %, seed 1, from the original fit, every core.</summary>
    [<CompiledName("Defaults")>]
    let defaults: BootstrapSettings =
        {
            Replicates = 200
            Kind = BootstrapKind.Nonparametric
            Level = 0.95
            Seed = 1L
            FromFit = true
            Parallelism = Environment.ProcessorCount
        }

    /// Whether the model's noise levels are parameters of a fit with this configuration.
    let private levelsFitted (model: MoeModel) (config: FitConfig) =
        ExpertFamily.hasLevels model.Family && config.Sigma.IsNone

    /// <summary>The parameters' names in the order of <c>parameterValues</c>: a{i}[column] and b{i} for expert i's
    /// coefficients and intercept, w{j}[column] and c{j} for the gate's rows j = 1..k−1 (expert k is the reference,
    /// w_k = 0), sigma{i} for the noise levels — a column by the data's name when the model records it, else by its
    /// position (1, 2, …).</summary>
    /// <param name="model">The model.</param>
    /// <param name="levels">Whether the noise levels are among the parameters.</param>
    [<CompiledName("ParameterNames")>]
    let parameterNames (model: MoeModel) (levels: bool) : string[] =
        let column (names: string[] option) (t: int) =
            match names with
            | Some n when t < n.Length -> n.[t]
            | _ -> string (t + 1)

        // String concatenation, not sprintf: the native CLI (AOT) cannot build printf's generic closures.
        let k = model.Experts

        [|
            for i in 0 .. k - 1 do
                for t in 0 .. model.ExpertDimension - 1 ->
                    "a" + string (i + 1) + "[" + column model.Design.ExpertNames t + "]"

                if model.HasIntercepts then
                    yield "b" + string (i + 1)
            for j in 0 .. k - 2 do
                for t in 0 .. model.GateDimension - 1 ->
                    "w" + string (j + 1) + "[" + column model.Design.GateNames t + "]"

                if model.HasIntercepts then
                    yield "c" + string (j + 1)
            if levels then
                for i in 0 .. k - 1 -> "sigma" + string (i + 1)
        |]

    /// The one order of a model's parameters (parameterNames'): each expert's coefficients then intercept, each free
    /// gate row's then its intercept, then the levels — read from arrays of the model's shapes (its values, or errors).
    let private inOrder
        (model: MoeModel)
        (levels: bool)
        (regressors: float[,])
        (regressorIntercepts: float[])
        (gating: float[,])
        (gatingIntercepts: float[])
        (sigmas: float[])
        =
        let k = model.Experts

        [|
            for i in 0 .. k - 1 do
                for t in 0 .. model.ExpertDimension - 1 -> regressors.[i, t]

                if model.HasIntercepts then
                    yield regressorIntercepts.[i]
            for j in 0 .. k - 2 do
                for t in 0 .. model.GateDimension - 1 -> gating.[j, t]

                if model.HasIntercepts then
                    yield gatingIntercepts.[j]
            if levels then
                yield! sigmas
        |]

    /// <summary>The parameters' values in the data's units, in the order of <c>parameterNames</c>.</summary>
    /// <param name="model">The model.</param>
    /// <param name="levels">Whether the noise levels are among the parameters.</param>
    [<CompiledName("ParameterValues")>]
    let parameterValues (model: MoeModel) (levels: bool) : float[] =
        inOrder model levels model.Regressors model.RegressorIntercepts model.Gating model.GatingIntercepts model.Sigmas

    /// <summary>A fit's Wald standard errors in the order of <c>parameterNames</c> (σ_i's by the delta method, as
    /// <c>StandardErrors.Sigmas</c>): what a table of every parameter lists beside the estimates.</summary>
    /// <param name="model">The model the errors are of.</param>
    /// <param name="errors">Its standard errors (<c>Inference.standardErrorsOf</c>).</param>
    /// <param name="levels">Whether the noise levels are among the parameters.</param>
    [<CompiledName("ParameterErrors")>]
    let parameterErrors (model: MoeModel) (errors: StandardErrors) (levels: bool) : float[] =
        Guard.notNull "errors" (box errors)

        inOrder
            model
            levels
            errors.Regressors
            errors.RegressorIntercepts
            errors.Gating
            errors.GatingIntercepts
            errors.Sigmas

    /// The minimum-cost perfect matching of a square cost matrix (the Hungarian method, O(k³)): row j → column.
    let internal hungarian (cost: float[,]) : int[] =
        let n = cost.GetLength 0
        let u = Array.zeroCreate (n + 1)
        let v = Array.zeroCreate (n + 1)
        let owner = Array.zeroCreate (n + 1)
        let way = Array.zeroCreate (n + 1)

        for i in 1..n do
            owner.[0] <- i
            let mutable j0 = 0
            let minv = Array.create (n + 1) Double.PositiveInfinity
            let used = Array.zeroCreate (n + 1)
            let mutable running = true

            while running do
                used.[j0] <- true
                let i0 = owner.[j0]
                let mutable delta = Double.PositiveInfinity
                let mutable j1 = 0

                for j in 1..n do
                    if not used.[j] then
                        let current = cost.[i0 - 1, j - 1] - u.[i0] - v.[j]

                        if current < minv.[j] then
                            minv.[j] <- current
                            way.[j] <- j0

                        if minv.[j] < delta then
                            delta <- minv.[j]
                            j1 <- j

                for j in 0..n do
                    if used.[j] then
                        u.[owner.[j]] <- u.[owner.[j]] + delta
                        v.[j] <- v.[j] - delta
                    else
                        minv.[j] <- minv.[j] - delta

                j0 <- j1
                running <- owner.[j0] <> 0

            while j0 <> 0 do
                let j1 = way.[j0]
                owner.[j0] <- owner.[j1]
                j0 <- j1

        let order = Array.zeroCreate n

        for j in 1..n do
            order.[owner.[j] - 1] <- j - 1

        order

    /// <summary>Runs replicates 0..b−1 on up to <paramref name="parallelism"/> threads (the bootstrap's and the test of
    /// k's one loop): each either completes or records the message of an expected failure — a fit that went non-finite,
    /// a refused argument, an invalid operation — which leaves its replicate out; every end is counted to
    /// <paramref name="progress"/>; cancellation or an unexpected exception ends the run with that exception,
    /// unwrapped from the parallel loop's.</summary>
    /// <returns>Per replicate, "" or the message of its failure.</returns>
    let internal runReplicates
        (b: int)
        (parallelism: int)
        (cancellation: CancellationToken)
        (progress: int -> unit)
        (body: int -> unit)
        : string[] =
        let failures = Array.create b ""
        let completed = [| 0 |]

        let run (r: int) =
            cancellation.ThrowIfCancellationRequested()

            try
                body r
            with
            | :? OperationCanceledException -> reraise ()
            | :? NonFiniteException as e -> failures.[r] <- e.Message
            | :? ArgumentException as e -> failures.[r] <- e.Message
            | :? InvalidOperationException as e -> failures.[r] <- e.Message

            progress (Interlocked.Increment(&completed.[0]))

        try
            Parallel.For(
                0,
                b,
                ParallelOptions(MaxDegreeOfParallelism = parallelism, CancellationToken = cancellation),
                fun r -> run r
            )
            |> ignore
        with :? AggregateException as e ->
            Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions.[0]).Throw()

        failures

    /// <summary>Matches a replicate's experts to the original fit's (docs/inference.md §2.2). With τ_rj and τ*_ri the
    /// original's and the replicate's memberships of row r (the posterior probabilities of the experts given x_r and
    /// y_r), the cost of matching replicate expert i to original expert j is
    /// C_ij = Σ_r w_r τ_rj (log τ_rj − log τ*_ri) / Σ_r w_r, and the matching minimises Σ_j C_{π(j) j}: exactly over
    /// the k! matchings for k ≤ 8, by the Hungarian method beyond (the next best then taken among the best's
    /// transpositions). Ambiguous when the next best costs less than twice the best.</summary>
    /// <param name="original">The original fit.</param>
    /// <param name="replicate">A fit of the same kind (same k, family and design).</param>
    /// <param name="data">The rows whose memberships are compared (the original fit's).</param>
    /// <exception cref="T:System.ArgumentException">The models differ in k or design, or the data do not fit
    /// them.</exception>
    [<CompiledName("Align")>]
    let align (original: MoeModel) (replicate: MoeModel) (data: Dataset) : Alignment =
        Guard.notNull "data" (box data)

        if
            original.Experts <> replicate.Experts
            || not (Design.same original.Design replicate.Design)
        then
            invalidArg
                "replicate"
                (Text.format
                    "The replicate (k = %d, %s) is not of the original fit's kind (k = %d, %s)."
                    [|
                        box replicate.Experts
                        box replicate.Design
                        box original.Experts
                        box original.Design
                    |])

        let k = original.Experts
        let tau = MoeModel.responsibilities original data.X data.Y
        let tauStar = MoeModel.responsibilities replicate data.X data.Y
        // A membership that underflows to 0 costs what e^-690 would: finite, and far above any real one.
        let safeLog (p: float) = Math.Log(max p 1e-300)
        let cost = Array2D.zeroCreate k k
        let total = data.Weight

        for r in 0 .. data.Count - 1 do
            let w = data.WeightOf r

            if w > 0.0 then
                for j in 0 .. k - 1 do
                    let t = tau.[r, j]

                    if t > 0.0 then
                        let lt = safeLog t

                        for i in 0 .. k - 1 do
                            cost.[i, j] <- cost.[i, j] + w * t * (lt - safeLog tauStar.[r, i])

        for i in 0 .. k - 1 do
            for j in 0 .. k - 1 do
                cost.[i, j] <- cost.[i, j] / total

        let costOf (order: int[]) =
            let mutable s = 0.0

            for j in 0 .. k - 1 do
                s <- s + cost.[order.[j], j]

            s

        let order, best, runnerUp =
            if k <= 8 then
                let scored =
                    Metrics.permutations [ 0 .. k - 1 ]
                    |> List.map (fun p ->
                        let order = List.toArray p
                        order, costOf order)
                    |> List.sortBy snd

                match scored with
                | (order, c) :: (_, next) :: _ -> order, c, next
                | [ (order, c) ] -> order, c, Double.PositiveInfinity
                | [] -> [||], 0.0, Double.PositiveInfinity
            else
                // hungarian matches rows to columns: rows the original's experts, columns the replicate's.
                let order = hungarian (Array2D.init k k (fun j i -> cost.[i, j]))

                let next =
                    seq {
                        for a in 0 .. k - 1 do
                            for b in a + 1 .. k - 1 do
                                let swapped = Array.copy order
                                swapped.[a] <- order.[b]
                                swapped.[b] <- order.[a]
                                yield costOf swapped
                    }
                    |> Seq.min

                order, costOf order, next

        {
            Order = order
            Cost = best
            RunnerUp = runnerUp
            Ambiguous = runnerUp < 2.0 * best
        }

    /// Replicate b's rows: the counts of n draws (Σ w units of weighted rows), or the responses drawn from the fit.
    let private replicateData (model: MoeModel) (data: Dataset) (kind: BootstrapKind) (rng: Xoshiro256StarStar) =
        match kind with
        | BootstrapKind.Parametric ->
            let y = Sampler.responsesAt model data.X (int64 (rng.NextUInt64()))

            {
                X = data.X
                Y = y
                Weights = data.Weights
            }
        | BootstrapKind.Nonparametric ->
            let n = data.Count
            let counts = Array.zeroCreate<float> n

            if not data.IsWeighted then
                for _ in 1..n do
                    let r = rng.NextInt n
                    counts.[r] <- counts.[r] + 1.0
            else
                // Σ w units, each row drawn with probability w_r / Σ w (by its cumulative weight).
                let cumulative = Array.scan (+) 0.0 data.Weights
                let total = cumulative.[n]
                let units = max 1 (int (Math.Round total))

                for _ in 1..units do
                    let u = rng.NextDouble() * total
                    // The row r with cumulative[r] ≤ u < cumulative[r + 1].
                    let mutable lo, hi = 0, n - 1

                    while lo < hi do
                        let mid = (lo + hi + 1) / 2
                        if cumulative.[mid] <= u then lo <- mid else hi <- mid - 1

                    counts.[lo] <- counts.[lo] + 1.0

            {
                X = data.X
                Y = data.Y
                Weights = counts
            }

    /// R's quantile type 7 of sorted values: linear between the order statistics at (m − 1)p.
    let private quantile (sorted: float[]) (p: float) =
        let h = float (sorted.Length - 1) * p
        let lo = int (Math.Floor h)
        let hi = min (lo + 1) (sorted.Length - 1)
        sorted.[lo] + (h - float lo) * (sorted.[hi] - sorted.[lo])

    /// <summary>Runs the bootstrap of a fitted model (docs/inference.md §2.2): for b = 1..B, the replicate's rows
    /// (resampled, or responses drawn from <paramref name="model"/>), its fit (from <paramref name="model"/>, or from
    /// the configuration's initializers), its experts matched to the model's (<c>align</c>) and relabelled, its
    /// parameters recorded; then each parameter's standard deviation over the replicates, and its percentile and basic
    /// intervals at the level.</summary>
    /// <param name="config">The configuration the model was fitted with (its k, family, activation, design,
    /// intercepts, σ).</param>
    /// <param name="model">The fitted model.</param>
    /// <param name="data">The rows it was fitted to (weighted rows as frequency weights).</param>
    /// <param name="settings">B, the kind, the level, the seed, the starts and the parallelism.</param>
    /// <param name="cancellation">Checked by every replicate's fit.</param>
    /// <param name="progress">Called with the number of replicates done (from the thread that finished one).</param>
    /// <exception cref="T:System.ArgumentException">Settings out of range, a model that does not match the
    /// configuration or the data.</exception>
    /// <exception cref="T:MoE.Core.NonFiniteException">Every replicate failed (the message gives the first
    /// reason).</exception>
    /// <exception cref="T:System.OperationCanceledException">The token was cancelled.</exception>
    [<CompiledName("Run")>]
    let run
        (config: FitConfig)
        (model: MoeModel)
        (data: Dataset)
        (settings: BootstrapSettings)
        (cancellation: CancellationToken)
        (progress: int -> unit)
        : BootstrapResult =
        Guard.notNull "model" (box model)
        Guard.notNull "data" (box data)
        FitConfig.validate config
        Dataset.validate data
        MoeModel.validate model
        ModelRows.checkLikelihoodInputs model data.X data.Y

        if settings.Replicates < 2 then
            invalidArg
                "settings"
                (Text.format "A bootstrap needs at least 2 replicates, but B = %d." [| box settings.Replicates |])

        if not (settings.Level > 0.0 && settings.Level < 1.0) then
            invalidArg
                "settings"
                (Text.format "The intervals' level must be in (0, 1), but is %g." [| box settings.Level |])

        Guard.positiveInt "Parallelism" settings.Parallelism
        let levels = levelsFitted model config
        let names = parameterNames model levels
        let estimates = parameterValues model levels
        let p = names.Length
        let b = settings.Replicates
        let values = Array2D.create b p nan
        let orders = Array.create b [||]
        let ambiguous = Array.zeroCreate<bool> b

        let context =
            { RunContext.silent with
                Cancellation = cancellation
            }

        let replicate (r: int) =
            let rng = Rng.stream settings.Seed (int64 r)
            let rows = replicateData model data settings.Kind rng

            let fit =
                if settings.FromFit then
                    Learner.fitFrom config model rows context
                else
                    Learner.fit
                        { config with
                            Seed = int64 (rng.NextUInt64() >>> 1)
                        }
                        rows
                        context

            let alignment = align model fit.Model data
            let aligned = MoeModel.relabel alignment.Order fit.Model
            let v = parameterValues aligned levels

            for t in 0 .. p - 1 do
                values.[r, t] <- v.[t]

            orders.[r] <- alignment.Order
            ambiguous.[r] <- alignment.Ambiguous

        let failures = runReplicates b settings.Parallelism cancellation progress replicate

        let used = Array.init b id |> Array.filter (fun r -> failures.[r] = "")
        let failed = b - used.Length

        let firstFailure =
            failures |> Array.tryFind (fun f -> f <> "") |> Option.defaultValue ""

        if used.Length < 2 then
            raise (
                NonFiniteException(
                    Stage.Em,
                    0,
                    nan,
                    Text.format
                        "%d of the %d bootstrap replicates failed to fit, which leaves too few for intervals; the first failure: %s"
                        [| box failed; box b; box firstFailure |]
                )
            )

        let alpha = 1.0 - settings.Level

        let column (t: int) =
            used |> Array.map (fun r -> values.[r, t]) |> Array.sort

        let sorted = Array.init p column

        let sd (v: float[]) =
            let m = Array.average v
            sqrt (Array.sumBy (fun x -> (x - m) * (x - m)) v / float (v.Length - 1))

        let lower = sorted |> Array.map (fun v -> quantile v (alpha / 2.0))
        let upper = sorted |> Array.map (fun v -> quantile v (1.0 - alpha / 2.0))

        {
            Names = names
            Estimates = estimates
            Replicates = values
            StandardErrors = sorted |> Array.map sd
            PercentileLower = lower
            PercentileUpper = upper
            BasicLower = Array.init p (fun t -> 2.0 * estimates.[t] - upper.[t])
            BasicUpper = Array.init p (fun t -> 2.0 * estimates.[t] - lower.[t])
            Level = settings.Level
            Kind = settings.Kind
            Used = used.Length
            Failed = failed
            FirstFailure = firstFailure
            Ambiguous = used |> Array.filter (fun r -> ambiguous.[r]) |> Array.length
            Orders = orders
        }
