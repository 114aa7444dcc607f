namespace MoE.Core

open System
open System.Globalization
open System.IO
open System.Runtime.CompilerServices
open System.Runtime.InteropServices

/// <summary>The CSV parser's pieces (IO/DataCsv.fs reads with them): messages with the line and column, fields,
/// numbers, one line, one block of lines.</summary>
module internal CsvParsing =

    let internal fail (source: string) (line: int) (column: int) (message: string) =
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
    let internal unquote (field: ReadOnlySpan<char>) : ReadOnlySpan<char> =
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
    let internal BlockBytes = 1 <<< 20

    /// Bytes per batch (one read, parsed by several blocks at once).
    [<Literal>]
    let internal BatchBytes = 8 <<< 20

    /// A byte String.Trim drops: space, '\t', '\n', '\v', '\f', '\r'.
    let inline internal isSpace (b: byte) = b = 32uy || (b >= 9uy && b <= 13uy)

    /// The field without the blanks around it.
    let internal trim (field: ReadOnlySpan<byte>) : ReadOnlySpan<byte> =
        let mutable first = 0
        let mutable last = field.Length

        while first < last && isSpace field.[first] do
            first <- first + 1

        while last > first && isSpace field.[last - 1] do
            last <- last - 1

        field.Slice(first, last - first)

    /// A field's bytes as a message shows them (invalid UTF-8 as U+FFFD).
    let internal textOf (field: ReadOnlySpan<byte>) = Text.Encoding.UTF8.GetString field

    /// The lines of a block of text: its '\n's, and one more for a last line without one.
    let internal lineCount (text: ReadOnlySpan<byte>) =
        let ends = text.Count(byte '\n')

        if text.IsEmpty || text.[text.Length - 1] = byte '\n' then
            ends
        else
            ends + 1

    /// Why a field csFastFloat did not take whole is not a number (null if .NET's parser takes it after all).
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let internal slowNumber (field: ReadOnlySpan<byte>, value: byref<float>) : string =
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
    let internal number (field: ReadOnlySpan<byte>, value: byref<float>) : string =
        let mutable used = 0

        if
            csFastFloat.FastDoubleParser.TryParseDouble(field, &used, &value)
            && used = field.Length
            && Double.IsFinite value
        then
            null
        else
            slowNumber (field, &value)

    /// Where each of a line's fields goes: <c>Targets.[c]</c> is the input column (0 … d − 1) field c is read into, d
    /// for the response, or −1 for a field that is not read (not even parsed: a text column nobody asked for is
    /// allowed). <c>Inputs</c> is d.
    /// A categorical field: its levels' UTF-8 bytes (the reference first) and the input of the first indicator; level
    /// j ≥ 1 sets input First + j − 1 to 1, the others of its indicators to 0 (the reference sets none). First = d
    /// marks a text response: y is its level's index.
    [<NoEquality; NoComparison>]
    type internal CategoricalField =
        {
            Name: string
            Levels: byte[][]
            First: int
        }

    /// A target of a categorical field (<c>ColumnMap.Categorical</c> says which).
    [<Literal>]
    let internal CategoricalTarget = -2

    /// <c>Drop</c>: a row with a missing value in a field that is read is left out, not refused; <c>Mark</c>: the
    /// value is read as NaN (new rows to predict, whose predictions are then NaN). <c>Categorical.[c]</c> is the
    /// field's levels when its target is <c>CategoricalTarget</c>.
    [<NoEquality; NoComparison>]
    type internal ColumnMap =
        {
            Targets: int[]
            Inputs: int
            Drop: bool
            Mark: bool
            Categorical: CategoricalField[]
        }

    /// The convention x1, …, xd, y of a header of <c>width</c> columns: field c < d is input c, the last is y.
    let internal conventionMap (width: int) =
        {
            Targets = Array.init width id
            Inputs = width - 1
            Drop = false
            Mark = false
            Categorical = [||]
        }

    /// Why a missing value (empty or NA) in a read field is refused, and how to leave such rows out.
    let internal missingValue (field: ReadOnlySpan<byte>) =
        Text.format
            "%s: a missing value; %s."
            [|
                box (
                    if field.IsEmpty then
                        "the field is empty"
                    else
                        "'" + textOf field + "'"
                )
                box MissingValues.Hint
            |]

    /// Parses one data line into the row's inputs xs (d long) and its response y, each field where the map sends it;
    /// returns the failing column and sets message, or returns 0 — or, when the map drops rows with a missing value,
    /// minus the first such column.
    let internal parseLine
        (line: ReadOnlySpan<byte>)
        (map: ColumnMap)
        (xs: Span<float>)
        (y: byref<float>)
        (message: byref<string>)
        : int =
        let width = map.Targets.Length
        let d = map.Inputs
        let mutable start = 0
        let mutable column = 0
        let mutable failed = 0
        let mutable dropAt = 0
        // A map without the response leaves y 0 (the buffers are reused).
        y <- 0.0

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
                let target = map.Targets.[column - 1]

                // Once the row is to be dropped, its other fields are counted (its width is still checked), not parsed.
                if target = CategoricalTarget && dropAt = 0 then
                    let category = map.Categorical.[column - 1]

                    if MissingValues.isMissing field then
                        if map.Mark then
                            if category.First = d then
                                y <- nan
                            else
                                for j in 1 .. category.Levels.Length - 1 do
                                    xs.[category.First + j - 1] <- nan
                        elif map.Drop then
                            dropAt <- column
                        else
                            message <- missingValue field

                            failed <- column
                    else
                        let mutable level = -1

                        for j in 0 .. category.Levels.Length - 1 do
                            if level < 0 && field.SequenceEqual(ReadOnlySpan<byte>(category.Levels.[j])) then
                                level <- j

                        if level < 0 then
                            message <-
                                Text.format
                                    "'%s' is not a level of the categorical column '%s' (its levels: %s)."
                                    [|
                                        box (excerpt (textOf field))
                                        box category.Name
                                        box (
                                            excerpt (
                                                String.Join(
                                                    ", ",
                                                    category.Levels
                                                    |> Array.map (fun l -> Text.Encoding.UTF8.GetString l)
                                                )
                                            )
                                        )
                                    |]

                            failed <- column
                        elif category.First = d then
                            // A text response: its level's index, 0 or 1.
                            y <- float level
                        else
                            for j in 1 .. category.Levels.Length - 1 do
                                xs.[category.First + j - 1] <- if j = level then 1.0 else 0.0
                elif target >= 0 && dropAt = 0 then
                    let mutable value = 0.0

                    if MissingValues.isMissing field then
                        if map.Mark then
                            if target = d then y <- nan else xs.[target] <- nan
                        elif map.Drop then
                            dropAt <- column
                        else
                            message <- missingValue field

                            failed <- column
                    else
                        let problem = number (field, &value)

                        if not (isNull problem) then
                            message <- problem
                            failed <- column
                        elif target = d then
                            y <- value
                        else
                            xs.[target] <- value

                start <- if comma < 0 then line.Length + 1 else start + comma + 1

        if failed = 0 && column < width then
            message <- Text.format "the row has %d column(s) but the header has %d." [| box column; box width |]
            failed <- column + 1

        if failed = 0 && dropAt > 0 then -dropAt else failed

    /// What parsing one block found: its rows, the lines it spans and its first failure (1-based line within the
    /// block, column, message).
    [<NoEquality; NoComparison>]
    type internal Parsed =
        {
            Rows: int
            Lines: int
            Failure: struct (int * int * string) voption
            /// Rows left out for a missing value (a map that drops them), and the first one's line and column.
            Dropped: int
            FirstDropped: struct (int * int) voption
        }

    /// Parses a block of whole lines (blank lines skipped) into rows first, first + 1, … of x and y, until its end or
    /// its first failure. x and y have room for a row per line of the block from `first` on.
    let internal parseBlock
        (text: ReadOnlySpan<byte>)
        (map: ColumnMap)
        (x: float[,])
        (y: float[])
        (first: int)
        : Parsed =
        let d = map.Inputs
        let room = y.Length - first
        let xs = MemoryMarshal.CreateSpan(&x.[first, 0], room * d)
        let ys = Span(y, first, room)
        let mutable rows = 0
        let mutable lines = 0
        let mutable position = 0
        let mutable failure = ValueNone
        let mutable dropped = 0
        let mutable firstDropped = ValueNone

        while failure.IsNone && position < text.Length do
            let rest = text.Slice position
            let stop = rest.IndexOf(byte '\n')
            let line = if stop < 0 then rest else rest.Slice(0, stop)
            lines <- lines + 1

            if not (trim line).IsEmpty then
                let mutable message = null
                let column = parseLine line map (xs.Slice(rows * d, d)) &ys.[rows] &message

                if column > 0 then
                    failure <- ValueSome(struct (lines, column, message))
                elif column < 0 then
                    if dropped = 0 then
                        firstDropped <- ValueSome(struct (lines, -column))

                    dropped <- dropped + 1
                else
                    rows <- rows + 1

            position <- if stop < 0 then text.Length else position + stop + 1

        {
            Rows = rows
            Lines = lines
            Failure = failure
            Dropped = dropped
            FirstDropped = firstDropped
        }
