namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra

/// <summary>The data's moment statistics for the subspace L4 solver: the Q2 moment matrix, its top-k
/// eigenvectors U, and the projected fourth- and second-order Hermite moments in U's coordinates.</summary>
type SubspaceMoments =
    {
        /// M2 = [mean(Q2(y) x xᵀ) − mean(Q2(y)) I]/c' (d×d), ≈ Σ_m E[p_m] a_m a_mᵀ under orthogonal gating.
        SecondMoment: float[,]
        /// The empirical moments in the subspace, in the form the population L4 uses (Basis = U, d×r).
        Projected: PopulationMoments
    }

/// <summary>
/// The subspace L4 solver (MATH.md §5): the empirical L4 restricted to A = V·Uᵀ is an exact polynomial in V whose
/// coefficients are mean(Q4·S4(z)) and mean(Q2·S2(z)) with z = Uᵀx, so after two passes over the data every
/// evaluation costs O(k²r⁴), independent of n; L-BFGS with random restarts minimises it.
/// </summary>
[<RequireQualifiedAccess>]
module SubspaceL4 =

    /// <summary>M2, U (top-<paramref name="rank"/> eigenvectors of M2 by |eigenvalue|) and the projected moments,
    /// in two passes over the data, for the given output transform (centred polynomial or bounded).</summary>
    [<CompiledName("Moments")>]
    let moments (transform: OutputTransform) (rank: int) (x: float[,]) (y: float[]) : SubspaceMoments =
        Guard.sameRows "x" x "y" y
        let n, d = x.GetLength 0, x.GetLength 1

        if rank < 1 || rank > d then
            raise (ArgumentOutOfRangeException("rank", rank, sprintf "The subspace rank must be in 1..d = %d." d))

        let tf = transform
        // Pass 1: Σ Q2·x xᵀ (upper triangle) and Σ Q2.
        let m2 = Array2D.zeroCreate d d
        let mutable sumQ2 = 0.0

        for row in 0 .. n - 1 do
            let q2 = tf.Q2 y.[row]
            sumQ2 <- sumQ2 + q2

            for i in 0 .. d - 1 do
                let qi = q2 * x.[row, i]

                for j in i .. d - 1 do
                    m2.[i, j] <- m2.[i, j] + qi * x.[row, j]

        let inv = 1.0 / float n

        let second =
            Array2D.init d d (fun i j ->
                let v =
                    (if i <= j then m2.[i, j] else m2.[j, i]) * inv
                    - (if i = j then sumQ2 * inv else 0.0)

                v / tf.CPrime)

        for v in Seq.cast<float> second do
            if not (Double.IsFinite v) then
                raise (NonFiniteException("l4", 0, v))

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

        let u = Array2D.init d rank (fun t a -> evd.EigenVectors.[t, order.[a]])
        // Pass 2: projected moments of centred Q4 and Q2.
        let r = rank
        let qs = Population.quads r
        let f4 = Array.zeroCreate qs.Length
        let f4z2 = Array2D.zeroCreate r r
        let f2 = Array2D.zeroCreate r r
        let mutable f4s = 0.0
        let mutable f2s = 0.0
        let z = Array.zeroCreate r
        let zz = Array2D.zeroCreate r r

        for row in 0 .. n - 1 do
            for a in 0 .. r - 1 do
                let mutable s = 0.0

                for t in 0 .. d - 1 do
                    s <- s + u.[t, a] * x.[row, t]

                z.[a] <- s

            let q4 = tf.Q4 y.[row]
            let q2 = tf.Q2 y.[row]
            f4s <- f4s + q4
            f2s <- f2s + q2

            for i in 0 .. r - 1 do
                for j in i .. r - 1 do
                    let zij = z.[i] * z.[j]
                    zz.[i, j] <- zij
                    f4z2.[i, j] <- f4z2.[i, j] + q4 * zij
                    f2.[i, j] <- f2.[i, j] + q2 * zij

            for q in 0 .. qs.Length - 1 do
                let struct (i, j, k, l) = qs.[q]
                f4.[q] <- f4.[q] + q4 * zz.[i, j] * zz.[k, l]

        let scale (m: float[,]) = Array2D.map (fun v -> v * inv) m

        let t4 =
            Population.assembleS4 r qs (Array.map (fun v -> v * inv) f4) (scale f4z2) (f4s * inv)

        for v in t4 do
            if not (Double.IsFinite v) then
                raise (NonFiniteException("l4", 0, v))

        let f2m = scale f2

        let t2 =
            Array.init (r * r) (fun idx ->
                let a, b = idx / r, idx % r in
                (if a <= b then f2m.[a, b] else f2m.[b, a]) - (if a = b then f2s * inv else 0.0))

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
                            C = tf.C
                            CPrime = tf.CPrime
                            Q4Mean = 0.0
                            Q2Mean = 0.0
                            Sigma = nan
                        }
                }
        }

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
