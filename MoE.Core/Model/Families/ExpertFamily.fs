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
    /// Heavy tails: y = η_i + σ_i ε, ε ~ t(ν_i), the degrees of freedom estimated or fixed (Model/Families/StudentT.fs).
    | StudentT
    /// Successes out of the row's n trials: y ~ Binomial(n, 1/(1 + e^−η_i)) (Model/Families/Binomial.fs).
    | Binomial

    /// <summary>The family's name in model files and on the command line: gaussian.</summary>
    member this.Name =
        match this with
        | Gaussian -> Gaussian.Name
        | Poisson -> Poisson.Name
        | Bernoulli -> Bernoulli.Name
        | StudentT -> StudentT.Name
        | Binomial -> Binomial.Name

    /// <summary>The family's name.</summary>
    override this.ToString() = this.Name

    /// <summary>Every family, in the order of declaration.</summary>
    static member All = [| Gaussian; Poisson; Bernoulli; StudentT; Binomial |]

/// <summary>The expert families' common interface: what every model, kernel, learner and file asks of a family,
/// dispatched once per call (per block of rows in the kernels, never per row) to the family's own module.</summary>
[<RequireQualifiedAccess>]
module ExpertFamily =

    /// <summary>The family of a name (gaussian, poisson, bernoulli, student-t, binomial).</summary>
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

    /// The count of <c>parameterCount</c>, with the Student-t family's ν_i counted only when they are estimated.
    let internal parameterCountWith
        (family: ExpertFamily)
        (experts: int)
        (expertWidth: int)
        (gateWidth: int)
        (commonSigma: bool)
        (estimateDegreesOfFreedom: bool)
        : int64 =
        let own =
            match family with
            | ExpertFamily.Gaussian -> Gaussian.parameterCount experts commonSigma
            | ExpertFamily.StudentT -> StudentT.parameterCount experts commonSigma estimateDegreesOfFreedom
            | ExpertFamily.Poisson
            | ExpertFamily.Bernoulli
            | ExpertFamily.Binomial -> 0

        int64 experts * int64 expertWidth
        + int64 (experts - 1) * int64 gateWidth
        + int64 own

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
        parameterCountWith family experts expertWidth gateWidth commonSigma true

    /// <summary>Whether the Gaussian moment initializers (L4, spectral, subspace starts) apply to the family. The GLM
    /// families have a spectral start of their own (<c>GlmSpectral</c>, docs/math.md §12.6).</summary>
    /// <param name="family">The family.</param>
    [<CompiledName("HasMomentInitializers")>]
    let hasMomentInitializers (family: ExpertFamily) : bool =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.momentInitializers
        // The moments are derived for Gaussian noise; t noise has no fourth moment for ν ≤ 4 (docs/math.md §14.4).
        | ExpertFamily.StudentT
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> false

    /// <summary>Whether the family has levels σ_i that are fitted (Gaussian; Student-t's scales), or none (the GLM
    /// experts, whose σ_i stay 1 and are not read).</summary>
    /// <param name="family">The family.</param>
    [<CompiledName("HasLevels")>]
    let hasLevels (family: ExpertFamily) : bool =
        match family with
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> true
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> false

    /// <summary>Whether the family's responses are whole numbers (its predictive quantiles are too).</summary>
    /// <param name="family">The family.</param>
    [<CompiledName("IsDiscrete")>]
    let isDiscrete (family: ExpertFamily) : bool =
        match family with
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> false
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> true

    /// <summary>Why the family does not fit an activation, or None: a GLM expert's mean is its inverse link of the
    /// linear predictor, so its activation must be the identity.</summary>
    /// <param name="family">The family.</param>
    /// <param name="activation">The activation.</param>
    let internal activationMismatch (family: ExpertFamily) (activation: Activation) : string option =
        match family with
        | ExpertFamily.Gaussian -> None
        | ExpertFamily.StudentT ->
            if activation = Identity then
                None
            else
                Some(
                    Text.format
                        "student-t experts are linear regressions with heavy-tailed errors, so the activation must be identity, not %s."
                        [| box activation.Name |]
                )
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial ->
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

    /// <summary>Why the family takes no exposure column, or None (docs/math.md §12.4): an exposure t multiplies the
    /// mean, μ = t·e^η, which is an offset log t on the linear predictor only under a log link — Poisson's.</summary>
    /// <param name="family">The family.</param>
    let internal exposureMismatch (family: ExpertFamily) : string option =
        match family with
        // Binomial experts read the design's row column as their trials (rowColumn).
        | ExpertFamily.Poisson
        | ExpertFamily.Binomial -> None
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT
        | ExpertFamily.Bernoulli ->
            Some(
                Text.format
                    "An exposure column (--offset) multiplies a count's mean, an offset log t under the log link of poisson experts; %s experts take none (enter the column as a covariate instead)."
                    [| box family.Name |]
            )

    /// <summary>What the design's per-row column (<c>Design.OffsetColumn</c>) holds for the family: "exposure" for
    /// Poisson experts (it enters η as log t), "trials" for binomial ones (it enters the density as n), or None.</summary>
    /// <param name="family">The family.</param>
    let internal rowColumn (family: ExpertFamily) : string option =
        match family with
        | ExpertFamily.Poisson -> Some "exposure"
        | ExpertFamily.Binomial -> Some "trials"
        | _ -> None

    /// Whether the design's per-row column t enters the linear predictor as the offset log t (Poisson's exposure), or
    /// is read by the density instead (binomial's trials).
    let inline internal offsetsPredictor (family: ExpertFamily) = family <> ExpertFamily.Binomial

    /// Whether one M-step of the family solves the experts exactly (Gaussian with the identity: weighted least
    /// squares), rather than giving a direction a careful step checks (Gauss–Newton, IRLS).
    let internal exactMStep (family: ExpertFamily) (activation: Activation) =
        match family with
        | ExpertFamily.Gaussian
        // Given the E-step's weights u, the t expert's M-step is weighted least squares: exact.
        | ExpertFamily.StudentT -> activation = Identity
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> false

    /// The expert's mean response at the value v the activation gives (Gaussian: v itself; Poisson: e^v; Bernoulli:
    /// σ(v)).
    let inline internal responseMean (family: ExpertFamily) (v: float) =
        match family with
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> v
        | ExpertFamily.Poisson -> Poisson.mean v
        | ExpertFamily.Bernoulli -> Bernoulli.mean v
        // The probability of a success per trial (n·μ successes are expected of n trials).
        | ExpertFamily.Binomial -> Binomial.mean v

    /// The variance function V(μ) = dμ/dη of a GLM expert of mean response μ (the IRLS weight); Gaussian experts'
    /// weight is their σ's, not a function of μ: 1.
    let inline internal variance (family: ExpertFamily) (mu: float) =
        match family with
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> 1.0
        | ExpertFamily.Poisson -> Poisson.variance mu
        // Per trial: n·μ(1 − μ) for n trials.
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> Bernoulli.variance mu

    /// <summary>Whether a response is one the family's density is defined at (Gaussian: any finite value; Poisson: a
    /// whole number ≥ 0; Bernoulli: 0 or 1).</summary>
    /// <param name="family">The family.</param>
    /// <param name="y">The response.</param>
    [<CompiledName("IsValidResponse")>]
    let isValidResponse (family: ExpertFamily) (y: float) : bool =
        match family with
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> Double.IsFinite y
        | ExpertFamily.Poisson -> y >= 0.0 && y = Math.Floor y && y < 9e15
        | ExpertFamily.Bernoulli -> y = 0.0 || y = 1.0
        // At most the row's trials, which the data check compares (Responses).
        | ExpertFamily.Binomial -> y >= 0.0 && y = Math.Floor y && y < 9e15

    /// <summary>What the family's responses must be, for messages: "counts, whole numbers >= 0" and so on.</summary>
    /// <param name="family">The family.</param>
    [<CompiledName("ResponseRule")>]
    let responseRule (family: ExpertFamily) : string =
        match family with
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> "finite numbers"
        | ExpertFamily.Poisson -> "counts, whole numbers >= 0"
        | ExpertFamily.Bernoulli -> "yes/no outcomes coded 0 or 1"
        | ExpertFamily.Binomial -> "successes, whole numbers from 0 to the row's trials"

    /// The linear predictor a start gives its intercept from the responses' mean (Gaussian: 0, y being standardised).
    let internal startIntercept (family: ExpertFamily) (yMean: float) =
        match family with
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> 0.0
        | ExpertFamily.Poisson -> Poisson.link yMean
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> Bernoulli.link yMean

    /// Checks a model's family parameters (the levels, k of them; the degrees of freedom, k for Student-t, else none).
    let internal validate (family: ExpertFamily) (k: int) (sigma: float) (sigmas: float[]) (dof: float[]) =
        match family with
        | ExpertFamily.StudentT -> StudentT.validate k sigma sigmas dof
        | _ ->
            if dof.Length <> 0 then
                invalidArg
                    "degreesOfFreedom"
                    (Text.format
                        "%s experts have no degrees of freedom, but %d were given."
                        [| box family.Name; box dof.Length |])

            match family with
            | ExpertFamily.Gaussian -> Gaussian.validate k sigma sigmas
            | _ -> Canonical.validate k sigmas

    /// The degrees of freedom a model of the family starts with: ν₀ per expert for Student-t, none otherwise.
    let internal startDegreesOfFreedom (family: ExpertFamily) (k: int) : float[] =
        match family with
        | ExpertFamily.StudentT -> Array.create k StudentT.StartDegreesOfFreedom
        | _ -> [||]

    /// Why a likelihood is not defined at these parameters, or None.
    let internal likelihoodDefined (family: ExpertFamily) (sigmas: float[]) : string option =
        match family with
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> Gaussian.likelihoodDefined sigmas
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> None

    /// The per-expert constants of the log-density, taken once per pass: (offset, scale, shape) — Gaussian:
    /// (−½ log 2πσ², 1/(2σ²), unused); Student-t: (c, νσ², ν + 1); the GLM experts: none.
    let internal constants (family: ExpertFamily) (sigmas: float[]) (dof: float[]) : float[] * float[] * float[] =
        match family with
        | ExpertFamily.Gaussian ->
            let offset, scale = Gaussian.constants sigmas
            offset, scale, Array.zeroCreate sigmas.Length
        | ExpertFamily.StudentT -> StudentT.constants sigmas dof
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial ->
            let offset, scale = Canonical.constants sigmas
            offset, scale, Array.zeroCreate sigmas.Length

    /// log p_i + log f_i(y | μ_i) for one row (the scalar references').
    let inline internal jointLogDensity
        (family: ExpertFamily)
        (logGate: float)
        (offset: float)
        (scale: float)
        (shape: float)
        (trials: float)
        (y: float)
        (mean: float)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.jointLogDensity logGate offset scale (y - mean)
        | ExpertFamily.StudentT -> logGate + StudentT.logDensity offset scale shape (y - mean)
        | ExpertFamily.Binomial -> logGate + Binomial.logDensity y trials mean
        | ExpertFamily.Poisson -> logGate + Poisson.logDensity y mean
        | ExpertFamily.Bernoulli -> logGate + Bernoulli.logDensity y mean

    /// The common level of the experts' levels (σ itself when they are equal).
    let internal pooled (family: ExpertFamily) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> Gaussian.pooled sigmas
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> 1.0

    /// The family's parameters in the data's units when y was scaled by s (docs/math.md §9.2).
    let internal toDataUnits (family: ExpertFamily) (yScale: float) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> Gaussian.toDataUnits yScale sigmas
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> Array.copy sigmas

    /// The family's parameters in units where y is divided by s (the inverse of <c>toDataUnits</c>).
    let internal fromDataUnits (family: ExpertFamily) (yScale: float) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> Gaussian.fromDataUnits yScale sigmas
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> Array.copy sigmas

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
        // Scaled and shifted as the Gaussian identity's (the scale σ_i moves with y, ν does not).
        | ExpertFamily.StudentT -> Gaussian.responseUnits Identity centre mean sd
        // A count or a 0/1 outcome is not moved: its density is of y itself.
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> 0.0, 1.0

    /// A response drawn from one expert whose activation gives v, from the row's stream (Gaussian: one normal).
    let inline internal draw
        (family: ExpertFamily)
        (v: float)
        (sigma: float)
        (nu: float)
        (trials: float)
        (rng: Xoshiro256StarStar)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.draw v sigma (rng.NextGaussian())
        | ExpertFamily.StudentT -> StudentT.draw v sigma nu rng
        | ExpertFamily.Poisson -> Poisson.draw (Poisson.mean v) rng
        | ExpertFamily.Bernoulli -> Bernoulli.draw (Bernoulli.mean v) rng
        | ExpertFamily.Binomial -> Binomial.draw trials (Binomial.mean v) rng

    /// P(Y ≤ q) for one expert of mean response μ (<c>responseMean</c>).
    let internal cdf (family: ExpertFamily) (mean: float) (sigma: float) (nu: float) (trials: float) (q: float) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.cdf mean sigma q
        | ExpertFamily.StudentT -> StudentT.cdf mean sigma nu q
        | ExpertFamily.Poisson -> Poisson.cdf mean q
        | ExpertFamily.Bernoulli -> Bernoulli.cdf mean q
        | ExpertFamily.Binomial -> Binomial.cdf trials mean q

    /// How far beyond the extreme expert means every quantile of the mixture lies at most.
    let internal quantileReach
        (family: ExpertFamily)
        (sigmas: float[])
        (dof: float[])
        (largestMean: float)
        (trials: float)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.quantileReach sigmas
        | ExpertFamily.StudentT -> StudentT.quantileReach sigmas dof
        | ExpertFamily.Poisson -> Poisson.quantileReach largestMean
        | ExpertFamily.Bernoulli -> 1.5
        // The support is 0..n: past the means (probabilities in [0, 1]) by n + 1.
        | ExpertFamily.Binomial -> trials + 1.0

    /// The model file's fields of the family's parameters: written after the activation, and at the end.
    let internal jsonFields (family: ExpertFamily) (sigma: float) (sigmas: float[]) (dof: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.jsonLeading sigma, Gaussian.jsonTrailing sigmas
        | ExpertFamily.StudentT -> Gaussian.jsonLeading sigma, StudentT.jsonTrailing sigmas dof
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> [||], [||]

    /// The family's parameters from a model file's fields: the levels and the degrees of freedom.
    let internal ofJson
        (family: ExpertFamily)
        (number: string -> float option)
        (vector: string -> int -> float[] option)
        (fail: string -> string -> unit)
        (k: int)
        : float[] * float[] =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.ofJson number vector fail k, [||]
        | ExpertFamily.StudentT -> Gaussian.ofJson number vector fail k, StudentT.ofJson vector fail k
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> Canonical.ofJson k, [||]

    /// The family and its parameters on the wire.
    let internal writeWire (w: Wire.Writer) (family: ExpertFamily) (sigma: float) (sigmas: float[]) (dof: float[]) =
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
        | ExpertFamily.Binomial ->
            w.Byte 4uy
            w.Int sigmas.Length
        | ExpertFamily.StudentT ->
            w.Byte 3uy
            Gaussian.writeWire w sigma sigmas
            w.Floats dof

    /// Reads what <c>writeWire</c> wrote.
    let internal readWire (r: Wire.Reader) : ExpertFamily * float * float[] * float[] =
        match r.Byte() with
        | 0uy ->
            let sigma, sigmas = Gaussian.readWire r
            ExpertFamily.Gaussian, sigma, sigmas, [||]
        | 1uy -> ExpertFamily.Poisson, 1.0, Canonical.ofJson (r.Count()), [||]
        | 2uy -> ExpertFamily.Bernoulli, 1.0, Canonical.ofJson (r.Count()), [||]
        | 3uy ->
            let sigma, sigmas = Gaussian.readWire r
            ExpertFamily.StudentT, sigma, sigmas, r.Floats()
        | 4uy -> ExpertFamily.Binomial, 1.0, Canonical.ofJson (r.Count()), [||]
        | b -> invalidArg "request" (Text.format "Unknown expert family code %d in the request." [| box b |])
