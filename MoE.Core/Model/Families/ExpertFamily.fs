namespace MoE.Core

open System

/// <summary>What kind of response an expert models: its density given the linear predictor η_i = ⟨a_i, x⟩ + b_i
/// (docs/architecture.md: a model is a gate design plus an expert family). Each case has one file under
/// Model/Families/ that says everything about it; this type and its module dispatch to that file.</summary>
[<RequireQualifiedAccess>]
type ExpertFamily =
    /// y = g(η_i) + σ_i ξ, ξ ~ N(0, 1): the paper's experts (Model/Families/Gaussian.fs).
    | Gaussian
    /// Counts: y ~ Poisson(exp η_i) (Model/Families/Poisson.fs).
    | Poisson
    /// Yes/no outcomes: y ∈ {0, 1}, P(y = 1) = 1/(1 + e^−η_i) (Model/Families/Bernoulli.fs).
    | Bernoulli

    /// <summary>The family's name in model files and on the command line: gaussian.</summary>
    member this.Name =
        match this with
        | Gaussian -> Gaussian.Name
        | Poisson -> Poisson.Name
        | Bernoulli -> Bernoulli.Name

    /// <summary>The family's name.</summary>
    override this.ToString() = this.Name

    /// <summary>Every family, in the order of declaration.</summary>
    static member All = [| Gaussian; Poisson; Bernoulli |]

/// <summary>The expert families' common interface: what every model, kernel, learner and file asks of a family,
/// dispatched once per call (per block of rows in the kernels, never per row) to the family's own module.</summary>
[<RequireQualifiedAccess>]
module ExpertFamily =

    /// <summary>The family of a name (gaussian, poisson, bernoulli).</summary>
    /// <param name="name">The name, in any case.</param>
    /// <exception cref="T:System.ArgumentException">An unknown name: the message lists the known ones.</exception>
    [<CompiledName("Parse")>]
    let parse (name: string) : ExpertFamily =
        Guard.notNull "name" name

        match
            ExpertFamily.All
            |> Array.tryFind (fun f -> String.Equals(f.Name, name.Trim(), StringComparison.OrdinalIgnoreCase))
        with
        | Some f -> f
        | None ->
            invalidArg
                "name"
                (Text.format
                    "Unknown expert family '%s'; expected one of %s."
                    [| box name; box (String.Join(", ", ExpertFamily.All |> Array.map _.Name)) |])

    /// <summary>The number of free parameters of a model with this family: k expert predictors of width
    /// <paramref name="expertWidth"/>, k − 1 gate rows of width <paramref name="gateWidth"/> (each counting its
    /// intercept when there is one), and the family's own (Gaussian: one σ, or one per expert). The one count behind
    /// the information criteria, the data check's rows per parameter and the memory bound of a fit in passes.</summary>
    /// <param name="family">The family.</param>
    /// <param name="experts">k ≥ 1.</param>
    /// <param name="expertWidth">The experts' design width: their inputs, plus one with intercepts.</param>
    /// <param name="gateWidth">The gate's design width: its inputs, plus one with intercepts.</param>
    /// <param name="commonSigma">Whether the family's level is shared by every expert.</param>
    [<CompiledName("ParameterCount")>]
    let parameterCount
        (family: ExpertFamily)
        (experts: int)
        (expertWidth: int)
        (gateWidth: int)
        (commonSigma: bool)
        : int64 =
        let own =
            match family with
            | ExpertFamily.Gaussian -> Gaussian.parameterCount experts commonSigma
            | ExpertFamily.Poisson
            | ExpertFamily.Bernoulli -> 0

        int64 experts * int64 expertWidth
        + int64 (experts - 1) * int64 gateWidth
        + int64 own

    /// <summary>Whether the moment initializers (L4, spectral, subspace starts) apply to the family.</summary>
    /// <param name="family">The family.</param>
    [<CompiledName("HasMomentInitializers")>]
    let hasMomentInitializers (family: ExpertFamily) : bool =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.momentInitializers
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> false

    /// <summary>Whether the family has levels σ_i that are fitted (Gaussian), or none (the GLM experts, whose σ_i stay
    /// 1 and are not read).</summary>
    /// <param name="family">The family.</param>
    [<CompiledName("HasLevels")>]
    let hasLevels (family: ExpertFamily) : bool =
        match family with
        | ExpertFamily.Gaussian -> true
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> false

    /// <summary>Whether the family's responses are whole numbers (its predictive quantiles are too).</summary>
    /// <param name="family">The family.</param>
    [<CompiledName("IsDiscrete")>]
    let isDiscrete (family: ExpertFamily) : bool =
        match family with
        | ExpertFamily.Gaussian -> false
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> true

    /// <summary>Why the family does not fit an activation, or None: a GLM expert's mean is its inverse link of the
    /// linear predictor, so its activation must be the identity.</summary>
    /// <param name="family">The family.</param>
    /// <param name="activation">The activation.</param>
    let internal activationMismatch (family: ExpertFamily) (activation: Activation) : string option =
        match family with
        | ExpertFamily.Gaussian -> None
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli ->
            if activation = Identity then
                None
            else
                Some(
                    Text.format
                        "%s experts take their mean through their link (%s) of the linear predictor, so the activation must be identity, not %s."
                        [|
                            box family.Name
                            box (
                                if family = ExpertFamily.Poisson then
                                    "exp"
                                else
                                    "the logistic function"
                            )
                            box activation.Name
                        |]
                )

    /// Whether one M-step of the family solves the experts exactly (Gaussian with the identity: weighted least
    /// squares), rather than giving a direction a careful step checks (Gauss–Newton, IRLS).
    let internal exactMStep (family: ExpertFamily) (activation: Activation) =
        match family with
        | ExpertFamily.Gaussian -> activation = Identity
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> false

    /// The expert's mean response at the value v the activation gives (Gaussian: v itself; Poisson: e^v; Bernoulli:
    /// σ(v)).
    let inline internal responseMean (family: ExpertFamily) (v: float) =
        match family with
        | ExpertFamily.Gaussian -> v
        | ExpertFamily.Poisson -> Poisson.mean v
        | ExpertFamily.Bernoulli -> Bernoulli.mean v

    /// <summary>Whether a response is one the family's density is defined at (Gaussian: any finite value; Poisson: a
    /// whole number ≥ 0; Bernoulli: 0 or 1).</summary>
    /// <param name="family">The family.</param>
    /// <param name="y">The response.</param>
    [<CompiledName("IsValidResponse")>]
    let isValidResponse (family: ExpertFamily) (y: float) : bool =
        match family with
        | ExpertFamily.Gaussian -> Double.IsFinite y
        | ExpertFamily.Poisson -> y >= 0.0 && y = Math.Floor y && y < 9e15
        | ExpertFamily.Bernoulli -> y = 0.0 || y = 1.0

    /// <summary>What the family's responses must be, for messages: "counts, whole numbers >= 0" and so on.</summary>
    /// <param name="family">The family.</param>
    [<CompiledName("ResponseRule")>]
    let responseRule (family: ExpertFamily) : string =
        match family with
        | ExpertFamily.Gaussian -> "finite numbers"
        | ExpertFamily.Poisson -> "counts, whole numbers >= 0"
        | ExpertFamily.Bernoulli -> "yes/no outcomes coded 0 or 1"

    /// The linear predictor a start gives its intercept from the responses' mean (Gaussian: 0, y being standardised).
    let internal startIntercept (family: ExpertFamily) (yMean: float) =
        match family with
        | ExpertFamily.Gaussian -> 0.0
        | ExpertFamily.Poisson -> Poisson.link yMean
        | ExpertFamily.Bernoulli -> Bernoulli.link yMean

    /// Checks a model's family parameters (the levels, k of them).
    let internal validate (family: ExpertFamily) (k: int) (sigma: float) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.validate k sigma sigmas
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> Canonical.validate k sigmas

    /// Why a likelihood is not defined at these parameters, or None.
    let internal likelihoodDefined (family: ExpertFamily) (sigmas: float[]) : string option =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.likelihoodDefined sigmas
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> None

    /// The per-expert constants of the log-density, taken once per pass.
    let internal constants (family: ExpertFamily) (sigmas: float[]) : float[] * float[] =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.constants sigmas
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> Canonical.constants sigmas

    /// log p_i + log f_i(y | μ_i) for one row (the scalar references').
    let inline internal jointLogDensity
        (family: ExpertFamily)
        (logGate: float)
        (offset: float)
        (scale: float)
        (y: float)
        (mean: float)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.jointLogDensity logGate offset scale (y - mean)
        | ExpertFamily.Poisson -> logGate + Poisson.logDensity y mean
        | ExpertFamily.Bernoulli -> logGate + Bernoulli.logDensity y mean

    /// The common level of the experts' levels (σ itself when they are equal).
    let internal pooled (family: ExpertFamily) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.pooled sigmas
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> 1.0

    /// The family's parameters in the data's units when y was scaled by s (docs/math.md §9.2).
    let internal toDataUnits (family: ExpertFamily) (yScale: float) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.toDataUnits yScale sigmas
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> Array.copy sigmas

    /// The family's parameters in units where y is divided by s (the inverse of <c>toDataUnits</c>).
    let internal fromDataUnits (family: ExpertFamily) (yScale: float) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.fromDataUnits yScale sigmas
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> Array.copy sigmas

    /// How the responses may be moved for the moment initializers: (shift, scale).
    let internal responseUnits
        (family: ExpertFamily)
        (activation: Activation)
        (centre: bool)
        (mean: float)
        (sd: float)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.responseUnits activation centre mean sd
        // A count or a 0/1 outcome is not moved: its density is of y itself.
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> 0.0, 1.0

    /// A response drawn from one expert whose activation gives v, from the row's stream (Gaussian: one normal).
    let inline internal draw (family: ExpertFamily) (v: float) (sigma: float) (rng: Xoshiro256StarStar) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.draw v sigma (rng.NextGaussian())
        | ExpertFamily.Poisson -> Poisson.draw (Poisson.mean v) rng
        | ExpertFamily.Bernoulli -> Bernoulli.draw (Bernoulli.mean v) rng

    /// P(Y ≤ q) for one expert of mean response μ (<c>responseMean</c>).
    let internal cdf (family: ExpertFamily) (mean: float) (sigma: float) (q: float) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.cdf mean sigma q
        | ExpertFamily.Poisson -> Poisson.cdf mean q
        | ExpertFamily.Bernoulli -> Bernoulli.cdf mean q

    /// How far beyond the extreme expert means every quantile of the mixture lies at most.
    let internal quantileReach (family: ExpertFamily) (sigmas: float[]) (largestMean: float) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.quantileReach sigmas
        | ExpertFamily.Poisson -> Poisson.quantileReach largestMean
        | ExpertFamily.Bernoulli -> 1.5

    /// The model file's fields of the family's parameters: written after the activation, and at the end.
    let internal jsonFields (family: ExpertFamily) (sigma: float) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.jsonLeading sigma, Gaussian.jsonTrailing sigmas
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> [||], [||]

    /// The family's parameters from a model file's fields.
    let internal ofJson
        (family: ExpertFamily)
        (number: string -> float option)
        (vector: string -> int -> float[] option)
        (fail: string -> string -> unit)
        (k: int)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.ofJson number vector fail k
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> Canonical.ofJson k

    /// The family and its parameters on the wire.
    let internal writeWire (w: Wire.Writer) (family: ExpertFamily) (sigma: float) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian ->
            w.Byte 0uy
            Gaussian.writeWire w sigma sigmas
        | ExpertFamily.Poisson ->
            w.Byte 1uy
            w.Int sigmas.Length
        | ExpertFamily.Bernoulli ->
            w.Byte 2uy
            w.Int sigmas.Length

    /// Reads what <c>writeWire</c> wrote.
    let internal readWire (r: Wire.Reader) : ExpertFamily * float * float[] =
        match r.Byte() with
        | 0uy ->
            let sigma, sigmas = Gaussian.readWire r
            ExpertFamily.Gaussian, sigma, sigmas
        | 1uy -> ExpertFamily.Poisson, 1.0, Canonical.ofJson (r.Count())
        | 2uy -> ExpertFamily.Bernoulli, 1.0, Canonical.ofJson (r.Count())
        | b -> invalidArg "request" (Text.format "Unknown expert family code %d in the request." [| box b |])

    // ---- The kernels' per-block calls (Kernels/*.fs; each is the family's function for one block and expert) ----
    // Lanes: <c>means</c> holds g(η) (η itself for the GLM experts, whose activation is the identity), <c>e</c> the
    // residuals y − μ, <c>slopes</c> g'(η) (the variance V for the GLM experts), all at the expert's offset; y at 0.

    /// The experts' lanes after their linear predictors are in <c>means</c>: the activation (and its derivative when
    /// asked) and the residuals (Gaussian); V and y − μ, η kept (the GLM experts).
    let inline internal expertLanes
        (family: ExpertFamily)
        (g: Activation)
        (means: float[])
        (slopes: float[])
        (residuals: float[])
        (y: float[])
        (o: int)
        (rows: int)
        (withSlopes: bool)
        =
        match family with
        | ExpertFamily.Gaussian ->
            Activation.activateLanes g means (if withSlopes then slopes else [||]) o rows

            System.Numerics.Tensors.TensorPrimitives.Subtract(
                ReadOnlySpan<float>(y, 0, rows),
                ReadOnlySpan<float>(means, o, rows),
                Span<float>(residuals, o, rows)
            )
        | ExpertFamily.Poisson -> Poisson.expertLanes means slopes residuals y o rows
        | ExpertFamily.Bernoulli -> Bernoulli.expertLanes means slopes residuals y o rows

    /// log f_i(y | μ_i) for a block's rows, from the residuals (Gaussian) or η and y (the GLM experts).
    let inline internal logDensityLanes
        (family: ExpertFamily)
        (e: float[])
        (means: float[])
        (y: float[])
        (eo: int)
        (offset: float)
        (scale: float)
        (out: float[])
        (oo: int)
        (rows: int)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.logDensityLanes e eo offset scale out oo rows
        | ExpertFamily.Poisson -> Poisson.logDensityLanes means eo y out oo rows
        | ExpertFamily.Bernoulli -> Bernoulli.logDensityLanes means eo y out oo rows

    /// log p_i + log f_i(y | μ_i) for a block's rows.
    let inline internal jointLanes
        (family: ExpertFamily)
        (e: float[])
        (means: float[])
        (y: float[])
        (eo: int)
        (logGate: float[])
        (go: int)
        (offset: float)
        (scale: float)
        (out: float[])
        (oo: int)
        (rows: int)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.jointLanes e eo logGate go offset scale out oo rows
        | ExpertFamily.Poisson ->
            Poisson.logDensityLanes means eo y out oo rows
            Lanes.addInPlace out oo logGate go rows
        | ExpertFamily.Bernoulli ->
            Bernoulli.logDensityLanes means eo y out oo rows
            Lanes.addInPlace out oo logGate go rows

    /// The weight of ∂LL/∂η per row into <c>weights</c>, and the lanes of the level's score into <c>squares</c>.
    let inline internal scoreLanes
        (family: ExpertFamily)
        (post: float[])
        (po: int)
        (e: float[])
        (eo: int)
        (slopes: float[])
        (so: int)
        (scale: float)
        (weights: float[])
        (squares: float[])
        (rows: int)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.scoreLanes post po e eo slopes so scale weights squares rows
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> Canonical.scoreLanes post po e eo weights squares rows

    /// ∂LL/∂(the level) of a block from the sums of <c>scoreLanes</c>' squares and of the posterior.
    let inline internal scaleScore (family: ExpertFamily) (sumSquares: float) (sumPost: float) (scale: float) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.scaleScore sumSquares sumPost scale
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> 0.0

    /// The complete-data information's weight of η per row into <c>weights</c>.
    let inline internal curvatureLanes
        (family: ExpertFamily)
        (post: float[])
        (po: int)
        (slopes: float[])
        (so: int)
        (scale: float)
        (weights: float[])
        (rows: int)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.curvatureLanes post po slopes so scale weights rows
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> Canonical.curvatureLanes post po slopes so weights rows

    /// The complete-data information of the level from a block's Σ r.
    let inline internal scaleCurvature (family: ExpertFamily) (sumPost: float) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.scaleCurvature sumPost
        // No level: a unit curvature keeps the (unused) variable's scaling finite.
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> 1.0

    /// The family's sums per expert in the EM statistics.
    let internal emSums (family: ExpertFamily) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.EmSums
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> Canonical.EmSums

    /// One expert's EM sums over a block into acc at o, and the lanes of its Gram's and right-hand side's row weights.
    let inline internal emBlock
        (family: ExpertFamily)
        (identity: bool)
        (interceptInDesign: bool)
        (intercept: float)
        (post: float[])
        (po: int)
        (e: float[])
        (means: float[])
        (eo: int)
        (slopes: float[])
        (so: int)
        (y: float[])
        (work: float[][])
        (acc: float[])
        (o: int)
        (rows: int)
        =
        match family with
        | ExpertFamily.Gaussian ->
            Gaussian.emBlock identity interceptInDesign intercept post po e eo slopes so y work acc o rows
        | ExpertFamily.Poisson ->
            Poisson.logDensityLanes means eo y work.[0] 0 rows
            Canonical.emBlock post po e eo slopes so work acc o rows
        | ExpertFamily.Bernoulli ->
            Bernoulli.logDensityLanes means eo y work.[0] 0 rows
            Canonical.emBlock post po e eo slopes so work acc o rows

    /// A candidate expert's expected loss over a block under the current posterior (lower is better).
    let inline internal expectedLossBlock
        (family: ExpertFamily)
        (post: float[])
        (po: int)
        (e: float[])
        (means: float[])
        (y: float[])
        (eo: int)
        (weighted: float[])
        (rows: int)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.expectedLossBlock post po e eo weighted rows
        | ExpertFamily.Poisson ->
            Poisson.logDensityLanes means eo y weighted 0 rows
            Canonical.expectedLossBlock post po weighted rows
        | ExpertFamily.Bernoulli ->
            Bernoulli.logDensityLanes means eo y weighted 0 rows
            Canonical.expectedLossBlock post po weighted rows

    // ---- The M-step and the guard (Learning/MaximumLikelihood/) ----

    /// One expert's M-step solution from its Gram and right-hand side (Gaussian: weighted least squares, or a
    /// Gauss–Newton direction for a non-linear g).
    let internal expertSolution (family: ExpertFamily) (p: int) (gram: float[]) (rhs: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.expertSolution p gram rhs
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> Canonical.expertSolution p gram rhs

    /// An expert's expected loss at the statistics' model, from its family sums (comparable with
    /// <c>expectedLossBlock</c>'s sums; Gaussian: Σ r·e²).
    let internal expectedLoss (family: ExpertFamily) (sums: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.expectedLoss sums
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> Canonical.expectedLoss sums

    /// An identity expert's expected loss at new coefficients, from the statistics alone (no pass).
    let internal closedFormLoss
        (family: ExpertFamily)
        (p: int)
        (gram: float[])
        (rhs: float[])
        (sums: float[])
        (a: float[])
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.closedFormLoss p gram rhs sums a
        // Never asked: their M-step is not exact (exactMStep).
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> Canonical.expectedLoss sums

    /// The M-step's levels from the experts' expected losses and weights.
    let internal levels
        (family: ExpertFamily)
        (prior: (float * float) option)
        (floor: float)
        (common: bool)
        (losses: float[])
        (weights: float[])
        (n: float)
        (current: float[])
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.levels prior floor common losses weights n current
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> Canonical.levels current

    /// The guard's log-prior on the levels (docs/math.md §7.4).
    let internal logPrior (family: ExpertFamily) (prior: float * float) (common: bool) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.logPrior prior common sigmas
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> 0.0

    /// The guard's log-prior's derivative in each level's log σ.
    let internal logPriorGradient (family: ExpertFamily) (prior: float * float) (common: bool) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.logPriorGradient prior common sigmas
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli -> [||]
