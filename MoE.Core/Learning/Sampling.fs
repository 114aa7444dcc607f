namespace MoE.Core

/// <summary>Seeded row samples: a subset of data in memory, and a uniform sample of data that arrive in chunks.</summary>
[<RequireQualifiedAccess>]
module Sampling =

    /// <summary>A seeded uniform subset of at most <paramref name="count"/> rows (partial Fisher–Yates on the
    /// seed's subsample stream), or the data themselves when they have no more rows.</summary>
    /// <param name="count">The most rows to keep.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>The subset's inputs and responses.</returns>
    [<CompiledName("Subsample")>]
    let subsample (count: int) (seed: int64) (x: float[,]) (y: float[]) : float[,] * float[] =
        let n = x.GetLength 0

        if n <= count then
            x, y
        else
            let rng = Rng.stream seed Streams.Subsample
            let index = Array.init n id

            for i in 0 .. count - 1 do
                let j = i + rng.NextInt(n - i)
                let t = index.[i]
                index.[i] <- index.[j]
                index.[j] <- t

            Dense.gatherRows x y index 0 count

    /// <summary>A seeded uniform sample of at most <paramref name="rows"/> rows of data that arrive in chunks
    /// (reservoir sampling, Vitter's Algorithm R), and the total row count: one pass, holding the sample and one
    /// chunk.</summary>
    /// <param name="rows">The sample size.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="chunks">The data.</param>
    /// <returns>The sample and the number of rows seen.</returns>
    /// <exception cref="T:System.ArgumentException">No rows, or chunks of different dimensions.</exception>
    [<CompiledName("Reservoir")>]
    let reservoir (rows: int) (seed: int64) (chunks: seq<Dataset>) : Dataset * int64 =
        Guard.positiveInt "rows" rows
        Guard.notNull "chunks" chunks
        let rng = Rng.stream seed Streams.Reservoir
        let mutable x: float[,] = null
        let y = Array.zeroCreate rows
        let mutable seen = 0L

        for chunk in chunks do
            if isNull x then
                x <- Array2D.zeroCreate rows chunk.Dimension
            elif chunk.Dimension <> x.GetLength 1 then
                invalidArg
                    "chunks"
                    (Text.format
                        "A chunk has d = %d columns after chunks of d = %d."
                        [| box chunk.Dimension; box (x.GetLength 1) |])

            for r in 0 .. chunk.Count - 1 do
                // Row t (0-based) replaces a uniform slot with probability rows/(t+1).
                let slot =
                    if seen < int64 rows then
                        int seen
                    else
                        let j = int64 (rng.NextDouble() * float (seen + 1L))
                        if j < int64 rows then int j else -1

                if slot >= 0 then
                    for t in 0 .. chunk.Dimension - 1 do
                        x.[slot, t] <- chunk.X.[r, t]

                    y.[slot] <- chunk.Y.[r]

                seen <- seen + 1L

        if seen = 0L then
            invalidArg "chunks" "The chunk source yielded no rows."

        let m = int (min seen (int64 rows))

        let sample =
            if m = rows then
                { X = x; Y = y }
            else
                {
                    X = Array2D.init m (x.GetLength 1) (fun i t -> x.[i, t])
                    Y = Array.sub y 0 m
                }

        sample, seen
