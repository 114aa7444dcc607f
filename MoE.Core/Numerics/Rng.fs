namespace MoE.Core

open System

/// <summary>
/// SplitMix64 (Steele, Lea and Flood 2014; the reference code by S. Vigna): a 64-bit mixing function,
/// used here to expand one seed into generator states and to derive independent per-chunk seeds.
/// </summary>
[<RequireQualifiedAccess>]
module SplitMix64 =

    /// The golden-ratio increment of SplitMix64.
    [<Literal>]
    let Gamma = 0x9E3779B97F4A7C15UL

    /// <summary>The SplitMix64 output function applied to a state (a bijective avalanche mix).</summary>
    /// <param name="z">Any 64-bit value.</param>
    /// <returns>The mixed value.</returns>
    [<CompiledName("Mix")>]
    let mix (z: uint64) : uint64 =
        let z = (z ^^^ (z >>> 30)) * 0xBF58476D1CE4E5B9UL
        let z = (z ^^^ (z >>> 27)) * 0x94D049BB133111EBUL
        z ^^^ (z >>> 31)

    /// <summary>The i-th output (0-based) of the SplitMix64 stream started at <paramref name="seed"/>.</summary>
    /// <param name="seed">The stream's initial state.</param>
    /// <param name="index">Which output, 0-based.</param>
    /// <returns>mix(seed + (index + 1)·Gamma).</returns>
    [<CompiledName("Nth")>]
    let nth (seed: uint64) (index: uint64) : uint64 = mix (seed + (index + 1UL) * Gamma)

/// <summary>
/// The xoshiro256** 1.0 generator of Blackman and Vigna (2018): 256 bits of state, period 2^256 − 1,
/// passes BigCrush. Its algorithm is fixed and documented, unlike <c>System.Random</c>'s, so a seed gives
/// the same stream on every machine and runtime version.
/// </summary>
/// <remarks>
/// A generator is mutable state; the library creates one inside a function from an explicit seed and never
/// shares it. Create one with <see cref="M:MoE.Core.Xoshiro256StarStar.FromSeed(System.UInt64)"/>.
/// Doubles are the top 53 bits scaled by 2^−53 (uniform on [0, 1)); standard normals use Marsaglia's polar
/// method with <see cref="T:MoE.Core.DetMath"/>'s logarithm, so they are bit-reproducible as well.
/// </remarks>
[<Sealed; AllowNullLiteral>]
type Xoshiro256StarStar private (s0: uint64, s1: uint64, s2: uint64, s3: uint64) =
    let mutable s0 = s0
    let mutable s1 = s1
    let mutable s2 = s2
    let mutable s3 = s3
    let mutable spare = 0.0
    let mutable hasSpare = false

    static let rotl (x: uint64) (k: int) = (x <<< k) ||| (x >>> (64 - k))

    /// <summary>A generator with the given raw state (not all zero).</summary>
    /// <exception cref="T:System.ArgumentException">All four words are zero.</exception>
    /// <param name="s0">State word 0.</param>
    /// <param name="s1">State word 1.</param>
    /// <param name="s2">State word 2.</param>
    /// <param name="s3">State word 3.</param>
    static member FromState(s0: uint64, s1: uint64, s2: uint64, s3: uint64) =
        if s0 = 0UL && s1 = 0UL && s2 = 0UL && s3 = 0UL then
            invalidArg "state" "The xoshiro256** state must not be all zero."

        Xoshiro256StarStar(s0, s1, s2, s3)

    /// <summary>A generator whose state is the first four outputs of SplitMix64 started at
    /// <paramref name="seed"/> (the seeding the authors recommend).</summary>
    /// <param name="seed">Any 64-bit value.</param>
    static member FromSeed(seed: uint64) =
        Xoshiro256StarStar(
            SplitMix64.nth seed 0UL,
            SplitMix64.nth seed 1UL,
            SplitMix64.nth seed 2UL,
            SplitMix64.nth seed 3UL
        )

    /// <summary>The next 64 random bits.</summary>
    member _.NextUInt64() : uint64 =
        let result = rotl (s1 * 5UL) 7 * 9UL
        let t = s1 <<< 17
        s2 <- s2 ^^^ s0
        s3 <- s3 ^^^ s1
        s1 <- s1 ^^^ s2
        s0 <- s0 ^^^ s3
        s2 <- s2 ^^^ t
        s3 <- rotl s3 45
        result

    /// <summary>A uniform double on [0, 1): the top 53 bits times 2^−53.</summary>
    member this.NextDouble() : float =
        float (this.NextUInt64() >>> 11) * 1.1102230246251565e-16

    /// <summary>A uniform integer on [0, <paramref name="bound"/>) (Lemire's unbiased multiply-shift
    /// rejection method).</summary>
    /// <exception cref="T:System.ArgumentOutOfRangeException">bound &lt;= 0.</exception>
    /// <param name="bound">The exclusive upper bound, &gt; 0.</param>
    member this.NextInt(bound: int) : int =
        if bound <= 0 then
            raise (ArgumentOutOfRangeException("bound", bound, "bound must be positive."))

        let b = uint64 bound
        let mutable x = this.NextUInt64() >>> 32
        let mutable m = x * b
        let mutable low = m &&& 0xFFFFFFFFUL

        if low < b then
            let threshold = (0x100000000UL - b) % b

            while low < threshold do
                x <- this.NextUInt64() >>> 32
                m <- x * b
                low <- m &&& 0xFFFFFFFFUL

        int (m >>> 32)

    /// <summary>A standard normal draw (Marsaglia's polar method; each accepted pair yields two draws).</summary>
    member this.NextGaussian() : float =
        if hasSpare then
            hasSpare <- false
            spare
        else
            let mutable u = 0.0
            let mutable v = 0.0
            let mutable s = 0.0

            while (s >= 1.0 || s = 0.0) do
                u <- 2.0 * this.NextDouble() - 1.0
                v <- 2.0 * this.NextDouble() - 1.0
                s <- u * u + v * v

            let factor = Math.Sqrt(-2.0 * DetMath.log s / s)
            spare <- v * factor
            hasSpare <- true
            u * factor

/// Seeds and streams.
[<RequireQualifiedAccess>]
module Rng =

    /// <summary>A generator for a user seed.</summary>
    /// <param name="seed">Any integer; the same seed gives the same stream on every machine.</param>
    /// <returns>A fresh generator.</returns>
    [<CompiledName("Create")>]
    let create (seed: int64) : Xoshiro256StarStar =
        Xoshiro256StarStar.FromSeed(uint64 seed)

    /// <summary>The generator of stream <paramref name="stream"/> derived from <paramref name="seed"/>:
    /// independent streams for chunks of work, so parallel results do not depend on the core count.</summary>
    /// <param name="seed">The user seed.</param>
    /// <param name="stream">The stream index (a chunk number, a restart number, ...).</param>
    /// <returns>A fresh generator seeded with SplitMix64.mix(seed) mixed with the stream index.</returns>
    [<CompiledName("Stream")>]
    let stream (seed: int64) (stream: int64) : Xoshiro256StarStar =
        Xoshiro256StarStar.FromSeed(SplitMix64.nth (SplitMix64.mix (uint64 seed)) (uint64 stream))
