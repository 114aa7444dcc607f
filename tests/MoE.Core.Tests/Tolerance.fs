/// Named tolerances, each with the numerical reason for its size (combined absolute + relative checks).
module MoE.Core.Tests.Tolerance

open System

/// Identities that hold exactly in real arithmetic and are computed with O(10) floating-point operations on
/// values of order 1 (softmax sums, a direct formula against the log-sum-exp form): each operation adds at
/// most ½ ulp ≈ 1.1e-16, so ~1e-14 is the worst accumulated error; 1e-12 leaves 100× headroom and still
/// catches any wrong formula (those are off by O(1e-3) or more).
let exact = 1e-12

/// DetMath against the C runtime: both are within a few ulp of the true value; 2e-15 relative is ~9 ulp.
let ulps = 2e-15

/// Values of order 1 that differ only by the rounding of a handful of operations (the metrics of a model against
/// an exact relabelling of itself: 1 − cos of vectors that agree to the last bit is 0 or a few ulp): 1e-15 is
/// about 5 ulp of 1, and anything that is really different is off by far more.
let identical = 1e-15

/// The gating distance of an exact relabelling: rebased rows are differences of O(1) entries, a few ulp each, and
/// the norm adds d of them: 1e-14.
let relabelled = 1e-14

/// Closed forms evaluated two ways (δ = −2√(2/π), c' = 1 − 2/π, a rule against a known moment): a dozen
/// operations on O(1) values, so 1e-14 relative.
let closedForm = 1e-14

/// Gauss–Hermite moments of degree ≤ 22 against double factorials: nodes and weights are good to ~1e-15, and the
/// largest terms of the sum are ~1e2 times the result, so 1e-13 relative.
let quadratureRule = 1e-13

/// Sums of ≤ 6000 per-sample terms added in a different order (fused chunked kernels against scalar references;
/// a direct L4 formula against the library): each term differs by a few ulp, a reordered sum by at most n·ε ≈
/// 1.3e-12 of the sum of magnitudes. 1e-10 relative leaves ~100× headroom; a wrong term (a dropped factor, a sign)
/// is off by 1e-3 or more.
let reorderedSum = 1e-10

/// Condition 1 and 2 residuals and the scales c, c' integrated independently by the panel rule (accurate to
/// rounding for integrands analytic between kinks, ~1e-13): 1e-10.
let conditionResidual = 1e-10

/// Log-likelihoods of a model and of its gating rebased on another reference expert: rebasing rounds the weights
/// and the dot products, which moves a logit by ~1e-13; 1e-11 is 100× that.
let rebased = 1e-11

/// EM's likelihood may not fall: one step rounds sums of ~3000 terms of size ~10, a relative ~1e-13; a real drop
/// from a broken M-step is ≥ 1e-6. 1e-9 relative separates the two.
let likelihoodDrop = 1e-9

/// Parameters after a fused EM step against the scalar reference step: the reordered sums (1e-12) pass through the
/// solves of normal equations that are well conditioned for n ≥ 20·d·k samples from N(0, I) (condition number
/// ≲ 10), then through one step-halving decision; 1e-8 relative has ample headroom and still catches a wrong term.
let throughSolve = 1e-8

/// Population identities by quadrature (Theorem 5, Lemma 1, brute force against the library): the product rules
/// are accurate to ~1e-12 at gating norms ≤ 1, so 1e-8 relative has four orders of headroom; a false identity
/// (free gating) is off by 1e-2 or more.
let quadratureIdentity = 1e-8

/// The population L_log gradient at the truth: only the noise rule's error remains, measured ≤ 4e-9 with 120 nodes
/// for σ ≥ 0.3; 1e-7 leaves 25× headroom, while a gradient 0.3 away from the truth is O(0.1).
let gradientAtTruth = 1e-7

/// Analytic against central-difference gradients with h = ε^(1/3)·max(1, |θ|): truncation and rounding are both
/// ~1e-11 relative for the smooth losses here; 1e-6 relative catches a wrong factor (off by O(1)).
let gradientCheck = 1e-6

/// Exponentials whose results are subnormal keep only a few significant bits by definition: 1e-3 relative.
let subnormal = 1e-3

/// |actual − expected| ≤ tol·max(1, |expected|): absolute near zero, relative for large values.
let close (tol: float) (expected: float) (actual: float) =
    abs (actual - expected) <= tol * max 1.0 (abs expected)

/// Asserts `close`, with a message that gives both values, the difference and the digits expected.
let assertClose (tol: float) (expected: float) (actual: float) (what: string) =
    if not (close tol expected actual) then
        failwithf
            "%s: expected %.17g, got %.17g (difference %.3g; tolerance %.1g, i.e. %.0f digits)"
            what
            expected
            actual
            (actual - expected)
            tol
            (-Math.Log10 tol)
