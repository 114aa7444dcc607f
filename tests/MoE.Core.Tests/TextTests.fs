/// Text.format, the library's replacement for sprintf (which a natively compiled program cannot run).
[<FsCheck.Xunit.Properties(MaxTest = 200)>]
module MoE.Core.Tests.TextTests

open FsCheck.Xunit
open MoE.Core

/// Text.format replaces sprintf in the library (sprintf cannot run natively compiled): the same text for the
/// conversions the library uses.
[<Property>]
let ``Text.format writes what sprintf writes`` (i: int) (s: FsCheck.NonNull<string>) (FsCheck.NormalFloat v) =
    let s = s.Get

    [
        Text.format "n = %d, name '%s'" [| box i; box s |], sprintf "n = %d, name '%s'" i s
        Text.format "%g and %.3g" [| box v; box v |], sprintf "%g and %.3g" v v
        Text.format "%.2f%% of %.2g" [| box v; box (v * 1e7) |], sprintf "%.2f%% of %.2g" v (v * 1e7)
        Text.format "%g %g %g" [| box nan; box infinity; box -0.0 |], sprintf "%g %g %g" nan infinity -0.0
        Text.format "%d rows" [| box 12345678901L |], sprintf "%d rows" 12345678901L
    ]
    |> List.forall (fun (ours, fsharp) -> ours = fsharp)
