namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra

/// <summary>What the data say about the estimators' assumptions (docs/inference.md §4): per-column moments, Mardia's
/// multivariate skewness and kurtosis, the covariates' conditioning, rows per parameter and a verdict in words.</summary>
type DataReport =
    {
        /// Rows n.
        Rows: int
        /// Covariates d.
        Dimension: int
        /// Experts k asked about.
        Experts: int
        /// The general model's free parameters at this k (intercepts, a level per expert); 64-bit, as k·d can pass 2³¹.
        Parameters: int64
        /// Mean, sd, skewness and excess kurtosis of every covariate.
        Columns: ColumnMoments[]
        /// Mardia's b_{1,d} on the standardised covariates (0 for a Gaussian), from at most 2,000 rows.
        MardiaSkewness: float
        /// Its p-value: n·b_{1,d}/6 ~ χ² with d(d+1)(d+2)/6 degrees of freedom under normality.
        MardiaSkewnessP: float
        /// Mardia's b_{2,d} / (d(d+2)) (1 for a Gaussian).
        MardiaKurtosisRatio: float
        /// Its p-value: (b_{2,d} − d(d+2))/√(8d(d+2)/n) ~ N(0, 1) under normality (two-sided).
        MardiaKurtosisP: float
        /// The condition number of the covariates' correlation matrix.
        Conditioning: float
        /// Whether the guarantees of the moment initializers (L4, spectral) apply after standardising.
        MomentGuarantees: bool
        /// The verdict and what to do, one sentence each.
        Verdict: string[]
    }

/// <summary>The data report of <c>moe diagnose</c>.</summary>
[<RequireQualifiedAccess>]
module DataReport =

    /// <summary>Examines the covariates for a fit with <paramref name="experts"/> experts. The moment initializers'
    /// guarantees need x Gaussian up to an affine map (the fit standardises; docs/math.md §9) and d ≥ k; the
    /// likelihood the default fit maximises needs neither, only enough rows and covariates that are not collinear.
    /// Gaussianity is judged by size, not significance alone: with many rows a negligible departure is significant,
    /// so a departure counts when a column's |skewness| or |excess kurtosis| exceeds 0.5, or Mardia's kurtosis ratio
    /// is off 1 by more than 10 %.</summary>
    /// <param name="family">The experts' family (their parameter count: Gaussian experts have noise levels, the GLM
    /// ones none).</param>
    /// <param name="experts">k ≥ 1.</param>
    /// <param name="data">The data.</param>
    /// <param name="design">Which columns the experts and the gate read (their parameter count).</param>
    [<CompiledName("CreateForDesign")>]
    let rec createForDesign (family: ExpertFamily) (experts: int) (design: Design) (data: Dataset) : DataReport =
        Guard.positiveInt "experts" experts
        Guard.notNull "design" (box design)

        if design.HasOffset then
            // An exposure column (docs/math.md §12.4) is not a covariate: the report is of the covariates alone.
            let o = design.OffsetColumn
            let keep = Array.init (data.Dimension - 1) (fun t -> if t < o then t else t + 1)
            let at (c: int) = if c < o then c else c - 1

            let covariates =
                Design.create keep.Length (Array.map at design.ExpertColumns) (Array.map at design.GateColumns)
                |> fun plain ->
                    match design.Columns with
                    | Some names ->
                        Design.withColumns
                            { names with
                                Inputs = keep |> Array.map (fun t -> names.Inputs.[t])
                            }
                            plain
                    | None -> plain

            createForDesign
                family
                experts
                covariates
                { data with
                    X = Array2D.init data.Count keep.Length (fun r t -> data.X.[r, keep.[t]])
                }
        else
            let n, d = data.Count, data.Dimension
            // Weighted rows (docs/math.md §13): the moments, the correlation and Mardia's kurtosis weigh them and count
            // N = Σw observations; Mardia's skewness, a double sum over a subsample, reads the subsample's rows unweighted.
            let weight (r: int) = data.WeightOf r

            let observations = data.Weight
            let columns = Diagnosis.columns data
            let sd = columns |> Array.map (fun c -> if c.Sd > 0.0 then c.Sd else 1.0)
            // Columns by the names the data have (roles: docs/data.md), else x1, …, xd.
            let name (t: int) =
                match design.Columns with
                | Some names when names.Inputs.Length = d -> names.Inputs.[t]
                | _ -> Text.format "x%d" [| box (t + 1) |]

            let z =
                Matrix<float>.Build.Dense(n, d, fun r t -> (data.X.[r, t] - columns.[t].Mean) / sd.[t])

            let correlation =
                if data.IsWeighted then
                    let zw = Matrix<float>.Build.Dense(n, d, fun r t -> sqrt (weight r) * z.[r, t])
                    zw.TransposeThisAndMultiply zw / observations
                else
                    z.TransposeThisAndMultiply z / float n

            let eigen =
                correlation.Evd(Symmetricity.Symmetric).EigenValues
                |> Seq.map _.Real
                |> Seq.toArray

            let conditioning = Array.max eigen / max (Array.min eigen) 1e-300
            // Mahalanobis inner products need the inverse correlation; a singular one makes every Mardia statistic moot.
            let invertible = conditioning < 1e12

            let skew, skewP, kurtRatio, kurtP =
                if not invertible then
                    nan, nan, nan, nan
                else
                    let inverse = correlation.Inverse()
                    let m = min n 2000
                    let step = float n / float m
                    let rows = Array.init m (fun i -> int (float i * step))
                    // Mardia's b1 centres and scales by the rows it sums over: with the full data's mean the Gram rows no
                    // longer sum to 0, and b1 is inflated (by half again at d = 10, m = 2000, on Gaussian data).
                    let raw = Matrix<float>.Build.Dense(m, d, fun i t -> z.[rows.[i], t])
                    let centre = raw.ColumnSums() / float m
                    let sub = Matrix<float>.Build.Dense(m, d, fun i t -> raw.[i, t] - centre.[t])

                    let gram =
                        sub * (sub.TransposeThisAndMultiply sub / float m).Inverse() * sub.Transpose()

                    let mutable b1 = 0.0

                    for i in 0 .. m - 1 do
                        for j in 0 .. m - 1 do
                            b1 <- b1 + Math.Pow(gram.[i, j], 3.0)

                    b1 <- b1 / float (m * m)
                    let dof = float (d * (d + 1) * (d + 2)) / 6.0

                    let pSkew =
                        1.0 - MathNet.Numerics.Distributions.ChiSquared.CDF(dof, float m * b1 / 6.0)

                    let zi = z * inverse
                    let mutable b2 = 0.0

                    for r in 0 .. n - 1 do
                        let mutable q = 0.0

                        for t in 0 .. d - 1 do
                            q <- q + zi.[r, t] * z.[r, t]

                        b2 <- b2 + weight r * q * q

                    b2 <- b2 / observations
                    let expected = float (d * (d + 2))
                    let statistic = (b2 - expected) / sqrt (8.0 * expected / observations)

                    let pKurt =
                        2.0 * (1.0 - MathNet.Numerics.Distributions.Normal.CDF(0.0, 1.0, abs statistic))

                    b1, pSkew, b2 / expected, pKurt

            let parameters =
                FitConfig.parameterCount
                    { FitConfig.defaults experts Identity with
                        Family = family
                        Design = Some design
                    }
                    d

            let skewed =
                columns
                |> Array.mapi (fun t c -> t, c)
                |> Array.filter (fun (_, c) -> c.Sd > 0.0 && (abs c.Skewness > 0.5 || abs c.ExcessKurtosis > 0.5))

            let gaussian =
                skewed.Length = 0 && (Double.IsNaN kurtRatio || abs (kurtRatio - 1.0) <= 0.1)

            // What stops a fit outright (a constant column or response, values whose squares overflow, too few rows):
            // the data check of every fit, said first and by column; the statistics after it are moot for those columns.
            let blocking =
                Diagnosis.findings
                    (FitConfig.defaults experts Identity)
                    (Diagnosis.summarise (DataSource.ofDataset data))
                |> Array.filter (fun f -> f.Severity = Severity.Error && f.Code <> FindingCode.TooFewRows)
                |> Array.map (fun f -> Text.format "A fit would stop here: %s" [| box f.Message |])

            // The moment initializers are derived for Gaussian experts; the other families' fits do not run them; and
            // data a fit would refuse have no guarantees to speak of.
            let guarantees =
                gaussian
                && d >= experts
                && invertible
                && blocking.Length = 0
                && ExpertFamily.hasMomentInitializers family

            let verdict =
                [|
                    yield! blocking

                    if experts >= 2 && d < experts then
                        Text.format
                            "d = %d < k = %d: the moment initializers cannot recover k directions in R^d; the default fit uses its likelihood starts instead (nothing to do)."
                            [| box d; box experts |]
                    if skewed.Length > 0 then
                        Text.format
                            "The covariates are far from Gaussian (%s): the L4 and spectral guarantees do not apply, and their starts may be biased; the default fit scores them against likelihood starts, so it does not depend on them. A transform of a skewed column (log, square root) can restore them."
                            [|
                                box (
                                    skewed
                                    |> Array.truncate 3
                                    |> Array.map (fun (t, c) ->
                                        Text.format
                                            "%s skewness %.2f, excess kurtosis %.2f"
                                            [| box (name t); box c.Skewness; box c.ExcessKurtosis |])
                                    |> String.concat "; "
                                )
                            |]
                    elif not gaussian then
                        Text.format
                            "Jointly the covariates are not Gaussian (Mardia's kurtosis is %.2f times a Gaussian's): the moment guarantees are in doubt; the default fit does not rely on them."
                            [| box kurtRatio |]
                    if not invertible && blocking.Length = 0 then
                        Text.format
                            "The covariates are (nearly) collinear (correlation condition number %.3g): some parameters are not identified; remove or combine the redundant columns."
                            [| box conditioning |]
                    elif conditioning > 1e4 && blocking.Length = 0 then
                        Text.format
                            "The covariates are strongly correlated (condition number %.3g): the standard errors of the slopes along the weak directions will be large."
                            [| box conditioning |]
                    let ratio = observations / float parameters

                    let rows =
                        if data.IsWeighted then
                            Text.format "n = %d rows weighing %.6g observations" [| box n; box observations |]
                        else
                            Text.format "n = %d rows" [| box n |]

                    if ratio < 10.0 then
                        Text.format
                            "%s for %d parameters (%.1f per parameter): too few for k = %d; fewer experts, or more data."
                            [| box rows; box parameters; box ratio; box experts |]
                    elif ratio < 50.0 then
                        Text.format
                            "%s for %d parameters (%.0f per parameter): enough to fit, but expect wide intervals (moe fit --se)."
                            [| box rows; box parameters; box ratio |]

                    if guarantees then
                        "The covariates look Gaussian after standardising and d >= k: the guarantees of the moment initializers (L4, spectral) apply, as far as the data can tell (they also assume the model is right)."
                    elif GlmTransform.applies family then
                        Text.format
                            "%s experts are not fitted from L4, whose guarantees are derived for Gaussian experts: their starts are the family's own spectral start (exact when the gate is orthogonal to the experts for counts, constant for yes/no outcomes; docs/math.md §12.6) and random starts, chosen by likelihood."
                            [| box family.Name |]
                    elif not (ExpertFamily.hasMomentInitializers family) then
                        Text.format
                            "%s experts are not fitted from the moment initializers (L4, spectral), whose guarantees are derived for Gaussian experts: their starts are random (and, on small data, segment) starts chosen by likelihood."
                            [| box family.Name |]
                |]

            {
                Rows = n
                Dimension = d
                Experts = experts
                Parameters = parameters
                Columns = columns
                MardiaSkewness = skew
                MardiaSkewnessP = skewP
                MardiaKurtosisRatio = kurtRatio
                MardiaKurtosisP = kurtP
                Conditioning = conditioning
                MomentGuarantees = guarantees
                Verdict = verdict
            }

    /// <summary>The data report for a model whose experts and gate read every column (<c>createForDesign</c> with the
    /// shared design).</summary>
    /// <param name="family">The experts' family.</param>
    /// <param name="experts">k ≥ 1.</param>
    /// <param name="data">The data.</param>
    [<CompiledName("CreateFor")>]
    let createFor (family: ExpertFamily) (experts: int) (data: Dataset) : DataReport =
        createForDesign family experts (Design.shared data.Dimension) data

    /// <summary>The data report for Gaussian experts (<c>createFor</c> with <c>ExpertFamily.Gaussian</c>).</summary>
    /// <param name="experts">k ≥ 1.</param>
    /// <param name="data">The data.</param>
    [<CompiledName("Create")>]
    let create (experts: int) (data: Dataset) : DataReport =
        createFor ExpertFamily.Gaussian experts data
