namespace MoE.Core

open System
open System.IO
open System.Threading
open Parquet
open Parquet.Schema

/// <summary>
/// Parquet files in and out (Parquet.Net's columnar API: no reflection). A file is read row group by row group, its
/// chosen columns decoded into arrays (the next group on another thread while this one is used) and transposed into
/// batches of 65,536 rows, so a pass holds two row groups' columns and a batch; any compression Parquet.Net reads is
/// read. Written files have one row group per batch given (<c>moe generate</c> writes 1,048,576 rows per group) and
/// uncompressed column chunks of doubles.
/// </summary>
[<RequireQualifiedAccess>]
module DataParquet =

    /// Rows per batch of a pass (a whole number of chunks).
    let private batchRows = 16 * DataSource.chunkRows

    /// Opens a file, a file that is not Parquet (or is cut short) reported as bad data naming it.
    let private openReader (path: string) =
        if not (File.Exists path) then
            raise (FileNotFoundException(Text.format "No file %s." [| box path |], path))

        try
            ParquetReader.CreateAsync(path, null, CancellationToken.None).GetAwaiter().GetResult()
        with
        | :? IOException
        | :? InvalidOperationException
        | :? ArgumentException
        | :? NotSupportedException
        | :? IndexOutOfRangeException as e when not (e :? FileNotFoundException) ->
            raise (
                InvalidDataException(
                    Text.format "%s: not a readable Parquet file (%s)" [| box (Path.GetFileName path); box e.Message |],
                    e
                )
            )

    /// Parquet.Net's readers and writers are disposed asynchronously only.
    let private close (resource: IAsyncDisposable) =
        resource.DisposeAsync().AsTask().GetAwaiter().GetResult()

    let private fail (path: string) (message: string) =
        raise (InvalidDataException(Path.GetFileName path + ": " + message))

    let private numeric (field: DataField) =
        let t = field.ClrType

        t = typeof<float>
        || t = typeof<float32>
        || t = typeof<int>
        || t = typeof<int64>
        || t = typeof<int16>

    /// The file's fields chosen as inputs and response: the named ones, or by the CSV convention — y is the column
    /// named "y" (else the last numeric column), the inputs every other numeric column in the file's order.
    let private isText (f: DataField) =
        f.ClrType = typeof<string> || f.ClrType = typeof<ReadOnlyMemory<char>>

    /// As <c>choose</c>, with categorical columns: an input named "c=l" (Design.indicator) of a column c in
    /// <c>levels</c> reads c's text field, and its entry of the second array is (c's levels, the index of l); the last
    /// entry is the response's: (its two levels, −1) when it is text.
    let private chooseWith
        (path: string)
        (schema: ParquetSchema)
        (xNames: string[] option)
        (yName: string option)
        (levels: (string * string[])[])
        =
        let fields = schema.GetDataFields()

        let find (name: string) =
            match fields |> Array.tryFind (fun f -> f.Name = name) with
            | Some f when numeric f && not f.IsArray -> f
            | Some f ->
                fail
                    path
                    (Text.format
                        "column '%s' is of type %s; the inputs and the response must be numeric (double, float, int or long)."
                        [|
                            box name
                            box (
                                if f.ClrType = typeof<string> || f.ClrType = typeof<ReadOnlyMemory<char>> then
                                    "text"
                                else
                                    f.ClrType.Name
                            )
                        |])
            | None ->
                fail
                    path
                    (Text.format
                        "there is no column '%s'; the file has %s."
                        [| box name; box (String.Join(", ", fields |> Array.map (fun f -> f.Name))) |])

        let candidates = fields |> Array.filter (fun f -> numeric f && not f.IsArray)

        // A text response of two levels (in levels): its level's index, 0 or 1.
        let textResponse =
            yName
            |> Option.bind (fun name ->
                match
                    levels |> Array.tryFind (fun (c, _) -> c = name), fields |> Array.tryFind (fun f -> f.Name = name)
                with
                | Some(_, l), Some f when isText f && not f.IsArray -> Some(f, l)
                | _ -> None)

        let y =
            match yName with
            | Some _ when textResponse.IsSome -> fst textResponse.Value
            | Some name -> find name
            | None ->
                match candidates |> Array.tryFind (fun f -> f.Name = "y") with
                | Some f -> f
                | None when candidates.Length > 0 -> candidates.[candidates.Length - 1]
                | None -> fail path "the file has no numeric column to take as the response."

        match xNames with
        | Some names ->
            match names |> Array.countBy id |> Array.tryFind (fun (_, c) -> c > 1) with
            | Some(name, c) ->
                fail
                    path
                    (Text.format "the input column '%s' is named %d times; name each column once." [| box name; box c |])
            | None -> ()
        | None -> ()

        // An indicator "c=l" of a categorical column: c's text field and the level's index.
        let indicator (name: string) =
            levels
            |> Array.tryPick (fun (c, l) ->
                l
                |> Array.tryFindIndex (fun level -> Design.indicator c level = name)
                |> Option.filter (fun j -> j > 0)
                |> Option.map (fun j -> c, l, j))

        let inputs =
            match xNames with
            | Some names ->
                names
                |> Array.map (fun name ->
                    match indicator name with
                    | Some(c, l, j) ->
                        match fields |> Array.tryFind (fun f -> f.Name = c) with
                        | Some f when isText f && not f.IsArray -> f, Some(l, j)
                        | _ -> find name, None
                    | None -> find name, None)
            | None ->
                candidates
                |> Array.filter (fun f -> f.Name <> y.Name)
                |> Array.map (fun f -> f, None)

        let xs = Array.map fst inputs

        if xs.Length = 0 then
            fail path "no input column: name them (--x) or add numeric columns besides the response."

        if xs |> Array.exists (fun f -> f.Name = y.Name) then
            fail path (Text.format "column '%s' cannot be both an input and the response." [| box y.Name |])

        xs, Array.append (Array.map snd inputs) [| textResponse |> Option.map (fun (_, l) -> l, -1) |], y

    /// The file's fields chosen as inputs and response, all numeric (<c>chooseWith</c> without categorical columns).
    let private choose (path: string) (schema: ParquetSchema) (xNames: string[] option) (yName: string option) =
        let xs, _, y = chooseWith path schema xNames yName [||]
        xs, y

    /// One column of a row group as doubles: its missing values (nulls) rejected, or, given a mask, marked in it (and
    /// read as 0).
    let private readColumn
        (path: string)
        (group: ParquetRowGroupReader)
        (field: DataField)
        (rows: int)
        (into: float[])
        (mask: bool[] option)
        =
        let sync (t: Tasks.ValueTask) = t.AsTask().GetAwaiter().GetResult()

        let checkNulls (present: Nullable<'T>[]) =
            match present |> Array.tryFindIndex (fun v -> not v.HasValue) with
            | Some r ->
                fail
                    path
                    (Text.format
                        "column '%s' has a missing value (row %d of its row group); leave out the rows that have one with --missing drop (C#: ColumnRoles.Missing = MissingValues.Drop)."
                        [| box field.Name; box (r + 1) |])
            | None -> ()

        let read (convert: 'T -> float) =
            if field.IsNullable then
                let values = Array.zeroCreate<Nullable<'T>> rows
                sync (group.ReadAsync<'T>(field, Memory<Nullable<'T>>(values), Nullable(), CancellationToken.None))

                match mask with
                | Some missing ->
                    for r in 0 .. rows - 1 do
                        if values.[r].HasValue then
                            into.[r] <- convert values.[r].Value
                        else
                            missing.[r] <- true
                            into.[r] <- 0.0
                | None ->
                    checkNulls values

                    for r in 0 .. rows - 1 do
                        into.[r] <- convert values.[r].Value
            else
                let values = Array.zeroCreate<'T> rows
                sync (group.ReadAsync<'T>(field, Memory<'T>(values), Nullable(), CancellationToken.None))

                for r in 0 .. rows - 1 do
                    into.[r] <- convert values.[r]

        let t = field.ClrType

        if t = typeof<float> then
            read (fun (v: float) -> v)
        elif t = typeof<float32> then
            read (fun (v: float32) -> float v)
        elif t = typeof<int> then
            read (fun (v: int) -> float v)
        elif t = typeof<int64> then
            read (fun (v: int64) -> float v)
        else
            read (fun (v: int16) -> float v)

        for r in 0 .. rows - 1 do
            if not (Double.IsFinite into.[r]) then
                fail
                    path
                    (Text.format
                        "column '%s' has the non-finite value %s (row %d of its row group)."
                        [|
                            box field.Name
                            box (into.[r].ToString(Globalization.CultureInfo.InvariantCulture))
                            box (r + 1)
                        |])

    /// One text column of a row group (null where a value is missing).
    let private readText (group: ParquetRowGroupReader) (field: DataField) (rows: int) : string[] =
        let values = Array.zeroCreate<string> rows

        group
            .ReadAsync(field, Memory<string>(values), Nullable(), CancellationToken.None)
            .AsTask()
            .GetAwaiter()
            .GetResult()

        values

    /// One row group's chosen columns (the inputs, then the response) read into <c>into</c> (d + 1 arrays, grown when
    /// too short); returns the group's row count — with <c>drop</c>, the rows without a missing value, moved up in
    /// order, and the count of those left out.
    let private readGroup
        (path: string)
        (reader: ParquetReader)
        (xs: DataField[])
        (codes: (string[] * int) option[])
        (y: DataField)
        (drop: bool)
        (mark: bool)
        (into: float[][])
        g
        : int * int =
        use group = reader.OpenRowGroupReader g

        if group.RowCount > int64 Int32.MaxValue then
            fail
                path
                (Text.format "row group %d has %d rows, more than one array holds." [| box g; box group.RowCount |])

        let rows = int group.RowCount
        let fields = Array.append xs [| y |]

        let mask =
            if drop || mark then
                Some(Array.zeroCreate<bool> rows)
            else
                None

        for c in 0 .. fields.Length - 1 do
            if into.[c].Length < rows then
                into.[c] <- Array.zeroCreate rows

            // Marking, a column's nulls become NaN in it alone.
            let own = if mark then Some(Array.zeroCreate<bool> rows) else mask

            match (if c < codes.Length then codes.[c] else None) with
            | Some(levels, j) ->
                // The indicator of level j of a text column: 1 where the row's level is j, else 0.
                let values = readText group fields.[c] rows

                for r in 0 .. rows - 1 do
                    match values.[r] with
                    | null ->
                        match own with
                        | Some m ->
                            m.[r] <- true
                            into.[c].[r] <- 0.0
                        | None ->
                            fail
                                path
                                (Text.format
                                    "column '%s' has a missing value (row %d of its row group); %s."
                                    [| box fields.[c].Name; box (r + 1); box MissingValues.Hint |])
                    | v ->
                        let level = Array.IndexOf(levels, v)

                        if level < 0 then
                            fail
                                path
                                (Text.format
                                    "'%s' (row %d of its row group) is not a level of the categorical column '%s' (its levels: %s)."
                                    [| box v; box (r + 1); box fields.[c].Name; box (String.Join(", ", levels)) |])

                        // j < 0: a text response, read as its level's index.
                        into.[c].[r] <-
                            if j < 0 then float level
                            elif level = j then 1.0
                            else 0.0
            | None -> readColumn path group fields.[c] rows into.[c] own

            if mark then
                own.Value
                |> Array.iteri (fun r m ->
                    if m then
                        into.[c].[r] <- nan)

        match mask with
        | _ when mark -> rows, 0
        | Some missing when Array.contains true missing ->
            let mutable kept = 0

            for r in 0 .. rows - 1 do
                if not missing.[r] then
                    for c in 0 .. fields.Length - 1 do
                        into.[c].[kept] <- into.[c].[r]

                    kept <- kept + 1

            kept, rows - kept
        | _ -> rows, 0

    /// Rows offset..offset+count−1 of the columns written as rows at..at+count−1 of x (row-major), in tiles of 256
    /// rows so that the strided writes of each column stay in the L1 cache.
    let private transpose (columns: float[][]) (d: int) (offset: int) (count: int) (x: float[,]) (at: int) =
        let flat =
            Runtime.InteropServices.MemoryMarshal.CreateSpan(&x.[0, 0], x.Length).Slice(at * d, count * d)

        let tile = 256
        let mutable lo = 0

        while lo < count do
            let rows = min tile (count - lo)
            let block = flat.Slice(lo * d, rows * d)

            for t in 0 .. d - 1 do
                let column = ReadOnlySpan<float>(columns.[t], offset + lo, rows)
                let mutable i = t

                for r in 0 .. rows - 1 do
                    block.[i] <- column.[r]
                    i <- i + d

            lo <- lo + tile

    /// <summary>The file's rows in batches of <c>batchRows</c> (the last shorter), lazily; the file is opened for each
    /// enumeration. Row group g + 1 is decoded on another thread while group g's rows are cut into batches (columns
    /// transposed straight into each batch's rows), so decoding overlaps the pass's work; at most two groups' columns
    /// are held.</summary>
    let private batches
        (path: string)
        (xs: DataField[])
        (codes: (string[] * int) option[])
        (y: DataField)
        (drop: bool)
        (mark: bool)
        : seq<Dataset> =
        seq {
            let reader = openReader path
            let d = xs.Length
            let count = reader.RowGroupCount
            // Two sets of column buffers, reused for the whole pass: group g is read into set g % 2 while the batches
            // of group g - 1 are cut from the other.
            let buffers =
                Array.init 2 (fun _ -> Array.init (d + 1) (fun _ -> Array.empty<float>))

            let read g =
                Tasks.Task.Run(fun () -> fst (readGroup path reader xs codes y drop mark buffers.[g % 2] g))

            let mutable next = if count > 0 then Some(read 0) else None

            try
                let x = Array2D.zeroCreate batchRows d
                let yv = Array.zeroCreate batchRows
                let mutable filled = 0

                for g in 0 .. count - 1 do
                    let rows = next.Value.GetAwaiter().GetResult()
                    let columns = buffers.[g % 2]
                    // The reader is used by one thread at a time: the next group is read once this one is done.
                    next <- if g + 1 < count then Some(read (g + 1)) else None
                    let mutable offset = 0

                    while offset < rows do
                        let take = min (rows - offset) (batchRows - filled)
                        transpose columns d offset take x filled
                        Array.blit columns.[d] offset yv filled take
                        filled <- filled + take
                        offset <- offset + take

                        // The next batch is cut into the same arrays (a batch is valid until the next is asked
                        // for): a pass allocates nothing per batch.
                        if filled = batchRows then
                            yield { X = x; Y = yv; Weights = null }
                            filled <- 0

                if filled > 0 then
                    yield
                        {
                            X = Array2D.init filled d (fun r t -> x.[r, t])
                            Y = Array.sub yv 0 filled
                            Weights = null
                        }
            finally
                // An enumeration stopped early (an error, a cancelled fit) waits for the group being read.
                match next with
                | Some task ->
                    try
                        task.Wait()
                    with _ ->
                        ()
                | None -> ()

                close reader
        }

    /// <summary>The names of a Parquet file's columns, in the file's order.</summary>
    /// <param name="path">The file.</param>
    [<CompiledName("ColumnNames")>]
    let columnNames (path: string) : string[] =
        Guard.notNull "path" path
        let reader = openReader path

        try
            reader.Schema.GetDataFields() |> Array.map _.Name
        finally
            close reader

    /// <summary>The names of a Parquet file's numeric (non-list) columns, in the file's order.</summary>
    /// <param name="path">The file.</param>
    [<CompiledName("NumericColumns")>]
    let numericColumns (path: string) : string[] =
        Guard.notNull "path" path
        let reader = openReader path

        try
            reader.Schema.GetDataFields()
            |> Array.filter (fun f -> numeric f && not f.IsArray)
            |> Array.map _.Name
        finally
            close reader

    /// <summary>The text (string) columns among <paramref name="columns"/> of a Parquet file, each with its distinct
    /// values in ordinal order (nulls aside; at most 51 of them, <c>DataCsv.MaxLevels</c> + 1, beyond which
    /// <c>ColumnRoles.resolve</c> refuses a column a role reads): the file's categorical columns.</summary>
    /// <param name="path">The file.</param>
    /// <param name="columns">The columns to look at.</param>
    [<CompiledName("Categories")>]
    let categories (path: string) (columns: string[]) : (string * string[])[] =
        Guard.notNull "path" path
        let reader = openReader path

        try
            let text =
                reader.Schema.GetDataFields()
                |> Array.filter (fun f -> isText f && not f.IsArray && Array.contains f.Name columns)

            text
            |> Array.map (fun field ->
                let seen = Collections.Generic.HashSet<string>(StringComparer.Ordinal)

                for g in 0 .. reader.RowGroupCount - 1 do
                    if seen.Count <= DataCsv.MaxLevels then
                        use group = reader.OpenRowGroupReader g

                        for v in readText group field (int group.RowCount) do
                            if not (isNull v) && seen.Count <= DataCsv.MaxLevels then
                                seen.Add v |> ignore

                field.Name, (seen |> Seq.sortWith (fun a b -> String.CompareOrdinal(a, b)) |> Seq.toArray))
            |> Array.filter (fun (_, l) -> l.Length > 0)
        finally
            close reader

    /// <summary>The names of a Parquet file's numeric columns chosen as inputs and response (see <c>source</c>).</summary>
    /// <param name="path">The file.</param>
    /// <param name="xNames">The input columns, or None for every numeric column but the response.</param>
    /// <param name="yName">The response column, or None for "y" (else the last numeric column).</param>
    /// <returns>The input names and the response name.</returns>
    [<CompiledName("Columns")>]
    let columns (path: string) (xNames: string[] option) (yName: string option) : string[] * string =
        Guard.notNull "path" path
        let reader = openReader path

        try
            let xs, y = choose path reader.Schema xNames yName
            xs |> Array.map (fun f -> f.Name), y.Name
        finally
            close reader

    /// <summary>A Parquet file as a data source of one shard, with a policy for rows that have a missing value (a null)
    /// in a column read: refuse them (<c>source</c>), or drop them — the rows kept are counted by reading the file once
    /// here, and the shard's <c>Dropped</c> says how many were left out and where the first was.</summary>
    /// <param name="path">The file.</param>
    /// <param name="xNames">The input columns, or None for every numeric column but the response, in the file's
    /// order.</param>
    /// <param name="yName">The response column, or None for the column named "y" (else the last numeric one).</param>
    /// <param name="missing">The policy.</param>
    /// <param name="levels">Categorical (text) columns and their levels, the reference first: an input named "c=l" is
    /// the indicator of c's level l.</param>
    /// <returns>The source.</returns>
    [<CompiledName("SourceWith")>]
    let sourceWith
        (path: string)
        (xNames: string[] option)
        (yName: string option)
        (missing: MissingValues)
        (levels: (string * string[])[])
        : DataSource =
        Guard.notNull "path" path
        let drop = missing = MissingValues.Drop
        let reader = openReader path

        let xs, codes, y, rows, dropped, first =
            try
                let xs, codes, y = chooseWith path reader.Schema xNames yName levels

                if drop then
                    let buffers = Array.init (xs.Length + 1) (fun _ -> Array.empty<float>)
                    let mutable rows, dropped, first = 0L, 0L, ""

                    for g in 0 .. reader.RowGroupCount - 1 do
                        let kept, left = readGroup path reader xs codes y true false buffers g

                        if left > 0 && dropped = 0L then
                            first <- Text.format "%s, row group %d" [| box (IO.Path.GetFileName path); box (g + 1) |]

                        rows <- rows + int64 kept
                        dropped <- dropped + int64 left

                    xs, codes, y, rows, dropped, first
                else
                    let rows =
                        Seq.init reader.RowGroupCount (fun g ->
                            use group = reader.OpenRowGroupReader g
                            group.RowCount)
                        |> Seq.sum

                    xs, codes, y, rows, 0L, ""
            finally
                close reader

        if rows = 0L then
            if dropped > 0L then
                fail
                    path
                    (Text.format
                        "every one of its %d rows has a missing value in a column read; none is left to fit."
                        [| box dropped |])
            else
                fail path "the file has no rows."

        {
            Dimension = xs.Length
            Shards =
                [|
                    {
                        Name = path
                        Rows = rows
                        Read = fun () -> batches path xs codes y drop false
                        Remote = None
                        Dropped = dropped, first
                        Weight = None
                    }
                |]
        }

    /// <summary>A Parquet file as a data source of one shard: its row groups read again for every pass, re-cut into
    /// batches of 65,536 rows (a whole number of chunks).</summary>
    /// <param name="path">The file.</param>
    /// <param name="xNames">The input columns, or None for every numeric column but the response, in the file's
    /// order.</param>
    /// <param name="yName">The response column, or None for the column named "y" (else the last numeric one).</param>
    /// <returns>The source.</returns>
    /// <exception cref="T:System.IO.InvalidDataException">A named column that does not exist or is not numeric, no
    /// input column, a missing (null) or non-finite value (raised when its row group is read).</exception>
    [<CompiledName("Source")>]
    let source (path: string) (xNames: string[] option) (yName: string option) : DataSource =
        sourceWith path xNames yName MissingValues.Refuse [||]

    /// <summary>Reads new rows of a Parquet file to predict: the named inputs (all numeric columns but the response
    /// when none are named) and the response, a null read as NaN (that row's predictions are then NaN; rows never
    /// shift).</summary>
    /// <param name="path">The file.</param>
    /// <param name="xNames">The inputs (empty: every numeric column but the response).</param>
    /// <param name="yName">The response's name.</param>
    /// <param name="levels">Categorical columns and their levels, the reference first.</param>
    [<CompiledName("LoadMarked")>]
    let loadMarked (path: string) (xNames: string[]) (yName: string) (levels: (string * string[])[]) : Dataset =
        Guard.notNull "path" path
        let reader = openReader path

        let xs, codes, y, rows =
            try
                let xs, codes, y =
                    chooseWith path reader.Schema (if xNames.Length = 0 then None else Some xNames) (Some yName) levels

                let rows =
                    Seq.init reader.RowGroupCount (fun g ->
                        use group = reader.OpenRowGroupReader g
                        group.RowCount)
                    |> Seq.sum

                xs, codes, y, rows
            finally
                close reader

        DataSource.load
            {
                Dimension = xs.Length
                Shards =
                    [|
                        {
                            Name = path
                            Rows = rows
                            Read = fun () -> batches path xs codes y false true
                            Remote = None
                            Dropped = 0L, ""
                            Weight = None
                        }
                    |]
            }

    /// <summary>Reads a Parquet file into memory.</summary>
    /// <param name="path">The file.</param>
    /// <param name="xNames">The input columns, or None (see <c>source</c>).</param>
    /// <param name="yName">The response column, or None (see <c>source</c>).</param>
    /// <returns>The dataset.</returns>
    [<CompiledName("Load")>]
    let load (path: string) (xNames: string[] option) (yName: string option) : Dataset =
        DataSource.load (source path xNames yName)

    /// <summary>Writes batches of rows as a Parquet file, one row group per batch, streaming: one batch in memory at
    /// a time. Columns x1..xd and y, doubles, uncompressed. The file is written to a temporary name beside the
    /// target and renamed when complete.</summary>
    /// <param name="path">The file.</param>
    /// <param name="dimension">d.</param>
    /// <param name="batches">The rows, in order.</param>
    /// <returns>The rows written.</returns>
    [<CompiledName("Write")>]
    let write (path: string) (dimension: int) (batches: seq<Dataset>) : int64 =
        Guard.notNull "path" path
        Guard.positiveInt "dimension" dimension

        let fields =
            Array.append
                (Array.init dimension (fun t -> DataField("x" + string (t + 1), typeof<float>, Nullable false)))
                [| DataField("y", typeof<float>, Nullable false) |]

        let schema = ParquetSchema(fields |> Array.map (fun f -> f :> Field))

        let mutable written = 0L

        AtomicFile.write path (fun stream ->
            // Uncompressed: random doubles do not compress (Snappy left 922.8 MB of 922.8 MB), and decoding Snappy pages
            // took 8x as long as plain ones (6.3 against 49 million rows/s at d = 10).
            let options = ParquetOptions(CompressionMethod = CompressionMethod.None)

            let writer =
                ParquetWriter
                    .CreateAsync(schema, stream, options, false, CancellationToken.None)
                    .GetAwaiter()
                    .GetResult()

            let mutable rows = 0L

            for batch in batches do
                if batch.Dimension <> dimension then
                    invalidArg
                        "batches"
                        (Text.format "A batch has d = %d columns, not %d." [| box batch.Dimension; box dimension |])

                if batch.Count > 0 then
                    use group = writer.CreateRowGroup()
                    let column = Array.zeroCreate batch.Count

                    for t in 0 .. dimension - 1 do
                        for r in 0 .. batch.Count - 1 do
                            column.[r] <- batch.X.[r, t]

                        group
                            .WriteAsync<float>(
                                fields.[t],
                                ReadOnlyMemory<float>(column),
                                Nullable(),
                                null,
                                CancellationToken.None
                            )
                            .GetAwaiter()
                            .GetResult()

                    group
                        .WriteAsync<float>(
                            fields.[dimension],
                            ReadOnlyMemory<float>(batch.Y),
                            Nullable(),
                            null,
                            CancellationToken.None
                        )
                        .GetAwaiter()
                        .GetResult()

                    rows <- rows + int64 batch.Count

            // The footer is written when the writer is disposed.
            close writer
            written <- rows)

        written

    /// <summary>Writes a dataset as a Parquet file (one row group per 1,048,576 rows).</summary>
    /// <param name="path">The file.</param>
    /// <param name="data">The dataset.</param>
    [<CompiledName("Save")>]
    let save (path: string) (data: Dataset) : unit =
        let groupRows = 1 <<< 20

        let batches =
            seq {
                for start in 0..groupRows .. data.Count - 1 do
                    let count = min groupRows (data.Count - start)

                    yield
                        {
                            X = Array2D.init count data.Dimension (fun r t -> data.X.[start + r, t])
                            Y = Array.sub data.Y start count
                            Weights = null
                        }
            }

        write path data.Dimension batches |> ignore
