/// Scalar reference implementations of the fused kernels: the straightforward loops they replaced, kept verbatim
/// (one sample at a time, 2-D indexing, no chunks) so the tests can compare the fast code against them.
module MoE.Core.Tests.Reference

open System
open MathNet.Numerics.LinearAlgebra
open MoE.Core

let private projections (a: float[,]) (x: float[,]) : float[,] =
    let n, k, d = x.GetLength 0, a.GetLength 0, a.GetLength 1
    Array2D.init n k (fun r i -> Seq.sum (seq { for t in 0 .. d - 1 -> a.[i, t] * x.[r, t] }))

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

/// <summary>M2, U (top-<paramref name="rank"/> eigenvectors of M2 by |eigenvalue|) and the projected moments,
/// in two passes over the data, for the given output transform (centred polynomial or bounded).</summary>
let moments (transform: OutputTransform) (rank: int) (x: float[,]) (y: float[]) : SubspaceMoments =
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
            raise (NonFiniteException(Stage.L4, 0, v))

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
    let qs = SymmetricTensor.quads r
    let f4 = Array.zeroCreate qs.Length
    let f4z2 = Array2D.zeroCreate r r
    let f2 = Array2D.zeroCreate r r
    let mutable f4s = 0.0
    let mutable f2s = 0.0
    let z = Array.zeroCreate r
    let zz = Array2D.zeroCreate r r
    // Third order, written densely and independently of the kernel's unique-triple bookkeeping.
    let f3 = Array.zeroCreate (r * r * r)
    let f3z = Array.zeroCreate r

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

        match tf.Third with
        | Ok third ->
            let q3 = third.Q3 y.[row]

            for i in 0 .. r - 1 do
                f3z.[i] <- f3z.[i] + q3 * z.[i]

                for j in 0 .. r - 1 do
                    for l in 0 .. r - 1 do
                        f3.[(i * r + j) * r + l] <- f3.[(i * r + j) * r + l] + q3 * z.[i] * z.[j] * z.[l]
        | Error _ -> ()

    let scale (m: float[,]) = Array2D.map (fun v -> v * inv) m

    let t4 =
        SymmetricTensor.assembleS4 r qs (Array.map (fun v -> v * inv) f4) (scale f4z2) (f4s * inv)

    for v in t4 do
        if not (Double.IsFinite v) then
            raise (NonFiniteException(Stage.L4, 0, v))

    let f2m = scale f2

    let t2 =
        Array.init (r * r) (fun idx ->
            let a, b = idx / r, idx % r in
            (if a <= b then f2m.[a, b] else f2m.[b, a]) - (if a = b then f2s * inv else 0.0))

    let delta i j = if i = j then 1.0 else 0.0

    let third =
        tf.Third
        |> Result.map (fun t ->
            Array.init (r * r * r) (fun idx ->
                let a, b, c = idx / (r * r), (idx / r) % r, idx % r

                (f3.[idx] * inv
                 - (delta a b * f3z.[c] + delta a c * f3z.[b] + delta b c * f3z.[a]) * inv)
                / t.C3))

    {
        SecondMoment = second
        Projected =
            {
                Basis = u
                T4 = t4
                T2 = t2
                C = tf.C
                CPrime = tf.CPrime
            }
        Third = third
    }

/// The empirical L4 and its gradient, one sample at a time (the loop Losses.l4 replaced).
let l4
    (coefficients: TransformCoefficients)
    (weights: L4Weights)
    (regressors: float[,])
    (x: float[,])
    (y: float[])
    : LossEvaluation =
    let k = regressors.GetLength 0
    let d = regressors.GetLength 1
    let n = y.Length
    let a = regressors
    let mu, lambda = weights.Mu, weights.Lambda
    let q4Shift = if weights.Centred then coefficients.Q4Mean else 0.0
    let q2Shift = if weights.Centred then coefficients.Q2Mean else 0.0
    // Gram matrix and squared norms.
    let g =
        Array2D.init k k (fun i j -> Seq.sum (seq { for t in 0 .. d - 1 -> a.[i, t] * a.[j, t] }))

    let norms = Array.init k (fun i -> g.[i, i])
    let s = Array.zeroCreate<float> k
    let coef = Array.zeroCreate<float> k
    let p = Array2D.zeroCreate<float> k d // Σ C_l x
    let r = Array2D.zeroCreate<float> k d // Σ ρ s_l x
    let qss = Array2D.zeroCreate<float> k k // Σ q s_i s_j
    let mutable sumQ = 0.0
    let mutable sumRho = 0.0
    let m = Array.zeroCreate<float> k // Σ ρ (s_i² − n_i)
    let mutable v1 = 0.0 // Σ q Σ_{i≠j} T(i,j)
    let mutable v2 = 0.0 // Σ q Σ_i (s_i⁴ − 6 n_i s_i² + 3 n_i²)

    for row in 0 .. n - 1 do
        for i in 0 .. k - 1 do
            let mutable acc = 0.0

            for t in 0 .. d - 1 do
                acc <- acc + a.[i, t] * x.[row, t]

            s.[i] <- acc

        let yv = y.[row]
        let q = (Transforms.q4 coefficients yv - q4Shift) / coefficients.C
        let rho = (Transforms.q2 coefficients yv - q2Shift) / coefficients.CPrime
        sumQ <- sumQ + q
        sumRho <- sumRho + rho

        for l in 0 .. k - 1 do
            let sl = s.[l]
            let nl = norms.[l]
            m.[l] <- m.[l] + rho * (sl * sl - nl)
            v2 <- v2 + q * (sl * sl * sl * sl - 6.0 * nl * sl * sl + 3.0 * nl * nl)
            let mutable c = -mu * (4.0 * sl * sl * sl - 12.0 * nl * sl)

            for j in 0 .. k - 1 do
                let sj = s.[j]
                qss.[l, j] <- qss.[l, j] + q * sl * sj

                if j <> l then
                    let glj = g.[l, j]
                    let nj = norms.[j]

                    v1 <-
                        v1
                        + q
                          * (sl * sl * sj * sj - nl * sj * sj - 4.0 * sl * sj * glj - nj * sl * sl
                             + nl * nj
                             + 2.0 * glj * glj)

                    c <- c + 2.0 * (2.0 * sl * sj * sj - 4.0 * sj * glj - 2.0 * nj * sl)

            coef.[l] <- q * c

        for l in 0 .. k - 1 do
            let cl = coef.[l]
            let rl = rho * s.[l]

            for t in 0 .. d - 1 do
                let xt = x.[row, t]
                p.[l, t] <- p.[l, t] + cl * xt
                r.[l, t] <- r.[l, t] + rl * xt

    let inv = 1.0 / float n
    let meanQ = sumQ * inv
    let meanRho = sumRho * inv
    let mutable value = (v1 - mu * v2) * inv
    let mutable ridgeTerm = 0.0

    for i in 0 .. k - 1 do
        let mi = m.[i] * inv
        value <- value + lambda * (mi - 1.0) * (mi - 1.0)
        ridgeTerm <- ridgeTerm + norms.[i]

    value <- value + 0.5 * weights.Ridge * ridgeTerm
    let grad = Array2D.zeroCreate k d

    for l in 0 .. k - 1 do
        let ml = m.[l] * inv
        let nl = norms.[l]
        // Coefficient of a_l itself: t1's 2Σ_{j≠l}(2n_j q̄ − 2 mean[q s_j²]), t2's −μ(12 n_l q̄ − 12 mean[q s_l²]),
        // λ's −4λ(M_l − 1) ρ̄, and the ridge.
        let mutable self =
            -mu * (12.0 * nl * meanQ - 12.0 * qss.[l, l] * inv)
            - 4.0 * lambda * (ml - 1.0) * meanRho
            + weights.Ridge

        for j in 0 .. k - 1 do
            if j <> l then
                self <- self + 2.0 * (2.0 * norms.[j] * meanQ - 2.0 * qss.[j, j] * inv)

        for t in 0 .. d - 1 do
            let mutable gt =
                p.[l, t] * inv + self * a.[l, t] + 4.0 * lambda * (ml - 1.0) * r.[l, t] * inv

            for j in 0 .. k - 1 do
                if j <> l then
                    // t1's 2Σ_{j≠l}(4G_lj q̄ − 4 mean[q s_l s_j]) a_j
                    gt <- gt + 2.0 * (4.0 * g.[l, j] * meanQ - 4.0 * qss.[l, j] * inv) * a.[j, t]

            grad.[l, t] <- gt

    { Value = value; Gradient = grad }
