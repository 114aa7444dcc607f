namespace MoE.Core

open System

/// <summary>Why an expert of a maximum-likelihood fit is degenerate (docs/math.md §7.4).</summary>
[<RequireQualifiedAccess>]
type DegenerateExpert =
    /// The expert's effective rows N_i = Σ_n r_ni are fewer than its own parameters plus one: it interpolates the
    /// rows it holds, and its σ_i (or its coefficients) are not estimated by them.
    | TooFewRows of expert: int * rows: float * parameters: int
    /// The expert's σ_i is below the responses' rounding noise δ/√12 (δ their resolution): it claims more precision
    /// than the recorded values carry — an expert on tied responses.
    | BelowResolution of expert: int * rows: float * sigma: float * resolution: float

/// <summary>
/// What degenerate means for a maximum-likelihood mixture (docs/math.md §7.4): an expert whose effective number of
/// rows is below its own parameter count plus one, or whose noise level is below the resolution of the recorded
/// responses. Everything else — an expert narrow because its regime is quiet — is a legitimate maximum and is kept.
/// </summary>
[<RequireQualifiedAccess>]
module Degeneracy =

    /// <summary>The resolution of recorded responses: the smallest positive gap between two distinct values (the
    /// recorded precision of rounded data, e.g. 0.001 for values written to three decimals); +∞ when there are fewer
    /// than two distinct values.</summary>
    /// <param name="y">The responses (not changed).</param>
    /// <returns>δ &gt; 0, or +∞.</returns>
    [<CompiledName("Resolution")>]
    let resolution (y: float[]) : float =
        let sorted = Array.copy y
        Array.Sort sorted
        let mutable gap = Double.PositiveInfinity

        for i in 1 .. sorted.Length - 1 do
            let g = sorted.[i] - sorted.[i - 1]

            if g > 0.0 && g < gap then
                gap <- g

        gap

    /// <summary>The rule applied to one fit's numbers: the first expert (in order) with fewer effective rows than its
    /// parameters plus one, or with σ_i &lt; δ/√12.</summary>
    /// <param name="rows">N_i = Σ_n r_ni for each expert.</param>
    /// <param name="sigmas">σ_i (in the responses' units).</param>
    /// <param name="parameters">Each expert's own parameters: its coefficients, plus its σ_i when the levels are
    /// per expert.</param>
    /// <param name="resolution">δ of the responses (<c>resolution</c>), in the units of σ.</param>
    /// <returns>The degenerate expert (0-based), or None.</returns>
    [<CompiledName("Judge")>]
    let judge (rows: float[]) (sigmas: float[]) (parameters: int) (resolution: float) : DegenerateExpert option =
        let rounding = resolution / sqrt 12.0

        Array.init rows.Length id
        |> Array.tryPick (fun i ->
            if not (rows.[i] >= float parameters + 1.0) then
                Some(DegenerateExpert.TooFewRows(i, rows.[i], parameters))
            elif sigmas.[i] < rounding then
                Some(DegenerateExpert.BelowResolution(i, rows.[i], sigmas.[i], resolution))
            else
                None)

    /// <summary>The expert's own parameters: its coefficients (an intercept among them when fitted) and its σ_i when
    /// the levels are per expert.</summary>
    /// <param name="model">The model.</param>
    /// <param name="intercepts">Whether the experts have intercepts.</param>
    /// <param name="commonSigma">Whether the experts share one level.</param>
    [<CompiledName("ExpertParameters")>]
    let expertParameters (model: MoeModel) (intercepts: bool) (commonSigma: bool) : int =
        model.ExpertDimension
        + (if intercepts then 1 else 0)
        + (if commonSigma then 0 else 1)

    /// <summary>The rule on a fitted model and its data (one pass for the effective rows; the resolution of the
    /// responses from a seeded subsample of at most 100k rows, an upper bound of the whole data's).</summary>
    /// <param name="model">The maximum-likelihood model.</param>
    /// <param name="intercepts">Whether the experts have intercepts.</param>
    /// <param name="commonSigma">Whether the experts share one level.</param>
    /// <param name="seed">The seed of the subsample.</param>
    /// <param name="source">The data the model was fitted on.</param>
    /// <returns>The degenerate expert with sd(y) of the subsample (for <c>describe</c>), or None.</returns>
    [<CompiledName("Check")>]
    let check
        (model: MoeModel)
        (intercepts: bool)
        (commonSigma: bool)
        (seed: int64)
        (source: DataSource)
        : (DegenerateExpert * float) option =
        let rows = (EmKernel.statisticsOf model intercepts false source).Weight
        let y = (Sampling.subsampleOf 100_000 seed source).Y

        judge rows model.Sigmas (expertParameters model intercepts commonSigma) (resolution y)
        |> Option.map (fun verdict -> verdict, Dense.std y)

    /// <summary>The warning's words: the expert (1-based), its rows and σ_i relative to sd(y).</summary>
    /// <param name="verdict">The degenerate expert.</param>
    /// <param name="guarded">σ_i of the guarded model.</param>
    /// <param name="ySd">sd(y) in the units of σ.</param>
    [<CompiledName("Describe")>]
    let describe (verdict: DegenerateExpert) (guarded: float[]) (ySd: float) : string =
        let reason, i =
            match verdict with
            | DegenerateExpert.TooFewRows(i, rows, parameters) ->
                Text.format
                    "expert %d holds %.3g rows, fewer than its %d parameters plus one"
                    [| box (i + 1); box rows; box parameters |],
                i
            | DegenerateExpert.BelowResolution(i, rows, sigma, resolution) ->
                Text.format
                    "expert %d (%.3g rows) reaches sigma = %.3g·sd(y), below the responses' rounding noise (values recorded to %.3g·sd(y))"
                    [| box (i + 1); box rows; box (sigma / ySd); box (resolution / ySd) |],
                i

        Text.format
            "without the guard on the noise levels %s: the likelihood is degenerate here (an expert on a few points or on tied y values), and the model is the guarded one (its sigma = %.3g·sd(y)); fewer experts may fit better."
            [| box reason; box (guarded.[i] / ySd) |]

    /// <summary>The warning's words when the climb without the guard ended in a non-finite likelihood (a level
    /// collapsed to the floor of 1e-12).</summary>
    /// <param name="detail">What became non-finite.</param>
    [<CompiledName("DescribeCollapse")>]
    let describeCollapse (detail: string) : string =
        Text.format
            "without the guard on the noise levels an expert's sigma collapsed until the likelihood was not finite (%s): the likelihood is degenerate here (an expert on a few points or on tied y values), and the model is the guarded one; fewer experts may fit better."
            [| box detail |]
