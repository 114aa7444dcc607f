namespace MoE.Core

open System
open System.Numerics.Tensors

/// <summary>
/// Gaussian experts (docs/math.md §1, §7, §9): y = g(η_i) + σ_i ξ with ξ ~ N(0, 1) and the linear predictor
/// η_i = ⟨a_i, x⟩ + b_i. Everything the toolkit needs to know of this family stands here: the per-row log-density and
/// its derivatives in the linear predictor and in log σ_i, the sufficient statistics and the solution of the M-step
/// (weighted least squares, a Gauss–Newton step for a non-linear g), the inverse-gamma guard on σ_i², the parameters'
/// count, the predictive distribution, the response's units, the model file's fields and the wire's. The kernels call
/// these functions once per block of <c>Lanes.Block</c> rows and expert (never per row), through
/// <see cref="T:MoE.Core.ExpertFamilyModule"/>.
/// </summary>
/// <remarks>Lane functions read and write <c>rows</c> values of arrays at offsets (the kernels' transposed blocks) and
/// repeat the exact sequence of vector operations the kernels ran before the family had a home, so every fit keeps its
/// bits.</remarks>
[<RequireQualifiedAccess>]
module internal Gaussian =

    /// The name in files and on the command line.
    [<Literal>]
    let Name = "gaussian"

    // ---- The log-density and its derivatives ----

    /// −½ log(2πσ_i²) and 1/(2σ_i²) per expert: the log-density's constants, taken once per pass.
    let constants (sigmas: float[]) : float[] * float[] =
        sigmas
        |> Array.map (fun sigma -> -0.5 * Math.Log(2.0 * Math.PI * sigma * sigma)),
        sigmas |> Array.map (fun sigma -> 0.5 / (sigma * sigma))

    /// log p_i + log N(y | μ, σ²) for one row from the residual e = y − μ: (log p_i + log norm) − e²/(2σ²).
    let inline jointLogDensity (logGate: float) (logNorm: float) (inv2s2: float) (e: float) =
        logGate + logNorm - e * e * inv2s2

    /// −e²/(2σ²) for a block's rows, from the residuals: the part of the log-density both lane forms start with.
    let private negativeScaledSquares (e: float[]) (eo: int) (inv2s2: float) (out: float[]) (oo: int) (rows: int) =
        let squares = Span<float>(out, oo, rows)
        TensorPrimitives.Multiply(ReadOnlySpan<float>(e, eo, rows), ReadOnlySpan<float>(e, eo, rows), squares)
        TensorPrimitives.Multiply(ReadOnlySpan<float>(out, oo, rows), -inv2s2, squares)

    /// log N(y | μ_i, σ_i²) = (−e²/(2σ²)) + log norm for a block's rows, from the residuals.
    let logDensityLanes (e: float[]) (eo: int) (logNorm: float) (inv2s2: float) (out: float[]) (oo: int) (rows: int) =
        negativeScaledSquares e eo inv2s2 out oo rows
        TensorPrimitives.Add(ReadOnlySpan<float>(out, oo, rows), logNorm, Span<float>(out, oo, rows))

    /// The joint log p_i + log N(y | μ_i, σ_i²) = ((−e²/(2σ²)) + log p_i) + log norm for a block's rows.
    let jointLanes
        (e: float[])
        (eo: int)
        (logGate: float[])
        (go: int)
        (logNorm: float)
        (inv2s2: float)
        (out: float[])
        (oo: int)
        (rows: int)
        =
        let joint = Span<float>(out, oo, rows)
        negativeScaledSquares e eo inv2s2 out oo rows
        TensorPrimitives.Add(ReadOnlySpan<float>(out, oo, rows), ReadOnlySpan<float>(logGate, go, rows), joint)
        TensorPrimitives.Add(ReadOnlySpan<float>(out, oo, rows), logNorm, joint)

    /// The score of a block for one expert (docs/math.md §7.5): into <c>weights</c> the weight of ∂LL/∂η per row,
    /// r·e·h/σ² (∂/∂η of −e²/(2σ²) is e·h/σ², inv2s2 = 1/(2σ²)), and into <c>squares</c> r·e², whose sum gives
    /// ∂LL/∂log σ (<c>scaleScore</c>).
    let scoreLanes
        (post: float[])
        (po: int)
        (e: float[])
        (eo: int)
        (slopes: float[])
        (so: int)
        (inv2s2: float)
        (weights: float[])
        (squares: float[])
        (rows: int)
        =
        let r = ReadOnlySpan<float>(post, po, rows)
        let e = ReadOnlySpan<float>(e, eo, rows)
        TensorPrimitives.Multiply(r, e, Span<float>(weights, 0, rows))
        TensorPrimitives.Multiply(ReadOnlySpan<float>(weights, 0, rows), e, Span<float>(squares, 0, rows))

        TensorPrimitives.Multiply(
            ReadOnlySpan<float>(weights, 0, rows),
            ReadOnlySpan<float>(slopes, so, rows),
            Span<float>(weights, 0, rows)
        )

        TensorPrimitives.Multiply(ReadOnlySpan<float>(weights, 0, rows), 2.0 * inv2s2, Span<float>(weights, 0, rows))

    /// ∂LL/∂log σ of a block, Σ r(e²/σ² − 1) = 2·inv2s2·Σ r·e² − Σ r, from the sums of <c>scoreLanes</c>' squares and
    /// of the posterior.
    let inline scaleScore (sumSquares: float) (sumPost: float) (inv2s2: float) = sumSquares * 2.0 * inv2s2 - sumPost

    /// The complete-data information's diagonal weight of η per row: r·h²/σ² (= r·h²·2·inv2s2), into <c>weights</c>.
    let curvatureLanes
        (post: float[])
        (po: int)
        (slopes: float[])
        (so: int)
        (inv2s2: float)
        (weights: float[])
        (rows: int)
        =
        let h = ReadOnlySpan<float>(slopes, so, rows)
        TensorPrimitives.Multiply(h, h, Span<float>(weights, 0, rows))

        TensorPrimitives.Multiply(
            ReadOnlySpan<float>(weights, 0, rows),
            ReadOnlySpan<float>(post, po, rows),
            Span<float>(weights, 0, rows)
        )

        TensorPrimitives.Multiply(ReadOnlySpan<float>(weights, 0, rows), 2.0 * inv2s2, Span<float>(weights, 0, rows))

    /// The complete-data information of log σ from a block's Σ r: 2·Σ r.
    let inline scaleCurvature (sumPost: float) = 2.0 * sumPost

    // ---- EM: the M-step's sufficient statistics and its solution ----

    /// The family's sums per expert in the EM statistics: [Σ r·e², Σ r·t²] (t the identity's target).
    [<Literal>]
    let EmSums = 2

    /// One expert's EM sums over a block (docs/math.md §7.1): Σ r·e² and Σ r·t² added into <c>acc</c> at <c>o</c>,
    /// o + 1, with t = y (the intercept in the design) or y − b_i; returns the lanes of the Gram's row weights and of
    /// the right-hand side's — r and r·t for the identity's exact weighted least squares, r·h² and r·h·e for a
    /// Gauss–Newton step otherwise. <c>work</c>'s first four lanes are scratch.
    let emBlock
        (identity: bool)
        (interceptInDesign: bool)
        (intercept: float)
        (post: float[])
        (po: int)
        (e: float[])
        (eo: int)
        (slopes: float[])
        (so: int)
        (y: float[])
        (work: float[][])
        (acc: float[])
        (o: int)
        (rows: int)
        : struct (float[] * int * float[]) =
        let weighted, target, wGram, wRhs = work.[0], work.[1], work.[2], work.[3]
        let r = ReadOnlySpan<float>(post, po, rows)
        TensorPrimitives.Multiply(r, ReadOnlySpan<float>(e, eo, rows), Lanes.into weighted rows)
        acc.[o] <- acc.[o] + Lanes.dot weighted 0 e eo rows

        if interceptInDesign then
            (Lanes.view y rows).CopyTo(Lanes.into target rows)
        else
            TensorPrimitives.Subtract(Lanes.view y rows, intercept, Lanes.into target rows)

        TensorPrimitives.Multiply(r, Lanes.view target rows, Lanes.into wRhs rows)
        acc.[o + 1] <- acc.[o + 1] + Lanes.dot wRhs 0 target 0 rows

        if identity then
            struct (post, po, wRhs)
        else
            let h = ReadOnlySpan<float>(slopes, so, rows)
            TensorPrimitives.Multiply(h, h, Lanes.into wGram rows)
            TensorPrimitives.Multiply(Lanes.view wGram rows, r, Lanes.into wGram rows)
            TensorPrimitives.Multiply(Lanes.view weighted rows, h, Lanes.into wRhs rows)
            struct (wGram, 0, wRhs)

    /// Σ r·e² of a block for a candidate M-step's experts under the current posterior (the expert's part of Q, up to
    /// its constants): what a careful M-step checks before it keeps a Gauss–Newton step.
    let expectedLossBlock (post: float[]) (po: int) (e: float[]) (eo: int) (weighted: float[]) (rows: int) =
        TensorPrimitives.Multiply(
            ReadOnlySpan<float>(post, po, rows),
            ReadOnlySpan<float>(e, eo, rows),
            Span<float>(weighted, 0, rows)
        )

        Lanes.dot weighted 0 e eo rows

    /// Weighted least squares from the statistics: the identity's exact solution, or a Gauss–Newton direction
    /// (docs/math.md §7.1).
    let expertSolution (p: int) (gram: float[]) (rhs: float[]) : float[] =
        Dense.solveSpd (Dense.mirror p gram) rhs

    /// An expert's expected loss at the statistics' model from its sums (<c>emBlock</c>'s): its weighted SSE Σ r·e².
    let expectedLoss (sums: float[]) = sums.[0]

    /// The identity's weighted SSE at new experts ã, from the sufficient statistics: Σr(y − ãᵀx̃)² = Σry² − 2ãᵀRhs
    /// + ãᵀGã, Σry² being the second of <c>emBlock</c>'s sums (its cancellation costs a few of 16 digits when the fit
    /// is tight; used only when no pass checks the step).
    let closedFormLoss (p: int) (gram: float[]) (rhs: float[]) (sums: float[]) (a: float[]) =
        let gram = Dense.mirror p gram

        let q =
            Array.init p (fun t -> Seq.sum (seq { for u in 0 .. p - 1 -> gram.[t, u] * a.[u] }))

        max 0.0 (sums.[1] - 2.0 * Dense.dot a rhs + Dense.dot a q)

    /// σ² maximising the expected complete-data log-likelihood (plus the log-prior, when there is one): SSE/N, or
    /// (SSE + ν s₀²)/(N + ν + 2) with the inverse-gamma prior (ν, s₀²), floored.
    let level (prior: (float * float) option) (floor: float) (sse: float) (count: float) =
        let variance =
            match prior with
            | Some(nu, s0) -> (sse + nu * s0) / (count + nu + 2.0)
            | None -> sse / count

        max (max (sqrt variance) 1e-12) floor

    /// The M-step's noise levels: one from the summed SSE for a common σ, else one per expert — an expert with no
    /// weight keeps its level (its σ is not identified), unless a prior defines one.
    let levels
        (prior: (float * float) option)
        (floor: float)
        (common: bool)
        (sse: float[])
        (weights: float[])
        (n: float)
        (current: float[])
        =
        let k = current.Length

        if common then
            Array.create k (level prior floor (Array.sum sse) n)
        else
            Array.init k (fun i ->
                let w = weights.[i]

                if w > 1e-9 * n || prior.IsSome then
                    level prior floor sse.[i] w
                else
                    current.[i])

    // ---- The guard on degenerate likelihoods (docs/math.md §7.4) ----

    /// The levels a prior counts: the common σ once, or every σ_i.
    let private priorLevels (common: bool) (sigmas: float[]) =
        if common then [| sigmas.[0] |] else sigmas

    /// The inverse-gamma log-prior Σ −(ν/2 + 1)·log σ² − ν s₀²/(2σ²) over the levels.
    let logPrior ((nu, s0): float * float) (common: bool) (sigmas: float[]) =
        priorLevels common sigmas
        |> Array.sumBy (fun sigma -> -(nu / 2.0 + 1.0) * Math.Log(sigma * sigma) - nu * s0 / (2.0 * sigma * sigma))

    /// The log-prior's derivative in each level's log σ: −(ν + 2) + ν s₀²/σ².
    let logPriorGradient ((nu, s0): float * float) (common: bool) (sigmas: float[]) =
        priorLevels common sigmas
        |> Array.map (fun s -> -(nu + 2.0) + nu * s0 / (s * s))

    // ---- Parameters ----

    /// The family's own free parameters beyond the linear predictors: one σ in all, or one per expert.
    let parameterCount (experts: int) (commonSigma: bool) = if commonSigma then 1 else experts

    /// √(mean σ_i²): the common level of levels that may differ (σ itself when they are equal).
    let pooled (sigmas: float[]) : float =
        if sigmas |> Array.forall (fun s -> s = sigmas.[0]) then
            sigmas.[0]
        else
            sqrt (Array.averageBy (fun s -> s * s) sigmas)

    /// Checks the levels of a model of k experts: σ ≥ 0 and finite, k of them.
    let validate (k: int) (sigma: float) (sigmas: float[]) =
        Guard.nonNegative "sigma" sigma
        Guard.expertVector "sigmas" k k sigmas

        for i in 0 .. k - 1 do
            Guard.nonNegative (Text.format "sigmas[%d]" [| box i |]) sigmas.[i]

    /// Whether the levels allow a likelihood (every σ_i &gt; 0), else the message saying why not.
    let likelihoodDefined (sigmas: float[]) : string option =
        if Array.forall (fun s -> s > 0.0) sigmas then
            None
        else
            Some(
                Text.format
                    "Likelihoods need noise levels sigma > 0, but the model has sigma = %s."
                    [| box (String.Join(", ", sigmas |> Array.map string)) |]
            )

    // ---- Sampling and prediction ----

    /// A response: the expert's mean plus σ times a standard normal draw.
    let inline draw (mean: float) (sigma: float) (standardNormal: float) = mean + sigma * standardNormal

    /// Φ(z) = erfc(−z/√2)/2.
    let private phi (z: float) =
        0.5 * MathNet.Numerics.SpecialFunctions.Erfc(-z / sqrt 2.0)

    /// P(Y ≤ q) for one expert of mean μ and level σ.
    let cdf (mean: float) (sigma: float) (q: float) = phi ((q - mean) / sigma)

    /// How far beyond the experts' extreme means every quantile of a mixture lies at most: 40 times the largest σ_i.
    let quantileReach (sigmas: float[]) = 40.0 * Array.max sigmas

    // ---- Units (docs/math.md §9.2) ----

    /// How the responses may be moved before the moment initializers: (shift m, scale s) with v = (y − m)/s. The
    /// transforms are designed for a unit expert, Y = g(Z) + σξ with Z ~ N(0, 1), so y is scaled to the unit expert's
    /// second moment s² = E[y²]/E[g(Z)²] (the identity: var(y), y being centred; ReLU: E[g(Z)²] = 1/2; leaky ReLU with
    /// slope a: (1 + a²)/2); only the identity is shifted, and only when intercepts absorb the shift; any other g
    /// is neither.
    let responseUnits (activation: Activation) (centre: bool) (mean: float) (sd: float) : float * float =
        let secondMoment = sd * sd + mean * mean

        match activation with
        | Identity -> (if centre then mean, sd else 0.0, sqrt secondMoment)
        | Relu -> 0.0, sqrt (secondMoment / 0.5)
        | LeakyRelu slope -> 0.0, sqrt (secondMoment / (0.5 * (1.0 + slope * slope)))
        | _ -> 0.0, 1.0

    /// The levels in the data's units when y was scaled by s: σ_i·s.
    let toDataUnits (yScale: float) (sigmas: float[]) =
        sigmas |> Array.map (fun sigma -> yScale * sigma)

    /// The levels in units where y is divided by s: σ_i/s.
    let fromDataUnits (yScale: float) (sigmas: float[]) =
        sigmas |> Array.map (fun sigma -> sigma / yScale)

    // ---- Files and the wire ----

    /// The model file's leading field: "sigma", the common level (or √(mean σ_i²)).
    let jsonLeading (sigma: float) : (string * float)[] = [| "sigma", sigma |]

    /// The model file's trailing field: "sigmas", one level per expert, written only when they differ.
    let jsonTrailing (sigmas: float[]) : (string * float[])[] =
        if sigmas |> Array.forall (fun s -> s = sigmas.[0]) then
            [||]
        else
            [| "sigmas", sigmas |]

    /// The levels from a model file's fields ("sigmas" when present, else "sigma" for every expert), each checked
    /// ≥ 0; <c>fail path message</c> reports a problem.
    let ofJson
        (number: string -> float option)
        (vector: string -> int -> float[] option)
        (fail: string -> string -> unit)
        (k: int)
        : float[] =
        match vector "sigmas" k with
        | Some s ->
            s
            |> Array.iteri (fun i v ->
                if v < 0.0 then
                    fail
                        (Text.format "$.sigmas[%d]" [| box i |])
                        (Text.format "a noise level must be >= 0, found %s." [| box (string v) |]))

            s
        | None ->
            match number "sigma" with
            | None ->
                fail "$" "the required field 'sigma' is missing."
                [||]
            | Some sigma ->
                if sigma < 0.0 then
                    fail "$.sigma" (Text.format "sigma must be >= 0, found %s." [| box (string sigma) |])

                Array.create k sigma

    /// The levels on the wire: the common level, then every σ_i.
    let writeWire (w: Wire.Writer) (sigma: float) (sigmas: float[]) =
        w.Float sigma
        w.Floats sigmas

    /// Reads what <c>writeWire</c> wrote: (σ, σ_i).
    let readWire (r: Wire.Reader) : float * float[] =
        let sigma = r.Float()
        let sigmas = r.Floats()
        sigma, sigmas

    // ---- Initializers ----

    /// Whether the moment initializers (L4, the spectral method, subspace starts) apply: their moments are derived for
    /// Gaussian noise on Gaussian covariates (docs/math.md §2–§6), so yes.
    let momentInitializers = true
