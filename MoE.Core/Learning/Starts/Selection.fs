namespace MoE.Core

open System
open System.Diagnostics

/// <summary>One candidate of a fit: which initializer proposed it and how it fared on the screening rows.</summary>
type Candidate =
    {
        /// The initializer: spectral, l4, l4-whitened, subspace-start-i, random-start-i.
        Initializer: string
        /// The screened model, or why the candidate failed (an initializer that failed, a start that diverged).
        Outcome: Result<MoeModel, string>
        /// The mean log-likelihood per row that ranks the candidate (−∞ for a failure): of the screened model on the
        /// held-out validation rows, or, when <c>AllRows</c>, of the converged model on every row.
        LogLikelihood: float
        /// Whether the candidate ran to convergence on every row and is scored there (small data: docs/learners.md),
        /// not screened on a subsample and scored on held-out rows.
        AllRows: bool
        /// EM maps the candidate ran on the screening rows (successive halving gives the better ones more).
        ScreeningMaps: int
        /// Seconds spent on the candidate (start and screening).
        Seconds: float
    }

/// <summary>
/// Several starts, one choice: each proposal becomes a start model (signs by vote when the initializer does not know
/// them, W = 0, scales fitted), runs a short accelerated EM on a seeded screening subsample, and is scored by its
/// mean log-likelihood on held-out validation rows — or on the screening rows themselves when the data have no rows
/// to spare. The budget is spent by successive halving (Jamieson and Talwalkar 2016): every candidate gets a sixth of
/// it, the better half a third more, the best two the rest, so the finalists get the whole budget at half the cost of
/// giving it to all. Every candidate has the same number of parameters, so the likelihood needs no penalty; held out, it
/// cannot reward a candidate for fitting the screening rows' noise. A failure is recorded, not raised.
/// </summary>
[<RequireQualifiedAccess>]
module Selection =

    /// <summary>The screening and validation rows of a source: disjoint seeded samples (Floyd's algorithm on the
    /// seed's screening stream, the first <c>ScreeningRows</c> drawn to screening, each set in row order), collected in
    /// one pass; or every row for both when n is at most the screening size.</summary>
    /// <param name="settings">The sizes.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="source">The data.</param>
    /// <returns>The screening rows and the validation rows.</returns>
    [<CompiledName("SplitOf")>]
    let splitOf (settings: SelectionSettings) (seed: int64) (source: DataSource) : Dataset * Dataset =
        let n = source.Rows

        if n <= int64 settings.ScreeningRows then
            let all = DataSource.load source
            all, all
        else
            let take = int (min n (int64 (settings.ScreeningRows + settings.ValidationRows)))
            let drawn = Sampling.positions n take seed Streams.Screening
            let screening = Array.sort drawn.[.. settings.ScreeningRows - 1]
            let validation = Array.sort drawn.[settings.ScreeningRows ..]
            let rows = DataSource.gather source (Array.append screening validation)
            let s, v = screening.Length, validation.Length

            Dataset.slice 0 s rows, Dataset.slice s v rows

    /// <summary>The screening and validation rows of data in memory (<c>splitOf</c>).</summary>
    /// <param name="settings">The sizes.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>(screening x, screening y), (validation x, validation y).</returns>
    [<CompiledName("Split")>]
    let split (settings: SelectionSettings) (seed: int64) (x: float[,]) (y: float[]) =
        let screening, validation =
            splitOf settings seed (DataSource.ofDataset { X = x; Y = y; Weights = null })

        (screening.X, screening.Y), (validation.X, validation.Y)

    /// <summary>The start model of a proposal on the screening rows: unit directions with their signs (voted when
    /// unknown) and fitted scales, no intercepts, W = 0, σ = <paramref name="sigma"/>; or the proposal's own model.</summary>
    /// <param name="proposal">The proposal.</param>
    /// <param name="activation">g.</param>
    /// <param name="sigma">The start's σ &gt; 0.</param>
    /// <param name="x">Screening inputs.</param>
    /// <param name="y">Screening responses.</param>
    /// <param name="seed">The seed of the sign vote's subsample.</param>
    /// <param name="context">Cancellation.</param>
    [<CompiledName("StartModel")>]
    let startModel
        (proposal: Proposal)
        (activation: Activation)
        (sigma: float)
        (x: float[,])
        (y: float[])
        (seed: int64)
        (context: RunContext)
        : MoeModel =
        match proposal.Start with
        | Start.Model m -> m
        | Start.Directions(directions, signsKnown) ->
            let k, d = directions.GetLength 0, directions.GetLength 1

            let signed =
                if signsKnown then
                    directions
                else
                    (Signs.vote directions activation sigma x y y.Length seed { context with Progress = ignore }).Value

            Scales.fit (MoeModel.create signed (Array2D.zeroCreate (k - 1) d) activation sigma) x y

    /// <summary>Whether two models are the same up to the order of the experts: every expert (a_i, b_i) of one has an
    /// unused partner in the other within <paramref name="tolerance"/> × the larger model's largest expert norm
    /// (greedy matching, nearest first). Screening uses it to stop spending maps on two starts that have reached one
    /// basin.</summary>
    /// <param name="tolerance">The relative distance, e.g. 1e-2.</param>
    /// <param name="a">One model.</param>
    /// <param name="b">Another of the same shape.</param>
    [<CompiledName("SameModel")>]
    let sameModel (tolerance: float) (a: MoeModel) (b: MoeModel) : bool =
        let k, d = a.Experts, a.ExpertDimension

        let expert (m: MoeModel) i =
            Array.append (Array.init d (fun t -> m.Regressors.[i, t])) [| m.RegressorIntercepts.[i] |]

        let ea, eb = Array.init k (expert a), Array.init k (expert b)
        let norm (v: float[]) = sqrt (Array.sumBy (fun x -> x * x) v)
        let scale = Array.append ea eb |> Array.map norm |> Array.max
        let used = Array.zeroCreate k

        scale > 0.0
        && ea
           |> Array.forall (fun u ->
               let j =
                   [| 0 .. k - 1 |]
                   |> Array.filter (fun j -> not used.[j])
                   |> Array.minBy (fun j -> norm (Array.map2 (-) u eb.[j]))

               used.[j] <- true
               norm (Array.map2 (-) u eb.[j]) <= tolerance * scale)

    /// <summary>The screened candidates the held-out rows cannot tell from the best (docs/learners.md, step 5): the
    /// best, then up to <paramref name="challengers"/> others, best first, each a different model from those already
    /// taken (<c>sameModel</c>) whose mean held-out log-likelihood per row trails the best's by less than two standard
    /// errors of the paired per-row difference. Between two models the per-row difference of the log-likelihood has a
    /// standard deviation of hundredths to tenths of a nat, so 20,000 held-out rows resolve ~1e-3 nats per row, while a
    /// maximum 186 nats better on 1,000,000 rows is 1.9e-4 per row ahead (a Bernoulli fit, measured: the screening
    /// ranked its start fourth): screening alone cannot see it, a climb on every row can.</summary>
    /// <param name="settings">The screening sizes and the duplicate tolerance.</param>
    /// <param name="seed">The seed of the split (the screening's).</param>
    /// <param name="source">The data.</param>
    /// <param name="candidates">The screened candidates, best first.</param>
    /// <param name="challengers">How many others at most.</param>
    /// <returns>The best candidate and its unresolved challengers, with their screened models.</returns>
    [<CompiledName("Unresolved")>]
    let unresolved
        (settings: SelectionSettings)
        (seed: int64)
        (source: DataSource)
        (candidates: Candidate[])
        (challengers: int)
        : (Candidate * MoeModel)[] =
        let ranked =
            candidates
            |> Array.choose (fun c ->
                match c.Outcome with
                | Ok m when Double.IsFinite c.LogLikelihood -> Some(c, m)
                | _ -> None)

        if ranked.Length <= 1 || challengers <= 0 then
            Array.truncate 1 ranked
        else
            let _, validation = splitOf settings seed source

            let perRow (m: MoeModel) =
                MoeModel.logLikelihoods m validation.X validation.Y

            let best = perRow (snd ranked.[0])
            let weights = Array.init validation.Count validation.WeightOf
            let total = Array.sum weights
            // Kish's effective number of rows: the weights' (Σw)²/Σw² (n without weights).
            let effective = total * total / Array.sumBy (fun w -> w * w) weights
            let kept = ResizeArray [ ranked.[0] ]

            for c, m in ranked.[1..] do
                if
                    kept.Count <= challengers
                    && not (kept |> Seq.exists (fun (_, k) -> sameModel settings.DuplicateTolerance k m))
                then
                    let l = perRow m
                    let d = Array.init best.Length (fun r -> best.[r] - l.[r])
                    let mean = (Array.map2 (*) weights d |> Array.sum) / total

                    let variance =
                        (Array.map2 (fun w v -> w * (v - mean) * (v - mean)) weights d |> Array.sum)
                        / total

                    if mean < 2.0 * sqrt (variance / effective) then
                        kept.Add((c, m))

            kept.ToArray()

    /// The successive-halving budgets of a total: a sixth, a third and a half (the finalists get the total), or the
    /// total at once when it is under 6 maps.
    let private rounds (total: int) : int[] =
        if total < 6 then
            [| total |]
        else
            let a, b = total / 6, total / 3
            [| a; b; total - a - b |]

    /// <summary>Screens every proposal and returns the candidates, best first.</summary>
    /// <param name="proposals">The initializers' proposals, or their failures (with the initializer's name).</param>
    /// <param name="activation">g.</param>
    /// <param name="sigma">The start's σ for the directions' start models.</param>
    /// <param name="em">The EM settings (the budget is the screening budget).</param>
    /// <param name="settings">The screening sizes.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="source">The data (the screening and validation rows are drawn from it).</param>
    /// <param name="context">Progress (one report per screening run, loss −validation log-likelihood per row) and
    /// cancellation.</param>
    /// <returns>The candidates, best first: those screened longest by validation log-likelihood, then those halved
    /// away earlier, failures last.</returns>
    [<CompiledName("Screen")>]
    let screen
        (proposals: Result<Proposal, string * string>[])
        (activation: Activation)
        (sigma: float)
        (em: EmSettings)
        (settings: SelectionSettings)
        (seed: int64)
        (source: DataSource)
        (context: RunContext)
        : Candidate[] =
        let screening, validation = splitOf settings seed source
        // The drawn rows keep their weights (docs/math.md §13): the screening EM and the held-out score weigh them.
        let screeningRows, validationRows =
            DataSource.ofDataset screening, DataSource.ofDataset validation

        let quiet = { context with Progress = ignore }
        let budgets = rounds settings.ScreeningIterations
        let mutable reports = 0

        let fail (e: exn) =
            match e with
            | :? NonFiniteException as e ->
                Error(
                    if String.IsNullOrEmpty e.Detail then
                        e.Message
                    else
                        e.Detail
                )
            | :? ArgumentException as e -> Error e.Message
            | e -> raise e

        let score (outcome: Result<MoeModel, string>) =
            match outcome with
            | Ok m ->
                let ll = LikelihoodKernel.logLikelihoodOf m validationRows / validationRows.Weight

                if Double.IsFinite ll then ll else Double.NegativeInfinity
            | Error _ -> Double.NegativeInfinity

        /// maps more EM maps for a candidate (from its proposal in the first round), then its validation score.
        let advance (maps: int) (start: unit -> MoeModel) (c: Candidate) =
            let clock = Stopwatch.StartNew()

            let outcome =
                try
                    let first = start ()
                    MoeModel.validate first
                    ModelRows.checkLikelihoodInputs first screening.X screening.Y

                    let screened =
                        (Em.runOn
                            { em with
                                MaxIterations = maps
                                Handover = 0.0
                            }
                            first
                            screeningRows
                            quiet)
                            .Value

                    Ok screened
                with e ->
                    fail e

            let value = score outcome
            reports <- reports + 1

            context.Progress
                {
                    Stage = Stage.Candidates
                    Iteration = reports
                    Loss = -value
                }

            { c with
                Outcome = outcome
                LogLikelihood = value
                ScreeningMaps = c.ScreeningMaps + maps
                Seconds = c.Seconds + clock.Elapsed.TotalSeconds
            }

        let first (proposal: Result<Proposal, string * string>) =
            match proposal with
            | Error(name, reason) ->
                {
                    Initializer = name
                    Outcome = Error reason
                    LogLikelihood = Double.NegativeInfinity
                    AllRows = false
                    ScreeningMaps = 0
                    Seconds = 0.0
                }
            | Ok p ->
                let empty =
                    {
                        Initializer = p.Initializer
                        Outcome = Error "not screened"
                        LogLikelihood = Double.NegativeInfinity
                        AllRows = false
                        ScreeningMaps = 0
                        Seconds = 0.0
                    }

                let clock = Stopwatch.StartNew()

                match
                    (try
                        Ok(startModel p activation sigma screening.X screening.Y seed quiet)
                     with e ->
                         fail e)
                with
                | Error reason ->
                    { empty with
                        Outcome = Error reason
                        Seconds = clock.Elapsed.TotalSeconds
                    }
                | Ok start ->
                    let c = advance budgets.[0] (fun () -> start) empty

                    { c with
                        Seconds = clock.Elapsed.TotalSeconds
                    }

        let best (cs: Candidate[]) =
            cs |> Array.sortByDescending (fun c -> c.LogLikelihood)

        /// The candidates worth more maps: best first, without one whose screened model is the same as a better
        /// one's (sameModel) — two starts that reached one basin would spend the next budget twice on one climb.
        let distinct (cs: Candidate[]) =
            let kept = ResizeArray<Candidate>()

            for c in cs do
                match c.Outcome with
                | Ok m when
                    kept
                    |> Seq.exists (fun k ->
                        match k.Outcome with
                        | Ok other -> sameModel settings.DuplicateTolerance other m
                        | Error _ -> false)
                    ->
                    ()
                | _ -> kept.Add c

            kept.ToArray()

        // Successive halving: every candidate gets the first budget, the better half (at least one) of the survivors
        // the next, and so on; the finalists end with the whole budget.
        let mutable ranked = proposals |> Array.map first |> best

        let mutable alive =
            ranked |> Array.filter (fun c -> Double.IsFinite c.LogLikelihood) |> distinct

        for budget in Array.tail budgets do
            if alive.Length > 1 then
                let keep = (alive.Length + 1) / 2

                let advanced =
                    alive
                    |> Array.take keep
                    |> Array.map (fun c ->
                        match c.Outcome with
                        | Ok m -> advance budget (fun () -> m) c
                        | Error _ -> c)
                    |> best

                let names = advanced |> Array.map (fun c -> c.Initializer) |> Set.ofArray

                ranked <- Array.append advanced (ranked |> Array.filter (fun c -> not (names.Contains c.Initializer)))

                alive <- advanced |> Array.filter (fun c -> Double.IsFinite c.LogLikelihood) |> distinct

        ranked
