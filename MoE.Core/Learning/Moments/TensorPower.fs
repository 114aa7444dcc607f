namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra

/// <summary>One component of a symmetric tensor decomposition: T ≈ Σ Weight·Vector^{⊗order}.</summary>
type TensorComponent =
    {
        /// λ = T(v, …, v) at the component's discovery (before deflation).
        Weight: float
        /// The unit vector v.
        Vector: float[]
    }

/// <summary>
/// Whitening and the robust tensor power method (Anandkumar, Ge, Hsu, Kakade and Telgarsky 2014, Algorithm 1) for
/// dense symmetric tensors of order 3 or 4 in k dimensions (docs/math.md §6.7): for each component, power iterations
/// v ← T(I, v, …, v)/‖·‖ from several random unit starts, the start of largest T(v, …, v) refined further, then
/// deflation T ← T − λ v^{⊗order}. For an orthogonally decomposable tensor Σ λ_m u_m^{⊗order} with λ_m &gt; 0 it
/// returns the pairs (λ_m, u_m); an odd-order component comes back with the sign that makes λ_m positive.
/// </summary>
[<RequireQualifiedAccess>]
module TensorPower =

    /// T(I, v, …, v): the tensor contracted with v in every mode but the first.
    let private contractAllButOne (order: int) (k: int) (t: float[]) (v: float[]) : float[] =
        Array.init k (fun i ->
            let mutable s = 0.0

            if order = 3 then
                for j in 0 .. k - 1 do
                    for l in 0 .. k - 1 do
                        s <- s + t.[(i * k + j) * k + l] * v.[j] * v.[l]
            else
                for j in 0 .. k - 1 do
                    for l in 0 .. k - 1 do
                        let vjl = v.[j] * v.[l]

                        for m in 0 .. k - 1 do
                            s <- s + t.[((i * k + j) * k + l) * k + m] * vjl * v.[m]

            s)

    /// <summary>T(v, …, v).</summary>
    /// <param name="order">3 or 4.</param>
    /// <param name="k">The dimension.</param>
    /// <param name="tensor">The dense tensor (k^order entries, row-major).</param>
    /// <param name="v">A vector of length k.</param>
    [<CompiledName("Evaluate")>]
    let evaluate (order: int) (k: int) (tensor: float[]) (v: float[]) : float =
        Dense.dot (contractAllButOne order k tensor v) v

    let private normalise (v: float[]) =
        let n = sqrt (Dense.dot v v)

        if n > 0.0 && Double.IsFinite n then
            Some(Array.map (fun x -> x / n) v)
        else
            None

    /// Power iterations from v; None when an iterate vanishes or turns non-finite.
    let private iterate (order: int) (k: int) (t: float[]) (iterations: int) (v0: float[]) : float[] option =
        let mutable v = Some v0
        let mutable i = 0

        while i < iterations && v.IsSome do
            v <- normalise (contractAllButOne order k t v.Value)
            i <- i + 1

        v

    /// <summary>The first <paramref name="components"/> components of a symmetric tensor.</summary>
    /// <param name="order">3 or 4.</param>
    /// <param name="k">The dimension (k^order entries).</param>
    /// <param name="tensor">The dense tensor, row-major; not modified.</param>
    /// <param name="components">How many components to extract (at most k).</param>
    /// <param name="restarts">Random unit starts per component (at least 1).</param>
    /// <param name="iterations">Power iterations per start (the winner gets as many again).</param>
    /// <param name="seed">The seed of the starts (the tensor-power stream).</param>
    /// <returns>The components in the order found, or why the decomposition failed.</returns>
    [<CompiledName("Decompose")>]
    let decompose
        (order: int)
        (k: int)
        (tensor: float[])
        (components: int)
        (restarts: int)
        (iterations: int)
        (seed: int64)
        : Result<TensorComponent[], string> =
        if order <> 3 && order <> 4 then
            invalidArg "order" (Text.format "The order must be 3 or 4, but was %d." [| box order |])

        if tensor.Length <> pown k order then
            invalidArg
                "tensor"
                (Text.format
                    "A k = %d tensor of order %d has %d entries, not %d."
                    [| box k; box order; box (pown k order); box tensor.Length |])

        Guard.positiveInt "restarts" restarts
        let rng = Rng.stream seed Streams.TensorPower
        let t = Array.copy tensor
        let found = ResizeArray<TensorComponent>()
        let mutable failure = None

        while failure.IsNone && found.Count < min components k do
            let candidates =
                [|
                    for _ in 1..restarts do
                        let start = Array.init k (fun _ -> rng.NextGaussian())

                        match normalise start |> Option.bind (iterate order k t iterations) with
                        | Some v ->
                            let lambda = evaluate order k t v
                            // An odd-order tensor is odd in v: report the sign that makes λ positive.
                            if order = 3 && lambda < 0.0 then
                                (-lambda, Array.map (~-) v)
                            else
                                (lambda, v)
                        | None -> ()
                |]

            if candidates.Length = 0 then
                failure <-
                    Some(Text.format "the power iterations vanished for component %d" [| box (found.Count + 1) |])
            else
                let _, best = Array.maxBy fst candidates

                match iterate order k t iterations best with
                | None ->
                    failure <-
                        Some(Text.format "the power iterations vanished for component %d" [| box (found.Count + 1) |])
                | Some v ->
                    let lambda0 = evaluate order k t v

                    let lambda, v =
                        if order = 3 && lambda0 < 0.0 then
                            -lambda0, Array.map (~-) v
                        else
                            lambda0, v

                    if not (lambda > 0.0) then
                        failure <-
                            Some(
                                Text.format
                                    "component %d has weight %.3g (a moment tensor of the model has positive weights)"
                                    [| box (found.Count + 1); box lambda |]
                            )
                    else
                        found.Add { Weight = lambda; Vector = v }
                        // Deflation: T ← T − λ v^{⊗order}.
                        for idx in 0 .. t.Length - 1 do
                            let mutable p = lambda
                            let mutable rest = idx

                            for _ in 1..order do
                                p <- p * v.[rest % k]
                                rest <- rest / k

                            t.[idx] <- t.[idx] - p

        match failure with
        | Some reason -> Error reason
        | None -> Ok(found.ToArray())

    /// <summary>A whitening of a symmetric matrix M ≈ Σ w_m b_m b_mᵀ (w_m &gt; 0): W with WᵀMW = I, and its
    /// pseudo-inverse transpose Wᵀ⁺, which maps whitened components back (b_m ∝ Wᵀ⁺u_m).</summary>
    /// <param name="m">k×k symmetric.</param>
    /// <returns>(W, Wᵀ⁺), or why M cannot be whitened (an eigenvalue that is not clearly positive).</returns>
    [<CompiledName("Whiten")>]
    let whiten (m: float[,]) : Result<float[,] * float[,], string> =
        let k = m.GetLength 0
        let evd = Matrix<float>.Build.DenseOfArray(m).Evd(Symmetricity.Symmetric)
        let values = evd.EigenValues |> Seq.map (fun c -> c.Real) |> Seq.toArray
        let largest = Array.max values
        let smallest = Array.min values

        if not (largest > 0.0) || smallest <= 1e-8 * largest then
            Error(
                Text.format
                    "its second moment is not positive definite in the subspace (eigenvalues from %.3g to %.3g)"
                    [| box smallest; box largest |]
            )
        else
            let q = evd.EigenVectors

            Ok(
                Array2D.init k k (fun i j -> q.[i, j] / sqrt values.[j]),
                Array2D.init k k (fun i j -> q.[i, j] * sqrt values.[j])
            )

    /// <summary>The tensor in whitened coordinates: T(W, …, W).</summary>
    /// <param name="order">3 or 4.</param>
    /// <param name="k">The dimension.</param>
    /// <param name="tensor">The dense tensor (k^order).</param>
    /// <param name="w">The whitening (k×k).</param>
    [<CompiledName("Transform")>]
    let transform (order: int) (k: int) (tensor: float[]) (w: float[,]) : float[] =
        // One mode at a time: O(order·k^(order+1)).
        let mutable cur = Array.copy tensor

        for mode in 0 .. order - 1 do
            let next = Array.zeroCreate cur.Length
            let stride = pown k (order - 1 - mode)

            for idx in 0 .. cur.Length - 1 do
                let a = (idx / stride) % k
                let baseIdx = idx - a * stride
                let mutable s = 0.0

                for j in 0 .. k - 1 do
                    s <- s + w.[j, a] * cur.[baseIdx + j * stride]

                next.[idx] <- s

            cur <- next

        cur
