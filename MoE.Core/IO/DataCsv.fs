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

    let private fail (source: string) (line: int) (column: int) (message: string) =
        raise (
            InvalidDataException(
                Text.format "%s: line %d, column %d: %s" [| box source; box line; box column; box message |]
            )
        )

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

    // ---------------------------------------------------------------------------------------------------------
    // Reading. The input is read as UTF-8 bytes in batches of whole lines (8 MiB); each batch is cut at line ends
    // into blocks of about 1 MiB, their lines are counted, and the blocks are parsed in parallel, each straight into
    // its rows of the destination (gaps left by blank lines are closed afterwards). Numbers go through csFastFloat
    // (correctly rounded, so a read gives back exactly the doubles "R" wrote); a field it does not take whole goes
    // through .NET's own parser, which keeps its accepted forms and its errors. Failures are reported in file order
    // with absolute line numbers, so the first bad line is named whatever the core count. Lines end in '\n' (a '\r'
    // before it is trimmed with the last field). bench/README.md has the measurements.
    // ---------------------------------------------------------------------------------------------------------

    /// Bytes per parallel block: large enough that scheduling costs nothing, small enough to balance two cores.
    [<Literal>]
    let private BlockBytes = 1 <<< 20

    /// Bytes per batch (one read, parsed by several blocks at once).
    [<Literal>]
    let private BatchBytes = 8 <<< 20

    /// A byte String.Trim drops: space, '\t', '\n', '\v', '\f', '\r'.
    let inline private isSpace (b: byte) = b = 32uy || (b >= 9uy && b <= 13uy)

    /// The field without the blanks around it.
    let private trim (field: ReadOnlySpan<byte>) : ReadOnlySpan<byte> =
        let mutable first = 0
        let mutable last = field.Length

        while first < last && isSpace field.[first] do
            first <- first + 1

        while last > first && isSpace field.[last - 1] do
            last <- last - 1

        field.Slice(first, last - first)

    /// A field's bytes as a message shows them (invalid UTF-8 as U+FFFD).
    let private textOf (field: ReadOnlySpan<byte>) = Text.Encoding.UTF8.GetString field

    /// The lines of a block of text: its '\n's, and one more for a last line without one.
    let private lineCount (text: ReadOnlySpan<byte>) =
        let ends = text.Count(byte '\n')

        if text.IsEmpty || text.[text.Length - 1] = byte '\n' then
            ends
        else
            ends + 1

    /// Why a field csFastFloat did not take whole is not a number (null if .NET's parser takes it after all).
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private slowNumber (field: ReadOnlySpan<byte>, value: byref<float>) : string =
        if field.IsEmpty then
            "the field is empty; every row needs a number in every column."
        elif not (Double.TryParse(field, NumberStyles.Float, CultureInfo.InvariantCulture, &value)) then
            let text = textOf field

            let hint =
                if text.Contains ';' || text.Contains '\t' then
                    " (the row's columns must be separated by commas)"
                elif text.Contains '\r' then
                    " (lines must end in \\n or \\r\\n, not in \\r alone)"
                else
                    ""

            Text.format "'%s' is not a number%s." [| box (excerpt text); box hint |]
        elif not (Double.IsFinite value) then
            Text.format "'%s' is not a finite number." [| box (excerpt (textOf field)) |]
        else
            null

    /// The number in a trimmed, unquoted field; null, or why it is not one.
    let private number (field: ReadOnlySpan<byte>, value: byref<float>) : string =
        let mutable used = 0

        if
            csFastFloat.FastDoubleParser.TryParseDouble(field, &used, &value)
            && used = field.Length
            && Double.IsFinite value
        then
            null
        else
            slowNumber (field, &value)

    /// Parses one data line of `width` fields into the row's inputs xs (d long) and its response y; returns the
    /// failing column and sets message, or returns 0.
    let private parseLine
        (line: ReadOnlySpan<byte>)
        (width: int)
        (xs: Span<float>)
        (y: byref<float>)
        (message: byref<string>)
        : int =
        let mutable start = 0
        let mutable column = 0
        let mutable failed = 0

        while failed = 0 && start <= line.Length do
            let rest = line.Slice start
            let comma = rest.IndexOf(byte ',')
            let mutable field = trim (if comma < 0 then rest else rest.Slice(0, comma))

            if field.Length >= 2 && field.[0] = byte '"' && field.[field.Length - 1] = byte '"' then
                field <- trim (field.Slice(1, field.Length - 2))

            column <- column + 1

            if column > width then
                message <- Text.format "the row has more than the header's %d columns." [| box width |]
                failed <- column
            else
                let mutable value = 0.0
                let problem = number (field, &value)

                if not (isNull problem) then
                    message <- problem
                    failed <- column
                elif column = width then
                    y <- value
                else
                    xs.[column - 1] <- value

                start <- if comma < 0 then line.Length + 1 else start + comma + 1

        if failed = 0 && column < width then
            message <- Text.format "the row has %d column(s) but the header has %d." [| box column; box width |]
            failed <- column + 1

        failed

    /// What parsing one block found: its rows, the lines it spans and its first failure (1-based line within the
    /// block, column, message).
    [<NoEquality; NoComparison>]
    type private Parsed =
        {
            Rows: int
            Lines: int
            Failure: struct (int * int * string) voption
        }

    /// Parses a block of whole lines (blank lines skipped) into rows first, first + 1, … of x and y, until its end or
    /// its first failure. x and y have room for a row per line of the block from `first` on.
    let private parseBlock (text: ReadOnlySpan<byte>) (width: int) (x: float[,]) (y: float[]) (first: int) : Parsed =
        let d = width - 1
        let room = y.Length - first
        let xs = MemoryMarshal.CreateSpan(&x.[first, 0], room * d)
        let ys = Span(y, first, room)
        let mutable rows = 0
        let mutable lines = 0
        let mutable position = 0
        let mutable failure = ValueNone

        while failure.IsNone && position < text.Length do
            let rest = text.Slice position
            let stop = rest.IndexOf(byte '\n')
            let line = if stop < 0 then rest else rest.Slice(0, stop)
            lines <- lines + 1

            if not (trim line).IsEmpty then
                let mutable message = null
                let column = parseLine line width (xs.Slice(rows * d, d)) &ys.[rows] &message

                if column > 0 then
                    failure <- ValueSome(struct (lines, column, message))
                else
                    rows <- rows + 1

            position <- if stop < 0 then text.Length else position + stop + 1

        {
            Rows = rows
            Lines = lines
            Failure = failure
        }

    /// The UTF-8 bytes of a text reader, for the byte parser (the reader has already decoded the input).
    type private EncodedText(reader: TextReader) =
        let chars = Array.zeroCreate<char>(1 <<< 16)
        let encoding = Text.UTF8Encoding(false)
        let encoder = encoding.GetEncoder()
        let bytes = Array.zeroCreate<byte>(encoding.GetMaxByteCount chars.Length)
        let mutable start = 0
        let mutable count = 0
        let mutable finished = false

        /// Copies at most `length` bytes into buffer at offset; 0 only at the end of the text.
        member _.Read(buffer: byte[], offset: int, length: int) : int =
            // A high surrogate at the end of a read waits in the encoder for its pair, so a read can give no bytes.
            while count = 0 && not finished do
                let got = reader.Read(chars, 0, chars.Length)
                finished <- got = 0
                count <- encoder.GetBytes(chars, 0, got, bytes, 0, finished)
                start <- 0

            let take = min count length
            Array.Copy(bytes, start, buffer, offset, take)
            start <- start + take
            count <- count - take
            take

    /// The header, then batches of blocks: Next cuts a batch and counts its blocks' lines, Parse parses them into
    /// the caller's arrays. Line numbers are kept for messages.
    type private Reader(read: byte[] -> int -> int -> int, source: string) =
        let source = if String.IsNullOrEmpty source then "<csv>" else source
        let mutable buffer = Array.zeroCreate<byte> BatchBytes
        let mutable filled = 0
        let mutable finished = false
        let mutable lineNumber = 0
        let mutable width = 0
        let mutable bounds = [| 0 |]

        /// Reads until the buffer is full or the input ends.
        let fill () =
            while not finished && filled < buffer.Length do
                let got = read buffer filled (buffer.Length - filled)

                if got = 0 then finished <- true else filled <- filled + got

        /// Drops the first `count` bytes of the buffer.
        let consume (count: int) =
            Array.Copy(buffer, count, buffer, 0, filled - count)
            filled <- filled - count

        /// The end of the last whole line in the buffer (all of it at the end of the input), growing the buffer
        /// while a single line is longer than it.
        let rec wholeLines () =
            fill ()

            if finished then
                filled
            else
                let cut = ReadOnlySpan(buffer, 0, filled).LastIndexOf(byte '\n') + 1

                if cut > 0 then
                    cut
                else
                    Array.Resize(&buffer, 2 * buffer.Length)
                    wholeLines ()

        /// The lines read so far (the header's and any blank lines before it, once the header is parsed).
        member _.Lines = lineNumber

        /// Parses the header; returns the column count d + 1.
        member _.Header() : int =
            let mutable header: string[] = null
            let mutable headerLine = ""

            while isNull header do
                let cut = wholeLines ()

                if filled = 0 then
                    fail source (lineNumber + 1) 1 "expected a header line 'x1,...,xd,y', found the end of the input."

                // A UTF-8 byte-order mark is not part of the first column's name.
                if
                    lineNumber = 0
                    && filled >= 3
                    && buffer.[0] = 0xEFuy
                    && buffer.[1] = 0xBBuy
                    && buffer.[2] = 0xBFuy
                then
                    consume 3

                let text = ReadOnlySpan(buffer, 0, min cut filled)
                let stop = text.IndexOf(byte '\n')
                let length = if stop < 0 then text.Length else stop
                let line = Text.Encoding.UTF8.GetString(buffer, 0, length).TrimEnd('\r')
                consume (if stop < 0 then length else stop + 1)
                lineNumber <- lineNumber + 1

                if not (String.IsNullOrWhiteSpace line) then
                    if
                        line
                        |> Seq.exists (fun c -> (Char.IsControl c && c <> '\t' && c <> '\r') || c = '\uFFFD')
                    then
                        fail
                            source
                            lineNumber
                            1
                            "the file is not text (it holds control characters or bytes that are not UTF-8); expected a CSV with a header 'x1,...,xd,y'."

                    if line.Contains '\r' then
                        fail
                            source
                            lineNumber
                            1
                            "the lines end in '\\r' alone; a CSV's lines must end in \\n or \\r\\n."

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
                                    (Text.format
                                        "the header '%s' separates its columns by %s; the file must be comma-separated (x1,...,xd,y)."
                                        [| box (excerpt line); box name |])

            width <- header.Length

            if width < 2 then
                fail
                    source
                    lineNumber
                    1
                    (Text.format
                        "the header '%s' has %d column(s); expected 'x1,...,xd,y' with d >= 1."
                        [| box (excerpt (String.Join(",", header))); box width |])

            let mutable number = 0.0

            if Double.TryParse(header.[width - 1], NumberStyles.Float, CultureInfo.InvariantCulture, &number) then
                fail
                    source
                    lineNumber
                    width
                    (Text.format
                        "the first line '%s' looks like data, not a header; the file must start with a header 'x1,...,xd,y'."
                        [| box (excerpt headerLine) |])

            if not (String.Equals(header.[width - 1], "y", StringComparison.OrdinalIgnoreCase)) then
                fail
                    source
                    lineNumber
                    width
                    (Text.format
                        "the last header column must be 'y', but is '%s'."
                        [| box (excerpt header.[width - 1]) |])

            for c in 0 .. width - 2 do
                let name = header.[c]

                if name.Length = 0 then
                    fail source lineNumber (c + 1) "empty column name in the header."

                if String.Equals(name, "y", StringComparison.OrdinalIgnoreCase) then
                    fail source lineNumber (c + 1) "'y' must be the last column only."

            width

        /// Cuts the next batch into blocks at line ends; returns each block's line count (a bound on its rows),
        /// empty at the end of the input.
        member _.Next() : int[] =
            let cut = wholeLines ()
            let cuts = ResizeArray [ 0 ]

            while cuts.[cuts.Count - 1] + BlockBytes < cut do
                let from = cuts.[cuts.Count - 1] + BlockBytes
                let stop = ReadOnlySpan(buffer, from, cut - from).IndexOf(byte '\n')
                cuts.Add(if stop < 0 then cut else from + stop + 1)

            if cuts.[cuts.Count - 1] < cut then
                cuts.Add cut

            bounds <- cuts.ToArray()
            let count = bounds.Length - 1
            let lines = Array.zeroCreate count

            let countLines b =
                lines.[b] <- lineCount (ReadOnlySpan(buffer, bounds.[b], bounds.[b + 1] - bounds.[b]))

            if count = 1 then
                countLines 0
            else
                Threading.Tasks.Parallel.For(0, count, countLines) |> ignore

            lines

        /// Parses the batch Next cut, block b into rows firsts.[b], … of x and y (room for its lines), in parallel;
        /// returns each block's row count, or raises the batch's first failure with its line in the file.
        member _.Parse(x: float[,], y: float[], firsts: int[]) : int[] =
            let count = bounds.Length - 1
            let parsed = Array.zeroCreate count

            let parse b =
                parsed.[b] <-
                    parseBlock (ReadOnlySpan(buffer, bounds.[b], bounds.[b + 1] - bounds.[b])) width x y firsts.[b]

            if count = 1 then
                parse 0
            else
                Threading.Tasks.Parallel.For(0, count, parse) |> ignore

            for block in parsed do
                match block.Failure with
                | ValueSome(struct (line, column, message)) -> fail source (lineNumber + line) column message
                | ValueNone -> lineNumber <- lineNumber + block.Lines

            consume bounds.[count]
            bounds <- [| 0 |]
            parsed |> Array.map _.Rows

        /// Fails with "no data rows" after the last line.
        member _.FailEmpty() : 'T =
            fail source (lineNumber + 1) 1 "no data rows after the header."

    let private ofTextReader (reader: TextReader) (source: string) =
        let bytes = EncodedText reader
        Reader((fun buffer offset count -> bytes.Read(buffer, offset, count)), source)

    let private ofStream (stream: Stream) (source: string) =
        Reader((fun buffer offset count -> stream.Read(buffer, offset, count)), source)

    /// Arrays of `rows` rows holding x's and y's rows [0, count) (x and y themselves when they fit exactly).
    let private resize (rows: int) (count: int) (x: float[,]) (y: float[]) : float[,] * float[] =
        if rows = y.Length then
            x, y
        else
            let d = x.GetLength 1
            let x' = Array2D.zeroCreate rows d
            Buffer.BlockCopy(x, 0, x', 0, count * d * 8)
            let y' = Array.zeroCreate rows
            Array.Copy(y, y', count)
            x', y'

    /// Parses the next batch into x and y from row n on, growing them when the batch's lines do not fit; returns
    /// the arrays, the new row count and whether the input had ended (then nothing was read).
    let private nextInto (reader: Reader) (x: float[,]) (y: float[]) (n: int) : float[,] * float[] * int * bool =
        let lines = reader.Next()

        if lines.Length = 0 then
            x, y, n, true
        else
            let total = Array.sum lines

            let x, y =
                if n + total > y.Length then
                    resize (max (2 * y.Length) (n + total)) n x y
                else
                    x, y

            let firsts = Array.scan (+) n lines
            let rows = reader.Parse(x, y, firsts)
            // Blank lines leave their block's rows short; move the next blocks' rows up to close the gaps.
            let d = x.GetLength 1
            let mutable at = n

            for b in 0 .. rows.Length - 1 do
                if firsts.[b] <> at then
                    Buffer.BlockCopy(x, firsts.[b] * d * 8, x, at * d * 8, rows.[b] * d * 8)
                    Array.Copy(y, firsts.[b], y, at, rows.[b])

                at <- at + rows.[b]

            x, y, at, false

    /// Every row of the input, in one dataset. `lines` bounds the input's lines (header included) when known, so the
    /// rows are parsed straight into arrays of their final size; otherwise the arrays double as they fill.
    let private readAll (reader: Reader) (lines: int) : Dataset =
        let d = reader.Header() - 1
        let capacity = max 1 (lines - reader.Lines)
        let mutable x = Array2D.zeroCreate capacity d
        let mutable y = Array.zeroCreate capacity
        let mutable n = 0
        let mutable ended = false

        while not ended do
            let x', y', n', e = nextInto reader x y n
            x <- x'
            y <- y'
            n <- n'
            ended <- e

        if n = 0 then
            reader.FailEmpty()

        let x, y = resize n n x y
        { X = x; Y = y }

    /// The input in chunks of `rows` rows (the last may be shorter), lazily; each batch is parsed into a scratch
    /// buffer that is reused, then copied into the chunks.
    let private chunksOf (reader: Reader) (rows: int) : seq<Dataset> =
        seq {
            let d = reader.Header() - 1
            let mutable scratchX = Array2D.zeroCreate 1024 d
            let mutable scratchY = Array.zeroCreate 1024
            let mutable x = Array2D.zeroCreate rows d
            let mutable y = Array.zeroCreate rows
            let mutable count = 0
            let mutable any = false
            let mutable ended = false

            while not ended do
                let sx, sy, parsed, e = nextInto reader scratchX scratchY 0
                scratchX <- sx
                scratchY <- sy
                ended <- e
                let mutable from = 0

                while from < parsed do
                    let take = min (parsed - from) (rows - count)
                    Buffer.BlockCopy(sx, from * d * 8, x, count * d * 8, take * d * 8)
                    Array.Copy(sy, from, y, count, take)
                    count <- count + take
                    from <- from + take

                    if count = rows then
                        any <- true
                        yield { X = x; Y = y }
                        x <- Array2D.zeroCreate rows d
                        y <- Array.zeroCreate rows
                        count <- 0

            if count > 0 then
                any <- true
                let x, y = resize count count x y
                yield { X = x; Y = y }

            if not any then
                reader.FailEmpty()
        }

    /// Opens a file for the byte parser: UTF-8 (with or without its byte-order mark) is read as bytes; a file that
    /// starts with a UTF-16 or UTF-32 byte-order mark is decoded by a StreamReader first. With countLines, also
    /// returns a bound on a UTF-8 file's lines (its '\n' count, plus one for a last line without one; the count
    /// costs one read of the bytes, at memory speed once the file is cached), else 0.
    let private openFile (path: string) (countLines: bool) : Reader * IDisposable * int =
        let stream =
            new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan)

        let buffer = Array.zeroCreate<byte>(if countLines then 1 <<< 20 else 4)
        let head = Array.zeroCreate<byte> 4
        let mutable headLength = 0
        let mutable lines = 0L
        let mutable last = 0uy
        let mutable more = true

        while more do
            let got = stream.Read(buffer, 0, buffer.Length)

            if got = 0 then
                more <- false
            else
                let copied = min got (4 - headLength)
                Array.Copy(buffer, 0, head, headLength, copied)
                headLength <- headLength + copied
                lines <- lines + int64 (ReadOnlySpan(buffer, 0, got).Count(byte '\n'))
                last <- buffer.[got - 1]
                more <- countLines || headLength < 4

        if headLength > 0 && last <> byte '\n' then
            lines <- lines + 1L

        stream.Position <- 0L

        let b i =
            if i < headLength then head.[i] else 1uy

        let wide = (b 0 = 0xFFuy && b 1 = 0xFEuy) || (b 0 = 0xFEuy && b 1 = 0xFFuy)
        let wide32 = b 0 = 0uy && b 1 = 0uy && b 2 = 0xFEuy && b 3 = 0xFFuy
        let name = Path.GetFileName path

        if wide || wide32 then
            let text = new StreamReader(stream, Text.Encoding.UTF8, true)
            ofTextReader text name, (text :> IDisposable), 0
        else
            ofStream stream name, (stream :> IDisposable), int (min lines (int64 Int32.MaxValue))

    /// <summary>Reads a dataset from CSV text.</summary>
    /// <param name="reader">The text.</param>
    /// <param name="source">A name for messages (a file name).</param>
    /// <returns>The dataset.</returns>
    /// <exception cref="T:System.IO.InvalidDataException">A missing or malformed header, a row whose width
    /// differs from the header's, a value that is not a number or not finite, or no data rows.</exception>
    [<CompiledName("Read")>]
    let read (reader: TextReader) (source: string) : Dataset =
        Guard.notNull "reader" reader
        readAll (ofTextReader reader source) 0

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
        seq { yield! chunksOf (ofTextReader reader source) rows }

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
            let reader, file, _ = openFile path false
            use _ = file
            yield! chunksOf reader rows
        }

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
        let reader, file, lines = openFile path true
        use _ = file
        readAll reader lines

    /// The header x1,…,xd,y.
    let private writeHeader (writer: TextWriter) (d: int) =
        for j in 1..d do
            writer.Write('x')
            writer.Write(j)
            writer.Write(',')

        writer.Write("y\n")

    /// The rows, in the shortest round-trip number format.
    let private writeRows (writer: TextWriter) (data: Dataset) =
        let d = data.Dimension
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

            writeHeader writer dimension

            for batch in batches do
                Dataset.validate batch

                if batch.Dimension <> dimension then
                    invalidArg
                        "batches"
                        (Text.format "A batch has d = %d columns, not %d." [| box batch.Dimension; box dimension |])

                writeRows writer batch
                rows <- rows + int64 batch.Count)

        rows

    /// <summary>Writes a dataset as CSV (header x1,…,xd,y; shortest round-trip number format).</summary>
    /// <param name="writer">The destination.</param>
    /// <param name="data">The dataset.</param>
    [<CompiledName("Write")>]
    let write (writer: TextWriter) (data: Dataset) : unit =
        Guard.notNull "writer" writer
        Dataset.validate data
        writeHeader writer data.Dimension
        writeRows writer data

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
