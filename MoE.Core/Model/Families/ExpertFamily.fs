namespace MoE.Core

open System

/// <summary>What kind of response an expert models: its density given the linear predictor η_i = ⟨a_i, x⟩ + b_i
/// (docs/architecture.md: a model is a gate design plus an expert family). Each case has one file under
/// Model/Families/ that says everything about it; this type and its module dispatch to that file.</summary>
[<RequireQualifiedAccess>]
type ExpertFamily =
    /// y = g(η_i) + σ_i ξ, ξ ~ N(0, 1): the paper's experts (Model/Families/Gaussian.fs).
    | Gaussian

    /// <summary>The family's name in model files and on the command line: gaussian.</summary>
    member this.Name =
        match this with
        | Gaussian -> Gaussian.Name

    /// <summary>The family's name.</summary>
    override this.ToString() = this.Name

    /// <summary>Every family, in the order of declaration.</summary>
    static member All = [| Gaussian |]

/// <summary>The expert families' common interface: what every model, kernel, learner and file asks of a family,
/// dispatched once per call (per block of rows in the kernels, never per row) to the family's own module.</summary>
[<RequireQualifiedAccess>]
module ExpertFamily =

    /// <summary>The family of a name (gaussian).</summary>
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

        int64 experts * int64 expertWidth
        + int64 (experts - 1) * int64 gateWidth
        + int64 own

    /// <summary>Whether the moment initializers (L4, spectral, subspace starts) apply to the family.</summary>
    /// <param name="family">The family.</param>
    [<CompiledName("HasMomentInitializers")>]
    let hasMomentInitializers (family: ExpertFamily) : bool =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.momentInitializers

    /// Checks a model's family parameters (the levels, k of them).
    let internal validate (family: ExpertFamily) (k: int) (sigma: float) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.validate k sigma sigmas

    /// Why a likelihood is not defined at these parameters, or None.
    let internal likelihoodDefined (family: ExpertFamily) (sigmas: float[]) : string option =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.likelihoodDefined sigmas

    /// The per-expert constants of the log-density, taken once per pass.
    let internal constants (family: ExpertFamily) (sigmas: float[]) : float[] * float[] =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.constants sigmas

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

    /// The common level of the experts' levels (σ itself when they are equal).
    let internal pooled (family: ExpertFamily) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.pooled sigmas

    /// The family's parameters in the data's units when y was scaled by s (docs/math.md §9.2).
    let internal toDataUnits (family: ExpertFamily) (yScale: float) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.toDataUnits yScale sigmas

    /// The family's parameters in units where y is divided by s (the inverse of <c>toDataUnits</c>).
    let internal fromDataUnits (family: ExpertFamily) (yScale: float) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.fromDataUnits yScale sigmas

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

    /// A response drawn from one expert.
    let inline internal draw (family: ExpertFamily) (mean: float) (sigma: float) (standardNormal: float) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.draw mean sigma standardNormal

    /// P(Y ≤ q) for one expert.
    let internal cdf (family: ExpertFamily) (mean: float) (sigma: float) (q: float) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.cdf mean sigma q

    /// How far beyond the extreme expert means every quantile of the mixture lies at most.
    let internal quantileReach (family: ExpertFamily) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.quantileReach sigmas

    /// The model file's fields of the family's parameters: written after the activation, and at the end.
    let internal jsonFields (family: ExpertFamily) (sigma: float) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.jsonLeading sigma, Gaussian.jsonTrailing sigmas

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

    /// The family and its parameters on the wire.
    let internal writeWire (w: Wire.Writer) (family: ExpertFamily) (sigma: float) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian ->
            w.Byte 0uy
            Gaussian.writeWire w sigma sigmas

    /// Reads what <c>writeWire</c> wrote.
    let internal readWire (r: Wire.Reader) : ExpertFamily * float * float[] =
        match r.Byte() with
        | 0uy ->
            let sigma, sigmas = Gaussian.readWire r
            ExpertFamily.Gaussian, sigma, sigmas
        | b -> invalidArg "request" (Text.format "Unknown expert family code %d in the request." [| box b |])

    // ---- The kernels' per-block calls (Kernels/*.fs; each is the family's function for one block and expert) ----

    /// log f_i(y | μ_i) for a block's rows, from the residuals.
    let inline internal logDensityLanes
        (family: ExpertFamily)
        (e: float[])
        (eo: int)
        (offset: float)
        (scale: float)
        (out: float[])
        (oo: int)
        (rows: int)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.logDensityLanes e eo offset scale out oo rows

    /// log p_i + log f_i(y | μ_i) for a block's rows.
    let inline internal jointLanes
        (family: ExpertFamily)
        (e: float[])
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

    /// ∂LL/∂(the level) of a block from the sums of <c>scoreLanes</c>' squares and of the posterior.
    let inline internal scaleScore (family: ExpertFamily) (sumSquares: float) (sumPost: float) (scale: float) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.scaleScore sumSquares sumPost scale

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

    /// The complete-data information of the level from a block's Σ r.
    let inline internal scaleCurvature (family: ExpertFamily) (sumPost: float) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.scaleCurvature sumPost

    /// The family's sums per expert in the EM statistics.
    let internal emSums (family: ExpertFamily) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.EmSums

    /// One expert's EM sums over a block into acc at o, and the lanes of its Gram's and right-hand side's row weights.
    let inline internal emBlock
        (family: ExpertFamily)
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
        =
        match family with
        | ExpertFamily.Gaussian ->
            Gaussian.emBlock identity interceptInDesign intercept post po e eo slopes so y work acc o rows

    /// A candidate expert's expected loss over a block under the current posterior (lower is better).
    let inline internal expectedLossBlock
        (family: ExpertFamily)
        (post: float[])
        (po: int)
        (e: float[])
        (eo: int)
        (weighted: float[])
        (rows: int)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.expectedLossBlock post po e eo weighted rows

    // ---- The M-step and the guard (Learning/MaximumLikelihood/) ----

    /// One expert's M-step solution from its Gram and right-hand side (Gaussian: weighted least squares, or a
    /// Gauss–Newton direction for a non-linear g).
    let internal expertSolution (family: ExpertFamily) (p: int) (gram: float[]) (rhs: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.expertSolution p gram rhs

    /// An expert's expected loss at the statistics' model, from its family sums (comparable with
    /// <c>expectedLossBlock</c>'s sums; Gaussian: Σ r·e²).
    let internal expectedLoss (family: ExpertFamily) (sums: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.expectedLoss sums

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

    /// The guard's log-prior on the levels (docs/math.md §7.4).
    let internal logPrior (family: ExpertFamily) (prior: float * float) (common: bool) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.logPrior prior common sigmas

    /// The guard's log-prior's derivative in each level's log σ.
    let internal logPriorGradient (family: ExpertFamily) (prior: float * float) (common: bool) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.logPriorGradient prior common sigmas
