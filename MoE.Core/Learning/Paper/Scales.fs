namespace MoE.Core

open System

/// <summary>Regressor magnitudes (docs/math.md §6.3): the theory has unit regressors, data need not, so each
/// regressor's scale is a 1-D fit once directions and signs are known.</summary>
[<RequireQualifiedAccess>]
module Scales =

    /// <summary>Rescales each regressor by a 1-D least-squares fit of y on g(t·&lt;a_i, x&gt;) weighted by the
    /// posterior responsibilities (closed form for the identity, Gauss–Newton otherwise, at most 20 steps).</summary>
    /// <param name="model">The model whose regressors are rescaled (σ &gt; 0 for the responsibilities).</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>The model with rescaled regressors (a scale that is not finite and positive leaves its regressor).</returns>
    [<CompiledName("Fit")>]
    let fit (model: MoeModel) (x: float[,]) (y: float[]) : MoeModel =
        MoeModel.validate model
        ModelRows.checkLikelihoodInputs model x y
        let post = LikelihoodKernel.responsibilities model x y
        let n, k, d = y.Length, model.Experts, model.Dimension
        let g = model.Activation
        let a = Array2D.copy model.Regressors

        let proj = Dense.projections a x

        for i in 0 .. k - 1 do
            let s = Array.init n (fun r -> proj.[r, i])

            let mutable scale = 1.0
            let mutable iteration = 0

            while iteration < 20 do
                // Gauss–Newton on Σ r (y − g(t s))² in t (one step is exact for the identity).
                let mutable num = 0.0
                let mutable den = 0.0

                for r in 0 .. n - 1 do
                    let u = scale * s.[r]
                    let jac = g.Derivative u * s.[r]
                    num <- num + post.[r, i] * jac * (y.[r] - g.Value u)
                    den <- den + post.[r, i] * jac * jac

                let step = if den > 0.0 then num / den else 0.0
                scale <- scale + step
                // Converged to rounding (or linear): stop.
                iteration <-
                    if abs step <= 1e-12 * abs scale || g = Identity then
                        20
                    else
                        iteration + 1

            if Double.IsFinite scale && scale > 0.0 then
                for t in 0 .. d - 1 do
                    a.[i, t] <- a.[i, t] * scale

        { model with Regressors = a }
