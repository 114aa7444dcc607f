namespace MoE.Core

open System
open System.Numerics.Tensors

/// <summary>
/// What every generalised-linear expert with its canonical link shares (docs/math.md §12): the Poisson expert with
/// the log link and the Bernoulli expert with the logit. With η the linear predictor, μ = b'(η) the mean and
/// V = b''(η) = dμ/dη the variance, the log-density is y·η − b(η) + c(y), so ∂log f/∂η = y − μ and
/// −∂²log f/∂η² = V: the score's weight of η is r·(y − μ), the information's r·V, and one M-step of the expert is the
/// Newton (IRLS) step of the weighted GLM, Δ = (Σ r V x̃x̃ᵀ)⁻¹ Σ r (y − μ) x̃, halved until the expert's part of Q,
/// −Σ r log f, does not grow. These experts have no level: the model's σ_i stay 1 and are neither read nor fitted.
/// </summary>
/// <remarks>The forward pass keeps, for these families, η in the means' lane, V in the slopes' lane and y − μ in the
/// residuals' lane (<c>expertLanes</c> of each family's file), so the kernels' weights are one product each. The lane
/// functions loop over rows with <c>DetMath</c>'s exp and log: the same bits on every machine and core count.</remarks>
[<RequireQualifiedAccess>]
module internal Canonical =

    /// Log-density constants per expert: none (zeros), these experts having no level.
    let constants (sigmas: float[]) : float[] * float[] =
        Array.zeroCreate sigmas.Length, Array.zeroCreate sigmas.Length

    /// The weight of ∂LL/∂η per row, r·(y − μ), into <c>weights</c>; no level, so <c>squares</c> is cleared.
    let scoreLanes (post: float[]) (po: int) (e: float[]) (eo: int) (weights: float[]) (squares: float[]) (rows: int) =
        TensorPrimitives.Multiply(
            ReadOnlySpan<float>(post, po, rows),
            ReadOnlySpan<float>(e, eo, rows),
            Span<float>(weights, 0, rows)
        )

        Span<float>(squares, 0, rows).Clear()

    /// The complete-data information's weight of η per row, r·V, into <c>weights</c>.
    let curvatureLanes (post: float[]) (po: int) (slopes: float[]) (so: int) (weights: float[]) (rows: int) =
        TensorPrimitives.Multiply(
            ReadOnlySpan<float>(post, po, rows),
            ReadOnlySpan<float>(slopes, so, rows),
            Span<float>(weights, 0, rows)
        )

    /// The family's sums per expert in the EM statistics: [−Σ r·log f].
    [<Literal>]
    let EmSums = 1

    /// One expert's EM sums over a block, from the block's log-densities in <c>work.[0]</c> (the family writes them):
    /// −Σ r·log f into acc at o; returns the IRLS row weights of the Gram, r·V (in work.[2]), and of the right-hand
    /// side, r·(y − μ) (in work.[3]).
    let emBlock
        (post: float[])
        (po: int)
        (e: float[])
        (eo: int)
        (slopes: float[])
        (so: int)
        (work: float[][])
        (acc: float[])
        (o: int)
        (rows: int)
        : struct (float[] * int * float[]) =
        let logf, wGram, wRhs = work.[0], work.[2], work.[3]
        acc.[o] <- acc.[o] - Lanes.dot post po logf 0 rows
        curvatureLanes post po slopes so wGram rows

        TensorPrimitives.Multiply(
            ReadOnlySpan<float>(post, po, rows),
            ReadOnlySpan<float>(e, eo, rows),
            Lanes.into wRhs rows
        )

        struct (wGram, 0, wRhs)

    /// −Σ r·log f over a block, from the block's log-densities in <c>logf</c>.
    let expectedLossBlock (post: float[]) (po: int) (logf: float[]) (rows: int) = -(Lanes.dot post po logf 0 rows)

    /// The Newton (IRLS) direction from the statistics: (Σ r V x̃x̃ᵀ)⁻¹ Σ r (y − μ) x̃, with a ridge of 1e-10 of the
    /// Gram's trace so an expert with no weight (or a design it cannot see) gets a finite, zero-ish direction.
    let expertSolution (p: int) (gram: float[]) (rhs: float[]) : float[] =
        let m = Dense.mirror p gram
        let trace = Seq.sum (seq { for t in 0 .. p - 1 -> m.[t, t] })

        for t in 0 .. p - 1 do
            m.[t, t] <- m.[t, t] + 1e-10 * trace / float p + 1e-300

        Dense.solveSpd m rhs

    /// The expert's part of Q at the statistics' model: −Σ r·log f.
    let expectedLoss (sums: float[]) = sums.[0]

    /// These experts have no level: the levels stay as they are.
    let levels (current: float[]) = Array.copy current

    /// Checks a model's levels: k of them, finite and positive (1 by convention; they are not read).
    let validate (k: int) (sigmas: float[]) =
        Guard.expertVector "sigmas" k k sigmas

        for i in 0 .. k - 1 do
            Guard.positive (Text.format "sigmas[%d]" [| box i |]) sigmas.[i]

    /// The levels of a model read from a file: none are stored, every σ_i is 1.
    let ofJson (k: int) = Array.create k 1.0

    /// log(m!) for integers m ≥ 0: a table of exact sums of logs up to 255, Stirling's series (to z⁻⁷, below 1e-17
    /// relative past 256) beyond; through DetMath's log, the same bits on every machine.
    let private logFactorials =
        let table = Array.zeroCreate 256

        for m in 2..255 do
            table.[m] <- table.[m - 1] + DetMath.log (float m)

        table

    /// log Γ(y + 1) for a count y ≥ 0 (an integer; the data check refuses others).
    let logFactorial (y: float) =
        if y < 256.0 then
            logFactorials.[int y]
        else
            let z = y + 1.0
            let z2 = z * z

            (z - 0.5) * DetMath.log z - z
            + 0.91893853320467274178
            + (1.0 / 12.0 - (1.0 / 360.0 - (1.0 / 1260.0 - 1.0 / (1680.0 * z2)) / z2) / z2)
              / z
