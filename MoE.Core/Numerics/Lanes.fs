namespace MoE.Core

open System
open System.Numerics.Tensors
open System.Runtime.CompilerServices
open System.Runtime.InteropServices
open System.Runtime.Intrinsics

/// <summary>
/// Elementwise loops and reductions over the rows of a transposed block (docs/math.md §7.3): the rows sit in SIMD
/// lanes, four per vector.
/// </summary>
/// <remarks>
/// Every function here gives the same bits whichever path computes a lane (the vector body or the scalar tail), in
/// every process and on every machine with the same double arithmetic: the operations are explicit (fused
/// multiply-adds where written, never contracted by the compiler), sums are grouped in a fixed order, and exp and log
/// are <c>DetMath</c>'s own algorithms, lane by lane. System.Numerics.Tensors' Exp, Log and MultiplyAdd are not used:
/// their polynomials may or may not be fused depending on how a method happened to be compiled, so the same inputs
/// gave different last bits from one call to the next within one process (measured; docs/math.md §7.3).
/// </remarks>
module internal Lanes =

    /// Rows per block: a transposed block (p × 256 doubles) stays in the L1/L2 cache for p up to a few hundred.
    [<Literal>]
    let Block = 256

    /// The distance between two lanes (two columns of a transposed block, two experts' lanes): 264 doubles, not 256.
    /// Lanes 2 KiB apart fall into the same few sets of the L1 cache (its sets repeat every 4 KiB), so the 8–50 lanes a
    /// kernel reads at once evicted each other; 2112 bytes (33 cache lines) puts lane t in set 33·t mod 64, a different
    /// set for each of up to 64 lanes. Measured at n = 200,000, d = 50, k = 6 (one
    /// thread): the transposition 69 → 13 ms, the forward pass 125 → 29 ms with the four-accumulator combine; the EM pass
    /// (two threads) 180 → 92 ms.
    [<Literal>]
    let Stride = 264

    /// Lane i of a buffer of lanes (Stride apart), its first rows entries.
    let inline lane (m: float[]) (i: int) (rows: int) =
        ReadOnlySpan<float>(m, i * Stride, rows)

    /// The first rows entries of a buffer, to read.
    let inline view (m: float[]) (rows: int) = ReadOnlySpan<float>(m, 0, rows)

    /// The first rows entries of a buffer, to write.
    let inline into (m: float[]) (rows: int) = Span<float>(m, 0, rows)

    /// dst[d + b] += src[s + b] for b &lt; rows.
    let inline addInPlace (dst: float[]) (d: int) (src: float[]) (so: int) (rows: int) =
        TensorPrimitives.Add(
            ReadOnlySpan<float>(dst, d, rows),
            ReadOnlySpan<float>(src, so, rows),
            Span<float>(dst, d, rows)
        )

    /// The lanes of a vector added in a fixed order, (c0 + c1) + (c2 + c3) (Vector256.Sum's order is the JIT's).
    let inline total (c: Vector256<float>) =
        (c.GetElement 0 + c.GetElement 1) + (c.GetElement 2 + c.GetElement 3)

    /// <summary>Σ_{b &lt; rows} u[uo + b]·v[vo + b]: two four-wide accumulators of fused multiply-adds (rows 8j..8j+3 and
    /// 8j+4..8j+7), added lane by lane in a fixed order, then the 0–7 tail rows in order.</summary>
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let dot (u: float[]) (uo: int) (v: float[]) (vo: int) (rows: int) : float =
        let ur = &MemoryMarshal.GetArrayDataReference u
        let vr = &MemoryMarshal.GetArrayDataReference v
        let full = rows - rows % 8
        let mutable c0 = Vector256<float>.Zero
        let mutable c1 = Vector256<float>.Zero
        let mutable b = 0

        while b < full do
            c0 <-
                Vector256.FusedMultiplyAdd(
                    Vector256.LoadUnsafe(&ur, unativeint (uo + b)),
                    Vector256.LoadUnsafe(&vr, unativeint (vo + b)),
                    c0
                )

            c1 <-
                Vector256.FusedMultiplyAdd(
                    Vector256.LoadUnsafe(&ur, unativeint (uo + b + 4)),
                    Vector256.LoadUnsafe(&vr, unativeint (vo + b + 4)),
                    c1
                )

            b <- b + 8

        let mutable s = total (c0 + c1)

        for r in full .. rows - 1 do
            s <- Math.FusedMultiplyAdd(u.[uo + r], v.[vo + r], s)

        s

    /// <summary>Σ_{b &lt; rows} v[o + b], grouped as <c>dot</c> groups its products.</summary>
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let sum (v: float[]) (o: int) (rows: int) : float =
        let vr = &MemoryMarshal.GetArrayDataReference v
        let full = rows - rows % 8
        let mutable c0 = Vector256<float>.Zero
        let mutable c1 = Vector256<float>.Zero
        let mutable b = 0

        while b < full do
            c0 <- c0 + Vector256.LoadUnsafe(&vr, unativeint (o + b))
            c1 <- c1 + Vector256.LoadUnsafe(&vr, unativeint (o + b + 4))
            b <- b + 8

        let mutable s = total (c0 + c1)

        for r in full .. rows - 1 do
            s <- s + v.[o + r]

        s

    /// Σ_b xt[t·Block + b]·w[wo + b] over b &lt; rows, added to acc[o + t] for t &lt; p: a block's weighted column sums.
    let weightedSums (acc: float[]) (o: int) (xt: float[]) (p: int) (rows: int) (w: float[]) (wo: int) =
        for t in 0 .. p - 1 do
            acc.[o + t] <- acc.[o + t] + dot xt (t * Stride) w wo rows

    /// <summary>out[oo + b] = bias + Σ_{t &lt; count} coef[co + t]·xt[t·Stride + b] for b &lt; rows: the inner products
    /// of a block's rows with one coefficient vector, as fused multiply-adds in t order. Sixteen rows at a time in four
    /// independent accumulators (one chain would wait on each fused multiply-add's latency), then four, then one; every
    /// row's value is the same chain whichever path computes it.</summary>
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let combine
        (coef: float[])
        (co: int)
        (count: int)
        (bias: float)
        (xt: float[])
        (rows: int)
        (out: float[])
        (oo: int)
        =
        let xr = &MemoryMarshal.GetArrayDataReference xt
        let orf = &MemoryMarshal.GetArrayDataReference out
        let full16 = rows - rows % 16
        let full = rows - rows % 4
        let mutable b = 0

        while b < full16 do
            let mutable s0 = Vector256.Create bias
            let mutable s1 = s0
            let mutable s2 = s0
            let mutable s3 = s0

            for t in 0 .. count - 1 do
                let c = Vector256.Create coef.[co + t]
                let o = t * Stride + b
                s0 <- Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(&xr, unativeint o), c, s0)
                s1 <- Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(&xr, unativeint (o + 4)), c, s1)
                s2 <- Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(&xr, unativeint (o + 8)), c, s2)
                s3 <- Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(&xr, unativeint (o + 12)), c, s3)

            Vector256.StoreUnsafe(s0, &orf, unativeint (oo + b))
            Vector256.StoreUnsafe(s1, &orf, unativeint (oo + b + 4))
            Vector256.StoreUnsafe(s2, &orf, unativeint (oo + b + 8))
            Vector256.StoreUnsafe(s3, &orf, unativeint (oo + b + 12))
            b <- b + 16

        while b < full do
            let mutable s = Vector256.Create bias

            for t in 0 .. count - 1 do
                s <-
                    Vector256.FusedMultiplyAdd(
                        Vector256.LoadUnsafe(&xr, unativeint (t * Stride + b)),
                        Vector256.Create coef.[co + t],
                        s
                    )

            Vector256.StoreUnsafe(s, &orf, unativeint (oo + b))
            b <- b + 4

        for r in full .. rows - 1 do
            let mutable s = bias

            for t in 0 .. count - 1 do
                s <- Math.FusedMultiplyAdd(xt.[t * Stride + r], coef.[co + t], s)

            out.[oo + r] <- s

    // DetMath's constants (Numerics/DetMath.fs), for the lane versions of its exp and log.
    let private ln2Hi = 6.93147180369123816490e-01
    let private ln2Lo = 1.90821492927058770002e-10
    let private invLn2 = 1.44269504088896338700e+00
    let private sqrt2 = 1.41421356237309504880

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

    /// 1/(2j + 1) for j = 0..10, as DetMath.log computes them.
    let private oddInverses = Array.init 11 (fun j -> 1.0 / float (2 * j + 1))

    /// 2^k for integral k in [−1022, 1023], from the exponent bits.
    let inline private pow2 (k: Vector256<int64>) =
        Vector256.ShiftLeft(k + Vector256.Create 1023L, 52).AsDouble()

    /// <summary>dst[d + b] = e^src[s + b] for b &lt; rows: DetMath.exp lane by lane (the same operations in the same
    /// order, so the same bits as <c>DetMath.exp</c>), four rows per vector. src and dst may be the same span.</summary>
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let exp (src: float[]) (so: int) (dst: float[]) (d: int) (rows: int) =
        let sr = &MemoryMarshal.GetArrayDataReference src
        let dr = &MemoryMarshal.GetArrayDataReference dst
        let full = rows - rows % 4
        let hi, lo = Vector256.Create 709.782712893384, Vector256.Create -745.1332191019412
        let mutable b = 0

        while b < full do
            let x = Vector256.LoadUnsafe(&sr, unativeint (so + b))
            // k = round(x/ln 2), r = (x − k·ln2hi) − k·ln2lo, e^r − 1 by Horner (degree 13), then 2^k in two steps
            // when k leaves the normal exponent range — as DetMath.scale does.
            let k = Vector256.Round(x * Vector256.Create invLn2)
            let r = (x - k * Vector256.Create ln2Hi) - k * Vector256.Create ln2Lo
            let mutable p = Vector256.Create invFact.[13]

            for n in 12..-1..1 do
                p <- Vector256.Create invFact.[n] + r * p

            let ki =
                Vector256.ConvertToInt64(
                    Vector256.Max(Vector256.Min(k, Vector256.Create 1100.0), Vector256.Create -1100.0)
                )

            let k1 =
                Vector256.Max(Vector256.Min(ki, Vector256.Create 1023L), Vector256.Create -1022L)

            let value = ((Vector256.Create 1.0 + r * p) * pow2 k1) * pow2 (ki - k1)

            let result =
                Vector256.ConditionalSelect(
                    Vector256.GreaterThan(x, hi),
                    Vector256.Create Double.PositiveInfinity,
                    Vector256.ConditionalSelect(
                        Vector256.LessThan(x, lo),
                        Vector256<float>.Zero,
                        Vector256.ConditionalSelect(Vector256.Equals(x, x), value, x)
                    )
                )

            Vector256.StoreUnsafe(result, &dr, unativeint (d + b))
            b <- b + 4

        for r in full .. rows - 1 do
            dst.[d + r] <- DetMath.exp src.[so + r]

    /// <summary>dst[d + b] = ln src[s + b] for b &lt; rows: DetMath.log lane by lane (the same bits), four rows per
    /// vector; a vector holding a value that is not a positive normal double (0, subnormal, ∞, NaN, negative) is
    /// computed by DetMath.log itself. src and dst may be the same span.</summary>
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let log (src: float[]) (so: int) (dst: float[]) (d: int) (rows: int) =
        let sr = &MemoryMarshal.GetArrayDataReference src
        let dr = &MemoryMarshal.GetArrayDataReference dst
        let full = rows - rows % 4

        let smallest, largest =
            Vector256.Create 2.2250738585072014e-308, Vector256.Create Double.MaxValue

        let mutable b = 0

        while b < full do
            let x = Vector256.LoadUnsafe(&sr, unativeint (so + b))

            if
                Vector256.GreaterThanOrEqualAll(x, smallest)
                && Vector256.LessThanOrEqualAll(x, largest)
            then
                let bits = x.AsInt64()
                let e0 = Vector256.ShiftRightLogical(bits, 52) - Vector256.Create 1023L

                let m0 =
                    (bits &&& Vector256.Create 0x000FFFFFFFFFFFFFL
                     ||| Vector256.Create 0x3FF0000000000000L)
                        .AsDouble()

                // m in [√½, √2): halve the mantissa (exactly) and raise the exponent where m > √2.
                let above = Vector256.GreaterThan(m0, Vector256.Create sqrt2)
                let m = Vector256.ConditionalSelect(above, m0 * Vector256.Create 0.5, m0)
                let e = Vector256.ConditionalSelect(above.AsInt64(), e0 + Vector256.Create 1L, e0)
                let f = (m - Vector256.Create 1.0) / (m + Vector256.Create 1.0)
                let s = f * f
                let mutable p = Vector256.Create(1.0 / 21.0)

                for j in 9..-1..0 do
                    p <- Vector256.Create oddInverses.[j] + s * p

                let fe = Vector256.ConvertToDouble e

                let result =
                    fe * Vector256.Create ln2Hi
                    + (Vector256.Create 2.0 * f * p + fe * Vector256.Create ln2Lo)

                Vector256.StoreUnsafe(result, &dr, unativeint (d + b))
            else
                for r in b .. b + 3 do
                    dst.[d + r] <- DetMath.log src.[so + r]

            b <- b + 4

        for r in full .. rows - 1 do
            dst.[d + r] <- DetMath.log src.[so + r]
