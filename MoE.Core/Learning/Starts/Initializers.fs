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
    /// the design's columns, σ given, and with
    /// intercepts b_i ~ N(0, 1) (in standardised units y has unit scale, so the experts start at different levels —
    /// with d = 1 the slopes alone hardly tell the experts apart) and c = 0.</summary>
    /// <param name="family">The experts' family.</param>
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

            let b =
                if intercepts then
                    Array.init experts (fun _ -> rng.NextGaussian())
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
                            (Array.create experts sigma)
                    )
            })
