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

    /// <summary>λ of the separation guard (docs/math.md §12.3): a N(0, 5²) prior on every coefficient of a GLM expert in
    /// working units (covariates standardised), so a slope may still change the odds e^5 ≈ 150-fold per standard
    /// deviation of its covariate.</summary>
    [<Literal>]
    let SeparationPrecision = 0.04

    /// The largest mean −log f per row of an expert's own rows that counts as perfect prediction: 1e-3 nats, a
    /// Bernoulli expert's fitted probability within about 0.1 % of its rows' outcomes on average.
    [<Literal>]
    let SeparationLoss = 1e-3

    /// <summary>The experts of a GLM fit that predict their own rows perfectly (docs/math.md §12.3): posterior weight
    /// Σ r ≥ 1 row and a mean −log f per weighted row below <c>SeparationLoss</c>. Their coefficients have no finite
    /// maximum — complete or quasi-complete separation (a Bernoulli expert), an expert on zero counts (Poisson) —
    /// and the likelihood climbs forever as they grow. One EM-statistics pass.</summary>
    /// <param name="model">A GLM model (a family without levels).</param>
    /// <param name="intercepts">Whether the design has the intercept's column.</param>
    /// <param name="source">The data.</param>
    /// <returns>The 0-based indices of the separated experts (empty when there are none).</returns>
    let separated (model: MoeModel) (intercepts: bool) (source: DataSource) : int[] * bool =
        let stats = EmKernel.statisticsOf model intercepts false source

        [|
            for i in 0 .. model.Experts - 1 do
                let w = stats.Weight.[i]

                if
                    w >= 1.0
                    && FamilyKernels.expectedLoss model.Family stats.Sums.[i] < SeparationLoss * w
                then
                    yield i
        |],
        // The gate's complete-data part −Σ r log p per row: near 0 when it gives every row to one expert with
        // certainty, a hard split its coefficients reach only at infinity.
        -stats.GateObjective < SeparationLoss * source.Weight

    /// <summary>The warning of a guarded GLM fit: which experts separated their rows, whether the gate split the rows
    /// hard, and what the guard did.</summary>
    /// <param name="family">The family.</param>
    /// <param name="experts">The separated experts (0-based).</param>
    /// <param name="gate">Whether the gate gave every row to one expert with certainty.</param>
    let describeSeparation (family: ExpertFamily) (experts: int[]) (gate: bool) : string =
        let names = String.Join(", ", experts |> Array.map (fun i -> string (i + 1)))

        let parts =
            [|
                if experts.Length > 0 then
                    Text.format
                        "expert%s %s predicted %s own rows perfectly (%s)"
                        [|
                            box (if experts.Length > 1 then "s" else "")
                            box names
                            box (if experts.Length > 1 then "their" else "its")
                            box (
                                if family = ExpertFamily.Bernoulli || family = ExpertFamily.Binomial then
                                    "complete separation"
                                else
                                    "an expert on zero counts"
                            )
                        |]
                if gate then
                    "the gate split the rows between the experts with certainty (a hard split)"
            |]

        Text.format
            "%s: the likelihood has no finite maximum there, its coefficients ran to infinity; the model kept is the posterior mode under a N(0, 5^2) prior on every coefficient of standardised covariates. Fewer experts, or fewer covariates, may fit better."
            [| box (String.Join(", and ", parts)) |]
