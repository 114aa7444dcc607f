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
type Design(inputs: int, expertColumns: int[], gateColumns: int[], columns: DataColumns option) =
    let inOrder (c: int[]) =
        not (isNull c)
        && c.Length = inputs
        && Array.forall2 (=) c (Array.init c.Length id)

    let shared = inOrder expertColumns && inOrder gateColumns

    /// <summary>A design whose columns have no names.</summary>
    new(inputs: int, expertColumns: int[], gateColumns: int[]) = Design(inputs, expertColumns, gateColumns, None)

    /// m, the columns of the input matrix.
    member _.Inputs = inputs
    /// The columns the experts read, in the order of a row of the regressors (do not modify).
    member _.ExpertColumns = expertColumns
    /// The columns the gate reads, in the order of a row of the gating (do not modify).
    member _.GateColumns = gateColumns

    /// Whether both parts read every column in order (the kernels' fast path; computed once).
    member _.IsShared = shared

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
                "experts [%s], gate [%s] of %d columns"
                [|
                    box (String.Join(", ", expertColumns))
                    box (String.Join(", ", gateColumns))
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
                }
        )

    /// <summary>Whether two designs read the same columns in the same order.</summary>
    /// <param name="a">One design.</param>
    /// <param name="b">Another.</param>
    [<CompiledName("Same")>]
    let same (a: Design) (b: Design) : bool = a.Equals b
