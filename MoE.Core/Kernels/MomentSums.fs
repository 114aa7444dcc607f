namespace MoE.Core

open System
open System.Numerics.Tensors

/// <summary>
/// The sums behind the Q2 moment matrix (the subspace L4 solver's first pass): Σ Q2(y)·x xᵀ (upper triangle,
/// row-major), Σ Q2(y) and the sample count. Sums merge by addition, so chunks, cores, streamed files and shards
/// all accumulate the same way (<c>MomentSums.mergeSecond</c>).
/// </summary>
type SecondMomentSums =
    {
        /// Samples accumulated: Σ of their frequency weights, their number when they carry none (docs/math.md §13).
        Count: float
        /// Input dimension d.
        Dimension: int
        /// Σ Q2(y).
        SumQ2: float
        /// Σ Q2(y)·x_i x_j for i ≤ j (d·d, lower triangle zero).
        Sums: float[]
    }

/// <summary>
/// The sums behind the projected moments in the subspace U (the second pass): with z = Uᵀx, Σ Q4·z_iz_jz_kz_l over
/// the index quadruples of <c>SymmetricTensor.quads</c>, Σ Q4·z_iz_j and Σ Q2·z_iz_j (upper triangles), Σ Q4, Σ Q2, and
/// the spectral method's Σ Q3·z_iz_jz_l and Σ Q3·z_i.
/// </summary>
type ProjectedMomentSums =
    {
        /// Samples accumulated: Σ of their frequency weights, their number when they carry none (docs/math.md §13).
        Count: float
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
        /// Σ Q3·z_iz_jz_l (one entry per triple of <c>SymmetricTensor.triples</c>; zeros when the transform has no Q3).
        F3: float[]
        /// Σ Q3·z_i (r entries).
        F3z: float[]
    }

/// <summary>
/// Accumulation of the subspace solver's moment sums: one fused pass per chunk of rows (no per-sample allocation),
/// chunks over all cores, partial sums merged in chunk order (deterministic whatever the core count). Merging is
/// addition, so merge(sums(a), sums(b)) equals sums(a ++ b) up to the rounding of a reordered sum.
/// </summary>
[<RequireQualifiedAccess>]
module MomentSums =

    /// <summary>No samples, dimension d.</summary>
    /// <param name="dimension">d.</param>
    [<CompiledName("EmptySecond")>]
    let emptySecond (dimension: int) : SecondMomentSums =
        {
            Count = 0.0
            Dimension = dimension
            SumQ2 = 0.0
            Sums = Array.zeroCreate (dimension * dimension)
        }

    [<CompiledName("MergeSecond")>]
    /// The first-pass sums as one vector, for the wire: [n | ΣQ2 | sums] (n as the sums count it).
    let internal encodeSecond (s: SecondMomentSums) : float[] =
        Array.concat [ [| float s.Count; s.SumQ2 |]; s.Sums ]

    /// Reads what <c>encodeSecond</c> wrote.
    let internal decodeSecond (v: float[]) : SecondMomentSums =
        let d = int (sqrt (float (v.Length - 2)))

        if v.Length < 3 || d * d <> v.Length - 2 then
            invalidArg "v" "A shard's worker sent first-pass sums of the wrong length."

        {
            Count = v.[0]
            Dimension = d
            SumQ2 = v.[1]
            Sums = Array.sub v 2 (d * d)
        }

    /// The second-pass sums as one vector, for the wire: [n | F4s | F2s | F4 | F4z2 | F2 | F3 | F3z].
    let internal encodeProjected (s: ProjectedMomentSums) : float[] =
        Array.concat [ [| float s.Count; s.F4s; s.F2s |]; s.F4; s.F4z2; s.F2; s.F3; s.F3z ]

    /// Reads what <c>encodeProjected</c> wrote, for rank r.
    let internal decodeProjected (r: int) (v: float[]) : ProjectedMomentSums =
        let q = (SymmetricTensor.quads r).Length
        let t = (SymmetricTensor.triples r).Length

        if v.Length <> 3 + q + 2 * r * r + t + r then
            invalidArg "v" "A shard's worker sent second-pass sums of the wrong length."

        let mutable at = 3

        let take n =
            let part = Array.sub v at n
            at <- at + n
            part

        let f4 = take q
        let f4z2 = take (r * r)
        let f2 = take (r * r)
        let f3 = take t

        {
            Count = v.[0]
            Rank = r
            F4 = f4
            F4z2 = f4z2
            F2 = f2
            F4s = v.[1]
            F2s = v.[2]
            F3 = f3
            F3z = take r
        }

    /// <summary>The sums of two disjoint sample sets.</summary>
    /// <param name="a">The sums of one sample set.</param>
    /// <param name="b">The sums of another, disjoint set (same d).</param>
    /// <returns>The sums of their union.</returns>
    let mergeSecond (a: SecondMomentSums) (b: SecondMomentSums) : SecondMomentSums =
        if a.Dimension <> b.Dimension then
            invalidArg
                "b"
                (Text.format "Cannot merge sums of dimension %d and %d." [| box a.Dimension; box b.Dimension |])

        { a with
            Count = a.Count + b.Count
            SumQ2 = a.SumQ2 + b.SumQ2
            Sums = Array.map2 (+) a.Sums b.Sums
        }

    /// Row weights multiply each row's Q (w·Q2 here, w·Q4, w·Q3 in the second pass): a weighted row counts w times.
    let inline private weightOf (w: float[]) (row: int) = if isNull w then 1.0 else w.[row]

    /// Σ of the rows' weights lo..hi−1 (their count, exactly, without weights).
    let private countOf (w: float[]) (lo: int) (hi: int) =
        if isNull w then
            float (hi - lo)
        else
            let mutable s = 0.0

            for r in lo .. hi - 1 do
                s <- s + w.[r]

            s

    let private secondChunk (transform: OutputTransform) (x: float[,]) (y: float[]) (w: float[]) (lo: int) (hi: int) =
        let d = x.GetLength 1
        let sums = Array.zeroCreate (d * d)
        let mutable sumQ2 = 0.0
        let xs = Chunks.flat x

        for row in lo .. hi - 1 do
            let q2 = weightOf w row * transform.Q2 y.[row]
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
            Count = countOf w lo hi
            Dimension = d
            SumQ2 = sumQ2
            Sums = sums
        }

    /// <summary>The first-pass sums over a source, the chunks merged as every pass merges them.</summary>
    /// <param name="transform">The output transform (its Q2).</param>
    /// <param name="source">The data.</param>
    /// <returns>Σ Q2(y) x xᵀ (upper), Σ Q2(y) and n.</returns>
    [<CompiledName("SecondOf")>]
    let secondOf (transform: OutputTransform) (source: DataSource) : SecondMomentSums =
        Passes.foldWith
            (PassRequest.SecondMoments transform)
            decodeSecond
            source
            ignore
            (fun () batch lo hi -> secondChunk transform batch.X batch.Y batch.Weights lo hi)
            mergeSecond

    /// <summary>The first-pass sums of a sample matrix, in parallel chunks (<c>secondOf</c> on one batch).</summary>
    /// <param name="transform">The output transform (its Q2).</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>Σ Q2(y) x xᵀ (upper), Σ Q2(y) and n.</returns>
    [<CompiledName("Second")>]
    let second (transform: OutputTransform) (x: float[,]) (y: float[]) : SecondMomentSums =
        Guard.sameRows "x" x "y" y
        let n = y.Length

        if n = 0 then
            emptySecond (x.GetLength 1)
        else
            Chunks.fold n (secondChunk transform x y null) mergeSecond

    /// <summary>No samples, rank r.</summary>
    /// <param name="rank">r.</param>
    [<CompiledName("EmptyProjected")>]
    let emptyProjected (rank: int) : ProjectedMomentSums =
        {
            Count = 0.0
            Rank = rank
            F4 = Array.zeroCreate (SymmetricTensor.quads rank).Length
            F4z2 = Array.zeroCreate (rank * rank)
            F2 = Array.zeroCreate (rank * rank)
            F4s = 0.0
            F2s = 0.0
            F3 = Array.zeroCreate (SymmetricTensor.triples rank).Length
            F3z = Array.zeroCreate rank
        }

    /// <summary>The sums of two disjoint sample sets.</summary>
    /// <param name="a">The sums of one sample set.</param>
    /// <param name="b">The sums of another, disjoint set (same r).</param>
    /// <returns>The sums of their union.</returns>
    [<CompiledName("MergeProjected")>]
    let mergeProjected (a: ProjectedMomentSums) (b: ProjectedMomentSums) : ProjectedMomentSums =
        if a.Rank <> b.Rank then
            invalidArg "b" (Text.format "Cannot merge sums of rank %d and %d." [| box a.Rank; box b.Rank |])

        { a with
            Count = a.Count + b.Count
            F4 = Array.map2 (+) a.F4 b.F4
            F4z2 = Array.map2 (+) a.F4z2 b.F4z2
            F2 = Array.map2 (+) a.F2 b.F2
            F4s = a.F4s + b.F4s
            F2s = a.F2s + b.F2s
            F3 = Array.map2 (+) a.F3 b.F3
            F3z = Array.map2 (+) a.F3z b.F3z
        }

    let private projectedChunk
        (transform: OutputTransform)
        (u: float[,])
        (qs: struct (int * int * int * int)[])
        (ts: struct (int * int * int)[])
        (x: float[,])
        (y: float[])
        (w: float[])
        (lo: int)
        (hi: int)
        =
        let d, r = u.GetLength 0, u.GetLength 1

        let q3 =
            match transform.Third with
            | Ok third -> Some third.Q3
            | Error _ -> None

        let f3 = Array.zeroCreate ts.Length
        let f3z = Array.zeroCreate r
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

            let weight = weightOf w row
            let q4 = weight * transform.Q4 y.[row]
            let q2 = weight * transform.Q2 y.[row]
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

            match q3 with
            | Some q3f ->
                let q3 = weight * q3f y.[row]

                for i in 0 .. r - 1 do
                    f3z.[i] <- f3z.[i] + q3 * z.[i]

                for q in 0 .. ts.Length - 1 do
                    let struct (i, j, l) = ts.[q]
                    f3.[q] <- f3.[q] + q3 * zz.[i * r + j] * z.[l]
            | None -> ()

        {
            Count = countOf w lo hi
            Rank = r
            F4 = f4
            F4z2 = f4z2
            F2 = f2
            F4s = f4s
            F2s = f2s
            F3 = f3
            F3z = f3z
        }

    /// <summary>The second-pass sums of a sample matrix in the subspace U (d×r), in parallel chunks.</summary>
    /// <param name="transform">The output transform (its Q4 and Q2).</param>
    /// <param name="u">The subspace basis U (d×r, orthonormal columns).</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>The projected sums and n.</returns>
    [<CompiledName("Projected")>]
    let projected (transform: OutputTransform) (u: float[,]) (x: float[,]) (y: float[]) : ProjectedMomentSums =
        Guard.sameRows "x" x "y" y
        Guard.columns "x" (u.GetLength 0) x

        if y.Length = 0 then
            emptyProjected (u.GetLength 1)
        else
            let qs = SymmetricTensor.quads (u.GetLength 1)
            let ts = SymmetricTensor.triples (u.GetLength 1)
            Chunks.fold y.Length (projectedChunk transform u qs ts x y null) mergeProjected

    /// <summary>The second-pass sums over a source, the chunks merged as every pass merges them.</summary>
    /// <param name="transform">The output transform (its Q4 and Q2).</param>
    /// <param name="u">The subspace basis U (d×r, orthonormal columns).</param>
    /// <param name="source">The data.</param>
    [<CompiledName("ProjectedOf")>]
    let projectedOf (transform: OutputTransform) (u: float[,]) (source: DataSource) : ProjectedMomentSums =
        let r = u.GetLength 1
        let qs = SymmetricTensor.quads r
        let ts = SymmetricTensor.triples r

        Passes.foldWith
            (PassRequest.ProjectedMoments(transform, u))
            (decodeProjected r)
            source
            ignore
            (fun () batch lo hi -> projectedChunk transform u qs ts batch.X batch.Y batch.Weights lo hi)
            mergeProjected
