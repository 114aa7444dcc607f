namespace MoE.Core

open System

/// <summary>Samples (x_i, y_i) of the model: X is n×d (row i is x_i), Y has length n, and optionally each row's
/// frequency weight w_i.</summary>
/// <remarks>
/// Build one with <c>Dataset.create</c> or <c>Dataset.weighted</c>, which check shapes and values once, so that the
/// kernels need not. The arrays are not copied: treat them as read-only after construction.
/// <para>A frequency weight w_i counts row i w_i times (docs/math.md §13): every sum over the rows — the
/// log-likelihood, EM's sufficient statistics, the gradient, the moments, the columns' summaries — is Σ_i w_i·f_i, and
/// n is Σ_i w_i, so integer weights give the fit of the data with each row repeated w_i times. A weight of 0 leaves the
/// row out of every sum.</para>
/// </remarks>
type Dataset =
    {
        /// The n×d inputs; row i is x_i.
        X: float[,]
        /// The n responses.
        Y: float[]
        /// The n frequency weights (finite, ≥ 0), or null: every row weighs 1.
        Weights: float[]
    }

    /// The number of samples n.
    member this.Count = this.Y.Length
    /// The input dimension d.
    member this.Dimension = this.X.GetLength 1
    /// Whether the rows carry weights (<c>Weights</c> is not null).
    member this.IsWeighted = not (isNull this.Weights)

    /// <summary>Row r's frequency weight: 1 when the rows carry none.</summary>
    /// <param name="r">The row.</param>
    member this.WeightOf(r: int) =
        if isNull this.Weights then 1.0 else this.Weights.[r]

    /// Σ_i w_i: the rows' count when they carry no weights.
    member this.Weight =
        if isNull this.Weights then
            float this.Y.Length
        else
            Array.sum this.Weights

/// Construction and checks for <see cref="T:MoE.Core.Dataset"/>.
[<RequireQualifiedAccess>]
module Dataset =

    /// <summary>Checks that X and Y have matching rows, n ≥ 1, d ≥ 1 and every value is finite.</summary>
    /// <param name="data">The dataset.</param>
    /// <exception cref="T:System.ArgumentException">Names x or y and the offending shape, position or value.</exception>
    [<CompiledName("Validate")>]
    let validate (data: Dataset) : unit =
        Guard.notNull "data" (box data)
        Guard.sameRows "x" data.X "y" data.Y

        if data.X.GetLength 0 = 0 then
            invalidArg "x" "A dataset needs at least one sample; x has 0 rows."

        if data.X.GetLength 1 = 0 then
            invalidArg "x" "A dataset needs at least one input column; x has 0 columns."

        Guard.finiteMatrix "x" data.X
        Guard.finiteVector "y" data.Y

        if not (isNull data.Weights) then
            if data.Weights.Length <> data.Y.Length then
                invalidArg
                    "weights"
                    (Text.format
                        "There are %d weights for %d rows; give one weight per row."
                        [| box data.Weights.Length; box data.Y.Length |])

            for i in 0 .. data.Weights.Length - 1 do
                let w = data.Weights.[i]

                if not (Double.IsFinite w) || w < 0.0 then
                    invalidArg
                        "weights"
                        (Text.format
                            "Row %d has the weight %s; a frequency weight is finite and at least 0 (0 leaves the row out)."
                            [| box i; box (w.ToString("R", Globalization.CultureInfo.InvariantCulture)) |])

            if Array.sum data.Weights <= 0.0 then
                invalidArg "weights" "Every row has the weight 0: there is nothing to fit."

    /// <summary>A validated dataset over the given arrays (not copied).</summary>
    /// <param name="x">n×d inputs, row i = x_i.</param>
    /// <param name="y">n responses.</param>
    /// <returns>The dataset.</returns>
    /// <exception cref="T:System.ArgumentException">Mismatched rows, an empty matrix or a non-finite value.</exception>
    [<CompiledName("Create")>]
    let create (x: float[,]) (y: float[]) : Dataset =
        let data = { X = x; Y = y; Weights = null }
        validate data
        data

    /// <summary>A validated dataset of weighted rows over the given arrays (not copied).</summary>
    /// <param name="x">n×d inputs, row i = x_i.</param>
    /// <param name="y">n responses.</param>
    /// <param name="weights">n frequency weights, finite and ≥ 0, not all 0.</param>
    /// <returns>The dataset.</returns>
    /// <exception cref="T:System.ArgumentException">Mismatched rows, an empty matrix, a non-finite value, or a negative
    /// or non-finite weight (named by its row).</exception>
    [<CompiledName("Weighted")>]
    let weighted (x: float[,]) (y: float[]) (weights: float[]) : Dataset =
        Guard.notNull "weights" weights
        let data = { X = x; Y = y; Weights = weights }
        validate data
        data

    /// <summary>Rows lo..lo+count−1 of a dataset, weights and all.</summary>
    /// <param name="lo">The first row.</param>
    /// <param name="count">How many rows.</param>
    /// <param name="data">The dataset.</param>
    [<CompiledName("Slice")>]
    let slice (lo: int) (count: int) (data: Dataset) : Dataset =
        let d = data.Dimension

        {
            X = Array2D.init count d (fun i t -> data.X.[lo + i, t])
            Y = Array.sub data.Y lo count
            Weights =
                (if isNull data.Weights then
                     null
                 else
                     Array.sub data.Weights lo count)
        }
