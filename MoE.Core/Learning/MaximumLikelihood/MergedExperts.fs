namespace MoE.Core

open System

/// <summary>The warning merged-experts (docs/math.md §7.8, docs/errors.md): whether a maximum, after the split-and-merge
/// moves (SplitMerge), still looks like it holds one expert on two true ones.</summary>
module internal MergedExperts =

    /// <summary>Whether a maximum looks like it holds a merged pair (docs/math.md §7.8): an expert stands out
    /// (<c>SplitMerge.standsOut</c>) and its residuals carry the signature of two experts, by either of two
    /// statistics beyond 4 of their standard errors under normal residuals independent of x:
    /// - the γ-weighted excess kurtosis κ = Σγe⁴/N / (Σγe²/N)² − 3 (N = Σγ; standard error √(24/N)): heavy tails are
    ///   another expert's rows taken as outliers, κ &lt; 0 two groups;
    /// - the largest eigenvalue λ of L⁻¹ML⁻ᵀ/s² (the split direction's matrix, <c>SplitMerge.splitDirection</c>):
    ///   residual variance growing along a direction of x, which is how two experts merged halfway look when x is Gaussian (their
    ///   residuals are then normal at every x-marginal, so κ misses them). Its entries have standard error √(2/N)
    ///   (√(6/N) on the diagonal), so λ's is taken as √(2/N)·max(√3, 2√d_E), the edge of the semicircle.
    /// Measured: on the real data sets (mcycle k = 3, tone k = 3, 4, faithful k = 4) the standing-out expert is within
    /// 1.6 standard errors by both; a merged identity pair (SplitMergeTests) has λ at 34 of them; a merged ReLU pair at
    /// d = 50 has κ at 100.</summary>
    /// <param name="model">The maximum.</param>
    /// <param name="rows">The rows of the whole data (the warning counts the expert's rows in them).</param>
    /// <param name="x">The criteria's rows (a subsample of the data).</param>
    /// <param name="y">Their responses.</param>
    /// <returns>The warning's words, or None.</returns>
    let describe (model: MoeModel) (rows: float) (x: float[,]) (y: float[]) : string option =
        match SplitMerge.standsOut model.Sigmas with
        | None -> None
        | Some(l, sigmaRef) ->
            let gamma = LikelihoodKernel.responsibilities model x y
            let e = SplitMerge.residuals model l x y
            let mutable n, m2, m4 = 0.0, 0.0, 0.0

            for r in 0 .. y.Length - 1 do
                let g = gamma.[r, l]
                n <- n + g
                m2 <- m2 + g * e.[r] * e.[r]
                m4 <- m4 + g * e.[r] * e.[r] * e.[r] * e.[r]

            let kurtosis = (m4 / n) / ((m2 / n) * (m2 / n)) - 3.0
            let kurtosisErrors = abs kurtosis / sqrt (24.0 / n)

            let varianceErrors =
                match SplitMerge.splitDirection model gamma l sigmaRef x e with
                | Some(_, _, lambda, rows) ->
                    lambda
                    / (sqrt (2.0 / rows) * max (sqrt 3.0) (2.0 * sqrt (float model.ExpertDimension)))
                | None -> 0.0

            let evidence =
                if Double.IsFinite kurtosisErrors && kurtosisErrors > 4.0 then
                    Some(
                        Text.format
                            "far from normal (excess kurtosis %.3g, %.0f standard errors)"
                            [| box kurtosis; box kurtosisErrors |]
                    )
                elif Double.IsFinite varianceErrors && varianceErrors > 4.0 then
                    Some(Text.format "spreading along a direction of x (%.0f standard errors)" [| box varianceErrors |])
                else
                    None

            evidence
            |> Option.map (fun evidence ->
                Text.format
                    "expert %d (%.4g rows) has sigma = %.3g× the others' median and residuals %s: it may hold the rows of two experts (a merged pair) that split-and-merge moves did not separate; try more starts (--random-starts 20), another --seed, or one more expert (moe select compares k)."
                    [|
                        box (l + 1)
                        box (n * rows / float y.Length)
                        box (model.Sigmas.[l] / sigmaRef)
                        box evidence
                    |])
