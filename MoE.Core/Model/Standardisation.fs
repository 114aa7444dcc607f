namespace MoE.Core

/// <summary>
/// An affine change of units (docs/math.md §9.2): covariates u = L⁻¹(x − μ) with Σ = LLᵀ their covariance (so u has
/// mean 0 and identity covariance), responses v = (y − m)/s. How far y may be moved depends on g: the identity allows
/// both (m = mean, s = sd), a positively homogeneous g (ReLU, leaky ReLU) only the scale (g(z)/s = g(z/s)), chosen so
/// that E[v²] is the unit expert's E[g(Z)²]; any other g neither. Without intercepts nothing is centred (μ = 0,
/// m = 0): a shift would need an intercept to undo.
/// </summary>
type Standardisation =
    {
        /// μ (d), zero when not centred.
        Mean: float[]
        /// L⁻¹ (d×d, lower triangular): u = L⁻¹(x − μ).
        Whitening: float[,]
        /// m, zero unless g is the identity and intercepts are modelled.
        YShift: float
        /// s &gt; 0, one unless g is the identity or positively homogeneous.
        YScale: float
    }
