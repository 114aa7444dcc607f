/// Message formatting that native ahead-of-time compilation can run. F#'s sprintf builds its formatter for each format
/// string by reflection at run time (MakeGenericMethod over the argument types), which a natively compiled program
/// cannot do: `moe` published with Native AOT failed on its first message. <c>format</c> takes the same printf-style
/// templates and gives the same text for the specifiers the library uses.
module internal MoE.Core.Text

open System
open System.Globalization
open System.Text

let private culture = CultureInfo.InvariantCulture

/// A double as F#'s %g and %.Ng print it: .NET's general format with that many significant digits, the exponent's
/// letter in lower case (1e-06, 1.23457e+08).
let private general (digits: int) (v: float) =
    v.ToString("G" + string digits, culture).Replace("E", "e")

/// One argument under one conversion (precision −1 when the template gives none).
let private convert (conversion: char) (precision: int) (arg: obj) : string =
    match conversion, arg with
    | _, null -> ""
    | ('g' | 'G'), (:? float as v) -> general (if precision >= 0 then precision else 6) v
    | ('f' | 'F'), (:? float as v) -> v.ToString("F" + string (if precision >= 0 then precision else 6), culture)
    | ('e' | 'E'), (:? float as v) ->
        v.ToString(
            (if conversion = 'e' then "e" else "E")
            + string (if precision >= 0 then precision else 6),
            culture
        )
    | _, (:? string as s) -> s
    | _, (:? IFormattable as f) -> f.ToString(null, culture)
    | _, other -> other.ToString()

/// <summary>The template with each conversion (%d, %i, %s, %g, %.Ng, %f, %.Nf, %e, %A, %O) replaced by the next
/// argument, and %% by %. Numbers are written in the invariant culture, as sprintf writes them.</summary>
/// <exception cref="T:System.FormatException">More conversions than arguments, or arguments left over.</exception>
let format (template: string) (args: obj[]) : string =
    let text = StringBuilder(template.Length + 16 * args.Length)
    let mutable next = 0
    let mutable i = 0

    while i < template.Length do
        let ch = template.[i]

        if ch <> '%' then
            text.Append ch |> ignore
            i <- i + 1
        elif i + 1 < template.Length && template.[i + 1] = '%' then
            text.Append '%' |> ignore
            i <- i + 2
        else
            i <- i + 1
            let mutable precision = -1

            if i < template.Length && template.[i] = '.' then
                i <- i + 1
                let start = i

                while i < template.Length && Char.IsDigit template.[i] do
                    i <- i + 1

                precision <- Int32.Parse(template.AsSpan(start, i - start), NumberStyles.None, culture)

            if i >= template.Length || next >= args.Length then
                raise (FormatException("The template '" + template + "' has more conversions than arguments."))

            text.Append(convert template.[i] precision args.[next]) |> ignore
            next <- next + 1
            i <- i + 1

    if next <> args.Length then
        raise (FormatException("The template '" + template + "' has fewer conversions than arguments."))

    text.ToString()
