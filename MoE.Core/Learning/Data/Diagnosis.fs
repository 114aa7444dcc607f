namespace MoE.Core

open System
open System.Numerics.Tensors

/// <summary>How serious a finding about the data is.</summary>
[<RequireQualifiedAccess>]
type Severity =
    /// The fit cannot proceed; the message says why and what to do.
    | Error
    /// The fit proceeds, but its result deserves a look; the message says why.
    | Warning

/// <summary>What a finding is about. Each code has a stable name (<c>Name</c>, e.g. not-gaussian) that the command
/// line and report files print and docs/errors.md lists.</summary>
[<RequireQualifiedAccess>]
type FindingCode =
    /// A covariate column is constant ("constant-column"; an error).
    | ConstantColumn
    /// The response is constant ("constant-response"; an error).
    | ConstantResponse
    /// Fewer than 2kd rows ("too-few-rows"; an error).
    | TooFewRows
    /// The moment-only methods need d ≥ k ("dimension-below-experts"; an error).
    | DimensionBelowExperts
    /// Covariates far from 0 in a model without intercepts ("not-centred").
    | NotCentred
    /// Covariates not standardised for the L4 estimator ("not-standardised").
    | NotStandardised
    /// Covariates far from Gaussian for the moment estimators ("not-gaussian").
    | NotGaussian
    /// Fewer than 10 rows per parameter ("few-rows").
    | FewRows
    /// EM or L-BFGS stopped at its budget ("em-not-converged").
    | EmNotConverged
    /// EM stopped on a step that lowered the likelihood ("em-no-progress").
    | EmNoProgress
    /// A noise level collapsed towards 0 ("sigma-collapsed").
    | SigmaCollapsed
    /// The likelihood's maximum is degenerate and the guarded model was kept ("likelihood-degenerate").
    | LikelihoodDegenerate
    /// A column's values are so large that its squares or fourth powers overflow ("value-overflow"; an error).
    | ValueOverflow
    /// An expert looks like two merged ones that split-and-merge moves did not separate ("merged-experts").
    | MergedExperts
    /// A response the experts' family has no density at: a negative or fractional count, a 0/1 outcome that is
    /// neither ("invalid-response"; an error).
    | InvalidResponse
    /// Rows left out of the fit for a missing value, as asked (<c>MissingValues.Drop</c>; "rows-dropped").
    | RowsDropped
    /// A column's values are so small that their squares underflow to 0, so they look constant ("value-underflow";
    /// an error).
    | ValueUnderflow
    /// An expert's activation is flat on nearly every row it holds and reviving it did not raise the likelihood
    /// ("dead-expert"; docs/math.md §7.9).
    | DeadExpert

    /// <summary>The code's stable name: constant-column, constant-response, too-few-rows, dimension-below-experts,
    /// not-centred, not-standardised, not-gaussian, few-rows, em-not-converged, em-no-progress, sigma-collapsed,
    /// likelihood-degenerate, value-overflow, merged-experts, invalid-response, rows-dropped, value-underflow, dead-expert.</summary>
    member this.Name =
        match this with
        | ConstantColumn -> "constant-column"
        | ConstantResponse -> "constant-response"
        | TooFewRows -> "too-few-rows"
        | DimensionBelowExperts -> "dimension-below-experts"
        | NotCentred -> "not-centred"
        | NotStandardised -> "not-standardised"
        | NotGaussian -> "not-gaussian"
        | FewRows -> "few-rows"
        | EmNotConverged -> "em-not-converged"
        | EmNoProgress -> "em-no-progress"
        | SigmaCollapsed -> "sigma-collapsed"
        | LikelihoodDegenerate -> "likelihood-degenerate"
        | ValueOverflow -> "value-overflow"
        | MergedExperts -> "merged-experts"
        | InvalidResponse -> "invalid-response"
        | RowsDropped -> "rows-dropped"
        | ValueUnderflow -> "value-underflow"
        | DeadExpert -> "dead-expert"

    /// <summary>The code's name.</summary>
    override this.ToString() = this.Name

    /// <summary>Every code, in the order of declaration (entry i has tag i).</summary>
    static member All =
        [|
            ConstantColumn
            ConstantResponse
            TooFewRows
            DimensionBelowExperts
            NotCentred
            NotStandardised
            NotGaussian
            FewRows
            EmNotConverged
            EmNoProgress
            SigmaCollapsed
            LikelihoodDegenerate
            ValueOverflow
            MergedExperts
            InvalidResponse
            RowsDropped
            ValueUnderflow
            DeadExpert
        |]

/// <summary>One finding about the data or a fit: its severity, a stable code and a message a user can act on.</summary>
type Finding =
    {
        /// Error or warning.
        Severity: Severity
        /// What the finding is about, for programs and tests.
        Code: FindingCode
        /// What is wrong, with the numbers, and what to do.
        Message: string
    }

/// <summary>The moments of one column: mean, standard deviation, skewness and excess kurtosis.</summary>
type ColumnMoments =
    {
        /// The mean.
        Mean: float
        /// The standard deviation (divisor n).
        Sd: float
        /// E[(v − mean)³]/sd³ (0 for a Gaussian).
        Skewness: float
        /// E[(v − mean)⁴]/sd⁴ − 3 (0 for a Gaussian).
        ExcessKurtosis: float
    }

/// <summary>What a fit needs to know of its data before it starts: the rows and every column's moments.</summary>
type DataSummary =
    {
        /// n.
        Rows: int64
        /// The moments of each input column.
        Columns: ColumnMoments[]
        /// The moments of the responses.
        Response: ColumnMoments
    }

/// <summary>Checks of the data against what the estimators need, run before a fit (docs/errors.md): errors stop
/// the fit with a message that names the cause; warnings travel with the result (<c>FitResult.Warnings</c>).</summary>
[<RequireQualifiedAccess>]
module Diagnosis =

    /// Moments from a column's sum and centred power sums over n rows.
    let private fromPowers (n: float) (mean: float) (m2: float) (m3: float) (m4: float) : ColumnMoments =
        let var = m2 / n
        let sd = sqrt var

        {
            Mean = mean
            Sd = sd
            Skewness = (if var > 0.0 then m3 / n / (var * sd) else 0.0)
            ExcessKurtosis = (if var > 0.0 then m4 / n / (var * var) - 3.0 else 0.0)
        }

    /// The summary's first pass: [Σx (d) | Σy].
    let internal columnSumsPass (source: DataSource) : float[] =
        let d = source.Dimension

        Passes.sum PassRequest.ColumnSums source ignore (fun () batch lo hi ->
            let xs = Chunks.flat batch.X
            let s = Array.zeroCreate (d + 1)

            if batch.IsWeighted then
                for r in lo .. hi - 1 do
                    let w = batch.Weights.[r]
                    TensorPrimitives.MultiplyAdd(xs.Slice(r * d, d), w, ReadOnlySpan(s, 0, d), Span(s, 0, d))
                    s.[d] <- s.[d] + w * batch.Y.[r]
            else
                for r in lo .. hi - 1 do
                    TensorPrimitives.Add(ReadOnlySpan(s, 0, d), xs.Slice(r * d, d), Span(s, 0, d))
                    s.[d] <- s.[d] + batch.Y.[r]

            s)

    /// The summary's second pass about the means (d + 1, y's last): centred m2, m3, m4 side by side for the d
    /// columns, then y's three.
    let internal centredPowersPass (mean: float[]) (source: DataSource) : float[] =
        let d = source.Dimension
        let xMean = Array.sub mean 0 d

        Passes.sum (PassRequest.CentredPowers mean) source ignore (fun () batch lo hi ->
            let xs = Chunks.flat batch.X
            let acc: float[] = Array.zeroCreate (3 * d + 3)
            let e: float[] = Array.zeroCreate d
            let e2: float[] = Array.zeroCreate d
            let we2: float[] = Array.zeroCreate d

            for r in lo .. hi - 1 do
                TensorPrimitives.Subtract(xs.Slice(r * d, d), ReadOnlySpan xMean, Span e)
                TensorPrimitives.Multiply(ReadOnlySpan e, ReadOnlySpan e, Span e2)
                // A weighted row's powers count w times: w·e², w·e²·e and w·e²·e² (unweighted rows read e² itself).
                let w = if batch.IsWeighted then batch.Weights.[r] else 1.0

                let first =
                    if batch.IsWeighted then
                        TensorPrimitives.Multiply(ReadOnlySpan e2, w, Span we2)
                        ReadOnlySpan we2
                    else
                        ReadOnlySpan e2

                let m2 = Span(acc, 0, d)
                let m3 = Span(acc, d, d)
                let m4 = Span(acc, 2 * d, d)
                TensorPrimitives.Add(first, Span.op_Implicit m2, m2)
                TensorPrimitives.FusedMultiplyAdd(first, ReadOnlySpan e, Span.op_Implicit m3, m3)
                TensorPrimitives.FusedMultiplyAdd(first, ReadOnlySpan e2, Span.op_Implicit m4, m4)
                let ey = batch.Y.[r] - mean.[d]
                let ey2 = ey * ey
                acc.[3 * d] <- acc.[3 * d] + w * ey2
                acc.[3 * d + 1] <- acc.[3 * d + 1] + w * ey2 * ey
                acc.[3 * d + 2] <- acc.[3 * d + 2] + w * ey2 * ey2

            acc)

    /// <summary>The moments of every input column and of the responses over a source, in two passes (the means, then
    /// the centred powers, so a column far from 0 keeps its digits), the rows read in order on every core.</summary>
    /// <param name="source">The data.</param>
    [<CompiledName("Summarise")>]
    let summarise (source: DataSource) : DataSummary =
        let d = source.Dimension
        let n = source.Weight
        let mean = columnSumsPass source |> Array.map (fun v -> v / n)
        let powers = centredPowersPass mean source

        {
            Rows = source.Rows
            Columns = Array.init d (fun j -> fromPowers n mean.[j] powers.[j] powers.[d + j] powers.[2 * d + j])
            Response = fromPowers n mean.[d] powers.[3 * d] powers.[3 * d + 1] powers.[3 * d + 2]
        }

    /// <summary>Mean, sd, skewness and excess kurtosis of every input column.</summary>
    /// <param name="data">The data.</param>
    /// <returns>One entry per column of X.</returns>
    [<CompiledName("Columns")>]
    let columns (data: Dataset) : ColumnMoments[] =
        (summarise (DataSource.ofDataset data)).Columns

    /// <summary>Mean, sd, skewness and excess kurtosis of the responses.</summary>
    /// <param name="data">The data.</param>
    [<CompiledName("Response")>]
    let response (data: Dataset) : ColumnMoments =
        (summarise (DataSource.ofDataset data)).Response

    let private g4 (v: float) =
        v.ToString("G4", Globalization.CultureInfo.InvariantCulture)

    /// Values below this magnitude have squares below the smallest normal double (2.2e-308): √2.2e-308 ≈ 1.5e-154.
    [<Literal>]
    let private Underflow = 1.5e-154

    let private error code message =
        {
            Severity = Severity.Error
            Code = code
            Message = message
        }

    let private warning code message =
        {
            Severity = Severity.Warning
            Code = code
            Message = message
        }

    /// <summary>The findings for fitting <paramref name="config"/> to data with the given summary.</summary>
    /// <param name="config">The configuration (its k and method).</param>
    /// <param name="summary">The data's rows and column moments (<c>summarise</c>).</param>
    /// <returns>Errors first, then warnings; empty when nothing is wrong.</returns>
    /// <remarks>
    /// Errors: a constant covariate (no information, and a singular moment matrix), a constant response, fewer than
    /// 2kd rows, and for the L4 method d &lt; k (it recovers k directions in ℝ^d).
    /// Warnings, for the L4 method, whose moments assume x ~ N(0, I): a column whose mean or sd is off by more than
    /// max(0.1, 5 standard errors), or whose skewness or excess kurtosis is off by more than max(0.5, 5 standard
    /// errors) (standard errors √(6/n) and √(24/n) under normality). For the other methods: a column whose mean is
    /// that far from 0 in units of its sd (the model has no intercepts). For every method: fewer than 10 rows per
    /// parameter.
    /// </remarks>
    [<CompiledName("Findings")>]
    let findings (config: FitConfig) (summary: DataSummary) : Finding[] =
        let n, d, k = summary.Rows, summary.Columns.Length, config.Experts
        let cols = summary.Columns
        let y = summary.Response
        // Columns by the names the data have (roles: docs/data.md), else x1, …, xd.
        let names =
            match config.Design |> Option.bind _.Columns with
            | Some c when c.Inputs.Length = d -> Array.map (fun name -> "'" + name + "'") c.Inputs
            | _ -> Array.init d (fun j -> Text.format "x%d" [| box (j + 1) |])

        let yName =
            match config.Design |> Option.bind _.Columns with
            | Some c -> "'" + c.Response + "'"
            | None -> "y"
        // The moment estimators assume x ~ N(0, I): checked for L4 and Spectral on the data as given; with
        // standardisation only the shape (skew, tails) still matters, and only for the methods that use moments.
        let moments =
            config.Method = FitMethod.L4
            || config.Method = FitMethod.Spectral
            || config.Method = FitMethod.Auto

        let l4 = moments && not config.Standardise
        let momentsOnly = config.Method = FitMethod.L4 || config.Method = FitMethod.Spectral

        // A column whose centred squares or fourth powers overflow has non-finite moments: the fit's sums (the
        // standardisation's variances, the moments' fourth powers, the likelihood's squared residuals) would be ±∞
        // or NaN. Its values are above about (Double.MaxValue/n)^(1/4) ≈ 1e76 at n = 300.
        let overflow (c: ColumnMoments) =
            not (
                Double.IsFinite c.Sd
                && Double.IsFinite c.Skewness
                && Double.IsFinite c.ExcessKurtosis
            )
            && not (c.Sd = 0.0)

        let limit = (Double.MaxValue / max (float n) 1.0) ** 0.25

        [|
            for j in 0 .. d - 1 do
                if overflow cols.[j] then
                    error
                        FindingCode.ValueOverflow
                        (Text.format
                            "column %s holds values too large to fit (mean %s): their squares and fourth powers overflow a double beyond about %.1g at n = %d; rescale the column (e.g. to thousands or millions)."
                            [| box names.[j]; box (g4 cols.[j].Mean); box limit; box n |])

            if overflow y then
                error
                    FindingCode.ValueOverflow
                    (Text.format
                        "%s holds values too large to fit (mean %s): their squares and fourth powers overflow a double beyond about %.1g at n = %d; rescale the response."
                        [| box yName; box (g4 y.Mean); box limit; box n |])

            // A column of tiny values (|v| ≲ 1e-154) has squares that underflow: its sd comes out 0 whether or not its
            // values differ, and the whitening would divide by it. Said as what it is, not as a constant.
            let tiny (c: ColumnMoments) =
                c.Sd = 0.0 && c.Mean <> 0.0 && abs c.Mean < Underflow

            for j in 0 .. d - 1 do
                if tiny cols.[j] then
                    error
                        FindingCode.ValueUnderflow
                        (Text.format
                            "column %s holds values too small to fit (mean %s): below about %.0e their squares underflow a double, so the column cannot be told from a constant; rescale it (e.g. multiply by 1e300)."
                            [| box names.[j]; box (g4 cols.[j].Mean); box Underflow |])
                elif cols.[j].Sd = 0.0 then
                    error
                        FindingCode.ConstantColumn
                        (Text.format
                            "column %s is constant (every value is %s): it carries no information about the experts and makes the moment matrices singular; remove it."
                            [| box names.[j]; box (g4 cols.[j].Mean) |])

            if tiny y then
                error
                    FindingCode.ValueUnderflow
                    (Text.format
                        "%s holds values too small to fit (mean %s): below about %.0e their squares underflow a double; rescale the response."
                        [| box yName; box (g4 y.Mean); box Underflow |])
            elif y.Sd = 0.0 then
                error
                    FindingCode.ConstantResponse
                    (Text.format
                        "%s is constant (every value is %s): there is nothing to fit."
                        [| box yName; box (g4 y.Mean) |])

            if int64 n < 2L * int64 k * int64 d then
                error
                    FindingCode.TooFewRows
                    (Text.format
                        "%d samples cannot determine k = %d experts in d = %d dimensions; need at least 2kd = %d."
                        [| box n; box k; box d; box (2L * int64 k * int64 d) |])

            if momentsOnly && d < k then
                error
                    FindingCode.DimensionBelowExperts
                    (Text.format
                        "The moment estimators recover k = %d directions in R^d and need d >= k, but the data have d = %d; fit with the default method or the EM method (--method em), which work for any d."
                        [| box k; box d |])

            let meanTolerance = max 0.1 (5.0 / sqrt (float n))

            if not moments && not config.Intercepts && not config.Standardise then
                let shifted =
                    [|
                        for j in 0 .. d - 1 do
                            let c = cols.[j]

                            if c.Sd > 0.0 && abs c.Mean > meanTolerance * max 1.0 c.Sd then
                                Text.format "%s has mean %s" [| box names.[j]; box (g4 c.Mean) |]
                    |]

                if shifted.Length > 0 then
                    warning
                        FindingCode.NotCentred
                        (Text.format
                            "the covariates are not centred (%s%s): the model has no intercepts, so every expert and the gate pass through x = 0, which data away from 0 rarely follow; centre each column (subtract its mean) before fitting."
                            [|
                                box (String.Join("; ", Array.truncate 3 shifted))
                                box (
                                    if shifted.Length > 3 then
                                        Text.format "; and %d more" [| box (shifted.Length - 3) |]
                                    else
                                        ""
                                )
                            |])

            if l4 then
                let shifted =
                    [|
                        for j in 0 .. d - 1 do
                            let c = cols.[j]

                            if c.Sd > 0.0 && (abs c.Mean > meanTolerance || abs (c.Sd - 1.0) > meanTolerance) then
                                Text.format
                                    "%s has mean %s and sd %s"
                                    [| box names.[j]; box (g4 c.Mean); box (g4 c.Sd) |]
                    |]

                if shifted.Length > 0 then
                    warning
                        FindingCode.NotStandardised
                        (Text.format
                            "the covariates are not standardised (%s%s): the L4 estimator's moments assume x ~ N(0, I); standardise each column (subtract its mean, divide by its sd) before fitting."
                            [|
                                box (String.Join("; ", Array.truncate 3 shifted))
                                box (
                                    if shifted.Length > 3 then
                                        Text.format "; and %d more" [| box (shifted.Length - 3) |]
                                    else
                                        ""
                                )
                            |])

            if momentsOnly then
                let skewTolerance = max 0.5 (5.0 * sqrt (6.0 / float n))
                let kurtosisTolerance = max 0.5 (5.0 * sqrt (24.0 / float n))

                let heavy =
                    [|
                        for j in 0 .. d - 1 do
                            let c = cols.[j]

                            if
                                c.Sd > 0.0
                                && (abs c.Skewness > skewTolerance || abs c.ExcessKurtosis > kurtosisTolerance)
                            then
                                Text.format
                                    "%s has skewness %s and excess kurtosis %s"
                                    [| box names.[j]; box (g4 c.Skewness); box (g4 c.ExcessKurtosis) |]
                    |]

                if heavy.Length > 0 then
                    warning
                        FindingCode.NotGaussian
                        (Text.format
                            "the covariates are far from Gaussian (%s%s): the L4 estimator's moments assume Gaussian inputs, so its start may be biased or fail; the EM polish (and --method em) does not need them."
                            [|
                                box (String.Join("; ", Array.truncate 3 heavy))
                                box (
                                    if heavy.Length > 3 then
                                        Text.format "; and %d more" [| box (heavy.Length - 3) |]
                                    else
                                        ""
                                )
                            |])

            let p = FitConfig.parameterCount config d

            if int64 n >= 2L * int64 k * int64 d && int64 n < 10L * p then
                warning
                    FindingCode.FewRows
                    (Text.format
                        "n = %d rows for %d parameters (fewer than 10 per parameter): the estimates will be noisy."
                        [| box n; box p |])
        |]

    /// <summary>The findings for fitting <paramref name="config"/> to data in memory (<c>findings</c> of its
    /// summary).</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="data">The data (validated).</param>
    [<CompiledName("Check")>]
    let check (config: FitConfig) (data: Dataset) : Finding[] =
        findings config (summarise (DataSource.ofDataset data))

    /// <summary>Raises the first error among the findings as an ArgumentException naming "data".</summary>
    /// <param name="findings">From <c>check</c>.</param>
    /// <exception cref="T:System.ArgumentException">An error finding.</exception>
    [<CompiledName("ThrowOnError")>]
    let throwOnError (findings: Finding[]) : unit =
        findings
        |> Array.tryFind (fun f -> f.Severity = Severity.Error)
        |> Option.iter (fun f -> invalidArg "data" f.Message)
