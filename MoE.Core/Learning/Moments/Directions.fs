namespace MoE.Core

open MathNet.Numerics.LinearAlgebra

/// <summary>From an L4 solution to unit directions: the dual basis of Theorem 1 (docs/math.md §6.3).</summary>
[<RequireQualifiedAccess>]
module Directions =

    /// <summary>Unit directions from an L4 solution: the normalised rows of (A^†)ᵀ = (AAᵀ)⁻¹A, which are the
    /// regressors' directions when they are not orthonormal (Theorem 1: (A^†)ᵀ = PDΓA* + E).</summary>
    /// <param name="a">The L4 solution A (k×d).</param>
    /// <returns>k unit directions, up to sign (L4 is even in each row).</returns>
    /// <exception cref="T:MoE.Core.NonFiniteException">When AAᵀ is singular to working precision (its eigenvalue
    /// ratio is below 1e-12, so the inverse would carry no significant digits): the L4 minimum found has collapsed
    /// experts onto each other, which happens when n is too small for d and k.</exception>
    [<CompiledName("OfL4Solution")>]
    let ofL4Solution (a: float[,]) : float[,] =
        let am = Matrix<float>.Build.DenseOfArray a
        let gram = am * am.Transpose()

        let ratio =
            let values =
                gram.Evd(Symmetricity.Symmetric).EigenValues
                |> Seq.map (fun c -> c.Real)
                |> Seq.toArray

            Array.min values / Array.max values

        if not (ratio > 1e-12) then
            raise (
                NonFiniteException(
                    Stage.L4,
                    0,
                    ratio,
                    Text.format
                        "The L4 solution is rank-deficient (smallest/largest eigenvalue of AAᵀ = %.3g): it has collapsed experts onto each other, so no k directions can be read from it."
                        [| box ratio |]
                )
            )

        let dual = gram.Inverse() * am
        let k, d = a.GetLength 0, a.GetLength 1

        Array2D.init k d (fun i t ->
            let norm = sqrt (Seq.sum (seq { for j in 0 .. d - 1 -> dual.[i, j] * dual.[i, j] }))
            dual.[i, t] / norm)
