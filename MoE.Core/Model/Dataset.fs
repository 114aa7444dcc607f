namespace MoE.Core

/// <summary>Samples (x_i, y_i) of the model: X is n×d (row i is x_i), Y has length n.</summary>
/// <remarks>
/// Build one with <c>Dataset.create</c>, which checks shapes and finiteness once, so that the kernels need
/// not. The arrays are not copied: treat them as read-only after construction.
/// </remarks>
type Dataset =
    {
        /// The n×d inputs; row i is x_i.
        X: float[,]
        /// The n responses.
        Y: float[]
    }

    /// The number of samples n.
    member this.Count = this.Y.Length
    /// The input dimension d.
    member this.Dimension = this.X.GetLength 1

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

    /// <summary>A validated dataset over the given arrays (not copied).</summary>
    /// <param name="x">n×d inputs, row i = x_i.</param>
    /// <param name="y">n responses.</param>
    /// <returns>The dataset.</returns>
    /// <exception cref="T:System.ArgumentException">Mismatched rows, an empty matrix or a non-finite value.</exception>
    [<CompiledName("Create")>]
    let create (x: float[,]) (y: float[]) : Dataset =
        let data = { X = x; Y = y }
        validate data
        data
