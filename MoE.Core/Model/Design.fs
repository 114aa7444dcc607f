namespace MoE.Core

open System

/// <summary>
/// Which input columns each part of a model reads (docs/architecture.md: a model is a gate design plus an expert
/// family). The data's inputs are an n×m matrix x; expert i's linear predictor is ⟨a_i, x[ExpertColumns]⟩ + b_i and the
/// gate's logit j is ⟨w_j, x[GateColumns]⟩ + c_j, the entries of a_i (a row of <c>Regressors</c>) and w_j (a row of
/// <c>Gating</c>) in the order of the columns listed. By default both read every column in order (<c>shared</c>): the
/// paper's model, where the kernels read one transposed block for both and nothing is copied.
/// </summary>
[<Sealed>]
type Design(inputs: int, expertColumns: int[], gateColumns: int[]) =
    let inOrder (c: int[]) =
        not (isNull c)
        && c.Length = inputs
        && Array.forall2 (=) c (Array.init c.Length id)

    let shared = inOrder expertColumns && inOrder gateColumns

    /// m, the columns of the input matrix.
    member _.Inputs = inputs
    /// The columns the experts read, in the order of a row of the regressors (do not modify).
    member _.ExpertColumns = expertColumns
    /// The columns the gate reads, in the order of a row of the gating (do not modify).
    member _.GateColumns = gateColumns

    /// Whether both parts read every column in order (the kernels' fast path; computed once).
    member _.IsShared = shared

    /// <summary>Designs are equal when they read the same columns in the same order.</summary>
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

    /// <summary>Whether two designs read the same columns in the same order.</summary>
    /// <param name="a">One design.</param>
    /// <param name="b">Another.</param>
    [<CompiledName("Same")>]
    let same (a: Design) (b: Design) : bool = a.Equals b
