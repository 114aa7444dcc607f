namespace MoE.Core

open System
open System.Globalization
open System.IO
open System.Runtime.CompilerServices
open System.Runtime.InteropServices

/// <summary>Datasets as CSV: a header <c>x1,…,xd,y</c>, then one sample per line.</summary>
/// <remarks>
/// Writing uses the shortest round-trip ("R") invariant-culture form, so a read gives back exactly the
/// doubles that were written, and replaces the file atomically. Reading accepts any names for the d input
/// columns but requires the last column to be <c>y</c>; fields may be quoted ("1.5"); blank lines are skipped;
/// every failure is an <see cref="T:System.IO.InvalidDataException"/> whose message gives the source, the 1-based
/// line and column, and the offending text (cut to 40 characters).
/// </remarks>
[<RequireQualifiedAccess>]
module DataCsv =

    /// <summary>Reads a dataset from CSV text.</summary>
    /// <param name="reader">The text.</param>
    /// <param name="source">A name for messages (a file name).</param>
    /// <returns>The dataset.</returns>
    /// <exception cref="T:System.IO.InvalidDataException">A missing or malformed header, a row whose width
    /// differs from the header's, a value that is not a number or not finite, or no data rows.</exception>
    [<CompiledName("Read")>]
    let read (reader: TextReader) (source: string) : Dataset =
        Guard.notNull "reader" reader
        CsvReading.readAll (CsvReading.ofTextReader reader source) CsvReading.convention 0

    /// <summary>
    /// Reads CSV text in chunks of at most <paramref name="rows"/> rows, so data larger than memory can be
    /// accumulated chunk by chunk (<c>source</c> builds a data source on it). The sequence reads lazily from the
    /// reader and can be enumerated once; <c>loadChunks</c> re-opens a file for every enumeration. Besides the
    /// chunk, at most one batch of text (8 MiB, or the longest line) and its parsed values are held.
    /// </summary>
    /// <exception cref="T:System.IO.InvalidDataException">As <c>read</c>, raised when the bad line is reached.</exception>
    /// <param name="reader">The text.</param>
    /// <param name="source">A name for messages (a file name).</param>
    /// <param name="rows">The most rows per chunk.</param>
    /// <returns>The chunks, read lazily; enumerate once.</returns>
    [<CompiledName("ReadChunks")>]
    let readChunks (reader: TextReader) (source: string) (rows: int) : seq<Dataset> =
        Guard.notNull "reader" reader
        Guard.positiveInt "rows" rows
        seq { yield! CsvReading.chunksOf (CsvReading.ofTextReader reader source) CsvReading.convention rows }

    /// <summary>A CSV file as a re-enumerable sequence of chunks of at most <paramref name="rows"/> rows: each
    /// enumeration opens the file and reads it once, holding one chunk in memory at a time (and one batch of
    /// text, as <c>readChunks</c>).</summary>
    /// <param name="path">The file.</param>
    /// <param name="rows">The most rows per chunk (and in memory at once).</param>
    /// <returns>The chunks; every enumeration re-reads the file.</returns>
    [<CompiledName("LoadChunks")>]
    let loadChunks (path: string) (rows: int) : seq<Dataset> =
        Guard.notNull "path" path
        Guard.positiveInt "rows" rows

        seq {
            let reader, file, _ = CsvReading.openFile path false
            use _ = file
            yield! CsvReading.chunksOf reader CsvReading.convention rows
        }

    /// The chunks of the columns a selection takes.
    let private selectedChunks (path: string) (selection: CsvReading.Selection) (rows: int) : seq<Dataset> =
        seq {
            let reader, file, _ = CsvReading.openFile path false
            use _ = file
            yield! CsvReading.chunksOf reader selection rows
        }

    /// The selection of named columns (the convention when neither is named and nothing is dropped).
    let private named
        (xNames: string[] option)
        (yName: string option)
        (missing: MissingValues)
        (levels: (string * string[])[])
        : CsvReading.Selection =
        {
            Inputs = xNames
            Response = yName
            ResponseOptional = false
            Missing = missing
            MarkMissing = false
            Levels = levels
        }

    /// <summary>The names in a CSV file's header, as the reader reads them (trimmed, unquoted).</summary>
    /// <param name="path">The file.</param>
    /// <returns>The column names, in the file's order.</returns>
    /// <exception cref="T:System.IO.InvalidDataException">A file without a header line (the message says why).</exception>
    [<CompiledName("Header")>]
    let header (path: string) : string[] =
        Guard.notNull "path" path
        let reader, file, _ = CsvReading.openFile path false
        use _ = file

        reader.Header
            {
                Inputs = None
                Response = None
                ResponseOptional = true
                Missing = MissingValues.Refuse
                MarkMissing = false
                Levels = [||]
            }
        |> ignore

        reader.Names

    /// The most levels a categorical column may have: beyond it, a text column is far more likely an identifier or
    /// free text than a factor, and its indicators would outnumber what a mixture can fit.
    [<Literal>]
    let MaxLevels = 50

    /// <summary>The categorical (text) columns among <paramref name="columns"/> of a CSV file, each with its levels in
    /// ordinal order: a column none of whose values (missing ones aside: empty, NA) is a number. The first 1,000 data
    /// rows decide which columns are text; only then is the file read through, for those columns' levels. A column
    /// whose values are numbers and text is not categorical: its text is refused when the rows are read, naming the
    /// line.</summary>
    /// <param name="path">The file.</param>
    /// <param name="columns">The columns to look at (names in the header).</param>
    /// <returns>The text columns and their levels, in the order of <paramref name="columns"/> (a column of more than
    /// 50 levels has 51 of them: <c>ColumnRoles.resolve</c> refuses it if a role reads it).</returns>
    [<CompiledName("Categories")>]
    let categories (path: string) (columns: string[]) : (string * string[])[] =
        Guard.notNull "path" path
        Guard.notNull "columns" columns
        let header = header path

        let at =
            columns
            |> Array.map (fun c -> Array.IndexOf(header, c))
            |> Array.filter (fun i -> i >= 0)

        let isNumber (field: string) =
            let mutable v = 0.0
            Double.TryParse(field, NumberStyles.Float, CultureInfo.InvariantCulture, &v)

        let cell (fields: string[]) (i: int) =
            if i < fields.Length then
                let f = fields.[i].Trim()

                (if f.Length >= 2 && f.StartsWith '"' && f.EndsWith '"' then
                     f.Substring(1, f.Length - 2)
                 else
                     f)
                    .Trim()
            else
                ""

        let missing (f: string) =
            f.Length = 0 || f.Equals("NA", StringComparison.OrdinalIgnoreCase)

        let lines () =
            seq {
                use reader = new StreamReader(path, Text.Encoding.UTF8, true)
                let mutable line = reader.ReadLine()

                // The header (and any blank lines before it).
                while not (isNull line) && String.IsNullOrWhiteSpace line do
                    line <- reader.ReadLine()

                line <- reader.ReadLine()

                while not (isNull line) do
                    if not (String.IsNullOrWhiteSpace line) then
                        yield line.Split(',')

                    line <- reader.ReadLine()
            }

        // Text columns: no number among the first 1,000 rows' values, and at least one value.
        let numeric = Collections.Generic.HashSet<int>()
        let valued = Collections.Generic.HashSet<int>()

        for fields in Seq.truncate 1000 (lines ()) do
            for i in at do
                let f = cell fields i

                if not (missing f) then
                    valued.Add i |> ignore

                    if isNumber f then
                        numeric.Add i |> ignore

        let text =
            at |> Array.filter (fun i -> valued.Contains i && not (numeric.Contains i))

        if text.Length = 0 then
            [||]
        else
            let levels =
                text
                |> Array.map (fun _ -> Collections.Generic.HashSet<string>(StringComparer.Ordinal))

            for fields in lines () do
                for t in 0 .. text.Length - 1 do
                    let f = cell fields text.[t]

                    if not (missing f) && not (isNumber f) && levels.[t].Count <= MaxLevels then
                        levels.[t].Add f |> ignore

            Array.init text.Length (fun t ->
                header.[text.[t]],
                (levels.[t]
                 |> Seq.sortWith (fun a b -> String.CompareOrdinal(a, b))
                 |> Seq.toArray))

    /// <summary>A CSV file's columns chosen by name, as a data source of one shard read again for every pass (as
    /// <c>source</c>): the inputs <paramref name="xNames"/> in that order (None: every column but the response, in the
    /// file's order) and the response <paramref name="yName"/> (None: the column named y, in any case). Columns not
    /// chosen are not read, so they may hold text. With neither named, the file must follow the convention x1,…,xd,y.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="xNames">The input columns, or None.</param>
    /// <param name="yName">The response column, or None.</param>
    /// <param name="missing">What a row with a missing value (an empty field, NA) in a column read does: refuse, or
    /// drop (the shard's <c>Dropped</c> counts them).</param>
    /// <param name="levels">Categorical columns and their levels, the reference first (<c>DataColumns.Levels</c>):
    /// an input named "c=l" is the indicator of c's level l.</param>
    /// <returns>The source.</returns>
    /// <exception cref="T:System.IO.InvalidDataException">A named column the header lacks or names twice, a column
    /// chosen twice or in both roles, or a malformed row (see <c>read</c>).</exception>
    [<CompiledName("SourceColumns")>]
    let sourceColumns
        (path: string)
        (xNames: string[] option)
        (yName: string option)
        (missing: MissingValues)
        (levels: (string * string[])[])
        : DataSource =
        Guard.notNull "path" path
        Guard.notNull "levels" levels
        let batchRows = 16 * DataSource.chunkRows
        let selection = named xNames yName missing levels
        let reader, file, _ = CsvReading.openFile path false

        let rows, d =
            use _ = file
            let mutable rows = 0L
            let mutable d = 0

            for batch in CsvReading.chunksOf reader selection batchRows do
                rows <- rows + int64 batch.Count
                d <- batch.Dimension

            rows, d

        {
            Dimension = d
            Shards =
                [|
                    {
                        Name = path
                        Rows = rows
                        Read = fun () -> selectedChunks path selection batchRows
                        Remote = None
                        Dropped = reader.Dropped, reader.FirstDropped
                        Weight = None
                    }
                |]
        }

    /// <summary>Reads a CSV file's columns chosen by name into memory (see <c>sourceColumns</c>), parsing on every
    /// core.</summary>
    /// <param name="path">The file.</param>
    /// <param name="xNames">The input columns, or None.</param>
    /// <param name="yName">The response column, or None.</param>
    /// <returns>The dataset.</returns>
    [<CompiledName("LoadColumns")>]
    let loadColumns (path: string) (xNames: string[] option) (yName: string option) : Dataset =
        Guard.notNull "path" path
        let reader, file, lines = CsvReading.openFile path true
        use _ = file
        CsvReading.readAll reader (named xNames yName MissingValues.Refuse [||]) lines

    /// <summary>Reads the named input columns of a CSV file, in the order given, whatever the file's column order and
    /// whether or not it has the response: new rows to predict with a model that records its columns.</summary>
    /// <param name="path">The file.</param>
    /// <param name="columns">The model's columns: its inputs (a categorical column's indicators among them), its
    /// response (read when the file has it) and its categorical columns' levels.</param>
    /// <param name="missing">Refuse a missing value, or (drop) read it as NaN: the row's predictions are NaN, so rows
    /// never shift.</param>
    /// <returns>The inputs, and the responses when the file has them.</returns>
    /// <exception cref="T:System.IO.InvalidDataException">A column the model reads is missing, or a categorical
    /// column holds a level the model was not fitted with (the message names the line, column and level).</exception>
    [<CompiledName("LoadNamedCovariates")>]
    let loadNamedCovariates (path: string) (columns: DataColumns) (missing: MissingValues) : float[,] * float[] option =
        Guard.notNull "path" path
        let reader, file, lines = CsvReading.openFile path true
        use _ = file

        let data =
            CsvReading.readAll
                reader
                {
                    Inputs = Some columns.Inputs
                    Response = Option.ofObj columns.Response
                    ResponseOptional = true
                    Missing = MissingValues.Refuse
                    MarkMissing = (missing = MissingValues.Drop)
                    Levels = columns.Levels
                }
                lines

        data.X, (if reader.HasResponse then Some data.Y else None)

    /// <summary>A CSV file as a data source of one shard, read again for every pass in batches of 65,536 rows (16
    /// chunks): at most one batch and one 8 MiB block of text in memory. Opening it parses the file once, to count its
    /// rows and to report a malformed line before any fitting starts.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The source.</returns>
    /// <exception cref="T:System.IO.InvalidDataException">See <c>read</c>.</exception>
    /// <exception cref="T:System.IO.FileNotFoundException">No such file.</exception>
    [<CompiledName("Source")>]
    let source (path: string) : DataSource =
        Guard.notNull "path" path
        let batchRows = 16 * DataSource.chunkRows
        let mutable rows = 0L
        let mutable d = 0

        for batch in loadChunks path batchRows do
            rows <- rows + int64 batch.Count
            d <- batch.Dimension

        {
            Dimension = d
            Shards =
                [|
                    {
                        Name = path
                        Rows = rows
                        Read = fun () -> loadChunks path batchRows
                        Remote = None
                        Dropped = 0L, ""
                        Weight = None
                    }
                |]
        }

    /// <summary>Reads a dataset from a CSV file, parsing on every core (the result does not depend on their
    /// number).</summary>
    /// <param name="path">The file.</param>
    /// <returns>The dataset.</returns>
    /// <exception cref="T:System.IO.InvalidDataException">See <c>read</c>.</exception>
    /// <exception cref="T:System.IO.FileNotFoundException">No such file.</exception>
    /// <example>
    /// <code lang="fsharp">
    /// let data = DataCsv.load "data.csv"   // header x1,…,xd,y
    /// let fit = Learner.fit (FitConfig.defaults 2 Identity) data RunContext.silent
    /// </code>
    /// </example>
    [<CompiledName("Load")>]
    let load (path: string) : Dataset =
        Guard.notNull "path" path
        let reader, file, lines = CsvReading.openFile path true
        use _ = file
        CsvReading.readAll reader CsvReading.convention lines

    /// A CSV's text with a placeholder response appended: the header gains ",y" and every other non-blank line ",0",
    /// so a file of covariates alone reads as the reader expects, with its line and column numbers unchanged (the
    /// column is added last). Line ends become "\n".
    type private WithResponse(inner: TextReader) =
        inherit TextReader()
        let mutable pending = ""
        let mutable position = 0
        let mutable header = true
        let mutable finished = false

        member private _.Fill() =
            while position >= pending.Length && not finished do
                match inner.ReadLine() with
                | null -> finished <- true
                | line ->
                    let text =
                        if String.IsNullOrWhiteSpace line then
                            line
                        elif header then
                            header <- false
                            line + ",y"
                        else
                            line + ",0"

                    pending <- text + "\n"
                    position <- 0

        override this.Read(buffer: char[], index: int, count: int) =
            this.Fill()

            if position >= pending.Length then
                0
            else
                let n = min count (pending.Length - position)
                pending.CopyTo(position, buffer, index, n)
                position <- position + n
                n

        override this.Peek() =
            this.Fill()

            if position >= pending.Length then
                -1
            else
                int pending.[position]

        override this.Read() =
            let c = this.Peek()

            if c >= 0 then
                position <- position + 1

            c

        override _.Dispose(disposing: bool) =
            if disposing then
                inner.Dispose()

            base.Dispose disposing

    /// <summary>Reads the covariates of a CSV file for a model of <paramref name="dimension"/> inputs: a file
    /// <c>x1,…,xd,y</c> (its responses are not needed, so they are dropped) or of the covariates alone
    /// (<c>x1,…,xd</c>, no last column <c>y</c>), as a user predicting new rows has them.</summary>
    /// <param name="path">The file.</param>
    /// <param name="dimension">d, the model's inputs.</param>
    /// <returns>The n×d covariates.</returns>
    /// <exception cref="T:System.IO.InvalidDataException">As <c>load</c>; or a number of columns that is neither d
    /// nor d and a response y (a response read as a covariate would shift every input).</exception>
    /// <exception cref="T:System.IO.FileNotFoundException">No such file.</exception>
    [<CompiledName("LoadCovariates")>]
    let loadCovariates (path: string) (dimension: int) : float[,] =
        Guard.notNull "path" path
        Guard.positiveInt "dimension" dimension

        let header =
            use r = new StreamReader(path)
            let mutable line = r.ReadLine()

            while not (isNull line) && String.IsNullOrWhiteSpace line do
                line <- r.ReadLine()

            line

        let names =
            if isNull header then
                [||]
            else
                header.Split(',') |> Array.map (fun s -> s.Trim().Trim('"').Trim())

        let mismatch (what: string) =
            raise (
                InvalidDataException(
                    Text.format
                        "%s: %s, but the model needs %d covariates (x1..x%d, then y optional); is this the data the model was fitted to?"
                        [| box (Path.GetFileName path); box what; box dimension; box dimension |]
                )
            )

        let isNumber (s: string) =
            let mutable v = 0.0
            Double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, &v)

        if
            names.Length = 0
            || String.Equals(names.[names.Length - 1], "y", StringComparison.OrdinalIgnoreCase)
        then
            // x1,…,xd,y (or a file the reader's own messages describe).
            let data = load path

            if data.Dimension <> dimension then
                mismatch (Text.format "the data have %d covariates and a response y" [| box data.Dimension |])

            data.X
        elif names.Length <> dimension then
            mismatch (Text.format "the header has %d columns and no response y" [| box names.Length |])
        elif names |> Array.exists isNumber then
            raise (
                InvalidDataException(
                    Text.format
                        "%s: line 1: the first line '%s' looks like data, not a header; the file must start with a header 'x1,...,xd' (y optional)."
                        [|
                            box (Path.GetFileName path)
                            box (
                                if header.Length > 40 then
                                    header.Substring(0, 40) + "…"
                                else
                                    header
                            )
                        |]
                )
            )
        else
            use reader = new WithResponse(new StreamReader(path))
            (read reader (Path.GetFileName path)).X

    /// <summary>Writes batches of rows as a CSV file, streaming (one batch in memory at a time), created or replaced
    /// atomically.</summary>
    /// <param name="path">The file.</param>
    /// <param name="dimension">d.</param>
    /// <param name="batches">The rows, in order (each validated).</param>
    /// <returns>The rows written.</returns>
    [<CompiledName("WriteBatches")>]
    let writeBatches (path: string) (dimension: int) (batches: seq<Dataset>) : int64 =
        Guard.notNull "path" path
        Guard.positiveInt "dimension" dimension
        let mutable rows = 0L

        AtomicFile.write path (fun stream ->
            use writer =
                new StreamWriter(stream, Text.UTF8Encoding(false), 1 <<< 16, leaveOpen = true)

            CsvWriting.writeHeader writer dimension

            for batch in batches do
                Dataset.validate batch

                if batch.Dimension <> dimension then
                    invalidArg
                        "batches"
                        (Text.format "A batch has d = %d columns, not %d." [| box batch.Dimension; box dimension |])

                CsvWriting.writeRows writer batch
                rows <- rows + int64 batch.Count)

        rows

    /// <summary>Writes a dataset as CSV (header x1,…,xd,y; shortest round-trip number format).</summary>
    /// <param name="writer">The destination.</param>
    /// <param name="data">The dataset.</param>
    [<CompiledName("Write")>]
    let write (writer: TextWriter) (data: Dataset) : unit =
        Guard.notNull "writer" writer
        Dataset.validate data
        CsvWriting.writeHeader writer data.Dimension
        CsvWriting.writeRows writer data

    /// <summary>Writes a dataset to a CSV file (created or replaced atomically: a failed write leaves the previous
    /// file, never a file cut mid-row).</summary>
    /// <param name="path">The file.</param>
    /// <param name="data">The dataset.</param>
    [<CompiledName("Save")>]
    let save (path: string) (data: Dataset) : unit =
        Guard.notNull "path" path
        Dataset.validate data

        AtomicFile.write path (fun stream ->
            use writer =
                new StreamWriter(stream, Text.UTF8Encoding(false), 1 <<< 16, leaveOpen = true)

            write writer data)
