namespace MoE.Core

open System

/// <summary>Which estimator to run.</summary>
[<RequireQualifiedAccess>]
type FitMethod =
    /// Several initializers (spectral, L4, whitened L4, subspace and random starts), each screened by a short EM,
    /// the best by held-out likelihood polished by EM: the default (docs/learners.md).
    | Auto
    /// L4 → recovered regressors → L_log gating → (optional) EM polish: the paper's estimator.
    | L4
    /// The spectral method of Makkuva, Oh, Kannan and Viswanath (ICML 2019): third-order moments for the
    /// regressors, then EM on the gate with the regressors fixed.
    | Spectral
    /// Baseline: mini-batch SGD on ℓ2 over (A, W) from a random start.
    | L2
    /// EM on the likelihood from random starts (the best of several by held-out likelihood when there are more than
    /// one).
    | Em

/// <summary>Settings of the subspace L4 solver (docs/math.md §6.1).</summary>
type SubspaceSettings =
    {
        /// μ, λ and the ridge of the L4 objective inside the subspace (default 0.1, 10, 0.01).
        Weights: L4Weights
        /// L-BFGS restarts from random V ~ N(0, 1); the lowest value wins (default 5).
        Restarts: int
    }

/// <summary>Settings of the paper's SGD on the full-dimensional L4 (docs/math.md §6.2).</summary>
type SgdL4Settings =
    {
        /// μ, λ and the ridge (default 0.1, 10, 4: SGD needs the large ridge, docs/math.md §6.2).
        Weights: L4Weights
        /// The schedule (default: batch 1024, 60 epochs, 0.003 then linear decay to 0.0003, clip 5).
        Schedule: SgdSettings
    }

/// <summary>How the L4 stage is minimised; each solver carries its own settings, weights included, so a solver
/// can never run with the other's weights.</summary>
[<RequireQualifiedAccess>]
type L4Solver =
    /// Q2 moment subspace, projected moments in one pass, L-BFGS with restarts.
    | Subspace of SubspaceSettings
    /// The paper's mini-batch SGD on the full-dimensional empirical L4.
    | Sgd of SgdL4Settings

    /// <summary>The subspace solver with its defaults: μ = 0.1, λ = 10, ridge = 0.01, 5 restarts.</summary>
    static member DefaultSubspace: L4Solver =
        Subspace
            {
                Weights = L4Weights.create 0.1 10.0 0.01 true
                Restarts = 5
            }

    /// <summary>The paper's SGD with the recipe of docs/math.md §6.2: μ = 0.1, λ = 10, ridge = 4, batch 1024,
    /// 60 epochs, learning rate 0.003 for half the epochs then linear decay to 0.0003, clipping at 5.</summary>
    static member DefaultSgd: L4Solver =
        Sgd
            {
                Weights = L4Weights.create 0.1 10.0 4.0 true
                Schedule =
                    {
                        Epochs = 60
                        BatchSize = 1024
                        LearningRate = 0.003
                        FinalLearningRate = 0.0003
                        Clip = 5.0
                    }
            }

    /// <summary>True for the subspace solver.</summary>
    member this.IsSubspaceSolver =
        match this with
        | Subspace _ -> true
        | Sgd _ -> false

/// <summary>Which output transforms the L4 stage uses.</summary>
[<RequireQualifiedAccess>]
type TransformKind =
    /// The variance-reduced bounded transforms (docs/math.md §2.3): the default, measured ~10× lower E_reg for ReLU.
    | Bounded
    /// The paper's polynomial Q4, Q2 (centred).
    | Polynomial

/// <summary>How the gating is fitted with the regressors fixed.</summary>
[<RequireQualifiedAccess>]
type GatingMethod =
    /// L-BFGS on L_log (unconstrained): the default.
    | QuasiNewton
    /// The paper's projected gradient descent: rows of W kept in the ball of radius R; with sample splitting,
    /// iteration t uses the t-th of T disjoint batches of n/T samples (Theorem 4).
    | ProjectedGradient of radius: float * learningRate: float * iterations: int * sampleSplitting: bool

/// <summary>How the candidates of a fit are screened and compared (docs/learners.md).</summary>
type SelectionSettings =
    {
        /// Data whose rows × the model's parameters are at most this are not screened: every start runs the whole chain
        /// to convergence on every row and the highest likelihood there wins, so more starts never give a lower one.
        /// 250,000 (docs/learners.md, measured: d = 10, k = 3, n = 5000 costs 1.7 s for the 46 starts against 0.2 s
        /// screened; d = 50, k = 6 at the same n would cost 92 s, so it is screened). 0 screens always.
        AllRowsWork: int
        /// Rows of the seeded screening subsample every candidate's short EM runs on.
        ScreeningRows: int
        /// Rows of the seeded validation subsample, disjoint from the screening rows, the candidates are scored on.
        ValidationRows: int
        /// EM maps per candidate on the screening rows.
        ScreeningIterations: int
        /// Two screened models within this relative distance (Selection.sameModel) have reached one basin: only the
        /// better goes on to the next round. 1e-2: a start that close converges to the same optimum, while distinct
        /// optima of a fit that recovers differ by far more (E_reg ≤ 1e-2 is success, wrong basins are off by 0.1–1).
        DuplicateTolerance: float
    }

/// <summary>A learner's configuration: every knob explicit. Start from <c>FitConfig.defaults</c> and change what
/// you need with F#'s <c>{ config with … }</c> or, from C#, the <c>With…</c> members.</summary>
type FitConfig =
    {
        /// k ≥ 2.
        Experts: int
        /// g.
        Activation: Activation
        /// The experts' family (Model/Families/).
        Family: ExpertFamily
        /// Which input columns the experts and the gate read; None: both read every column (the shared design).
        Design: Design option
        /// σ if known; None to estimate it (docs/learners.md).
        Sigma: float option
        /// Student-t experts' degrees of freedom: Some ν fixes every ν_i at ν (&gt; 0); None estimates one per expert
        /// (docs/math.md §14). Only for the student-t family.
        DegreesOfFreedom: float option
        /// The estimator.
        Method: FitMethod
        /// The L4 solver with its settings.
        L4Solver: L4Solver
        /// The L4 output transforms.
        Transform: TransformKind
        /// Whether the EM polish follows the paper's stages.
        Polish: bool
        /// The seed of every random choice (restarts, subsamples, SGD order, random starts).
        Seed: int64
        /// Subsample size for the sign search.
        SignSubsample: int
        /// How the gating is fitted.
        Gating: GatingMethod
        /// L-BFGS iterations of the gating fit.
        GatingIterations: int
        /// EM iteration budget.
        EmIterations: int
        /// EM stops when the log-likelihood gain of a step per row (relative to |LL| when that is larger) falls below
        /// this; after a handover, L-BFGS stops when the gain over its last ten evaluations does.
        EmTolerance: float
        /// EM hands over to L-BFGS on the likelihood once its gain per step and row is below this and shrinking
        /// slowly (docs/math.md §7.5); 0 keeps EM to the end.
        EmHandover: float
        /// SGD settings of the ℓ2 baseline.
        L2Sgd: SgdSettings
        /// Whether the experts and the gate have intercepts b_i, c_i (docs/math.md §9).
        Intercepts: bool
        /// One σ for every expert (the paper's model) or one per expert.
        CommonSigma: bool
        /// Whether the covariates (and, where g allows, the responses) are standardised before the moment
        /// initializers run; the model is reported in the data's units either way (docs/math.md §9).
        Standardise: bool
        /// Random orthonormal frames of the moment subspace the Auto method also tries.
        SubspaceStarts: int
        /// Random whole-space starts (Auto also tries them; EM runs from them).
        RandomStarts: int
        /// Segment starts (Initializers.segmentStarts), and as many minimal-sample starts (Initializers.sampleStarts),
        /// the Auto method also tries on data small enough to run every start on every row (<c>FitConfig.everyStartOnAllRows</c>), with intercepts and Gaussian experts.
        SegmentStarts: int
        /// How candidates are screened and compared.
        Selection: SelectionSettings
    }

    /// <summary>This configuration with σ known.</summary>
    /// <param name="sigma">The noise level σ &gt; 0.</param>
    member this.WithSigma(sigma: float) = { this with Sigma = Some sigma }

    /// <summary>This configuration with every Student-t expert's degrees of freedom fixed at ν.</summary>
    /// <param name="nu">ν &gt; 0.</param>
    member this.WithDegreesOfFreedom(nu: float) =
        { this with DegreesOfFreedom = Some nu }

    /// <summary>A copy with the experts' family.</summary>
    /// <param name="family">Gaussian, Poisson or Bernoulli.</param>
    member this.WithFamily(family: ExpertFamily) = { this with Family = family }

    /// <summary>This configuration with σ estimated from the data.</summary>
    member this.WithEstimatedSigma() = { this with Sigma = None }

    /// <summary>This configuration with another estimator.</summary>
    /// <param name="method">The estimator.</param>
    member this.WithMethod(method: FitMethod) = { this with Method = method }

    /// <summary>This configuration with another L4 solver (which brings its own settings).</summary>
    /// <param name="solver">The solver, e.g. <c>L4Solver.DefaultSgd</c>.</param>
    member this.WithL4Solver(solver: L4Solver) = { this with L4Solver = solver }

    /// <summary>This configuration with other L4 output transforms.</summary>
    /// <param name="transform">The transforms.</param>
    member this.WithTransform(transform: TransformKind) = { this with Transform = transform }

    /// <summary>This configuration with the EM polish on or off.</summary>
    /// <param name="polish">Whether the polish runs.</param>
    member this.WithPolish(polish: bool) = { this with Polish = polish }

    /// <summary>This configuration with another seed.</summary>
    /// <param name="seed">The seed of every random choice.</param>
    member this.WithSeed(seed: int64) = { this with Seed = seed }

    /// <summary>This configuration with another EM budget.</summary>
    /// <param name="iterations">The EM iteration budget.</param>
    member this.WithEmIterations(iterations: int) = { this with EmIterations = iterations }

    /// <summary>This configuration with or without intercepts.</summary>
    /// <param name="intercepts">Whether the experts and the gate have intercepts.</param>
    member this.WithIntercepts(intercepts: bool) = { this with Intercepts = intercepts }

    /// <summary>This configuration with one σ for every expert, or one per expert.</summary>
    /// <param name="common">Whether the experts share one σ.</param>
    member this.WithCommonSigma(common: bool) = { this with CommonSigma = common }

    /// <summary>This configuration with or without standardisation.</summary>
    /// <param name="standardise">Whether the data are standardised for the moment initializers.</param>
    member this.WithStandardise(standardise: bool) = { this with Standardise = standardise }

    /// <summary>This configuration with another number of random starts.</summary>
    /// <param name="starts">Random whole-space starts (≥ 0 for Auto, ≥ 1 for EM).</param>
    member this.WithRandomStarts(starts: int) = { this with RandomStarts = starts }

    /// <summary>This configuration with another number of random frames of the moment subspace.</summary>
    /// <param name="starts">Subspace starts (≥ 0).</param>
    member this.WithSubspaceStarts(starts: int) = { this with SubspaceStarts = starts }

    /// <summary>This configuration with another EM convergence tolerance.</summary>
    /// <param name="tolerance">The relative log-likelihood gain that counts as converged (&gt; 0).</param>
    member this.WithEmTolerance(tolerance: float) = { this with EmTolerance = tolerance }

    /// <summary>This configuration with another handover from EM to L-BFGS.</summary>
    /// <param name="handover">The relative gain per EM step below which a slow EM hands over (0: never).</param>
    member this.WithEmHandover(handover: float) = { this with EmHandover = handover }

    /// <summary>This configuration with another gating fit.</summary>
    /// <param name="gating">How the gating is fitted.</param>
    member this.WithGating(gating: GatingMethod) = { this with Gating = gating }

    /// <summary>This configuration with the columns the experts and the gate read (and their names, when the design
    /// has them: the fitted model records them).</summary>
    /// <param name="design">The design (<c>DataFiles.withRoles</c> gives one from a file's columns).</param>
    member this.WithDesign(design: Design) = { this with Design = Some design }

/// Defaults and validation of <see cref="T:MoE.Core.FitConfig"/>.
[<RequireQualifiedAccess>]
module FitConfig =

    /// <summary>The paper's model and estimator (Makkuva et al.): no intercepts, one σ, the data as given, L4 with
    /// the subspace solver and bounded transforms, then the gating, scales and EM polish; seed 1. The reproduced
    /// figures and the paper's acceptance rows use it.</summary>
    /// <param name="experts">k ≥ 2.</param>
    /// <param name="activation">g.</param>
    /// <returns>The configuration (checked when a fit starts).</returns>
    /// <example>
    /// <code lang="fsharp">
    /// let config = { FitConfig.paper 3 Relu with Sigma = Some 0.1; Seed = 7L }
    /// </code>
    /// </example>
    [<CompiledName("Paper")>]
    let paper (experts: int) (activation: Activation) : FitConfig =
        {
            Experts = experts
            Activation = activation
            Family = ExpertFamily.Gaussian
            Design = None
            Sigma = None
            DegreesOfFreedom = None
            Method = FitMethod.L4
            L4Solver = L4Solver.DefaultSubspace
            Transform = TransformKind.Bounded
            Polish = true
            Seed = 1L
            SignSubsample = 20_000
            Gating = GatingMethod.QuasiNewton
            GatingIterations = 200
            EmIterations = 200
            EmTolerance = 1e-11
            EmHandover = 0.0
            L2Sgd =
                {
                    Epochs = 60
                    BatchSize = 1024
                    LearningRate = 0.05
                    FinalLearningRate = 0.005
                    Clip = 5.0
                }
            Intercepts = false
            CommonSigma = true
            Standardise = false
            SubspaceStarts = 2
            RandomStarts = 1
            SegmentStarts = 20
            Selection =
                {
                    AllRowsWork = 250_000
                    ScreeningRows = 20_000
                    ValidationRows = 20_000
                    ScreeningIterations = 30
                    DuplicateTolerance = 1e-2
                }
        }

    /// <summary>The defaults: the model a regression user expects — intercepts, a noise level per expert,
    /// covariates standardised for the moment initializers — fitted by the Auto method (several initializers, the
    /// best by held-out likelihood, EM polish); σ estimated; seed 1. <c>paper</c> is the paper's model and
    /// estimator.</summary>
    /// <param name="experts">k ≥ 2.</param>
    /// <param name="activation">g.</param>
    /// <returns>The configuration (checked when a fit starts).</returns>
    /// <example>
    /// <code lang="fsharp">
    /// let config = { FitConfig.defaults 3 Relu with Seed = 7L }
    /// let result = Learner.fit config data RunContext.silent
    /// result.Candidates |> Array.map (fun c -> c.Initializer, c.LogLikelihood)
    /// </code>
    /// </example>
    [<CompiledName("Defaults")>]
    let defaults (experts: int) (activation: Activation) : FitConfig =
        { paper experts activation with
            Method = FitMethod.Auto
            Intercepts = true
            CommonSigma = false
            Standardise = true
            // Measured on d = 10..20, k = 4, σ = 0.5: a 1e-9 stop gives the same recovery errors as 1e-11 (the
            // statistical error is ~1e-3), and the handover halves the polish's time where EM's rate is slow.
            EmTolerance = 1e-9
            EmHandover = 1e-3
        }

    /// <summary>The paper's model fitted by this configuration's method: no intercepts, one σ, the data as given; with
    /// the L4 method also the paper's EM settings (<c>paper</c>'s tolerance, no handover), so that L4 with the paper's
    /// model is <c>paper</c>. Every other field stays.</summary>
    /// <param name="config">The configuration.</param>
    /// <example>
    /// <code lang="fsharp">
    /// FitConfig.withPaperModel { FitConfig.defaults 2 Identity with Method = FitMethod.L4 } = FitConfig.paper 2 Identity   // true
    /// </code>
    /// </example>
    [<CompiledName("WithPaperModel")>]
    let withPaperModel (config: FitConfig) : FitConfig =
        let model =
            { config with
                Intercepts = false
                CommonSigma = true
                Standardise = false
            }

        if config.Method = FitMethod.L4 then
            let p = paper config.Experts config.Activation

            { model with
                EmTolerance = p.EmTolerance
                EmHandover = p.EmHandover
            }
        else
            model

    /// <summary>The configuration that refits a model of this kind (a bootstrap's replicates, a model read from a file):
    /// <c>defaults</c> with the model's k, activation, family and design, intercepts when it has them, and one σ for
    /// every expert or one each as stated (a model file does not say which its fit had).</summary>
    /// <param name="model">The model.</param>
    /// <param name="commonSigma">Whether its fit had one σ for every expert.</param>
    [<CompiledName("ForModel")>]
    let forModel (model: MoeModel) (commonSigma: bool) : FitConfig =
        Guard.notNull "model" (box model)

        { defaults model.Experts model.Activation with
            Family = model.Family
            Design = Some model.Design
            Intercepts = model.HasIntercepts
            CommonSigma = commonSigma
        }

    /// <summary>The design this configuration fits to d input columns: its own, or both parts on every column.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="dimension">d, the data's input columns.</param>
    [<CompiledName("DesignFor")>]
    let designFor (config: FitConfig) (dimension: int) : Design =
        config.Design |> Option.defaultWith (fun () -> Design.shared dimension)

    /// <summary>The number of free parameters of the model this configuration fits to d input columns: its family's
    /// count (<c>ExpertFamily.parameterCount</c>) with intercepts when configured and one level or one per expert.</summary>
    /// <param name="config">The configuration (its k, family, intercepts and common σ).</param>
    /// <param name="dimension">d.</param>
    [<CompiledName("ParameterCount")>]
    let parameterCount (config: FitConfig) (dimension: int) : int64 =
        let design = designFor config dimension

        let width (columns: int[]) =
            columns.Length + (if config.Intercepts then 1 else 0)

        ExpertFamily.parameterCountWith
            config.Family
            config.Experts
            (width design.ExpertColumns)
            (width design.GateColumns)
            config.CommonSigma
            config.DegreesOfFreedom.IsNone

    /// <summary>Whether every start runs to convergence on every row (rows × parameters at most
    /// <c>Selection.AllRowsWork</c>) rather than being screened on a subsample.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="dimension">d.</param>
    /// <param name="rows">n.</param>
    [<CompiledName("EveryStartOnAllRows")>]
    let everyStartOnAllRows (config: FitConfig) (dimension: int) (rows: int64) : bool =
        float rows * float (parameterCount config dimension)
        <= float config.Selection.AllRowsWork

    /// The output transform the L4 stage and the moment initializers use at σ (the configuration's Transform).
    let internal outputTransform (config: FitConfig) (sigma: float) : OutputTransform =
        match config.Transform with
        | TransformKind.Bounded -> OutputTransforms.bounded config.Activation sigma
        | TransformKind.Polynomial -> OutputTransforms.polynomialFor config.Activation sigma

    /// <summary>Checks every field; the message names the field and the value.</summary>
    /// <param name="config">The configuration.</param>
    /// <exception cref="T:System.ArgumentException">An invalid field (the parameter name is the field's).</exception>
    [<CompiledName("Validate")>]
    let validate (config: FitConfig) : unit =
        Guard.notNull "config" (box config)

        if config.Experts < 2 then
            raise (
                ArgumentOutOfRangeException(
                    "Experts",
                    config.Experts,
                    Text.format "A mixture needs k >= 2 experts, but Experts = %d." [| box config.Experts |]
                )
            )

        Activation.validate config.Activation
        config.Sigma |> Option.iter (Guard.positive "Sigma")
        Guard.notNull "L4Solver" (box config.L4Solver)

        match config.L4Solver with
        | L4Solver.Subspace s ->
            L4Weights.validate s.Weights
            Guard.positiveInt "Restarts" s.Restarts
        | L4Solver.Sgd s ->
            L4Weights.validate s.Weights
            SgdSettings.validate "L4Sgd" s.Schedule

        if
            (config.Method = FitMethod.L4 || config.Method = FitMethod.Spectral)
            && not (ExpertFamily.hasMomentInitializers config.Family)
        then
            invalidArg
                "Method"
                (Text.format
                    "The %s method starts from moments derived for Gaussian experts; %s experts are fitted by the default method (whose candidates include the GLM families' own spectral start, docs/math.md §12.6) or EM."
                    [|
                        box (if config.Method = FitMethod.L4 then "l4" else "spectral")
                        box config.Family.Name
                    |])

        match ExpertFamily.activationMismatch config.Family config.Activation with
        | Some reason -> invalidArg "Activation" reason
        | None -> ()

        if config.Method = FitMethod.L2 && config.Family <> ExpertFamily.Gaussian then
            invalidArg
                "Method"
                (Text.format
                    "The l2 method minimises squared errors, the Gaussian experts' loss; %s experts are fitted by the default method or EM."
                    [| box config.Family.Name |])

        match config.DegreesOfFreedom with
        | Some _ when config.Family <> ExpertFamily.StudentT ->
            invalidArg
                "DegreesOfFreedom"
                (Text.format
                    "Degrees of freedom belong to student-t experts; %s experts have none (leave them unset, or choose the student-t family)."
                    [| box config.Family.Name |])
        | Some nu when not (Double.IsFinite nu && nu > 0.0) ->
            invalidArg
                "DegreesOfFreedom"
                (Text.format "Degrees of freedom must be a finite number > 0, but are %s." [| box (string nu) |])
        | _ -> ()

        if config.Sigma.IsSome && not (ExpertFamily.hasLevels config.Family) then
            invalidArg
                "Sigma"
                (Text.format "%s experts have no noise level to fix; leave Sigma unset." [| box config.Family.Name |])

        // Binomial experts read each row's trials from the design's row column (docs/math.md §12.5).
        if
            config.Family = ExpertFamily.Binomial
            && not (config.Design |> Option.exists (fun d -> d.HasOffset))
        then
            invalidArg
                "Design"
                "binomial experts model y successes out of each row's n trials: name the trials column (--trials n; a Design with that column as its row column)."

        match config.Design with
        | Some design ->
            Design.validate design

            if design.HasOffset then
                match ExpertFamily.exposureMismatch config.Family with
                | Some reason -> invalidArg "Design" reason
                | None -> ()

            if
                not design.IsShared
                && (config.Method = FitMethod.L4
                    || config.Method = FitMethod.Spectral
                    || config.Method = FitMethod.L2)
            then
                invalidArg
                    "Design"
                    (Text.format
                        "The %s method fits experts and a gate that read the same columns; with separate gate columns fit with the default method or EM."
                        [|
                            box (
                                match config.Method with
                                | FitMethod.L4 -> "l4"
                                | FitMethod.Spectral -> "spectral"
                                | _ -> "l2"
                            )
                        |])
        | None -> ()

        Guard.positiveInt "SignSubsample" config.SignSubsample
        Guard.positiveInt "GatingIterations" config.GatingIterations

        match config.Gating with
        | GatingMethod.ProjectedGradient(radius, rate, iterations, _) ->
            Guard.positive "Gating.Radius" radius
            Guard.positive "Gating.LearningRate" rate
            Guard.positiveInt "Gating.Iterations" iterations
        | GatingMethod.QuasiNewton -> ()

        Guard.positiveInt "EmIterations" config.EmIterations
        Guard.positive "EmTolerance" config.EmTolerance

        if not (config.EmHandover >= 0.0 && config.EmHandover < 1.0) then
            raise (
                ArgumentOutOfRangeException(
                    "EmHandover",
                    config.EmHandover,
                    Text.format "EmHandover must be in [0, 1) (0: no handover), but is %g." [| box config.EmHandover |]
                )
            )

        SgdSettings.validate "L2Sgd" config.L2Sgd

        if config.SubspaceStarts < 0 then
            raise (ArgumentOutOfRangeException("SubspaceStarts", config.SubspaceStarts, "SubspaceStarts must be >= 0."))

        if
            config.RandomStarts < 0
            || (config.Method = FitMethod.Em && config.RandomStarts < 1)
        then
            raise (
                ArgumentOutOfRangeException(
                    "RandomStarts",
                    config.RandomStarts,
                    "RandomStarts must be >= 0 (>= 1 for the EM method)."
                )
            )

        Guard.nonNegativeInt "SegmentStarts" config.SegmentStarts
        Guard.nonNegativeInt "Selection.AllRowsWork" config.Selection.AllRowsWork
        Guard.positiveInt "Selection.ScreeningRows" config.Selection.ScreeningRows
        Guard.positiveInt "Selection.ValidationRows" config.Selection.ValidationRows
        Guard.positiveInt "Selection.ScreeningIterations" config.Selection.ScreeningIterations

        if
            not (
                config.Selection.DuplicateTolerance >= 0.0
                && Double.IsFinite config.Selection.DuplicateTolerance
            )
        then
            invalidArg
                "Selection.DuplicateTolerance"
                (Text.format
                    "Selection.DuplicateTolerance must be finite and non-negative, but was %g."
                    [| box config.Selection.DuplicateTolerance |])
