namespace MoE.Core

open System
open System.Numerics.Tensors
open MathNet.Numerics.LinearAlgebra

/// <summary>The subspace L4 solver's data: the Q2 moment matrix, its top-k eigenvectors U, and the projected
/// fourth- and second-order Hermite moments in U's coordinates.</summary>
type SubspaceMoments =
    {
        /// M2 = [mean(Q2(y) x xᵀ) − mean(Q2(y)) I]/c' (d×d), ≈ Σ_m E[p_m] a_m a_mᵀ under orthogonal gating.
        SecondMoment: float[,]
        /// The empirical moments in the subspace, in the form the L4 objective uses (Basis = U, d×r).
        Projected: L4Tensors
        /// The spectral method's third-order moment in U's coordinates, mean(Q3(y)·S3(z))/c₃ (r³, row-major), or why
        /// the transform has none.
        Third: Result<float[], string>
    }

/// <summary>
/// The subspace L4 solver (docs/math.md §6.1): the empirical L4 restricted to A = V·Uᵀ is an exact polynomial in V whose
/// coefficients are mean(Q4·S4(z)) and mean(Q2·S2(z)) with z = Uᵀx, so after two passes over the data every
/// evaluation costs O(k²r⁴), independent of n; L-BFGS with random restarts minimises it.
/// </summary>
[<RequireQualifiedAccess>]
module SubspaceL4 =

    /// <summary>M2 from the first-pass sums: [Σ Q2 x xᵀ/n − (Σ Q2/n) I]/c'.</summary>
    /// <param name="transform">The transform the sums were taken with (its c').</param>
    /// <param name="sums">The first-pass sums (at least one sample).</param>
    /// <returns>M2 (d×d, symmetric).</returns>
    [<CompiledName("SecondMoment")>]
    let secondMoment (transform: OutputTransform) (sums: SecondMomentSums) : float[,] =
        if sums.Count <= 0.0 then
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
                raise (NonFiniteException(Stage.L4, 0, v))

        second

    /// The subspace rank r ∈ 1..d, checked before any work (before any pass over the data, for a source).
    let private checkRank (d: int) (rank: int) =
        if rank < 1 || rank > d then
            raise (
                ArgumentOutOfRangeException(
                    "rank",
                    rank,
                    Text.format "The subspace rank must be in 1..d = %d." [| box d |]
                )
            )

    /// <summary>U: the top-<paramref name="rank"/> eigenvectors of M2 by |eigenvalue| (d×rank).</summary>
    /// <param name="second">M2.</param>
    /// <param name="rank">r ∈ 1..d.</param>
    /// <returns>U (d×r, orthonormal columns).</returns>
    [<CompiledName("TopSubspace")>]
    let topSubspace (second: float[,]) (rank: int) : float[,] =
        let d = second.GetLength 0

        checkRank d rank

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
    /// <param name="transform">The transform (its c, c').</param>
    /// <param name="second">M2.</param>
    /// <param name="u">U.</param>
    /// <param name="sums">The second-pass sums in U (at least one sample).</param>
    /// <returns>The subspace moments.</returns>
    [<CompiledName("Assemble")>]
    let assemble
        (transform: OutputTransform)
        (second: float[,])
        (u: float[,])
        (sums: ProjectedMomentSums)
        : SubspaceMoments =
        if sums.Count <= 0.0 then
            invalidArg "sums" "The moment sums hold no samples."

        let r = sums.Rank
        let inv = 1.0 / float sums.Count
        let qs = SymmetricTensor.quads r

        let upper (m: float[]) =
            Array2D.init r r (fun i j -> if i <= j then m.[i * r + j] * inv else 0.0)

        let t4 =
            SymmetricTensor.assembleS4 r qs (Array.map (fun v -> v * inv) sums.F4) (upper sums.F4z2) (sums.F4s * inv)

        for v in t4 do
            if not (Double.IsFinite v) then
                raise (NonFiniteException(Stage.L4, 0, v))

        let t2 =
            Array.init (r * r) (fun idx ->
                let a, b = idx / r, idx % r
                let v = if a <= b then sums.F2.[a * r + b] else sums.F2.[b * r + a]
                v * inv - (if a = b then sums.F2s * inv else 0.0))

        let third =
            transform.Third
            |> Result.map (fun t ->
                let t3 =
                    SymmetricTensor.assembleS3
                        r
                        (SymmetricTensor.triples r)
                        (sums.F3 |> Array.map (fun v -> v * inv))
                        (sums.F3z |> Array.map (fun v -> v * inv))

                t3 |> Array.map (fun v -> v / t.C3))
            |> Result.bind (fun t3 ->
                if Array.forall Double.IsFinite t3 then
                    Ok t3
                else
                    Error "its third-order moment is not finite")

        {
            SecondMoment = second
            Projected =
                {
                    Basis = u
                    T4 = t4
                    T2 = t2
                    C = transform.C
                    CPrime = transform.CPrime
                }
            Third = third
        }

    /// <summary>M2, U (top-<paramref name="rank"/> eigenvectors of M2 by |eigenvalue|) and the projected moments,
    /// in two fused, multi-core passes over the data, for the given output transform (centred polynomial or
    /// bounded).</summary>
    /// <param name="transform">The output transform.</param>
    /// <param name="rank">r = k, the number of experts.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>M2 and the projected L4 tensors.</returns>
    [<CompiledName("Moments")>]
    let moments (transform: OutputTransform) (rank: int) (x: float[,]) (y: float[]) : SubspaceMoments =
        Guard.sameRows "x" x "y" y
        let d = x.GetLength 1

        checkRank d rank

        let second = secondMoment transform (MomentSums.second transform x y)
        let u = topSubspace second rank
        assemble transform second u (MomentSums.projected transform u x y)

    /// <summary>The same moments from data read in passes (a file read in batches, shards): two passes over the
    /// source, the chunks merged as every pass merges them; memory is bounded by one batch plus O(d² + r⁴).</summary>
    /// <param name="transform">The output transform.</param>
    /// <param name="rank">r = k.</param>
    /// <param name="source">The data.</param>
    /// <returns>M2 and the projected L4 tensors.</returns>
    [<CompiledName("MomentsOf")>]
    let momentsOf (transform: OutputTransform) (rank: int) (source: DataSource) : SubspaceMoments =
        Guard.notNull "source" (box source)
        let d = source.Dimension

        checkRank d rank

        let second = secondMoment transform (MomentSums.secondOf transform source)
        let u = topSubspace second rank
        assemble transform second u (MomentSums.projectedOf transform u source)

    /// Signals, inside one restart, that ‖V‖ left every bounded region: the objective is unbounded below there.
    exception private Unbounded of iteration: int * value: float

    /// <summary>
    /// Minimises the subspace L4 over V (k×r) by L-BFGS from <paramref name="restarts"/> random starts
    /// V ~ N(0, 1) (the seed's restart streams) and returns A = V·Uᵀ of the lowest value, with the total evaluation
    /// count and the chosen restart's stop reason; each restart's value is reported to the context.
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
    /// <param name="moments">The subspace moments.</param>
    /// <param name="weights">μ, λ and the ridge.</param>
    /// <param name="experts">k.</param>
    /// <param name="restarts">The number of random starts.</param>
    /// <param name="seed">The seed of the restarts.</param>
    /// <param name="context">Progress (one report per restart) and cancellation.</param>
    /// <exception cref="T:MoE.Core.NonFiniteException">Every restart ran into the unbounded region, or a value became non-finite.</exception>
    [<CompiledName("Solve")>]
    let solve
        (moments: SubspaceMoments)
        (weights: L4Weights)
        (experts: int)
        (restarts: int)
        (seed: int64)
        (context: RunContext)
        : StageOutcome<float[,]> =
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

            1e4 * float k * abs m.CPrime / max smallest 1e-300

        let toA (v: float[]) =
            Array2D.init k d (fun i t -> Seq.sum (seq { for a in 0 .. r - 1 -> v.[i * r + a] * u.[t, a] }))

        let mutable evaluations = 0
        let mutable startValue = 0.0

        let f (v: float[]) =
            evaluations <- evaluations + 1
            let e = MomentL4.evaluate m weights (toA v)

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
        let mutable total = 0

        for restart in 0 .. restarts - 1 do
            let rng = Rng.stream seed (Streams.l4Restart restart)
            let v0 = Array.init (k * r) (fun _ -> rng.NextGaussian())
            evaluations <- 0

            let outcome =
                try
                    let o = Lbfgs.minimize Stage.L4 context false 500 1e-10 f v0
                    Some(o, o.FinalLoss.Value)
                with Unbounded(iteration, value) ->
                    lastUnbounded <- (iteration, value)
                    None

            total <- total + evaluations

            context.Progress
                {
                    Stage = Stage.L4
                    Iteration = restart
                    Loss = outcome |> Option.map snd |> Option.defaultValue Double.NegativeInfinity
                }

            match best, outcome with
            | _, None -> ()
            | Some(_, bestValue), Some(_, value) when bestValue <= value -> ()
            | _, Some(o, value) -> best <- Some(o, value)

        match best with
        | Some(o, value) ->
            {
                Value = toA o.Value
                Iterations = total
                FinalLoss = Some value
                Reason = o.Reason
            }
        | None ->
            let iteration, value = lastUnbounded

            raise (
                NonFiniteException(
                    Stage.L4,
                    iteration,
                    Double.NegativeInfinity,
                    Text.format
                        "The empirical L4 is unbounded below in every restart (%d; the last reached %.4g with ‖v_i‖² past %.3g): the sampling noise in its fourth moments outweighs the constraint term for k = %d."
                        [| box restarts; box value; box bound; box k |]
                )
            )
