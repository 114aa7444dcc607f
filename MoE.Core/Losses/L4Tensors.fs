namespace MoE.Core

open System

/// <summary>The moments the L4 objective depends on, in the coordinates of an orthonormal basis U (d×r):
/// T4 = E[Q4(y)·S4(x)] and T2 = E[Q2(y)·S2(x)] contracted with U (r⁴ and r² entries, row-major), and the output
/// transform's scales c and c'. A truth's population moments and a sample's projected moments have this form.</summary>
/// <remarks>docs/math.md §4.2: for A whose rows lie in span U, L4(A) is a polynomial in Uᵀa_i with these
/// coefficients, whatever d is.</remarks>
type L4Tensors =
    {
        /// d×r orthonormal columns.
        Basis: float[,]
        /// E[Q4(y)·S4(x)] in basis coordinates, index ((a·r + b)·r + c)·r + e.
        T4: float[]
        /// E[Q2(y)·S2(x)] in basis coordinates, index a·r + b.
        T2: float[]
        /// The fourth-order scale c of the output transform.
        C: float
        /// The second-order scale c' of the output transform.
        CPrime: float
    }

    /// The dimension r of the basis.
    member this.Rank = this.Basis.GetLength 1

/// <summary>The L4 objective evaluated from its moment tensors: value and gradient at O(k²r⁴), whatever n and d.</summary>
[<RequireQualifiedAccess>]
module MomentL4 =

    /// <summary>L4(A) of paper eq. (7) and its gradient, from the moment tensors (docs/math.md §4.2).</summary>
    /// <param name="tensors">The moments: a truth's population tensors, or a sample's projected moments.</param>
    /// <param name="weights">μ, λ, ridge (centring is irrelevant in the population).</param>
    /// <param name="regressors">A (k_A×d, any k_A ≥ 1).</param>
    /// <returns>L4(A) = Σ_{i≠j} T4(ã_i,ã_i,ã_j,ã_j)/c − μΣ T4(ã_i,ã_i,ã_i,ã_i)/c + λΣ(T2(ã_i,ã_i)/c' − 1)²
    /// + (ridge/2)‖A‖², ã = Uᵀa, and ∂L4/∂A.</returns>
    [<CompiledName("Evaluate")>]
    let evaluate (tensors: L4Tensors) (weights: L4Weights) (regressors: float[,]) : LossEvaluation =
        Guard.notNull "tensors" (box tensors)
        L4Weights.validate weights
        Guard.finiteMatrix "regressors" regressors
        let u = tensors.Basis
        let d, r = u.GetLength 0, u.GetLength 1

        if regressors.GetLength 1 <> d then
            invalidArg
                "regressors"
                (Text.format
                    "regressors has %d columns but the tensors have d = %d."
                    [| box (regressors.GetLength 1); box d |])

        let k = regressors.GetLength 0
        let c, cp = tensors.C, tensors.CPrime
        let t4, t2 = tensors.T4, tensors.T2

        let at =
            Array.init k (fun i ->
                Array.init r (fun a -> Seq.sum (seq { for t in 0 .. d - 1 -> u.[t, a] * regressors.[i, t] })))
        // M_j = T4(·,·,ã_j,ã_j) (r×r).
        let mj =
            at
            |> Array.map (fun aj ->
                Array2D.init r r (fun a b ->
                    let mutable s = 0.0

                    for e in 0 .. r - 1 do
                        for f in 0 .. r - 1 do
                            s <- s + t4.[((a * r + b) * r + e) * r + f] * aj.[e] * aj.[f]

                    s))

        let quad (m: float[,]) (x: float[]) (y: float[]) =
            let mutable s = 0.0

            for a in 0 .. r - 1 do
                for b in 0 .. r - 1 do
                    s <- s + m.[a, b] * x.[a] * y.[b]

            s

        let t2m = Array2D.init r r (fun a b -> t2.[a * r + b])
        let mutable value = 0.0
        let gradU = Array.init k (fun _ -> Array.zeroCreate r)

        for l in 0 .. k - 1 do
            let ml = quad t2m at.[l] at.[l] / cp

            value <-
                value + weights.Lambda * (ml - 1.0) * (ml - 1.0)
                - weights.Mu * quad mj.[l] at.[l] at.[l] / c

            for a in 0 .. r - 1 do
                let mutable gsum = 0.0

                for b in 0 .. r - 1 do
                    let mutable acc =
                        4.0 * weights.Lambda * (ml - 1.0) * t2m.[a, b] / cp
                        - 4.0 * weights.Mu * mj.[l].[a, b] / c

                    for j in 0 .. k - 1 do
                        if j <> l then
                            acc <- acc + 4.0 * mj.[j].[a, b] / c

                    gsum <- gsum + acc * at.[l].[b]

                gradU.[l].[a] <- gsum

            for j in 0 .. k - 1 do
                if j <> l then
                    value <- value + quad mj.[j] at.[l] at.[l] / c

        let mutable ridge = 0.0

        let grad =
            Array2D.init k d (fun l t ->
                ridge <- ridge + regressors.[l, t] * regressors.[l, t]
                let mutable s = weights.Ridge * regressors.[l, t]

                for a in 0 .. r - 1 do
                    s <- s + u.[t, a] * gradU.[l].[a]

                s)

        {
            Value = value + 0.5 * weights.Ridge * ridge
            Gradient = grad
        }
