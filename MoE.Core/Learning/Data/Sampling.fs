namespace MoE.Core

/// <summary>Seeded row samples, drawn by position so that they are the same rows in memory and in passes.</summary>
[<RequireQualifiedAccess>]
module Sampling =

    /// A uniform integer on [0, bound) for bound ≥ 1 (rejection of the top partial range, then the remainder).
    let private below (rng: Xoshiro256StarStar) (bound: int64) : int64 =
        let b = uint64 bound
        let threshold = (0UL - b) % b
        let mutable v = rng.NextUInt64()

        while v < threshold do
            v <- rng.NextUInt64()

        int64 (v % b)

    /// <summary>m distinct row positions drawn uniformly from [0, n) on the seed's given stream (Floyd's algorithm: m
    /// draws whatever n), in the order drawn. A sample is then the same rows whether the data are in memory or read in
    /// passes (docs/math.md §7.6).</summary>
    /// <param name="n">The rows to draw from.</param>
    /// <param name="m">How many, at most n.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="stream">The seed's stream (Streams).</param>
    [<CompiledName("Positions")>]
    let positions (n: int64) (m: int) (seed: int64) (stream: int64) : int64[] =
        if m < 0 || int64 m > n then
            invalidArg "m" (Text.format "Cannot draw %d distinct rows of %d." [| box m; box n |])

        let rng = Rng.stream seed stream
        let chosen = System.Collections.Generic.HashSet<int64>(m)
        let order = Array.zeroCreate m
        let mutable i = 0

        for j in n - int64 m .. n - 1L do
            let t = below rng (j + 1L)

            let pick =
                if chosen.Add t then
                    t
                else
                    (chosen.Add j |> ignore
                     j)

            order.[i] <- pick
            i <- i + 1

        order

    /// <summary>A seeded uniform subset of at most <paramref name="count"/> rows of a source, in the order of the rows
    /// (Floyd's algorithm on the seed's subsample stream, one pass to collect them), or all of them when there are no
    /// more.</summary>
    /// <param name="count">The most rows to keep.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="source">The data.</param>
    [<CompiledName("SubsampleOf")>]
    let subsampleOf (count: int) (seed: int64) (source: DataSource) : Dataset =
        let n = source.Rows

        if n <= int64 count then
            DataSource.load source
        else
            DataSource.gather source (positions n count seed Streams.Subsample |> Array.sort)

    /// <summary>A seeded uniform subset of at most <paramref name="count"/> rows of data in memory (the rows
    /// <c>subsampleOf</c> takes), or the data themselves when they have no more rows.</summary>
    /// <param name="count">The most rows to keep.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>The subset's inputs and responses.</returns>
    [<CompiledName("Subsample")>]
    let subsample (count: int) (seed: int64) (x: float[,]) (y: float[]) : float[,] * float[] =
        if y.Length <= count then
            x, y
        else
            let s =
                subsampleOf count seed (DataSource.ofDataset { X = x; Y = y; Weights = null })

            s.X, s.Y
