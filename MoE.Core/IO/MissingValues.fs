namespace MoE.Core

open System

/// <summary>What a reader does with a row that has a missing value in a column a fit reads (docs/data.md): an empty
/// field or <c>NA</c> in a CSV, a null in Parquet. <c>NaN</c> and infinities are values, not missing ones, and are
/// refused as not finite.</summary>
[<RequireQualifiedAccess>]
type MissingValues =
    /// Stop at the first one, naming its line (or row) and column: the default, so nothing is dropped unasked.
    | Refuse
    /// Leave the row out, count it and say how many were left out (a fit's warning <c>rows-dropped</c>; at predict
    /// time the row's predictions are NaN, so rows never shift).
    | Drop

/// <summary>Parsing and recognising <see cref="T:MoE.Core.MissingValues"/>.</summary>
[<RequireQualifiedAccess>]
module MissingValues =

    /// <summary>The policy of a name: refuse (the default) or drop.</summary>
    /// <param name="name">The name, in any case.</param>
    /// <exception cref="T:System.ArgumentException">Another name.</exception>
    [<CompiledName("Parse")>]
    let parse (name: string) : MissingValues =
        Guard.notNull "name" name

        match name.Trim().ToLowerInvariant() with
        | "refuse" -> MissingValues.Refuse
        | "drop" -> MissingValues.Drop
        | _ ->
            invalidArg "name" (Text.format "Unknown missing-value policy '%s'; expected refuse or drop." [| box name |])

    /// Whether a CSV field (trimmed, unquoted) marks a missing value: empty, or NA in any case.
    let internal isMissing (field: ReadOnlySpan<byte>) =
        field.IsEmpty
        || (field.Length = 2
            && (field.[0] = byte 'N' || field.[0] = byte 'n')
            && (field.[1] = byte 'A' || field.[1] = byte 'a'))

    /// What a refusal suggests.
    [<Literal>]
    let internal Hint =
        "leave out the rows that have one with --missing drop (C#: ColumnRoles.Missing = MissingValues.Drop)"
