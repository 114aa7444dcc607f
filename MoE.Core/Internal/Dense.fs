/// Small dense linear algebra on float arrays that several stages share: rows, flattening, dot products, the
/// projections of every sample on a set of directions, and a guarded symmetric solve. Plain loops summed in
/// index order, so a result does not depend on which caller computes it.
module internal MoE.Core.Dense

open MathNet.Numerics.LinearAlgebra

/// Row i of a matrix as a fresh array.
let row (m: float[,]) (i: int) : float[] =
    Array.init (m.GetLength 1) (fun j -> m.[i, j])

/// Every row of a matrix as a fresh array.
let rows (m: float[,]) : float[][] = Array.init (m.GetLength 0) (row m)

/// Σ_i u_i v_i, summed in index order.
let dot (u: float[]) (v: float[]) : float =
    let mutable s = 0.0

    for i in 0 .. u.Length - 1 do
        s <- s + u.[i] * v.[i]

    s

/// The row-major entries of a matrix as one vector.
let flatten (m: float[,]) : float[] =
    Array.init m.Length (fun idx -> m.[idx / m.GetLength 1, idx % m.GetLength 1])

/// A rows×cols matrix from its row-major entries.
let unflatten (rows: int) (cols: int) (v: float[]) : float[,] =
    Array2D.init rows cols (fun i j -> v.[i * cols + j])

/// The rows index[lo..lo+count−1] of (x, y), in that order: whole rows copied as spans of the row-major storage.
let gatherRows (x: float[,]) (y: float[]) (index: int[]) (lo: int) (count: int) : float[,] * float[] =
    let d = x.GetLength 1
    let xs = Array2D.zeroCreate count d
    let ys = Array.zeroCreate count

    if count > 0 && d > 0 then
        let source =
            System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpan(&x.[0, 0], x.Length)

        let target =
            System.Runtime.InteropServices.MemoryMarshal.CreateSpan(&xs.[0, 0], xs.Length)

        for i in 0 .. count - 1 do
            source.Slice(index.[lo + i] * d, d).CopyTo(target.Slice(i * d, d))

    for i in 0 .. count - 1 do
        ys.[i] <- y.[index.[lo + i]]

    xs, ys

/// s[r, i] = ⟨a_i, x_r⟩ for every sample r and direction i, in one pass.
let projections (a: float[,]) (x: float[,]) : float[,] =
    let n, k, d = x.GetLength 0, a.GetLength 0, a.GetLength 1
    let s = Array2D.zeroCreate n k

    for r in 0 .. n - 1 do
        for i in 0 .. k - 1 do
            let mutable acc = 0.0

            for t in 0 .. d - 1 do
                acc <- acc + a.[i, t] * x.[r, t]

            s.[r, i] <- acc

    s

/// The median of at least one value (the mean of the two middle values for an even count).
let median (values: float[]) : float =
    let v = Seq.sort values |> Seq.toArray
    let h = v.Length / 2

    if v.Length % 2 = 1 then
        v.[h]
    else
        0.5 * (v.[h - 1] + v.[h])

/// The full symmetric matrix from its upper triangle (row-major, size×size).
let mirror (size: int) (upper: float[]) : float[,] =
    Array2D.init size size (fun i j ->
        if i <= j then
            upper.[i * size + j]
        else
            upper.[j * size + i])

/// Solves (G + εI)δ = b with ε = 1e-12·(trace G/d + 1e-300): a guard for experts with almost no weight.
let solveSpd (gram: float[,]) (rhs: float[]) : float[] =
    let d = rhs.Length
    let trace = Seq.sum (seq { for i in 0 .. d - 1 -> gram.[i, i] })

    let g =
        Matrix<float>.Build.DenseOfArray(gram)
        + Matrix<float>.Build.DenseIdentity(d) * (1e-12 * trace / float d + 1e-300)

    g.Solve(Vector<float>.Build.DenseOfArray rhs).ToArray()

/// Orthonormal basis of span(vectors) by modified Gram–Schmidt, applied twice; vectors whose remainder is
/// below 1e-10 of their norm are dropped. The first kept vector is the first non-zero input, normalised.
let orthonormalBasis (vectors: float[][]) : float[][] =
    let basis = ResizeArray<float[]>()

    for v in vectors do
        let norm0 = sqrt (dot v v)

        if norm0 > 0.0 then
            let u = Array.copy v

            for _ in 1..2 do
                for b in basis do
                    let c = dot u b

                    for t in 0 .. u.Length - 1 do
                        u.[t] <- u.[t] - c * b.[t]

            let norm = sqrt (dot u u)

            if norm > 1e-10 * norm0 then
                basis.Add(u |> Array.map (fun t -> t / norm))

    basis.ToArray()

/// The population standard deviation √(mean (y − ȳ)²).
let std (y: float[]) : float =
    let m = Array.average y
    sqrt (Array.averageBy (fun v -> (v - m) * (v - m)) y)
