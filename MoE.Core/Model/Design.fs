namespace MoE.Core

open System

/// <summary>
/// Which input columns each part of a model reads (docs/architecture.md: a model is a gate design plus an expert
/// family). The data's inputs are an n×m matrix x; expert i's linear predictor is ⟨a_i, x[ExpertColumns]⟩ + b_i and the
/// gate's logit j is ⟨w_j, x[GateColumns]⟩ + c_j, the entries of a_i (a row of <c>Regressors</c>) and w_j (a row of
/// <c>Gating</c>) in the order of the columns listed. By default both read every column in order (<c>shared</c>): the
/// paper's model, where the kernels read one transposed block for both and nothing is copied.
/// </summary>
/// <summary>The names of the data columns a model was fitted on: its m inputs, in the order of the input matrix's
/// columns, and its response. A model that has them reads new data by name (any column order, extra columns ignored).
/// </summary>
[<NoComparison>]
type DataColumns =
    {
        /// The m input columns' names, in the order of the input matrix's columns.
        Inputs: string[]
        /// The response column's name.
        Response: string
        /// The categorical (text) columns read, each with its levels, the reference level first: the column c with
        /// levels [r; l1; l2] enters the inputs as the indicators "c=l1", "c=l2" (docs/data.md).
        Levels: (string * string[])[]
    }

[<Sealed>]
type Design(inputs: int, expertColumns: int[], gateColumns: int[], columns: DataColumns option, offsetColumn: int) =
    let inOrder (c: int[]) =
        not (isNull c)
        && c.Length = inputs
        && Array.forall2 (=) c (Array.init c.Length id)

    let shared = offsetColumn < 0 && inOrder expertColumns && inOrder gateColumns

    /// <summary>A design without an exposure column.</summary>
    new(inputs: int, expertColumns: int[], gateColumns: int[], columns: DataColumns option) =
        Design(inputs, expertColumns, gateColumns, columns, -1)

    /// <summary>A design whose columns have no names and without an exposure column.</summary>
    new(inputs: int, expertColumns: int[], gateColumns: int[]) = Design(inputs, expertColumns, gateColumns, None, -1)

    /// m, the columns of the input matrix.
    member _.Inputs = inputs
    /// The columns the experts read, in the order of a row of the regressors (do not modify).
    member _.ExpertColumns = expertColumns
    /// The columns the gate reads, in the order of a row of the gating (do not modify).
    member _.GateColumns = gateColumns

    /// The input column of the rows' exposures t > 0 (docs/math.md §12.4), which enter every expert's linear predictor
    /// as the offset log t with no coefficient (R's <c>offset = log(t)</c>), or −1 for none. Neither part reads it as
    /// a covariate.
    member _.OffsetColumn = offsetColumn

    /// Whether the experts' linear predictors carry the offset log t of an exposure column.
    member _.HasOffset = offsetColumn >= 0

    /// Whether both parts read every column in order (the kernels' fast path; computed once). Never with an
    /// exposure column, which neither part reads.
    member _.IsShared = shared

    /// The exposure column's name (None without one, or without names).
    member _.OffsetName =
        match columns with
        | Some c when offsetColumn >= 0 -> Some c.Inputs.[offsetColumn]
        | _ -> None

    /// The names of the data's columns, when the design was built from named data (labels: not part of equality).
    member _.Columns = columns

    /// The names of the experts' columns, in the order of a row of the regressors (None without names).
    member _.ExpertNames =
        columns
        |> Option.map (fun c -> expertColumns |> Array.map (fun i -> c.Inputs.[i]))

    /// The names of the gate's columns, in the order of a row of the gating (None without names).
    member _.GateNames =
        columns
        |> Option.map (fun c -> gateColumns |> Array.map (fun i -> c.Inputs.[i]))

    /// <summary>Designs are equal when they read the same columns in the same order (the names are labels and are
    /// not compared).</summary>
    override this.Equals(other: obj) =
        match other with
        | :? Design as d ->
            d.Inputs = inputs
            && d.ExpertColumns = expertColumns
            && d.GateColumns = gateColumns
            && d.OffsetColumn = offsetColumn
        | _ -> false

    /// <summary>A hash of the columns.</summary>
    override _.GetHashCode() =
        HashCode.Combine(inputs, expertColumns.Length, gateColumns.Length)

    /// <summary>"shared over m columns", or the columns of each part.</summary>
    override _.ToString() =
        if shared then
            Text.format "shared over %d columns" [| box inputs |]
        else
            Text.format
                "experts [%s], gate [%s]%s of %d columns"
                [|
                    box (String.Join(", ", expertColumns))
                    box (String.Join(", ", gateColumns))
                    box (
                        if offsetColumn >= 0 then
                            Text.format ", exposure %d" [| box offsetColumn |]
                        else
                            ""
                    )
                    box inputs
                |]

/// Construction and checks of <see cref="T:MoE.Core.Design"/>.
[<RequireQualifiedAccess>]
module Design =

    /// <summary>Both parts read every one of m columns, in order.</summary>
    /// <param name="inputs">m ≥ 1.</param>
    [<CompiledName("Shared")>]
    let shared (inputs: int) : Design =
        Design(inputs, Array.init inputs id, Array.init inputs id)

    /// <summary>Checks a design: m ≥ 1, each part reads at least one column, every column index in [0, m), none
    /// twice within a part.</summary>
    /// <param name="design">The design.</param>
    /// <exception cref="T:System.ArgumentException">The message names the part and the offending index.</exception>
    [<CompiledName("Validate")>]
    let validate (design: Design) : unit =
        Guard.notNull "design" (box design)

        if design.Inputs < 1 then
            invalidArg "design" (Text.format "A design needs m >= 1 input columns, but has %d." [| box design.Inputs |])

        for name, columns in [ "expert columns", design.ExpertColumns; "gate columns", design.GateColumns ] do
            Guard.notNull name columns

            if columns.Length = 0 then
                invalidArg
                    "design"
                    (Text.format "The %s are empty: each part reads at least one column." [| box name |])

            for c in columns do
                if c < 0 || c >= design.Inputs then
                    invalidArg
                        "design"
                        (Text.format
                            "The %s list column %d, outside the %d input columns."
                            [| box name; box c; box design.Inputs |])

            if (Array.distinct columns).Length <> columns.Length then
                invalidArg
                    "design"
                    (Text.format
                        "The %s list a column twice ([%s]): each column enters a part once."
                        [| box name; box (String.Join(", ", columns)) |])

        let o = design.OffsetColumn

        if o >= design.Inputs || o < -1 then
            invalidArg
                "design"
                (Text.format
                    "The exposure column is %d, outside the %d input columns (or -1 for none)."
                    [| box o; box design.Inputs |])

        if
            o >= 0
            && (Array.contains o design.ExpertColumns || Array.contains o design.GateColumns)
        then
            invalidArg
                "design"
                (Text.format
                    "The exposure column %d is also a covariate: its logarithm enters the experts' linear predictors with no coefficient, so neither part may read it."
                    [| box o |])

    /// <summary>A validated design over copies of the column lists.</summary>
    /// <param name="inputs">m, the input matrix's columns.</param>
    /// <param name="expertColumns">The experts' columns.</param>
    /// <param name="gateColumns">The gate's columns.</param>
    /// <exception cref="T:System.ArgumentException">See <c>validate</c>.</exception>
    [<CompiledName("Create")>]
    let create (inputs: int) (expertColumns: int[]) (gateColumns: int[]) : Design =
        Guard.notNull "expertColumns" expertColumns
        Guard.notNull "gateColumns" gateColumns

        let design = Design(inputs, Array.copy expertColumns, Array.copy gateColumns)
        validate design
        design

    /// <summary>The input name of the indicator of a categorical column's level: "column=level".</summary>
    /// <param name="column">The categorical column.</param>
    /// <param name="level">One of its levels (not the reference).</param>
    [<CompiledName("Indicator")>]
    let indicator (column: string) (level: string) = column + "=" + level

    /// <summary>The design with the data's column names attached (m input names, distinct and not empty, and the
    /// response's, not among them).</summary>
    /// <param name="columns">The names.</param>
    /// <param name="design">The design.</param>
    /// <exception cref="T:System.ArgumentException">A count other than m, an empty or repeated name, or the response
    /// among the inputs.</exception>
    [<CompiledName("WithColumns")>]
    let withColumns (columns: DataColumns) (design: Design) : Design =
        Guard.notNull "design" (box design)
        Guard.notNull "columns.Inputs" columns.Inputs
        Guard.notNull "columns.Response" columns.Response
        Guard.notNull "columns.Levels" columns.Levels

        if columns.Inputs.Length <> design.Inputs then
            invalidArg
                "columns"
                (Text.format
                    "The design reads %d input columns, but %d names were given."
                    [| box design.Inputs; box columns.Inputs.Length |])

        for name in Array.append columns.Inputs [| columns.Response |] do
            if String.IsNullOrWhiteSpace name then
                invalidArg "columns" "A column name is empty."

        match columns.Inputs |> Array.countBy id |> Array.tryFind (fun (_, c) -> c > 1) with
        | Some(name, _) -> invalidArg "columns" (Text.format "The input column '%s' is named twice." [| box name |])
        | None -> ()

        // A categorical column's indicators are inputs side by side, in the order of its levels after the reference.
        for column, levels in columns.Levels |> Array.filter (fun (c, _) -> c <> columns.Response) do
            if levels.Length < 2 || (Array.distinct levels).Length <> levels.Length then
                invalidArg
                    "columns"
                    (Text.format "The categorical column '%s' needs two or more distinct levels." [| box column |])

            let first = Array.IndexOf(columns.Inputs, indicator column levels.[1])

            if
                first < 0
                || first + levels.Length - 1 > columns.Inputs.Length
                || Seq.exists
                    (fun j -> columns.Inputs.[first + j - 1] <> indicator column levels.[j])
                    (seq { 1 .. levels.Length - 1 })
            then
                invalidArg
                    "columns"
                    (Text.format
                        "The categorical column '%s' must enter the inputs as its indicators %s, side by side."
                        [|
                            box column
                            box (String.Join(", ", levels |> Array.skip 1 |> Array.map (indicator column)))
                        |])

        if Array.contains columns.Response columns.Inputs then
            invalidArg
                "columns"
                (Text.format "The column '%s' cannot be both an input and the response." [| box columns.Response |])

        Design(
            design.Inputs,
            design.ExpertColumns,
            design.GateColumns,
            Some
                {
                    Inputs = Array.copy columns.Inputs
                    Response = columns.Response
                    Levels = columns.Levels |> Array.map (fun (c, l) -> c, Array.copy l)
                },
            design.OffsetColumn
        )

    /// <summary>The design with an exposure column (docs/math.md §12.4): input column <paramref name="column"/> holds
    /// each row's exposure t &gt; 0, and every expert's linear predictor gains log t.</summary>
    /// <param name="column">The exposure's input column, read by neither part.</param>
    /// <param name="design">The design.</param>
    /// <exception cref="T:System.ArgumentException">The column is outside the inputs or a part reads it.</exception>
    [<CompiledName("WithOffset")>]
    let withOffset (column: int) (design: Design) : Design =
        Guard.notNull "design" (box design)

        let result =
            Design(design.Inputs, design.ExpertColumns, design.GateColumns, design.Columns, column)

        validate result
        result

    /// <summary>Row <paramref name="row"/>'s offset, log t of its exposure, or 0 without an exposure column.
    /// Unchecked: the exposures were checked positive (<c>checkExposures</c>).</summary>
    /// <param name="design">The design.</param>
    /// <param name="x">The inputs, n×m.</param>
    /// <param name="row">The row.</param>
    let internal offsetAt (design: Design) (x: float[,]) (row: int) =
        if design.OffsetColumn >= 0 then
            DetMath.log x.[row, design.OffsetColumn]
        else
            0.0

    /// <summary>Checks the exposures of rows of inputs: every one finite and positive (an exposure enters as its
    /// logarithm). Nothing without an exposure column.</summary>
    /// <param name="design">The design.</param>
    /// <param name="x">The inputs, n×m.</param>
    /// <exception cref="T:System.ArgumentException">The first row whose exposure is not, with its value.</exception>
    [<CompiledName("CheckExposures")>]
    let checkExposures (design: Design) (x: float[,]) : unit =
        let o = design.OffsetColumn

        if o >= 0 then
            for r in 0 .. x.GetLength 0 - 1 do
                let t = x.[r, o]

                if not (t > 0.0 && Double.IsFinite t) then
                    invalidArg
                        "x"
                        (Text.format
                            "The exposure%s in data row %d is %s, but an exposure must be a positive number: its logarithm enters the experts' linear predictors."
                            [|
                                box (
                                    match design.OffsetName with
                                    | Some n -> " '" + n + "'"
                                    | None -> ""
                                )
                                box (r + 1)
                                box (t.ToString("R", Globalization.CultureInfo.InvariantCulture))
                            |])

    /// <summary>Whether two designs read the same columns in the same order.</summary>
    /// <param name="a">One design.</param>
    /// <param name="b">Another.</param>
    [<CompiledName("Same")>]
    let same (a: Design) (b: Design) : bool = a.Equals b
