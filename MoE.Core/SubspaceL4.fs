namespace MoE.Core

open System
open System.Numerics.Tensors
open MathNet.Numerics.LinearAlgebra

/// <summary>
/// The sums behind the Q2 moment matrix (the subspace L4 solver's first pass): Σ Q2(y)·x xᵀ (upper triangle,
/// row-major), Σ Q2(y) and the sample count. Sums merge by addition, so chunks, cores, streamed files and shards
/// all accumulate the same way (<c>MomentSums.mergeSecond</c>).
/// </summary>
type SecondMomentSums =
    {
        /// Samples accumulated.
        Count: int64
        /// Input dimension d.
        Dimension: int
        /// Σ Q2(y).
        SumQ2: float
        /// Σ Q2(y)·x_i x_j for i ≤ j (d·d, lower triangle zero).
        Sums: float[]
    }

/// <summary>
/// The sums behind the projected moments in the subspace U (the second pass): with z = Uᵀx, Σ Q4·z_iz_jz_kz_l over
/// the index quadruples of <c>Population.quads</c>, Σ Q4·z_iz_j and Σ Q2·z_iz_j (upper triangles), Σ Q4, Σ Q2.
/// </summary>
type ProjectedMomentSums =
    {
        /// Samples accumulated.
        Count: int64
        /// Subspace rank r.
        Rank: int
        /// Σ Q4·z_iz_jz_kz_l (one entry per quadruple).
        F4: float[]
        /// Σ Q4·z_iz_j (r·r, upper).
        F4z2: float[]
        /// Σ Q2·z_iz_j (r·r, upper).
        F2: float[]
        /// Σ Q4.
        F4s: float
        /// Σ Q2.
        F2s: float
    }

/// <summary>The subspace L4 solver's data: the Q2 moment matrix, its top-k eigenvectors U, and the projected
/// fourth- and second-order Hermite moments in U's coordinates.</summary>
type SubspaceMoments =
    {
        /// M2 = [mean(Q2(y) x xᵀ) − mean(Q2(y)) I]/c' (d×d), ≈ Σ_m E[p_m] a_m a_mᵀ under orthogonal gating.
        SecondMoment: float[,]
        /// The empirical moments in the subspace, in the form the population L4 uses (Basis = U, d×r).
        Projected: PopulationMoments
    }

/// <summary>
/// Accumulation of the subspace solver's moment sums: one fused pass per chunk of rows (no per-sample allocation),
/// chunks over all cores, partial sums merged in chunk order (deterministic whatever the core count). Merging is
/// addition, so merge(sums(a), sums(b)) equals sums(a ++ b) up to the rounding of a reordered sum.
/// </summary>
[<RequireQualifiedAccess>]
module MomentSums =

    /// <summary>No samples, dimension d.</summary>
    [<CompiledName("EmptySecond")>]
    let emptySecond (dimension: int) : SecondMomentSums =
        {
            Count = 0L
            Dimension = dimension
            SumQ2 = 0.0
            Sums = Array.zeroCreate (dimension * dimension)
        }

    /// <summary>The sums of two disjoint sample sets.</summary>
    [<CompiledName("MergeSecond")>]
    let mergeSecond (a: SecondMomentSums) (b: SecondMomentSums) : SecondMomentSums =
        if a.Dimension <> b.Dimension then
            invalidArg "b" (sprintf "Cannot merge sums of dimension %d and %d." a.Dimension b.Dimension)

        { a with
            Count = a.Count + b.Count
            SumQ2 = a.SumQ2 + b.SumQ2
            Sums = Array.map2 (+) a.Sums b.Sums
        }

    let private secondChunk (transform: OutputTransform) (x: float[,]) (y: float[]) (lo: int) (hi: int) =
        let d = x.GetLength 1
        let sums = Array.zeroCreate (d * d)
        let mutable sumQ2 = 0.0
        let xs = Chunks.flat x

        for row in lo .. hi - 1 do
            let q2 = transform.Q2 y.[row]
            sumQ2 <- sumQ2 + q2
            let xr = xs.Slice(row * d, d)

            for i in 0 .. d - 1 do
                let qi = q2 * xr.[i]

                if qi <> 0.0 then
                    let offset = i * d + i

                    TensorPrimitives.MultiplyAdd(
                        xr.Slice i,
                        qi,
                        ReadOnlySpan<float>(sums, offset, d - i),
                        Span<float>(sums, offset, d - i)
                    )

        {
            Count = int64 (hi - lo)
            Dimension = d
            SumQ2 = sumQ2
            Sums = sums
        }

    /// <summary>The first-pass sums of a sample matrix, in parallel chunks.</summary>
    [<CompiledName("Second")>]
    let second (transform: OutputTransform) (x: float[,]) (y: float[]) : SecondMomentSums =
        Guard.sameRows "x" x "y" y
        let n = y.Length

        if n = 0 then
            emptySecond (x.GetLength 1)
        else
            Chunks.map n (secondChunk transform x y) |> Array.reduce mergeSecond

    /// <summary>No samples, rank r.</summary>
    [<CompiledName("EmptyProjected")>]
    let emptyProjected (rank: int) : ProjectedMomentSums =
        {
            Count = 0L
            Rank = rank
            F4 = Array.zeroCreate (Population.quads rank).Length
            F4z2 = Array.zeroCreate (rank * rank)
            F2 = Array.zeroCreate (rank * rank)
            F4s = 0.0
            F2s = 0.0
        }

    /// <summary>The sums of two disjoint sample sets.</summary>
    [<CompiledName("MergeProjected")>]
    let mergeProjected (a: ProjectedMomentSums) (b: ProjectedMomentSums) : ProjectedMomentSums =
        if a.Rank <> b.Rank then
            invalidArg "b" (sprintf "Cannot merge sums of rank %d and %d." a.Rank b.Rank)

        { a with
            Count = a.Count + b.Count
            F4 = Array.map2 (+) a.F4 b.F4
            F4z2 = Array.map2 (+) a.F4z2 b.F4z2
            F2 = Array.map2 (+) a.F2 b.F2
            F4s = a.F4s + b.F4s
            F2s = a.F2s + b.F2s
        }

    let private projectedChunk
        (transform: OutputTransform)
        (u: float[,])
        (qs: struct (int * int * int * int)[])
        (x: float[,])
        (y: float[])
        (lo: int)
        (hi: int)
        =
        let d, r = u.GetLength 0, u.GetLength 1
        // Uᵀ row-major: row a is column a of U.
        let ut = Array.init (r * d) (fun idx -> u.[idx % d, idx / d])
        let f4 = Array.zeroCreate qs.Length
        let f4z2 = Array.zeroCreate (r * r)
        let f2 = Array.zeroCreate (r * r)
        let mutable f4s = 0.0
        let mutable f2s = 0.0
        let z = Array.zeroCreate r
        let zz = Array.zeroCreate (r * r)
        let xs = Chunks.flat x

        for row in lo .. hi - 1 do
            let xr = xs.Slice(row * d, d)

            for a in 0 .. r - 1 do
                z.[a] <- TensorPrimitives.Dot(ReadOnlySpan<float>(ut, a * d, d), xr)

            let q4 = transform.Q4 y.[row]
            let q2 = transform.Q2 y.[row]
            f4s <- f4s + q4
            f2s <- f2s + q2

            for i in 0 .. r - 1 do
                for j in i .. r - 1 do
                    let zij = z.[i] * z.[j]
                    zz.[i * r + j] <- zij
                    f4z2.[i * r + j] <- f4z2.[i * r + j] + q4 * zij
                    f2.[i * r + j] <- f2.[i * r + j] + q2 * zij

            for q in 0 .. qs.Length - 1 do
                let struct (i, j, k, l) = qs.[q]
                f4.[q] <- f4.[q] + q4 * zz.[i * r + j] * zz.[k * r + l]

        {
            Count = int64 (hi - lo)
            Rank = r
            F4 = f4
            F4z2 = f4z2
            F2 = f2
            F4s = f4s
            F2s = f2s
        }

    /// <summary>The second-pass sums of a sample matrix in the subspace U (d×r), in parallel chunks.</summary>
    [<CompiledName("Projected")>]
    let projected (transform: OutputTransform) (u: float[,]) (x: float[,]) (y: float[]) : ProjectedMomentSums =
        Guard.sameRows "x" x "y" y
        Guard.columns "x" (u.GetLength 0) x
        let n, r = y.Length, u.GetLength 1

        if n = 0 then
            emptyProjected r
        else
            let qs = Population.quads r
            Chunks.map n (projectedChunk transform u qs x y) |> Array.reduce mergeProjected

/// <summary>
/// The subspace L4 solver (MATH.md §5): the empirical L4 restricted to A = V·Uᵀ is an exact polynomial in V whose
/// coefficients are mean(Q4·S4(z)) and mean(Q2·S2(z)) with z = Uᵀx, so after two passes over the data every
/// evaluation costs O(k²r⁴), independent of n; L-BFGS with random restarts minimises it.
/// </summary>
[<RequireQualifiedAccess>]
module SubspaceL4 =

    /// <summary>M2 from the first-pass sums: [Σ Q2 x xᵀ/n − (Σ Q2/n) I]/c'.</summary>
    [<CompiledName("SecondMoment")>]
    let secondMoment (transform: OutputTransform) (sums: SecondMomentSums) : float[,] =
        if sums.Count = 0L then
            invalidArg "sums" "The moment sums hold no samples."

        let d = sums.Dimension
        let inv = 1.0 / float sums.Count

        let second =
            Array2D.init d d (fun i j ->
                let v =
                    (if i <= j then
                         sums.Sums.[i * d + j]
                     else
                         sums.Sums.[j * d + i])
                    * inv
                    - (if i = j then sums.SumQ2 * inv else 0.0)

                v / transform.CPrime)

        for v in Seq.cast<float> second do
            if not (Double.IsFinite v) then
                raise (NonFiniteException("l4", 0, v))

        second

    /// <summary>U: the top-<paramref name="rank"/> eigenvectors of M2 by |eigenvalue| (d×rank).</summary>
    [<CompiledName("TopSubspace")>]
    let topSubspace (second: float[,]) (rank: int) : float[,] =
        let d = second.GetLength 0

        if rank < 1 || rank > d then
            raise (ArgumentOutOfRangeException("rank", rank, sprintf "The subspace rank must be in 1..d = %d." d))

        // Eigenvectors do not change under scaling; normalising keeps the decomposition well scaled whatever y's units.
        let largest = Seq.cast<float> second |> Seq.map abs |> Seq.max

        let normalised =
            if largest > 0.0 then
                Array2D.map (fun v -> v / largest) second
            else
                second

        let evd = Matrix<float>.Build.DenseOfArray(normalised).Evd(Symmetricity.Symmetric)
        let values = evd.EigenValues |> Seq.map (fun c -> c.Real) |> Seq.toArray

        let order =
            [| 0 .. d - 1 |] |> Array.sortBy (fun i -> -abs values.[i]) |> Array.take rank

        Array2D.init d rank (fun t a -> evd.EigenVectors.[t, order.[a]])

    /// <summary>The subspace moments from M2, U and the second-pass sums.</summary>
    [<CompiledName("Assemble")>]
    let assemble
        (transform: OutputTransform)
        (second: float[,])
        (u: float[,])
        (sums: ProjectedMomentSums)
        : SubspaceMoments =
        if sums.Count = 0L then
            invalidArg "sums" "The moment sums hold no samples."

        let r = sums.Rank
        let inv = 1.0 / float sums.Count
        let qs = Population.quads r

        let upper (m: float[]) =
            Array2D.init r r (fun i j -> if i <= j then m.[i * r + j] * inv else 0.0)

        let t4 =
            Population.assembleS4 r qs (Array.map (fun v -> v * inv) sums.F4) (upper sums.F4z2) (sums.F4s * inv)

        for v in t4 do
            if not (Double.IsFinite v) then
                raise (NonFiniteException("l4", 0, v))

        let t2 =
            Array.init (r * r) (fun idx ->
                let a, b = idx / r, idx % r
                let v = if a <= b then sums.F2.[a * r + b] else sums.F2.[b * r + a]
                v * inv - (if a = b then sums.F2s * inv else 0.0))

        {
            SecondMoment = second
            Projected =
                {
                    Basis = u
                    T4 = t4
                    T2 = t2
                    GateMasses = [||]
                    // Population.l4 reads only C and C' from the coefficients.
                    Coefficients =
                        {
                            Alpha = nan
                            Beta = nan
                            Gamma = nan
                            Delta = nan
                            C = transform.C
                            CPrime = transform.CPrime
                            Q4Mean = 0.0
                            Q2Mean = 0.0
                            Sigma = nan
                        }
                }
        }

    /// <summary>M2, U (top-<paramref name="rank"/> eigenvectors of M2 by |eigenvalue|) and the projected moments,
    /// in two fused, multi-core passes over the data, for the given output transform (centred polynomial or
    /// bounded).</summary>
    [<CompiledName("Moments")>]
    let moments (transform: OutputTransform) (rank: int) (x: float[,]) (y: float[]) : SubspaceMoments =
        Guard.sameRows "x" x "y" y
        let d = x.GetLength 1

        if rank < 1 || rank > d then
            raise (ArgumentOutOfRangeException("rank", rank, sprintf "The subspace rank must be in 1..d = %d." d))

        let second = secondMoment transform (MomentSums.second transform x y)
        let u = topSubspace second rank
        assemble transform second u (MomentSums.projected transform u x y)

    /// <summary>The same moments from data that arrive in chunks (a file read in pieces, shards): two passes over
    /// <paramref name="chunks"/>, which must yield the same rows each time it is enumerated; memory is bounded by
    /// one chunk plus O(d² + r⁴).</summary>
    [<CompiledName("MomentsOfChunks")>]
    let momentsOfChunks (transform: OutputTransform) (rank: int) (chunks: seq<Dataset>) : SubspaceMoments =
        Guard.notNull "chunks" chunks

        let first =
            chunks
            |> Seq.map (fun chunk -> MomentSums.second transform chunk.X chunk.Y)
            |> Seq.fold
                (fun (acc: SecondMomentSums option) sums ->
                    Some(
                        match acc with
                        | None -> sums
                        | Some a -> MomentSums.mergeSecond a sums
                    ))
                None
            |> Option.defaultWith (fun () -> invalidArg "chunks" "The chunk source yielded no data.")

        let second = secondMoment transform first
        let u = topSubspace second rank

        let projected =
            chunks
            |> Seq.fold
                (fun acc chunk -> MomentSums.mergeProjected acc (MomentSums.projected transform u chunk.X chunk.Y))
                (MomentSums.emptyProjected rank)

        if projected.Count <> first.Count then
            invalidArg
                "chunks"
                (sprintf
                    "The chunk source yielded %d rows on the second pass but %d on the first."
                    projected.Count
                    first.Count)

        assemble transform second u projected

    /// Signals, inside one restart, that ‖V‖ left every bounded region: the objective is unbounded below there.
    exception private Unbounded of iteration: int * value: float

    /// <summary>
    /// Minimises the subspace L4 over V (k×r) by L-BFGS from <paramref name="restarts"/> random starts
    /// V ~ N(0, 1) (streams of <paramref name="seed"/>) and returns A = V·Uᵀ of the lowest value, with the trace.
    /// </summary>
    /// <remarks>
    /// The empirical L4 is a quartic whose constraint term λ(M_i − 1)² keeps it bounded below in population, but with
    /// few samples the noise in the fourth moments can beat it along some direction, and then L-BFGS runs to infinity.
    /// A restart that descends below its starting value with a row outside ‖v_i‖² ≤ 10⁴·k·|c'| / min|eig T2| (the
    /// minimiser has M_i = T2(v_i, v_i)/c' ≈ 1, so its rows are about √(c'/eig) long) is stopped and discarded (trace
    /// loss −∞). If every restart is unbounded
    /// the sample is too small for the L4 estimator and the stage fails with a <see cref="T:MoE.Core.NonFiniteException"/>
    /// that says so, instead of running into NaN.
    /// </remarks>
    [<CompiledName("Solve")>]
    let solve
        (moments: SubspaceMoments)
        (weights: L4Weights)
        (experts: int)
        (restarts: int)
        (seed: int64)
        (context: RunContext)
        : float[,] * float * TraceEntry list =
        Guard.positiveInt "restarts" restarts
        let m = moments.Projected
        let u = m.Basis
        let d, r = u.GetLength 0, u.GetLength 1
        let k = experts

        let bound =
            let t2 = Matrix<float>.Build.Dense(r, r, fun a b -> m.T2.[a * r + b])

            let smallest =
                t2.Evd(Symmetricity.Symmetric).EigenValues
                |> Seq.map (fun c -> abs c.Real)
                |> Seq.min

            1e4 * float k * abs m.Coefficients.CPrime / max smallest 1e-300

        let toA (v: float[]) =
            Array2D.init k d (fun i t -> Seq.sum (seq { for a in 0 .. r - 1 -> v.[i * r + a] * u.[t, a] }))

        let mutable evaluations = 0
        let mutable startValue = 0.0

        let f (v: float[]) =
            evaluations <- evaluations + 1
            let e = Population.l4 m weights (toA v)

            if evaluations = 1 then
                startValue <- e.Value

            // Far out *and* below the start: descending to −∞ (a far probe of a bounded quartic is far above it).
            for i in 0 .. k - 1 do
                let mutable norm2 = 0.0

                for a in 0 .. r - 1 do
                    norm2 <- norm2 + v.[i * r + a] * v.[i * r + a]

                if norm2 > bound && e.Value < startValue then
                    raise (Unbounded(evaluations, e.Value))

            // ∂/∂V = (∂/∂A)·U
            let g =
                Array.init (k * r) (fun idx ->
                    let i, a = idx / r, idx % r in
                    Seq.sum (seq { for t in 0 .. d - 1 -> e.Gradient.[i, t] * u.[t, a] }))

            e.Value, g

        let mutable best = None
        let mutable lastUnbounded = (0, 0.0)
        let trace = ResizeArray<TraceEntry>()

        for restart in 0 .. restarts - 1 do
            let rng = Rng.stream seed (int64 restart)
            let v0 = Array.init (k * r) (fun _ -> rng.NextGaussian())
            evaluations <- 0

            let outcome =
                try
                    let v, value, _, _ = Optim.lbfgs "l4" context false 500 1e-10 f v0
                    Some(v, value)
                with Unbounded(iteration, value) ->
                    lastUnbounded <- (iteration, value)
                    None

            let entry =
                {
                    Stage = "l4"
                    Iteration = restart
                    Loss = outcome |> Option.map snd |> Option.defaultValue Double.NegativeInfinity
                }

            trace.Add entry
            context.Progress entry

            match best, outcome with
            | _, None -> ()
            | Some(_, bestValue), Some(_, value) when bestValue <= value -> ()
            | _, Some(v, value) -> best <- Some(v, value)

        match best with
        | Some(v, value) -> toA v, value, List.ofSeq trace
        | None ->
            let iteration, value = lastUnbounded

            raise (
                NonFiniteException(
                    "l4",
                    iteration,
                    Double.NegativeInfinity,
                    sprintf
                        "The empirical L4 is unbounded below in every restart (%d; the last reached %.4g with ‖v_i‖² past %.3g): the sampling noise in its fourth moments outweighs the constraint term, so there are too few samples for k = %d. Increase n, or fit with the EM method."
                        restarts
                        value
                        bound
                        k
                )
            )

    /// <summary>Unit directions from an L4 solution: the normalised rows of (A^†)ᵀ = (AAᵀ)⁻¹A, which are the
    /// regressors' directions when they are not orthonormal (Theorem 1: (A^†)ᵀ = PDΓA* + E).</summary>
    [<CompiledName("Directions")>]
    /// <exception cref="T:MoE.Core.NonFiniteException">When AAᵀ is singular to working precision (its eigenvalue
    /// ratio is below 1e-12, so the inverse would carry no significant digits): the L4 minimum found has collapsed
    /// experts onto each other, which happens when n is too small for d and k.</exception>
    let directions (a: float[,]) : float[,] =
        let am = Matrix<float>.Build.DenseOfArray a
        let gram = am * am.Transpose()

        let ratio =
            let values =
                gram.Evd(Symmetricity.Symmetric).EigenValues
                |> Seq.map (fun c -> c.Real)
                |> Seq.toArray

            Array.min values / Array.max values

        if not (ratio > 1e-12) then
            raise (
                NonFiniteException(
                    "l4",
                    0,
                    ratio,
                    sprintf
                        "The L4 solution is rank-deficient (smallest/largest eigenvalue of AAᵀ = %.3g): it has collapsed experts onto each other, so no k directions can be read from it. This happens when n is too small for d and k; increase n, or fit with the EM method."
                        ratio
                )
            )

        let dual = gram.Inverse() * am
        let k, d = a.GetLength 0, a.GetLength 1

        Array2D.init k d (fun i t ->
            let norm = sqrt (Seq.sum (seq { for j in 0 .. d - 1 -> dual.[i, j] * dual.[i, j] }))
            dual.[i, t] / norm)
