namespace MoE.Core

open System

/// <summary>
/// Elementary functions built from IEEE-754 basic operations only (+, −, ×, ÷, rounding and bit
/// manipulation), so that their results are bit-identical on every machine and runtime.
/// </summary>
/// <remarks>
/// <c>Math.Exp</c> and <c>Math.Log</c> defer to the platform's C runtime, whose last-bit results differ
/// between platforms. The sampler and the built-in activations use these functions instead, which is what
/// makes <c>Sampler.sample</c> give the same bits for the same seed everywhere. Accuracy is within a few
/// units in the last place (tested against <c>Math</c> to 2e-15 relative), which is irrelevant for sampling
/// and for the model; determinism is the point.
/// <para>Method: exp reduces x = k·ln2 + r with |r| ≤ ln2/2 (ln2 split into a 32-bit head, exact for
/// |k| &lt; 2^21, and a tail, as in fdlibm), sums the Taylor series of e^r to degree 13 (truncation
/// below 4e-18) and scales by 2^k through the exponent bits. log writes x = m·2^e with m in
/// [√½, √2), then log m = 2·atanh f with f = (m−1)/(m+1), |f| ≤ 0.1716, summed to f^21
/// (truncation below 5e-18).</para>
/// </remarks>
[<RequireQualifiedAccess>]
module DetMath =

    let private ln2Hi = 6.93147180369123816490e-01
    let private ln2Lo = 1.90821492927058770002e-10
    let private invLn2 = 1.44269504088896338700e+00
    let private sqrt2 = 1.41421356237309504880

    // 1/n! for n = 0..13, written out so that nothing depends on evaluation order at start-up.
    let private invFact =
        [|
            1.0
            1.0
            0.5
            1.6666666666666666e-01
            4.1666666666666664e-02
            8.3333333333333332e-03
            1.3888888888888889e-03
            1.9841269841269841e-04
            2.4801587301587302e-05
            2.7557319223985893e-06
            2.7557319223985888e-07
            2.5052108385441720e-08
            2.0876756987868100e-09
            1.6059043836821613e-10
        |]

    /// Taylor polynomial of e^r − 1 (no constant term), Horner form, degree 13.
    let inline private expm1Poly (r: float) =
        let mutable p = invFact.[13]

        for n in 12..-1..1 do
            p <- invFact.[n] + r * p

        r * p

    /// 2^k as a double for k in [−1022, 1023].
    let inline private pow2 (k: int) =
        BitConverter.Int64BitsToDouble(int64 (k + 1023) <<< 52)

    /// p · 2^k for any k in [−1100, 1100] (two steps outside the normal exponent range).
    let private scale (p: float) (k: int) =
        if k > 1023 then p * pow2 1023 * pow2 (k - 1023)
        elif k < -1022 then p * pow2 -1022 * pow2 (k + 1022)
        else p * pow2 k

    /// <summary>e^x, bit-reproducible on every platform.</summary>
    /// <param name="x">Any double. NaN gives NaN; x &gt; 709.78 gives +∞; x &lt; −745.13 gives 0.</param>
    /// <returns>e^x to within a few ulp.</returns>
    [<CompiledName("Exp")>]
    let exp (x: float) : float =
        if Double.IsNaN x then
            nan
        elif x > 709.782712893384 then
            Double.PositiveInfinity
        elif x < -745.1332191019412 then
            0.0
        else
            let k = Math.Round(x * invLn2)
            let r = (x - k * ln2Hi) - k * ln2Lo
            scale (1.0 + expm1Poly r) (int k)

    /// <summary>e^x − 1, accurate for small |x| (no cancellation), bit-reproducible.</summary>
    /// <param name="x">Any double.</param>
    /// <returns>e^x − 1.</returns>
    [<CompiledName("ExpM1")>]
    let expm1 (x: float) : float =
        if abs x < 0.34657359027997264 then
            expm1Poly x
        else
            exp x - 1.0

    /// <summary>Natural logarithm, bit-reproducible on every platform.</summary>
    /// <param name="x">x &gt;= 0. Negative x and NaN give NaN; 0 gives −∞; +∞ gives +∞.</param>
    /// <returns>ln x to within a few ulp.</returns>
    [<CompiledName("Log")>]
    let log (x: float) : float =
        if Double.IsNaN x || x < 0.0 then
            nan
        elif x = 0.0 then
            Double.NegativeInfinity
        elif Double.IsPositiveInfinity x then
            x
        else
            // Subnormals: bring into the normal range first (exact: a power of two).
            let x, e0 =
                if x < 2.2250738585072014e-308 then
                    x * 18014398509481984.0, -54
                else
                    x, 0

            let bits = BitConverter.DoubleToInt64Bits x
            let mutable e = int ((bits >>> 52) &&& 0x7FFL) - 1023 + e0

            let mutable m =
                BitConverter.Int64BitsToDouble((bits &&& 0x000FFFFFFFFFFFFFL) ||| 0x3FF0000000000000L)

            if m > sqrt2 then
                m <- m * 0.5
                e <- e + 1

            let f = (m - 1.0) / (m + 1.0)
            let s = f * f
            // 1 + s/3 + s²/5 + … + s^10/21
            let mutable p = 1.0 / 21.0

            for j in 9..-1..0 do
                p <- 1.0 / float (2 * j + 1) + s * p

            let fe = float e
            fe * ln2Hi + (2.0 * f * p + fe * ln2Lo)

    /// <summary>Logistic sigmoid 1/(1+e^(−x)), evaluated without overflow, bit-reproducible.</summary>
    /// <param name="x">Any double.</param>
    /// <returns>A value in [0, 1].</returns>
    [<CompiledName("Sigmoid")>]
    let sigmoid (x: float) : float =
        if x >= 0.0 then
            1.0 / (1.0 + exp (-x))
        else
            let e = exp x
            e / (1.0 + e)

    /// <summary>Hyperbolic tangent, accurate near 0 (through expm1), bit-reproducible.</summary>
    /// <param name="x">Any double.</param>
    /// <returns>A value in [−1, 1].</returns>
    [<CompiledName("Tanh")>]
    let tanh (x: float) : float =
        if Double.IsNaN x then
            nan
        else
            // tanh|x| = −expm1(−2|x|) / (2 + expm1(−2|x|))
            let em = expm1 (-2.0 * abs x)
            let t = -em / (2.0 + em)
            if x < 0.0 then -t else t
