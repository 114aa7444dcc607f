namespace MoE.Core

open System

/// <summary>The data check of the responses against the experts' family (docs/math.md §12.1): a count must be whole and
/// ≥ 0, a yes/no outcome 0 or 1; and of an exposure column (§12.4): every exposure finite and positive. One pass (a
/// shard's worker computes its part), run before the data summary.</summary>
[<RequireQualifiedAccess>]
module Responses =

    /// The response check's pass: [invalid rows, the first one's index among the rows counted, its value, rows
    /// counted, 1 when the first is an exposure (else its response)], merged in row order (a part's first invalid row
    /// is offset by the rows before it). <c>exposure</c> is the exposure's input column, or −1.
    let internal checkPass (family: ExpertFamily) (exposure: int) (source: DataSource) : float[] =
        let merge (t: float[]) (s: float[]) =
            if t.[0] > 0.0 then
                [| t.[0] + s.[0]; t.[1]; t.[2]; t.[3] + s.[3]; t.[4] |]
            else
                [| s.[0]; t.[3] + s.[1]; s.[2]; t.[3] + s.[3]; s.[4] |]

        Passes.fold
            (PassRequest.ResponseCheck(family, exposure))
            source
            ignore
            (fun () batch lo hi ->
                let acc = [| 0.0; 0.0; 0.0; float (hi - lo); 0.0 |]

                for r in lo .. hi - 1 do
                    let y = batch.Y.[r]

                    // The row column: an exposure t > 0, or binomial trials n, a whole number ≥ 1 (§12.5).
                    let badT =
                        exposure >= 0
                        && (if family = ExpertFamily.Binomial then
                                not (Binomial.validTrials batch.X.[r, exposure])
                            else
                                not (batch.X.[r, exposure] > 0.0 && Double.IsFinite batch.X.[r, exposure]))

                    let badY =
                        not (ExpertFamily.isValidResponse family y)
                        || (family = ExpertFamily.Binomial
                            && exposure >= 0
                            && not badT
                            && not (Binomial.validSuccesses y batch.X.[r, exposure]))

                    if badY || badT then
                        if acc.[0] = 0.0 then
                            acc.[1] <- float (r - lo)
                            acc.[2] <- if badY then y else batch.X.[r, exposure]
                            acc.[4] <- if badY then 0.0 else 1.0

                        acc.[0] <- acc.[0] + 1.0

                acc)
            merge

    /// <summary>The error finding for responses the family has no density at, or an exposure that is not positive,
    /// naming the first such data row (from 1) and its value, or None (no pass for Gaussian experts without an
    /// exposure column).</summary>
    /// <param name="family">The experts' family.</param>
    /// <param name="design">The columns the model reads: its exposure column, if any, is checked.</param>
    /// <param name="source">The data.</param>
    [<CompiledName("Check")>]
    let check (family: ExpertFamily) (design: Design) (source: DataSource) : Finding option =
        let exposure = design.OffsetColumn

        if family = ExpertFamily.Gaussian && exposure < 0 then
            None
        else
            let r = checkPass family exposure source

            if r.[0] = 0.0 then
                None
            else
                let value = r.[2].ToString("R", Globalization.CultureInfo.InvariantCulture)

                Some
                    {
                        Severity = Severity.Error
                        Code = FindingCode.InvalidResponse
                        Message =
                            if r.[4] = 1.0 then
                                // The row column's rule: binomial trials, or an exposure (docs/math.md §12.4–12.5).
                                let what, rule =
                                    if family = ExpertFamily.Binomial then
                                        "trials", "a row's trials (--trials) must be a whole number >= 1"
                                    else
                                        "exposure",
                                        "an exposure (--offset) must be a positive number: its logarithm enters the experts' linear predictors"

                                Text.format
                                    "the %s%s in data row %d is %s, but %s (%d of %d rows are invalid)."
                                    [|
                                        box what
                                        box (
                                            match design.OffsetName with
                                            | Some name -> " '" + name + "'"
                                            | None -> ""
                                        )
                                        box (int64 r.[1] + 1L)
                                        box value
                                        box rule
                                        box (int64 r.[0])
                                        box (int64 r.[3])
                                    |]
                            else
                                Text.format
                                    "y in data row %d is %s, but %s experts need %s (%d of %d rows are not)."
                                    [|
                                        box (int64 r.[1] + 1L)
                                        box value
                                        box family.Name
                                        box (ExpertFamily.responseRule family)
                                        box (int64 r.[0])
                                        box (int64 r.[3])
                                    |]
                    }
