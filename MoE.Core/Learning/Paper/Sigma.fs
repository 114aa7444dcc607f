namespace MoE.Core

/// <summary>σ estimation when it is not given (docs/learners.md): a provisional σ₀ = 0.1·sd(y) drives a first
/// run of the paper's stages on a seeded subsample; the σ its model implies for the data re-runs them; EM then
/// updates σ to its maximum-likelihood value.</summary>
module internal Sigma =

    /// Rows the provisional run uses at most: they pin σ₁ down to a fraction of a percent.
    [<Literal>]
    let ProvisionalRows = 100_000

    /// σ₀ = 0.1·sd(y): only a start for the transform coefficients.
    let initial (y: float[]) : float = 0.1 * Dense.std y

    /// Posterior-weighted residual RMS √(Σ r_ni (y_n − g(⟨a_i, x_n⟩))²/n), at least 1e-6: the σ a fitted model
    /// implies for the data.
    let implied (model: MoeModel) (x: float[,]) (y: float[]) : float =
        let post = LikelihoodKernel.responsibilities model x y

        let means =
            Dense.projections model.Regressors x |> Array2D.map model.Activation.Value

        let mutable s = 0.0

        for r in 0 .. y.Length - 1 do
            for i in 0 .. model.Experts - 1 do
                let e = y.[r] - means.[r, i]
                s <- s + post.[r, i] * e * e

        max (sqrt (s / float y.Length)) 1e-6

    /// <summary>σ₁: <paramref name="run"/> at σ₀ on a seeded subsample of at most 100k rows (all the rows when
    /// the subsample is too small for L4, which then collapses), and the σ its model implies there.</summary>
    let provisional
        (run: float -> float[,] -> float[] -> MoeModel)
        (seed: int64)
        (sigma0: float)
        (x: float[,])
        (y: float[])
        : float =
        let xs, ys = Sampling.subsample ProvisionalRows seed x y

        try
            implied (run sigma0 xs ys) xs ys
        with :? NonFiniteException when ys.Length < y.Length ->
            implied (run sigma0 x y) x y
