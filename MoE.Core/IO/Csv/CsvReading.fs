namespace MoE.Core

open System
open System.Globalization
open System.IO
open System.Runtime.CompilerServices
open System.Runtime.InteropServices

/// <summary>The CSV reader (IO/DataCsv.fs's reading functions): the header, then batches of whole lines cut into
/// blocks and parsed in parallel (CsvParsing), into whole datasets or chunks.</summary>
module internal CsvReading =

    open CsvParsing

    /// The UTF-8 bytes of a text reader, for the byte parser (the reader has already decoded the input).
    type internal EncodedText(reader: TextReader) =
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

    /// Which of a file's columns a reader takes: by the convention (the header x1, …, xd, y: every column, y the last)
    /// when neither list is given, else by name — the inputs named (default: every column but the response), the
    /// response named (default: the column "y", in any case). With <c>ResponseOptional</c> a file without the response
    /// is read with y = 0 (new rows to predict).
    [<NoEquality; NoComparison>]
    type internal Selection =
        {
            Inputs: string[] option
            Response: string option
            ResponseOptional: bool
            Missing: MissingValues
            /// Read a missing value as NaN (rows to predict), whatever <c>Missing</c> says.
            MarkMissing: bool
            /// Categorical columns and their levels, the reference first: an input named "c=l" (Design.indicator) is
            /// the indicator of level l of the column c; a column's indicators are chosen side by side.
            Levels: (string * string[])[]
        }

    /// The convention x1, …, xd, y.
    let internal convention =
        {
            Inputs = None
            Response = None
            ResponseOptional = false
            Missing = MissingValues.Refuse
            MarkMissing = false
            Levels = [||]
        }

    /// The header, then batches of blocks: Next cuts a batch and counts its blocks' lines, Parse parses them into
    /// the caller's arrays. Line numbers are kept for messages.
    type internal Reader(read: byte[] -> int -> int -> int, source: string) =
        let source = if String.IsNullOrEmpty source then "<csv>" else source
        let mutable buffer = Array.zeroCreate<byte> BatchBytes
        let mutable filled = 0
        let mutable finished = false
        let mutable lineNumber = 0
        let mutable map = conventionMap 0
        let mutable names: string[] = [||]
        let mutable hasResponse = true
        let mutable dropped = 0L
        let mutable firstDropped = ""
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

        /// The header's column names (once it is parsed).
        member _.Names = names

        /// Whether the rows' responses are read (false only for a file without its optional response).
        member _.HasResponse = hasResponse

        /// The rows left out so far for a missing value (a selection that drops them).
        member _.Dropped = dropped

        /// Where the first row left out was: "line 5, column 'x2'" (empty when none was).
        member _.FirstDropped = firstDropped

        /// Parses the header and chooses the columns; returns d, the inputs per row.
        member _.Header(selection: Selection) : int =
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

            names <- header
            let width = header.Length
            let mutable number = 0.0

            let looksLikeData =
                header
                |> Array.exists (fun h -> Double.TryParse(h, NumberStyles.Float, CultureInfo.InvariantCulture, &number))

            match selection.Inputs, selection.Response with
            | None, None when
                not selection.ResponseOptional
                && selection.Missing = MissingValues.Refuse
                && not selection.MarkMissing
                ->
                if width < 2 then
                    fail
                        source
                        lineNumber
                        1
                        (Text.format
                            "the header '%s' has %d column(s); expected 'x1,...,xd,y' with d >= 1."
                            [| box (excerpt (String.Join(",", header))); box width |])

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

                map <- conventionMap width
            | _ ->
                if looksLikeData then
                    fail
                        source
                        lineNumber
                        1
                        (Text.format
                            "the first line '%s' looks like data, not a header; columns are chosen by the names in the header."
                            [| box (excerpt headerLine) |])

                let listed = String.Join(", ", header)

                let find (role: string) (name: string) =
                    match header |> Array.filter (fun h -> h = name) |> Array.length with
                    | 1 -> Array.IndexOf(header, name)
                    | 0 ->
                        fail
                            source
                            lineNumber
                            1
                            (Text.format
                                "there is no column '%s' (%s); the header has %s."
                                [| box (excerpt name); box role; box (excerpt listed) |])
                    | count ->
                        fail
                            source
                            lineNumber
                            (Array.IndexOf(header, name) + 1)
                            (Text.format
                                "the header names the column '%s' %d times; a column chosen by name must be named once."
                                [| box (excerpt name); box count |])

                let response =
                    match selection.Response with
                    | Some name when selection.ResponseOptional && not (Array.contains name header) -> None
                    | Some name -> Some(find "the response" name)
                    | None ->
                        match
                            header
                            |> Array.tryFindIndex (fun h -> String.Equals(h, "y", StringComparison.OrdinalIgnoreCase))
                        with
                        | Some c -> Some c
                        | None when selection.ResponseOptional -> None
                        | None ->
                            fail
                                source
                                lineNumber
                                1
                                (Text.format
                                    "there is no response column 'y'; the header has %s: name the response (--y)."
                                    [| box (excerpt listed) |])

                let inputs =
                    match selection.Inputs with
                    | Some chosen ->
                        match chosen |> Array.countBy id |> Array.tryFind (fun (_, c) -> c > 1) with
                        | Some(name, count) ->
                            fail
                                source
                                lineNumber
                                1
                                (Text.format
                                    "the input column '%s' is chosen %d times; choose each column once."
                                    [| box (excerpt name); box count |])
                        | None ->
                            // An indicator "c=l" of a categorical column is its column's field (which the column's
                            // first indicator claims for all of them).
                            chosen
                            |> Array.map (fun name ->
                                match
                                    selection.Levels
                                    |> Array.tryFind (fun (c, levels) ->
                                        levels |> Array.skip 1 |> Array.exists (fun l -> Design.indicator c l = name))
                                with
                                | Some(c, levels) when name = Design.indicator c levels.[1] -> find "an input" c
                                | Some _ -> -1
                                | None -> find "an input" name)
                    | None -> Array.init width id |> Array.filter (fun c -> Some c <> response)

                let categorical: CategoricalField[] = Array.zeroCreate width

                if inputs.Length = 0 then
                    fail source lineNumber 1 "no input column: the header has the response alone."

                let fields = inputs |> Array.filter (fun c -> c >= 0)

                match response with
                | Some r when Array.contains r fields ->
                    fail
                        source
                        lineNumber
                        (r + 1)
                        (Text.format
                            "the column '%s' cannot be both an input and the response."
                            [| box (excerpt header.[r]) |])
                | _ -> ()

                for c in fields do
                    if header.[c].Length = 0 then
                        fail source lineNumber (c + 1) "empty column name in the header."

                let targets = Array.create width -1

                inputs
                |> Array.iteri (fun i c ->
                    if c >= 0 then
                        match selection.Levels |> Array.tryFind (fun (name, _) -> name = header.[c]) with
                        | Some(name, levels) ->
                            targets.[c] <- CategoricalTarget

                            categorical.[c] <-
                                {
                                    Name = name
                                    Levels = levels |> Array.map (fun l -> Text.Encoding.UTF8.GetBytes l)
                                    First = i
                                }
                        | None -> targets.[c] <- i)

                match response with
                | Some r ->
                    match selection.Levels |> Array.tryFind (fun (name, _) -> name = header.[r]) with
                    | Some(name, levels) ->
                        targets.[r] <- CategoricalTarget

                        categorical.[r] <-
                            {
                                Name = name
                                Levels = levels |> Array.map (fun l -> Text.Encoding.UTF8.GetBytes l)
                                First = inputs.Length
                            }
                    | None -> targets.[r] <- inputs.Length
                | None -> ()

                hasResponse <- response.IsSome

                map <-
                    {
                        Targets = targets
                        Inputs = inputs.Length
                        Drop = selection.Missing = MissingValues.Drop
                        Mark = selection.MarkMissing
                        Categorical = categorical
                    }

            map.Inputs

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
                    parseBlock (ReadOnlySpan(buffer, bounds.[b], bounds.[b + 1] - bounds.[b])) map x y firsts.[b]

            if count = 1 then
                parse 0
            else
                Threading.Tasks.Parallel.For(0, count, parse) |> ignore

            // A column read by name is named in the message.
            let named (column: int) =
                if map.Targets.Length = names.Length && column <= names.Length then
                    Text.format " ('%s')" [| box (excerpt names.[column - 1]) |]
                else
                    ""

            for block in parsed do
                match block.Failure with
                | ValueSome(struct (line, column, message)) ->
                    if block.Dropped > 0 then
                        dropped <- dropped + int64 block.Dropped

                    fail source (lineNumber + line) column message
                | ValueNone ->
                    match block.FirstDropped with
                    | ValueSome(struct (line, column)) when dropped = 0L ->
                        firstDropped <-
                            Text.format
                                "%s, line %d, column %d%s"
                                [| box source; box (lineNumber + line); box column; box (named column) |]
                    | _ -> ()

                    dropped <- dropped + int64 block.Dropped
                    lineNumber <- lineNumber + block.Lines

            consume bounds.[count]
            bounds <- [| 0 |]
            parsed |> Array.map _.Rows

        /// Fails with "no data rows" after the last line.
        member _.FailEmpty() : 'T =
            if dropped > 0L then
                fail
                    source
                    (lineNumber + 1)
                    1
                    (Text.format
                        "every one of its %d rows has a missing value in a column read (the first at %s); none is left to fit."
                        [| box dropped; box firstDropped |])
            else
                fail source (lineNumber + 1) 1 "no data rows after the header."

    let internal ofTextReader (reader: TextReader) (source: string) =
        let bytes = EncodedText reader
        Reader((fun buffer offset count -> bytes.Read(buffer, offset, count)), source)

    let internal ofStream (stream: Stream) (source: string) =
        Reader((fun buffer offset count -> stream.Read(buffer, offset, count)), source)

    /// Arrays of `rows` rows holding x's and y's rows [0, count) (x and y themselves when they fit exactly).
    let internal resize (rows: int) (count: int) (x: float[,]) (y: float[]) : float[,] * float[] =
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
    let internal nextInto (reader: Reader) (x: float[,]) (y: float[]) (n: int) : float[,] * float[] * int * bool =
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
    let internal readAll (reader: Reader) (selection: Selection) (lines: int) : Dataset =
        let d = reader.Header selection
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
        { X = x; Y = y; Weights = null }

    /// The input in chunks of `rows` rows (the last may be shorter), lazily; each batch is parsed into a scratch
    /// buffer that is reused, then copied into the chunks.
    let internal chunksOf (reader: Reader) (selection: Selection) (rows: int) : seq<Dataset> =
        seq {
            let d = reader.Header selection
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
                        yield { X = x; Y = y; Weights = null }
                        x <- Array2D.zeroCreate rows d
                        y <- Array.zeroCreate rows
                        count <- 0

            if count > 0 then
                any <- true
                let x, y = resize count count x y
                yield { X = x; Y = y; Weights = null }

            if not any then
                reader.FailEmpty()
        }

    /// Opens a file for the byte parser: UTF-8 (with or without its byte-order mark) is read as bytes; a file that
    /// starts with a UTF-16 or UTF-32 byte-order mark is decoded by a StreamReader first. With countLines, also
    /// returns a bound on a UTF-8 file's lines (its '\n' count, plus one for a last line without one; the count
    /// costs one read of the bytes, at memory speed once the file is cached), else 0.
    let internal openFile (path: string) (countLines: bool) : Reader * IDisposable * int =
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
