namespace MoE.Core

open System
open System.Globalization
open System.IO

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

    let private fail (source: string) (line: int) (column: int) (message: string) =
        raise (InvalidDataException(sprintf "%s: line %d, column %d: %s" source line column message))

    /// The text as a message shows it: at most 40 characters, the rest replaced by an ellipsis.
    let internal excerpt (text: string) =
        if text.Length <= 40 then
            text
        else
            text.Substring(0, 37) + "…"

    /// A field without its surrounding double quotes (RFC 4180: "" inside stands for ").
    let private unquote (field: ReadOnlySpan<char>) : ReadOnlySpan<char> =
        if field.Length >= 2 && field.[0] = '"' && field.[field.Length - 1] = '"' then
            let inner = field.Slice(1, field.Length - 2)

            if inner.IndexOf('"') < 0 then
                inner
            else
                inner.ToString().Replace("\"\"", "\"").AsSpan()
        else
            field

    /// Reads the header, then one row at a time; the line number is kept for messages.
    type private Parser(reader: TextReader, source: string) =
        let source = if String.IsNullOrEmpty source then "<csv>" else source
        let mutable lineNumber = 0
        let mutable width = 0

        /// Parses the header; returns the column count d + 1.
        member _.Header() : int =
            let mutable header: string[] = null
            let mutable headerLine = ""

            while isNull header do
                let line = reader.ReadLine()
                lineNumber <- lineNumber + 1

                if isNull line then
                    fail source lineNumber 1 "expected a header line 'x1,...,xd,y', found the end of the input."
                elif not (String.IsNullOrWhiteSpace line) then
                    if line |> Seq.exists (fun c -> (Char.IsControl c && c <> '\t') || c = '\uFFFD') then
                        fail
                            source
                            lineNumber
                            1
                            "the file is not text (it holds control characters or bytes that are not UTF-8); expected a CSV with a header 'x1,...,xd,y'."

                    headerLine <- line

                    header <-
                        line.Split(',')
                        |> Array.map (fun s -> (unquote (s.Trim().AsSpan())).ToString().Trim())

                    if header.Length = 1 then
                        for separator, name in [ ';', "';'"; '\t', "a tab" ] do
                            if line.Contains separator then
                                fail
                                    source
                                    lineNumber
                                    1
                                    (sprintf
                                        "the header '%s' separates its columns by %s; the file must be comma-separated (x1,...,xd,y)."
                                        (excerpt line)
                                        name)

            width <- header.Length

            if width < 2 then
                fail
                    source
                    lineNumber
                    1
                    (sprintf
                        "the header '%s' has %d column(s); expected 'x1,...,xd,y' with d >= 1."
                        (excerpt (String.Join(",", header)))
                        width)

            let mutable number = 0.0

            if Double.TryParse(header.[width - 1], NumberStyles.Float, CultureInfo.InvariantCulture, &number) then
                fail
                    source
                    lineNumber
                    width
                    (sprintf
                        "the first line '%s' looks like data, not a header; the file must start with a header 'x1,...,xd,y'."
                        (excerpt headerLine))

            if not (String.Equals(header.[width - 1], "y", StringComparison.OrdinalIgnoreCase)) then
                fail
                    source
                    lineNumber
                    width
                    (sprintf "the last header column must be 'y', but is '%s'." (excerpt header.[width - 1]))

            for c in 0 .. width - 2 do
                let name = header.[c]

                if name.Length = 0 then
                    fail source lineNumber (c + 1) "empty column name in the header."

                if String.Equals(name, "y", StringComparison.OrdinalIgnoreCase) then
                    fail source lineNumber (c + 1) "'y' must be the last column only."

            width

        /// Appends the next data row's inputs to xs and response to ys; false at the end of the input.
        member _.NextRow(xs: ResizeArray<float>, ys: ResizeArray<float>) : bool =
            let mutable found = false
            let mutable finished = false

            while not found && not finished do
                let line = reader.ReadLine()
                lineNumber <- lineNumber + 1

                if isNull line then
                    finished <- true
                elif not (String.IsNullOrWhiteSpace line) then
                    found <- true
                    let span = line.AsSpan()
                    let mutable start = 0
                    let mutable column = 0

                    while start <= span.Length do
                        let rest = span.Slice(start)
                        let comma = rest.IndexOf(',')
                        let field = unquote ((if comma < 0 then rest else rest.Slice(0, comma)).Trim())
                        column <- column + 1

                        if column > width then
                            fail
                                source
                                lineNumber
                                column
                                (sprintf "the row has more than the header's %d columns." width)

                        let mutable value = 0.0

                        if field.IsEmpty then
                            fail
                                source
                                lineNumber
                                column
                                "the field is empty; every row needs a number in every column."

                        if not (Double.TryParse(field, NumberStyles.Float, CultureInfo.InvariantCulture, &value)) then
                            let text = field.ToString()

                            let hint =
                                if text.Contains ';' || text.Contains '\t' then
                                    " (the row's columns must be separated by commas)"
                                else
                                    ""

                            fail source lineNumber column (sprintf "'%s' is not a number%s." (excerpt text) hint)

                        if not (Double.IsFinite value) then
                            fail
                                source
                                lineNumber
                                column
                                (sprintf "'%s' is not a finite number." (excerpt (field.ToString())))

                        if column = width then ys.Add value else xs.Add value
                        start <- if comma < 0 then span.Length + 1 else start + comma + 1

                    if column < width then
                        fail
                            source
                            lineNumber
                            (column + 1)
                            (sprintf "the row has %d column(s) but the header has %d." column width)

            found

        /// Fails with "no data rows" at the current line.
        member _.FailEmpty() : 'T =
            fail source lineNumber 1 "no data rows after the header."

    let private toDataset (d: int) (xs: ResizeArray<float>) (ys: ResizeArray<float>) : Dataset =
        let n = ys.Count
        let x = Array2D.zeroCreate n d

        for r in 0 .. n - 1 do
            for j in 0 .. d - 1 do
                x.[r, j] <- xs.[r * d + j]

        { X = x; Y = ys.ToArray() }

    /// <summary>Reads a dataset from CSV text.</summary>
    /// <param name="reader">The text.</param>
    /// <param name="source">A name for messages (a file name).</param>
    /// <returns>The dataset.</returns>
    /// <exception cref="T:System.IO.InvalidDataException">A missing or malformed header, a row whose width
    /// differs from the header's, a value that is not a number or not finite, or no data rows.</exception>
    [<CompiledName("Read")>]
    let read (reader: TextReader) (source: string) : Dataset =
        Guard.notNull "reader" reader
        let parser = Parser(reader, source)
        let d = parser.Header() - 1
        let xs = ResizeArray<float>()
        let ys = ResizeArray<float>()

        while parser.NextRow(xs, ys) do
            ()

        if ys.Count = 0 then
            parser.FailEmpty()

        toDataset d xs ys

    /// <summary>
    /// Reads CSV text in chunks of at most <paramref name="rows"/> rows, so data larger than memory can be
    /// accumulated chunk by chunk (e.g. <c>SubspaceL4.momentsOfChunks</c>). The sequence reads lazily from the
    /// reader and can be enumerated once; <c>loadChunks</c> re-opens a file for every enumeration.
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

        seq {
            let parser = Parser(reader, source)
            let d = parser.Header() - 1
            let xs = ResizeArray<float>(rows * d)
            let ys = ResizeArray<float>(rows)
            let mutable any = false
            let mutable more = true

            while more do
                more <- parser.NextRow(xs, ys)

                if ys.Count = rows || (not more && ys.Count > 0) then
                    any <- true
                    yield toDataset d xs ys
                    xs.Clear()
                    ys.Clear()

            if not any then
                parser.FailEmpty()
        }

    /// <summary>A CSV file as a re-enumerable sequence of chunks of at most <paramref name="rows"/> rows: each
    /// enumeration opens the file and reads it once, holding one chunk in memory at a time.</summary>
    /// <param name="path">The file.</param>
    /// <param name="rows">The most rows per chunk (and in memory at once).</param>
    /// <returns>The chunks; every enumeration re-reads the file.</returns>
    [<CompiledName("LoadChunks")>]
    let loadChunks (path: string) (rows: int) : seq<Dataset> =
        Guard.notNull "path" path
        Guard.positiveInt "rows" rows

        seq {
            use reader = new StreamReader(path)
            yield! readChunks reader (Path.GetFileName path) rows
        }

    /// <summary>Reads a dataset from a CSV file.</summary>
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
        use reader = new StreamReader(path)
        read reader (Path.GetFileName path)

    /// <summary>Writes a dataset as CSV (header x1,…,xd,y; shortest round-trip number format).</summary>
    /// <param name="writer">The destination.</param>
    /// <param name="data">The dataset.</param>
    [<CompiledName("Write")>]
    let write (writer: TextWriter) (data: Dataset) : unit =
        Guard.notNull "writer" writer
        Dataset.validate data
        let d = data.Dimension

        for j in 1..d do
            writer.Write('x')
            writer.Write(j)
            writer.Write(',')

        writer.Write("y\n")
        let buffer = Array.zeroCreate<char> 32

        let put (v: float) =
            let mutable written = 0

            if not (v.TryFormat(Span<char>(buffer), &written, "R", CultureInfo.InvariantCulture)) then
                invalidOp "A double did not fit its 32-character format buffer."

            writer.Write(buffer, 0, written)

        for r in 0 .. data.Count - 1 do
            for j in 0 .. d - 1 do
                put data.X.[r, j]
                writer.Write(',')

            put data.Y.[r]
            writer.Write('\n')

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
