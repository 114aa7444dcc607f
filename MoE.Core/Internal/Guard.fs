/// Argument checks shared by the public entry points. Every failure is an ArgumentException (or
/// ArgumentNullException / ArgumentOutOfRangeException) whose ParamName is the caller's parameter and whose
/// message names the offending value or shape.
module internal MoE.Core.Guard

open System

let inline notNull (name: string) (value: 'T) =
    if isNull (box value) then
        nullArg name

let finite (name: string) (value: float) =
    if not (Double.IsFinite value) then
        invalidArg name (Text.format "%s must be finite, but was %s." [| box name; box (string value) |])

let nonNegative (name: string) (value: float) =
    finite name value

    if value < 0.0 then
        invalidArg name (Text.format "%s must be >= 0, but was %s." [| box name; box (string value) |])

let positive (name: string) (value: float) =
    finite name value

    if value <= 0.0 then
        invalidArg name (Text.format "%s must be > 0, but was %s." [| box name; box (string value) |])

let positiveInt (name: string) (value: int) =
    if value <= 0 then
        raise (
            ArgumentOutOfRangeException(
                name,
                value,
                Text.format "%s must be a positive integer, but was %d." [| box name; box value |]
            )
        )

let nonNegativeInt (name: string) (value: int) =
    if value < 0 then
        raise (
            ArgumentOutOfRangeException(
                name,
                value,
                Text.format "%s must be a non-negative integer, but was %d." [| box name; box value |]
            )
        )

/// Every entry of a matrix is finite; the message gives the first offending position.
let finiteMatrix (name: string) (m: float[,]) =
    notNull name m

    for i in 0 .. m.GetLength 0 - 1 do
        for j in 0 .. m.GetLength 1 - 1 do
            let v = m.[i, j]

            if not (Double.IsFinite v) then
                invalidArg
                    name
                    (Text.format "%s[%d,%d] must be finite, but was %s." [| box name; box i; box j; box (string v) |])

let finiteVector (name: string) (v: float[]) =
    notNull name v

    for i in 0 .. v.Length - 1 do
        if not (Double.IsFinite v.[i]) then
            invalidArg name (Text.format "%s[%d] must be finite, but was %s." [| box name; box i; box (string v.[i]) |])

/// A model's per-expert vector (intercepts, levels): `expected` finite entries for k experts.
let expertVector (name: string) (expected: int) (k: int) (v: float[]) =
    notNull name v

    if v.Length <> expected then
        invalidArg
            name
            (Text.format
                "%s must have %d entries (k = %d), but has %d."
                [| box name; box expected; box k; box v.Length |])

    finiteVector name v

let shape (m: float[,]) =
    Text.format "%dx%d" [| box (m.GetLength 0); box (m.GetLength 1) |]

/// The sample matrix has `expected` columns.
let columns (name: string) (expected: int) (m: float[,]) =
    notNull name m

    if m.GetLength 1 <> expected then
        invalidArg
            name
            (Text.format
                "%s has %d columns (shape %s), but the model has dimension d = %d."
                [| box name; box (m.GetLength 1); box (shape m); box expected |])

/// The sample matrix and the response vector have the same number of rows.
let sameRows (xName: string) (x: float[,]) (yName: string) (y: float[]) =
    notNull xName x
    notNull yName y

    if x.GetLength 0 <> y.Length then
        invalidArg
            yName
            (Text.format
                "%s has %d rows (shape %s) but %s has length %d; they must be equal."
                [| box xName; box (x.GetLength 0); box (shape x); box yName; box y.Length |])

/// A rows×columns array of doubles fits in one .NET array and in this process's memory: checked in 64-bit
/// arithmetic before anything is allocated, so huge sizes give a message instead of an overflow or an abort.
let allocation (name: string) (what: string) (rows: int64) (columns: int64) =
    let values = rows * columns

    if
        rows < 0L
        || columns < 0L
        || values / max 1L columns <> rows
        || values > int64 Array.MaxLength
    then
        raise (
            ArgumentOutOfRangeException(
                name,
                Text.format
                    "%s need %d x %d = %.3g values, more than the largest .NET array holds (%d)."
                    [|
                        box what
                        box rows
                        box columns
                        box (float rows * float columns)
                        box Array.MaxLength
                    |]
            )
        )

    let bytes = float values * 8.0
    let available = float (GC.GetGCMemoryInfo().TotalAvailableMemoryBytes)

    if bytes > 0.9 * available then
        raise (
            ArgumentOutOfRangeException(
                name,
                Text.format
                    "%s need %d x %d values = %.1f GB, but this process can use about %.1f GB."
                    [| box what; box rows; box columns; box (bytes / 1e9); box (available / 1e9) |]
            )
        )
