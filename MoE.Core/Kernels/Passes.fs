namespace MoE.Core

open System
open System.Threading

/// <summary>
/// Passes over a data source (docs/math.md §7.6): a statistic computed chunk by chunk — each chunk a fixed number of
/// rows from the start of its shard — the chunks of a shard merged in order, then the shards' results merged in order.
/// Batches of a shard must each hold a whole number of chunks but the last (the source readers guarantee it), so a
/// shard gives the same chunks, and the same bits, however it is read.
/// </summary>
module internal Passes =

    /// <summary>body(state, batch, lo, hi) for every chunk of every shard, merged: a shard's chunks in order, then the
    /// shards in order. One scratch state per worker thread. A remote shard's part is the request computed by its
    /// worker (all remote shards asked at once, before the local ones are read), sent as a vector that
    /// <paramref name="decode"/> reads, and merged in its place.</summary>
    let foldWith
        (request: PassRequest)
        (decode: float[] -> 'T)
        (source: DataSource)
        (init: unit -> 'S)
        (body: 'S -> Dataset -> int -> int -> 'T)
        (merge: 'T -> 'T -> 'T)
        : 'T =
        let remote =
            source.Shards
            |> Array.map (fun shard ->
                match shard.Remote with
                | Some r when shard.Rows > 0L -> Some(r.Worker.Evaluate(Requests.encode r.View request))
                | _ -> None)

        use states = new ThreadLocal<'S>(Func<'S>(init))
        let mutable total = None

        for i in 0 .. source.Shards.Length - 1 do
            let shard = source.Shards.[i]
            let mutable sum = None

            match remote.[i] with
            | Some part -> sum <- Some(decode (part.GetAwaiter().GetResult()))
            | None when shard.Remote.IsSome -> ()
            | None ->
                let mutable short = false

                for batch in shard.Read() do
                    // A batch after one that ended between chunks would start mid-chunk: its chunks would not be the
                    // shard's, and the bits would depend on how the shard was cut.
                    if short then
                        invalidArg
                            "source"
                            (Text.format
                                "%s yielded a batch after one of a number of rows that is not a multiple of %d; every batch but a shard's last must hold whole chunks (DataSource.rebatch re-cuts them)."
                                [| box shard.Name; box Chunks.Size |])

                    short <- batch.Count % Chunks.Size <> 0

                    if batch.Dimension <> source.Dimension then
                        invalidArg
                            "source"
                            (Text.format
                                "%s has %d input columns where the source has %d."
                                [| box shard.Name; box batch.Dimension; box source.Dimension |])

                    if batch.Count > 0 then
                        sum <- Chunks.foldIn states batch.Count (fun s lo hi -> body s batch lo hi) merge sum

            match sum with
            | None -> ()
            | Some s ->
                total <-
                    match total with
                    | None -> Some s
                    | Some t -> Some(merge t s)

        match total with
        | Some t -> t
        | None -> invalidArg "source" "The source has no rows."

    /// <summary>A pass whose chunk results are vectors (<c>foldWith</c> with nothing to encode).</summary>
    let fold
        (request: PassRequest)
        (source: DataSource)
        (init: unit -> 'S)
        (body: 'S -> Dataset -> int -> int -> float[])
        (merge: float[] -> float[] -> float[])
        : float[] =
        foldWith request id source init body merge

    /// <summary>The partial vectors body(state, batch, lo, hi) of every chunk (all of one length), added as
    /// <c>fold</c> merges.</summary>
    let sum
        (request: PassRequest)
        (source: DataSource)
        (init: unit -> 'S)
        (body: 'S -> Dataset -> int -> int -> float[])
        : float[] =
        fold request source init body Chunks.add

    /// <summary>body(state, batch, start, lo, hi) for every chunk, for its effect (e.g. writing rows' results), with
    /// start the batch's first row counted over the whole source.</summary>
    let iter (source: DataSource) (init: unit -> 'S) (body: 'S -> Dataset -> int64 -> int -> int -> unit) : unit =
        if DataSource.isRemote source then
            invalidArg "source" "Rows' own results are computed where the rows are read, not on shard workers."

        use states = new ThreadLocal<'S>(Func<'S>(init))
        let mutable start = 0L

        for shard in source.Shards do
            for batch in shard.Read() do
                let first = start
                Chunks.forChunksIn states batch.Count (fun s _ lo hi -> body s batch first lo hi)
                start <- start + int64 batch.Count
