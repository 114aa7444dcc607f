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
