namespace MoE.Core

open System

/// <summary>The data check of the responses against the experts' family (docs/math.md §12.1): a count must be whole and
/// ≥ 0, a yes/no outcome 0 or 1. One pass (a shard's worker computes its part), run before the data summary.</summary>
[<RequireQualifiedAccess>]
module Responses =

    /// The response check's pass: [invalid rows, the first one's index among the rows counted, its value, rows
    /// counted], merged in row order (a part's first invalid row is offset by the rows before it).
    let internal checkPass (family: ExpertFamily) (source: DataSource) : float[] =
        let merge (t: float[]) (s: float[]) =
            if t.[0] > 0.0 then
                [| t.[0] + s.[0]; t.[1]; t.[2]; t.[3] + s.[3] |]
            else
                [| s.[0]; t.[3] + s.[1]; s.[2]; t.[3] + s.[3] |]

        Passes.fold
            (PassRequest.ResponseCheck family)
            source
            ignore
            (fun () batch lo hi ->
                let acc = [| 0.0; 0.0; 0.0; float (hi - lo) |]

                for r in lo .. hi - 1 do
                    let y = batch.Y.[r]

                    if not (ExpertFamily.isValidResponse family y) then
                        if acc.[0] = 0.0 then
                            acc.[1] <- float (r - lo)
                            acc.[2] <- y

                        acc.[0] <- acc.[0] + 1.0

                acc)
            merge

    /// <summary>The error finding for responses the family has no density at, naming the first such data row (from 1)
    /// and its value, or None (always None for Gaussian experts, which need no pass).</summary>
    /// <param name="family">The experts' family.</param>
    /// <param name="source">The data.</param>
    [<CompiledName("Check")>]
    let check (family: ExpertFamily) (source: DataSource) : Finding option =
        if family = ExpertFamily.Gaussian then
            None
        else
            let r = checkPass family source

            if r.[0] = 0.0 then
                None
            else
                Some
                    {
                        Severity = Severity.Error
                        Code = FindingCode.InvalidResponse
                        Message =
                            Text.format
                                "y in data row %d is %s, but %s experts need %s (%d of %d rows are not)."
                                [|
                                    box (int64 r.[1] + 1L)
                                    box (r.[2].ToString("R", Globalization.CultureInfo.InvariantCulture))
                                    box family.Name
                                    box (ExpertFamily.responseRule family)
                                    box (int64 r.[0])
                                    box (int64 r.[3])
                                |]
                    }
