namespace MoE.Core

open System
open System.Collections.Generic
open System.Threading.Tasks

/// <summary>One shard of a data source: a run of rows (one file, one array in memory) read from its start on every
/// pass.</summary>
type Shard =
    {
        /// Where the rows come from (a file's path, "memory"), for messages.
        Name: string
        /// The shard's rows.
        Rows: int64
        /// One pass: the shard's rows in order, in batches that each hold a whole number of chunks
        /// (<c>DataSource.ChunkRows</c>) but the last. Every call yields the same rows; a reader may check the token
        /// between batches. A batch is valid until the next one is requested: a reader may hand every batch in the
        /// same arrays (the Parquet reader does), so a consumer that keeps rows copies them. A remote shard's rows
        /// are not read here: its passes go to its worker.
        Read: unit -> seq<Dataset>
        /// The shard's worker when its rows live elsewhere (a cluster), else None.
        Remote: RemoteShard option
        /// Rows of the file its reader left out for a missing value (<c>MissingValues.Drop</c>; 0 otherwise), and
        /// where the first was ("data.csv, line 5, column 3 ('x2')"; empty when none was). They are not among <c>Rows</c>.
        Dropped: int64 * string
        /// Σ of the rows' frequency weights (<c>Dataset.Weights</c>), or None when they carry none (each weighs 1).
        Weight: float option
    }

/// <summary>
/// Data read in passes (docs/math.md §7.6): one or more shards — a dataset in memory, a CSV or Parquet file read in
/// batches, a directory of files, the shards a cluster holds. Every statistic a fit needs is a sum over the rows, taken
/// chunk by chunk (a fixed number of rows from the start of each shard), the chunks of a shard added in order and then
/// the shards in order, so the same shards give the same bits however their rows arrive: all at once, in batches of any
/// size that is a whole number of chunks, or from other machines.
/// </summary>
type DataSource =
    {
        /// d, the input columns.
        Dimension: int
        /// The shards, in order.
        Shards: Shard[]
    }

    /// n, the rows of every shard.
    member this.Rows = this.Shards |> Array.sumBy (fun s -> s.Rows)

    /// n as the statistics count it: Σ of the rows' frequency weights over every shard, the rows' count when they
    /// carry none (docs/math.md §13).
    member this.Weight =
        this.Shards |> Array.sumBy (fun s -> defaultArg s.Weight (float s.Rows))

    /// Whether any shard's rows carry frequency weights.
    member this.IsWeighted = this.Shards |> Array.exists (fun s -> s.Weight.IsSome)

/// Data sources: in memory, re-batched, transformed, loaded and sampled.
[<RequireQualifiedAccess>]
module DataSource =

    /// <summary>Rows per chunk, the unit of every sum over the data: a batch of a shard must start at a multiple of
    /// it.</summary>
    [<CompiledName("ChunkRows")>]
    let chunkRows = Chunks.Size

    /// <summary>Whether any shard of the source lives with a worker (a cluster).</summary>
    /// <param name="source">The source.</param>
    [<CompiledName("IsRemote")>]
    let isRemote (source: DataSource) =
        source.Shards |> Array.exists (fun s -> s.Remote.IsSome)

    /// <summary>A remote shard whose reader left rows out for a missing value (<c>Shard.Dropped</c>) and whose rows may
    /// carry frequency weights (<c>Shard.Weight</c>): the worker weighs them in every pass it computes.</summary>
    /// <param name="name">Where the rows are (a path on the worker's machine), for messages.</param>
    /// <param name="rows">The shard's rows, as the worker counted them.</param>
    /// <param name="dropped">The rows left out and where the first was ((0, "") when none was).</param>
    /// <param name="weight">Σ of the rows' weights as the worker summed them, or None when they carry none.</param>
    /// <param name="worker">The worker.</param>
    [<CompiledName("RemoteShardWeighted")>]
    let remoteShardWeighted
        (name: string)
        (rows: int64)
        (dropped: int64 * string)
        (weight: float option)
        (worker: IShardWorker)
        : Shard =
        {
            Name = name
            Rows = rows
            Read =
                fun () ->
                    invalidOp (
                        Text.format
                            "%s lives with a shard worker: its rows are not read here, its passes go to the worker."
                            [| box name |]
                    )
            Remote = Some { Worker = worker; View = None }
            Dropped = dropped
            Weight = weight
        }

    /// <summary>A remote shard whose reader left rows out for a missing value (<c>Shard.Dropped</c>).</summary>
    /// <param name="name">Where the rows are (a path on the worker's machine), for messages.</param>
    /// <param name="rows">The shard's rows, as the worker counted them.</param>
    /// <param name="dropped">The rows left out and where the first was ((0, "") when none was).</param>
    /// <param name="worker">The worker.</param>
    [<CompiledName("RemoteShardDropping")>]
    let remoteShardDropping (name: string) (rows: int64) (dropped: int64 * string) (worker: IShardWorker) : Shard =
        remoteShardWeighted name rows dropped None worker

    /// <summary>A shard whose rows live with a worker: its passes and row requests go to the worker.</summary>
    /// <param name="name">Where the rows are (a path on the worker's machine), for messages.</param>
    /// <param name="rows">The shard's rows, as the worker counted them.</param>
    /// <param name="worker">The worker.</param>
    [<CompiledName("RemoteShard")>]
    let remoteShard (name: string) (rows: int64) (worker: IShardWorker) : Shard =
        remoteShardDropping name rows (0L, "") worker

    /// Rows a request to a remote shard asks for at most: 2²⁰ values (8 MB), so a message stays far below a
    /// cluster's limit on its size whatever d and the sample's size.
    let private rowsPerRequest (dimension: int) = max 1 ((1 <<< 20) / (dimension + 1))

    /// Rows of a remote shard by position (within the shard), checked against what was asked.
    let private fetch (shard: Shard) (remote: RemoteShard) (dimension: int) (positions: int64[]) : Dataset =
        let rows =
            remote.Worker.Gather(ShardProtocol.gatherRequest remote.View positions).GetAwaiter().GetResult()

        if rows.Count <> positions.Length || rows.Dimension <> dimension then
            invalidOp (
                Text.format
                    "The worker of %s sent %d rows of %d columns for %d rows of %d columns."
                    [|
                        box shard.Name
                        box rows.Count
                        box rows.Dimension
                        box positions.Length
                        box dimension
                    |]
            )

        rows

    /// <summary>A dataset in memory as a source of one shard and one batch.</summary>
    /// <param name="data">The data (validated by the caller).</param>
    [<CompiledName("OfDataset")>]
    let ofDataset (data: Dataset) : DataSource =
        {
            Dimension = data.Dimension
            Shards =
                [|
                    {
                        Name = "memory"
                        Rows = int64 data.Count
                        Read = fun () -> Seq.singleton data
                        Remote = None
                        Dropped = 0L, ""
                        Weight = (if data.IsWeighted then Some data.Weight else None)
                    }
                |]
        }

    /// <summary>A dataset in memory as a source of one shard, read from a file whose reader left rows out for a missing
    /// value (<c>Shard.Dropped</c>): a fit warns with their count.</summary>
    /// <param name="dropped">The rows left out and where the first was.</param>
    /// <param name="data">The rows kept.</param>
    [<CompiledName("OfDatasetDropping")>]
    let ofDatasetDropping (dropped: int64 * string) (data: Dataset) : DataSource =
        let source = ofDataset data

        { source with
            Shards = source.Shards |> Array.map (fun s -> { s with Dropped = dropped })
        }

    /// <summary>The rows a source's readers left out for a missing value, and where the first was (on the first shard
    /// that left any out).</summary>
    /// <param name="source">The source.</param>
    [<CompiledName("Dropped")>]
    let dropped (source: DataSource) : int64 * string =
        match source.Shards |> Array.tryFind (fun s -> fst s.Dropped > 0L) with
        | Some first -> source.Shards |> Array.sumBy (fun s -> fst s.Dropped), snd first.Dropped
        | None -> 0L, ""

    /// <summary>Several sources' shards as one source, in order.</summary>
    /// <param name="sources">Sources of one dimension.</param>
    /// <exception cref="T:System.ArgumentException">No sources, or sources of different dimensions.</exception>
    [<CompiledName("Concat")>]
    let concat (sources: DataSource seq) : DataSource =
        let sources = Seq.toArray sources

        if sources.Length = 0 then
            invalidArg "sources" "A data source needs at least one shard."

        let d = sources.[0].Dimension

        for s in sources do
            if s.Dimension <> d then
                invalidArg
                    "sources"
                    (Text.format
                        "Every shard must have the same input columns, but %s has %d and %s has %d."
                        [|
                            box sources.[0].Shards.[0].Name
                            box d
                            box s.Shards.[0].Name
                            box s.Dimension
                        |])

        {
            Dimension = d
            Shards = sources |> Array.collect (fun s -> s.Shards)
        }

    /// <summary>Batches of any sizes re-cut into batches of <paramref name="rows"/> rows (a whole number of chunks),
    /// the last one shorter: what a reader whose natural pieces (Parquet row groups) do not fall on chunk boundaries
    /// yields.</summary>
    /// <param name="rows">The batch size, a positive multiple of the chunk size.</param>
    /// <param name="batches">The rows in order.</param>
    [<CompiledName("Rebatch")>]
    let rebatch (rows: int) (batches: seq<Dataset>) : seq<Dataset> =
        if rows <= 0 || rows % chunkRows <> 0 then
            invalidArg
                "rows"
                (Text.format
                    "Batches must hold a whole number of %d-row chunks, not %d rows."
                    [| box chunkRows; box rows |])

        seq {
            let mutable x: float[,] = null
            let mutable y: float[] = null
            let mutable w: float[] = null
            let mutable filled = 0

            for batch in batches do
                let d = batch.Dimension
                let mutable taken = 0

                while taken < batch.Count do
                    if isNull x then
                        x <- Array2D.zeroCreate rows d
                        y <- Array.zeroCreate rows
                        w <- if batch.IsWeighted then Array.zeroCreate rows else null
                        filled <- 0

                    let count = min (rows - filled) (batch.Count - taken)
                    Array.Copy(batch.X, int64 taken * int64 d, x, int64 filled * int64 d, int64 count * int64 d)
                    Array.Copy(batch.Y, taken, y, filled, count)

                    if not (isNull w) then
                        Array.Copy(batch.Weights, taken, w, filled, count)

                    filled <- filled + count
                    taken <- taken + count

                    if filled = rows then
                        yield { X = x; Y = y; Weights = w }
                        x <- null

            if not (isNull x) && filled > 0 then
                yield
                    {
                        X = Array2D.init filled (x.GetLength 1) (fun i t -> x.[i, t])
                        Y = Array.sub y 0 filled
                        Weights = (if isNull w then null else Array.sub w 0 filled)
                    }
        }

    /// <summary>Every batch of every shard transformed (e.g. standardised) as it is read.</summary>
    /// <param name="f">A row-wise transform: row i of its result depends on row i of its argument only.</param>
    /// <exception cref="T:System.ArgumentException">A shard of the source is remote.</exception>
    /// <param name="dimension">The transform's output dimension.</param>
    /// <param name="source">The source.</param>
    [<CompiledName("Map")>]
    let map (f: Dataset -> Dataset) (dimension: int) (source: DataSource) : DataSource =
        for s in source.Shards do
            if s.Remote.IsSome then
                invalidArg
                    "source"
                    (Text.format
                        "%s lives with a shard worker, and an arbitrary row transform cannot be sent to it (Standardise.source sends a standardisation)."
                        [| box s.Name |])

        {
            Dimension = dimension
            Shards =
                source.Shards
                |> Array.map (fun s ->
                    { s with
                        Read = fun () -> s.Read() |> Seq.map f
                    })
        }

    /// <summary>A source whose last input column holds each row's frequency weight (docs/math.md §13): the rows'
    /// inputs are the other columns and their <c>Weights</c> that column. Opening it reads every shard once, to check the
    /// weights (finite, at least 0; the first bad one is named by its shard and row) and to sum them.</summary>
    /// <param name="column">The weights column's name, for messages.</param>
    /// <param name="source">The rows, the weights their last input column.</param>
    /// <exception cref="T:System.IO.InvalidDataException">A negative or non-finite weight, or every weight 0.</exception>
    /// <exception cref="T:System.ArgumentException">A remote shard: a cluster's workers read unweighted rows.</exception>
    [<CompiledName("WithWeightColumn")>]
    let withWeightColumn (column: string) (source: DataSource) : DataSource =
        Guard.notNull "column" column
        let d = source.Dimension - 1

        if d < 1 then
            invalidArg "source" "A weighted source needs an input column besides the weights."

        // One batch's inputs and weights apart; `first` is the batch's first row in the shard (0-based).
        let splitBatch (shard: Shard) (first: int64) (batch: Dataset) : Dataset =
            let n = batch.Count
            let x = Array2D.zeroCreate n d
            let w = Array.zeroCreate n

            for r in 0 .. n - 1 do
                Array.Copy(batch.X, int64 r * int64 (d + 1), x, int64 r * int64 d, int64 d)
                let v = batch.X.[r, d]

                if not (Double.IsFinite v) || v < 0.0 then
                    let kept =
                        if fst shard.Dropped > 0L then
                            " (counting the rows kept)"
                        else
                            ""

                    raise (
                        IO.InvalidDataException(
                            Text.format
                                "%s: the weights column '%s' is %s on data row %d%s; a frequency weight is a finite number of at least 0 (0 leaves the row out)."
                                [|
                                    box shard.Name
                                    box column
                                    box (v.ToString("R", Globalization.CultureInfo.InvariantCulture))
                                    box (first + int64 r + 1L)
                                    box kept
                                |]
                        )
                    )

                w.[r] <- v

            { X = x; Y = batch.Y; Weights = w }

        let split (shard: Shard) () : seq<Dataset> =
            seq {
                let mutable row = 0L

                for batch in shard.Read() do
                    let first = row
                    row <- row + int64 batch.Count
                    yield splitBatch shard first batch
            }

        let shards =
            source.Shards
            |> Array.map (fun shard ->
                if shard.Remote.IsSome then
                    invalidArg
                        "source"
                        (Text.format
                            "%s lives with a shard worker, and a cluster's workers read unweighted rows; fit weighted rows in one process."
                            [| box shard.Name |])

                let read = split shard
                let mutable total = 0.0

                for batch in read () do
                    for v in batch.Weights do
                        total <- total + v

                { shard with
                    Read = read
                    Weight = Some total
                })

        if shards |> Array.sumBy (fun s -> s.Weight.Value) <= 0.0 then
            raise (
                IO.InvalidDataException(
                    Text.format
                        "Every row has the weight 0 in the column '%s': there is nothing to fit."
                        [| box column |]
                )
            )

        { Dimension = d; Shards = shards }

    /// <summary>The source with the token checked before every batch is handed on, and before and while waiting for a
    /// remote shard's worker: a cancelled fit stops within one batch of any pass.</summary>
    /// <param name="token">The token.</param>
    /// <param name="source">The source.</param>
    [<CompiledName("Checking")>]
    let checking (token: Threading.CancellationToken) (source: DataSource) : DataSource =
        { source with
            Shards =
                source.Shards
                |> Array.map (fun s ->
                    { s with
                        Read =
                            fun () ->
                                s.Read()
                                |> Seq.map (fun batch ->
                                    token.ThrowIfCancellationRequested()
                                    batch)
                        Remote =
                            s.Remote
                            |> Option.map (fun remote ->
                                let inner = remote.Worker

                                { remote with
                                    Worker =
                                        { new IShardWorker with
                                            // Waiting for a worker stops at the token too: the worker may
                                            // finish its part, but nobody waits for it.
                                            member _.Evaluate request =
                                                token.ThrowIfCancellationRequested()
                                                (inner.Evaluate request).WaitAsync token

                                            member _.Gather request =
                                                token.ThrowIfCancellationRequested()
                                                (inner.Gather request).WaitAsync token
                                        }
                                })
                    })
        }

    /// <summary>Every row in memory as one dataset (shards in order).</summary>
    /// <param name="source">The source; its rows must fit in memory (at most 2³¹ − 1).</param>
    [<CompiledName("Load")>]
    let load (source: DataSource) : Dataset =
        let n = source.Rows

        if n > int64 Int32.MaxValue then
            invalidArg "source" (Text.format "%d rows do not fit in one array." [| box n |])

        // A shard read as one batch is that batch (an array in memory is not copied); otherwise each batch is copied
        // as it arrives, since a reader may hand the next batch in the same arrays.
        let x = lazy (Array2D.zeroCreate (int n) source.Dimension)
        let y = lazy (Array.zeroCreate (int n))
        // Unit weights until a weighted batch arrives; null at the end when none did.
        let w = lazy (Array.create (int n) 1.0)
        let mutable weighted = false
        let mutable at = 0
        let mutable whole = None

        for shard in source.Shards do
            let batches =
                match shard.Remote with
                | Some remote ->
                    let perRequest = rowsPerRequest source.Dimension

                    seq {
                        for lo in 0L .. int64 perRequest .. shard.Rows - 1L do
                            let count = int (min (int64 perRequest) (shard.Rows - lo))
                            yield fetch shard remote source.Dimension (Array.init count (fun i -> lo + int64 i))
                    }
                | None -> shard.Read()

            for b in batches do
                if source.Shards.Length = 1 && at = 0 && int64 b.Count = n then
                    whole <- Some b
                else
                    Array.Copy(b.X, 0L, x.Value, int64 at * int64 source.Dimension, int64 b.X.Length)
                    Array.Copy(b.Y, 0, y.Value, at, b.Count)

                    if b.IsWeighted then
                        Array.Copy(b.Weights, 0, w.Value, at, b.Count)
                        weighted <- true

                at <- at + b.Count

        if int64 at <> n then
            invalidArg
                "source"
                (Text.format "The source's shards yielded %d rows where they count %d." [| box at; box n |])

        match whole with
        | Some b -> b
        | None ->
            {
                X = x.Value
                Y = y.Value
                Weights = (if weighted then w.Value else null)
            }

    /// <summary>The rows at the given positions (counted over the shards in order), in the order given, in one pass.</summary>
    /// <param name="source">The source.</param>
    /// <param name="positions">Row positions in [0, n), any order, no repeats.</param>
    [<CompiledName("Gather")>]
    let gather (source: DataSource) (positions: int64[]) : Dataset =
        let d = source.Dimension
        let m = positions.Length
        let x = Array2D.zeroCreate m d
        let y = Array.zeroCreate m
        let w = Array.create m 1.0
        let mutable weighted = false
        // Where each wanted row goes, by position.
        let slots = Dictionary<int64, int>(m)

        for i in 0 .. m - 1 do
            slots.[positions.[i]] <- i

        let sorted = Array.sort positions
        let mutable next = 0
        let mutable offset = 0L

        for shard in source.Shards do
            if next < m && sorted.[next] < offset + shard.Rows then
                let mutable at = offset

                let batches =
                    match shard.Remote with
                    | Some remote ->
                        // Only the wanted rows cross the wire: hand them on as the shard's batch, positions remapped.
                        let mutable last = next

                        while last < m && sorted.[last] < offset + shard.Rows do
                            last <- last + 1

                        let within = Array.init (last - next) (fun i -> sorted.[next + i] - offset)
                        let perRequest = rowsPerRequest d

                        for lo in 0..perRequest .. within.Length - 1 do
                            let count = min perRequest (within.Length - lo)
                            let rows = fetch shard remote d (Array.sub within lo count)

                            for i in 0 .. count - 1 do
                                let slot = slots.[sorted.[next + lo + i]]
                                Array.Copy(rows.X, int64 i * int64 d, x, int64 slot * int64 d, int64 d)
                                y.[slot] <- rows.Y.[i]

                                if rows.IsWeighted then
                                    w.[slot] <- rows.Weights.[i]
                                    weighted <- true

                        next <- last
                        Seq.empty
                    | None -> shard.Read()

                for b in batches do
                    while next < m && sorted.[next] < at + int64 b.Count do
                        let row = int (sorted.[next] - at)
                        let slot = slots.[sorted.[next]]
                        Array.Copy(b.X, int64 row * int64 d, x, int64 slot * int64 d, int64 d)
                        y.[slot] <- b.Y.[row]

                        if b.IsWeighted then
                            w.[slot] <- b.Weights.[row]
                            weighted <- true

                        next <- next + 1

                    at <- at + int64 b.Count

            offset <- offset + shard.Rows

        if next < m then
            invalidArg
                "positions"
                (Text.format "Row %d is past the source's %d rows." [| box sorted.[next]; box source.Rows |])

        {
            X = x
            Y = y
            Weights = (if weighted then w else null)
        }
