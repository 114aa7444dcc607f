namespace MoE.Core

open System

/// <summary>Where a candidate fit starts.</summary>
[<RequireQualifiedAccess>]
type Start =
    /// k unit directions (rows) from a moment method, and whether their signs are already known.
    | Directions of directions: float[,] * signsKnown: bool
    /// A whole model (a random start of EM).
    | Model of MoeModel

/// <summary>A start proposed by an initializer, named after it.</summary>
type Proposal =
    {
        /// The initializer: l4, l4-whitened, spectral, subspace-start-i, random-start-i.
        Initializer: string
        /// The start.
        Start: Start
    }

/// <summary>
/// The initializers (docs/learners.md, docs/math.md §6): pure functions from the moment statistics (or the data's
/// shape) to starts. A moment initializer fails with a reason instead of an exception; the caller records it and
/// goes on with the others.
/// </summary>
[<RequireQualifiedAccess>]
module Initializers =

    /// Unit rows of (U·B)ᵀ for a k×k basis B in U's coordinates (columns are the components).
    let private fromSubspace (u: float[,]) (b: float[,]) : float[,] =
        let d, r = u.GetLength 0, u.GetLength 1
        let k = b.GetLength 1

        let rows =
            Array.init k (fun i ->
                let v =
                    Array.init d (fun t -> Seq.sum (seq { for a in 0 .. r - 1 -> u.[t, a] * b.[a, i] }))

                let norm = sqrt (Dense.dot v v)
                v |> Array.map (fun x -> x / norm))

        array2D rows

    /// <summary>The paper's L4 in the moment subspace (L-BFGS with restarts) and its dual-basis directions.</summary>
    /// <param name="moments">The subspace moments.</param>
    /// <param name="settings">Weights and restarts.</param>
    /// <param name="experts">k.</param>
    /// <param name="seed">The seed of the restarts.</param>
    /// <param name="context">Progress and cancellation.</param>
    /// <returns>The proposal, or why L4 failed (unbounded below, collapsed).</returns>
    [<CompiledName("L4")>]
    let l4
        (moments: SubspaceMoments)
        (settings: SubspaceSettings)
        (experts: int)
        (seed: int64)
        (context: RunContext)
        : Result<Proposal, string> =
        try
            let a =
                (SubspaceL4.solve moments settings.Weights experts settings.Restarts seed context).Value

            Ok
                {
                    Initializer = "l4"
                    Start = Start.Directions(Directions.ofL4Solution a, false)
                }
        with :? NonFiniteException as e ->
            Error e.Detail

    /// Whitens T2/c' (k×k, U coordinates), decomposes the tensor of the given order in whitened coordinates and maps
    /// the components back to unit directions.
    let private whitenedDecomposition
        (name: string)
        (order: int)
        (tensor: float[])
        (moments: SubspaceMoments)
        (experts: int)
        (seed: int64)
        : Result<Proposal, string> =
        let p = moments.Projected
        let r = p.Rank

        if r <> experts then
            Error(Text.format "the moment subspace has rank %d, not k = %d" [| box r; box experts |])
        else
            let m2 = Array2D.init r r (fun a b -> p.T2.[a * r + b] / p.CPrime)

            TensorPower.whiten m2
            |> Result.bind (fun (w, back) ->
                let whitened = TensorPower.transform order r tensor w

                TensorPower.decompose order r whitened experts 10 50 seed
                |> Result.map (fun components ->
                    let b =
                        Array2D.init r experts (fun a i ->
                            Seq.sum (seq { for c in 0 .. r - 1 -> back.[a, c] * components.[i].Vector.[c] }))

                    {
                        Initializer = name
                        Start = Start.Directions(fromSubspace p.Basis b, (order = 3))
                    }))
            |> Result.mapError (fun reason -> Text.format "%s: %s" [| box name; box reason |])

    /// <summary>The fourth-order moments decomposed by the whitened tensor power method: L4's information without its
    /// failure modes (no unbounded direction on the unit sphere; deflation cannot collapse two experts).</summary>
    /// <param name="moments">The subspace moments (rank k).</param>
    /// <param name="experts">k.</param>
    /// <param name="seed">The seed of the power iterations.</param>
    /// <returns>The proposal (signs unknown: the tensor is even), or why it failed.</returns>
    [<CompiledName("L4Whitened")>]
    let l4Whitened (moments: SubspaceMoments) (experts: int) (seed: int64) : Result<Proposal, string> =
        let p = moments.Projected
        whitenedDecomposition "l4-whitened" 4 (p.T4 |> Array.map (fun v -> v / p.C)) moments experts seed

    /// <summary>The spectral method of Makkuva, Oh, Kannan and Viswanath (ICML 2019): the third-order moment
    /// mean(S3(y)·S3(x)), whitened by the second-order one and decomposed by the tensor power method
    /// (docs/math.md §6.7). The third order is odd, so the signs come with the directions.</summary>
    /// <param name="moments">The subspace moments (rank k, with the third-order moment).</param>
    /// <param name="experts">k.</param>
    /// <param name="seed">The seed of the power iterations.</param>
    /// <returns>The proposal (signs known), or why it failed.</returns>
    [<CompiledName("Spectral")>]
    let spectral (moments: SubspaceMoments) (experts: int) (seed: int64) : Result<Proposal, string> =
        moments.Third
        |> Result.mapError (fun reason -> Text.format "spectral: %s" [| box reason |])
        |> Result.bind (fun t3 -> whitenedDecomposition "spectral" 3 t3 moments experts seed)

    /// <summary>Random orthonormal frames of the moment subspace: k-dimensional multi-starts for the likelihood.</summary>
    /// <param name="moments">The subspace moments (basis U, d×k).</param>
    /// <param name="count">How many frames.</param>
    /// <param name="seed">The seed of the frames.</param>
    /// <returns>The proposals (signs unknown).</returns>
    [<CompiledName("SubspaceStarts")>]
    let subspaceStarts (moments: SubspaceMoments) (count: int) (seed: int64) : Proposal[] =
        let u = moments.Projected.Basis
        let r = u.GetLength 1
        let rng = Rng.stream seed Streams.SubspaceStarts

        Array.init count (fun s ->
            let g =
                MathNet.Numerics.LinearAlgebra.Matrix<float>.Build.Dense(r, r, fun _ _ -> rng.NextGaussian())

            let q = g.QR().Q

            {
                Initializer = Text.format "subspace-start-%d" [| box (s + 1) |]
                Start = Start.Directions(fromSubspace u (q.ToArray()), false)
            })

    /// <summary>Random starts in the whole space, as the EM baseline draws them: A ~ N(0, 1/d_E), W ~ N(0, 1/d_G) over
    /// the design's columns, σ given (1 for a family without levels), and with
    /// intercepts b_i ~ N(m, 1) (in standardised units y has unit scale, so the experts start at different levels —
    /// with d = 1 the slopes alone hardly tell the experts apart; m is 0 for Gaussian experts and the family's link of
    /// the responses' mean for the GLM ones) and c = 0.</summary>
    /// <param name="family">The experts' family.</param>
    /// <param name="yMean">The responses' mean in working units (where a GLM expert's intercepts start).</param>
    /// <param name="experts">k.</param>
    /// <param name="design">Which input columns the experts and the gate read.</param>
    /// <param name="activation">g.</param>
    /// <param name="sigma">The start's σ &gt; 0.</param>
    /// <param name="intercepts">Whether the experts get random intercepts.</param>
    /// <param name="count">How many starts.</param>
    /// <param name="seed">The seed: start s draws from its own stream.</param>
    /// <returns>The proposals.</returns>
    [<CompiledName("RandomStarts")>]
    let randomStarts
        (family: ExpertFamily)
        (yMean: float)
        (experts: int)
        (design: Design)
        (activation: Activation)
        (sigma: float)
        (intercepts: bool)
        (count: int)
        (seed: int64)
        : Proposal[] =
        Array.init count (fun s ->
            let rng = Rng.stream seed (Streams.emStart s)

            let dE, dG = design.ExpertColumns.Length, design.GateColumns.Length
            let a = Array2D.init experts dE (fun _ _ -> rng.NextGaussian() / sqrt (float dE))

            let w =
                Array2D.init (experts - 1) dG (fun _ _ -> rng.NextGaussian() / sqrt (float dG))

            // Intercepts about the family's link of the responses' mean (Gaussian: 0, y being standardised).
            let centre = ExpertFamily.startIntercept family yMean

            let b =
                if intercepts then
                    Array.init experts (fun _ -> centre + rng.NextGaussian())
                else
                    Array.zeroCreate experts

            {
                Initializer = Text.format "random-start-%d" [| box (s + 1) |]
                Start =
                    Start.Model(
                        MoeModel.createWith
                            design
                            family
                            a
                            b
                            w
                            (Array.zeroCreate (experts - 1))
                            activation
                            (Array.create experts (if ExpertFamily.hasLevels family then sigma else 1.0))
                    )
            })

    /// <summary>A start in the family a fit asks for: a Gaussian start (segments, samples) becomes that family's with
    /// its lines and levels kept, and Student-t's degrees of freedom are the fixed ones when the fit fixes them.</summary>
    /// <param name="family">The fit's family.</param>
    /// <param name="degreesOfFreedom">Student-t's fixed ν, or None.</param>
    /// <param name="proposal">The start.</param>
    let inFamily (family: ExpertFamily) (degreesOfFreedom: float option) (proposal: Proposal) : Proposal =
        match proposal.Start with
        | Start.Model m ->
            let m =
                if m.Family = family then
                    m
                else
                    MoeModel.withFamily family m

            let m =
                match degreesOfFreedom with
                | Some nu when family = ExpertFamily.StudentT ->
                    MoeModel.withDegreesOfFreedom (Array.create m.Experts nu) m
                | _ -> m

            { proposal with Start = Start.Model m }
        | Start.Directions _ -> proposal

    /// Least squares of y on the columns (and an intercept) over the given rows, with a ridge of 1e-8 of the Gram's
    /// trace so a segment on fewer rows than columns still gives coefficients; the residuals' rms comes with them.
    let private segmentFit (x: float[,]) (y: float[]) (columns: int[]) (intercept: bool) (rows: int[]) =
        let p = columns.Length + (if intercept then 1 else 0)

        let row (n: int) =
            Array.init p (fun t -> if t < columns.Length then x.[n, columns.[t]] else 1.0)

        let gram = Array2D.zeroCreate p p
        let rhs = Array.zeroCreate p

        for n in rows do
            let r = row n

            for a in 0 .. p - 1 do
                rhs.[a] <- rhs.[a] + r.[a] * y.[n]

                for b in 0 .. p - 1 do
                    gram.[a, b] <- gram.[a, b] + r.[a] * r.[b]

        let trace = Seq.sum (seq { for a in 0 .. p - 1 -> gram.[a, a] })

        for a in 0 .. p - 1 do
            gram.[a, a] <- gram.[a, a] + 1e-8 * max trace 1.0

        let m = MathNet.Numerics.LinearAlgebra.Matrix<float>.Build.DenseOfArray gram
        let v = MathNet.Numerics.LinearAlgebra.Vector<float>.Build.DenseOfArray rhs
        let beta = m.Cholesky().Solve(v).ToArray()

        let rss =
            rows
            |> Array.sumBy (fun n ->
                let e = y.[n] - Dense.dot (row n) beta
                e * e)

        beta, sqrt (rss / float (max rows.Length 1))

    /// <summary>Segment starts (docs/learners.md): the gate of a mixture of experts cuts its input space into regions,
    /// so start s orders the rows along a random direction u of the gate's columns, cuts them at k − 1 uniformly
    /// drawn quantiles into k contiguous segments (at least one row each), fits expert i by least squares on segment
    /// i (its σ_i the residuals' rms, at least <paramref name="sigma"/>/10), and sets a gate whose regions are those
    /// segments: logits i·α·(u·x) − α·Σ_{j&lt;i} t_j (boundaries at the cuts t_j), α = 4/sd(u·x), relative to the last
    /// expert. Random parameter draws rarely reach a narrow regime between two others (one data set of 133 rows: 100
    /// random starts to convergence found the best maximum from 7 seeds of 10); segments put an expert on every
    /// stretch. Gaussian experts only (the least-squares fit is their M-step).</summary>
    /// <param name="experts">k.</param>
    /// <param name="design">Which input columns the experts and the gate read.</param>
    /// <param name="activation">g (the fit is a least-squares start, whatever g).</param>
    /// <param name="sigma">The provisional σ &gt; 0 (a floor of σ_i/10).</param>
    /// <param name="intercepts">Whether the experts and the gate have intercepts.</param>
    /// <param name="commonSigma">Whether the experts share one level (then every σ_i is the pooled rms).</param>
    /// <param name="count">How many starts.</param>
    /// <param name="seed">The seed: start s draws from its own stream.</param>
    /// <param name="x">n×d inputs (working units).</param>
    /// <param name="y">n responses.</param>
    /// <returns>The proposals, named segment-start-s.</returns>
    [<CompiledName("SegmentStarts")>]
    let segmentStarts
        (experts: int)
        (design: Design)
        (activation: Activation)
        (sigma: float)
        (intercepts: bool)
        (commonSigma: bool)
        (count: int)
        (seed: int64)
        (x: float[,])
        (y: float[])
        : Proposal[] =
        let n = y.Length
        let k = experts
        let gateColumns, expertColumns = design.GateColumns, design.ExpertColumns
        let dG = gateColumns.Length

        Array.init count (fun s ->
            let rng = Rng.stream seed (Streams.segmentStart s)
            let raw = Array.init dG (fun _ -> rng.NextGaussian())
            let norm = sqrt (Dense.dot raw raw)
            let u = raw |> Array.map (fun v -> v / norm)

            let t =
                Array.init n (fun r -> Seq.sum (seq { for c in 0 .. dG - 1 -> u.[c] * x.[r, gateColumns.[c]] }))

            let order = Array.init n id |> Array.sortBy (fun r -> t.[r], r)
            // k − 1 distinct cut positions in 1 .. n − 1: uniform order statistics, at least one row per segment.
            let cuts =
                Array.init (k - 1) (fun _ -> rng.NextDouble())
                |> Array.sort
                |> Array.mapi (fun j q -> j + 1 + int (q * float (n - k)))

            let bounds = Array.concat [ [| 0 |]; cuts; [| n |] ]

            let fits =
                Array.init k (fun i ->
                    segmentFit x y expertColumns intercepts order.[bounds.[i] .. bounds.[i + 1] - 1])

            let a = Array2D.init k expertColumns.Length (fun i c -> (fst fits.[i]).[c])

            let b =
                Array.init k (fun i ->
                    if intercepts then
                        (fst fits.[i]).[expertColumns.Length]
                    else
                        0.0)

            let levels = fits |> Array.map (fun (_, rms) -> max rms (sigma / 10.0))

            let sigmas =
                if commonSigma then
                    Array.create k (Gaussian.pooled levels)
                else
                    levels

            let tSd = Dense.std t
            let alpha = 4.0 / (if tSd > 0.0 then tSd else 1.0)
            // Boundary j (between segments j and j + 1) halfway between the rows on either side of the cut.
            let boundary j =
                0.5 * (t.[order.[cuts.[j] - 1]] + t.[order.[cuts.[j]]])

            let offset i =
                -alpha * Seq.sum (seq { for j in 0 .. i - 1 -> boundary j })

            // Logits relative to the last expert's: w_i = α(i − (k−1))·u, c_i = offset i − offset (k−1).
            let w = Array2D.init (k - 1) dG (fun i c -> alpha * float (i - (k - 1)) * u.[c])

            let c =
                Array.init (k - 1) (fun i -> if intercepts then offset i - offset (k - 1) else 0.0)

            {
                Initializer = Text.format "segment-start-%d" [| box (s + 1) |]
                Start = Start.Model(MoeModel.createWith design ExpertFamily.Gaussian a b w c activation sigmas)
            })

    /// <summary>Minimal-sample starts (docs/learners.md): start s gives expert i the line (hyperplane) through
    /// q = its coefficients' count of distinct rows drawn at random, σ_i the scale of the rows nearest that line
    /// (1.4826 × the ⌈n/2k⌉-th smallest absolute residual: the median of the n/k rows an expert would hold, at least
    /// <paramref name="sigma"/>/100) and a flat gate (W = 0, c = 0). A line through a regime's rows with the
    /// provisional σ would take in its neighbours and drift to a broader fit; at its own scale it keeps its rows. A regime that is not a region of the gate's space — rows on one line interleaved with others, as
    /// the tone data's y = x rows — is found when one expert's q rows all come from it (probability about the regime's
    /// share to the power q per expert and start), which random parameter draws rarely do. Gaussian experts
    /// only.</summary>
    /// <param name="experts">k.</param>
    /// <param name="design">Which input columns the experts and the gate read.</param>
    /// <param name="activation">g.</param>
    /// <param name="sigma">The provisional σ &gt; 0 (σ_i/100 is the floor of the levels).</param>
    /// <param name="intercepts">Whether the experts have intercepts.</param>
    /// <param name="commonSigma">Whether the experts share one level (then every σ_i is the rms of the experts').</param>
    /// <param name="count">How many starts.</param>
    /// <param name="seed">The seed: start s draws from its own stream.</param>
    /// <param name="x">n×d inputs (working units).</param>
    /// <param name="y">n responses.</param>
    /// <returns>The proposals, named sample-start-s.</returns>
    [<CompiledName("SampleStarts")>]
    let sampleStarts
        (experts: int)
        (design: Design)
        (activation: Activation)
        (sigma: float)
        (intercepts: bool)
        (commonSigma: bool)
        (count: int)
        (seed: int64)
        (x: float[,])
        (y: float[])
        : Proposal[] =
        let n, k = y.Length, experts
        let nearest = max 1 ((n + 2 * experts - 1) / (2 * experts))
        let columns = design.ExpertColumns
        let q = min n (columns.Length + (if intercepts then 1 else 0))

        Array.init count (fun s ->
            let rng = Rng.stream seed (Streams.sampleStart s)

            let fits =
                Array.init k (fun _ ->
                    // q distinct rows (a partial Fisher–Yates shuffle of 0 .. n − 1).
                    let pool = Array.init n id

                    for j in 0 .. q - 1 do
                        let r = j + int (rng.NextDouble() * float (n - j))
                        let t = pool.[j]
                        pool.[j] <- pool.[r]
                        pool.[r] <- t

                    fst (segmentFit x y columns intercepts pool.[.. q - 1]))

            let a = Array2D.init k columns.Length (fun i c -> fits.[i].[c])

            let b =
                Array.init k (fun i -> if intercepts then fits.[i].[columns.Length] else 0.0)

            let levels =
                Array.init k (fun i ->
                    let residuals =
                        Array.init n (fun r ->
                            abs (
                                y.[r]
                                - b.[i]
                                - Seq.sum (seq { for c in 0 .. columns.Length - 1 -> a.[i, c] * x.[r, columns.[c]] })
                            ))

                    Array.sortInPlace residuals
                    max (1.4826 * residuals.[nearest - 1]) (sigma / 100.0))

            let sigmas =
                if commonSigma then
                    Array.create k (Gaussian.pooled levels)
                else
                    levels

            {
                Initializer = Text.format "sample-start-%d" [| box (s + 1) |]
                Start =
                    Start.Model(
                        MoeModel.createWith
                            design
                            ExpertFamily.Gaussian
                            a
                            b
                            (Array2D.zeroCreate (k - 1) design.GateColumns.Length)
                            (Array.zeroCreate (k - 1))
                            activation
                            sigmas
                    )
            })
