namespace MoE.Core

open System

/// <summary>The expert families' calls from the kernels and the M-step (docs/architecture.md): each is one family's
/// function for one block of <c>Lanes.Block</c> rows and one expert, or for one expert's statistics, dispatched once
/// per call to the family's own file (Model/Families/Gaussian.fs, Canonical.fs, Poisson.fs, Bernoulli.fs). The
/// family's identity, parameters, files and predictive distribution are <c>ExpertFamily</c>'s.</summary>
[<RequireQualifiedAccess>]
module internal FamilyKernels =

    // ---- The kernels' per-block calls (Kernels/*.fs; each is the family's function for one block and expert) ----
    // Lanes: <c>means</c> holds g(η) (η itself for the GLM experts, whose activation is the identity), <c>e</c> the
    // residuals y − μ, <c>slopes</c> g'(η) (the variance V for the GLM experts), all at the expert's offset; y at 0.

    /// The experts' lanes after their linear predictors are in <c>means</c>: the activation (and its derivative when
    /// asked) and the residuals (Gaussian); V and y − μ, η kept (the GLM experts).
    let inline expertLanes
        (family: ExpertFamily)
        (g: Activation)
        (means: float[])
        (slopes: float[])
        (residuals: float[])
        (y: float[])
        (trials: float[])
        (o: int)
        (rows: int)
        (withSlopes: bool)
        =
        match family with
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT ->
            Activation.activateLanes g means (if withSlopes then slopes else [||]) o rows

            System.Numerics.Tensors.TensorPrimitives.Subtract(
                ReadOnlySpan<float>(y, 0, rows),
                ReadOnlySpan<float>(means, o, rows),
                Span<float>(residuals, o, rows)
            )
        | ExpertFamily.Poisson -> Poisson.expertLanes means slopes residuals y o rows
        | ExpertFamily.Bernoulli -> Bernoulli.expertLanes means slopes residuals y o rows
        | ExpertFamily.Binomial -> Binomial.expertLanes means slopes residuals y trials o rows

    /// log f_i(y | μ_i) for a block's rows, from the residuals (Gaussian) or η and y (the GLM experts).
    let inline logDensityLanes
        (family: ExpertFamily)
        (e: float[])
        (means: float[])
        (y: float[])
        (trials: float[])
        (eo: int)
        (offset: float)
        (scale: float)
        (shape: float)
        (out: float[])
        (oo: int)
        (rows: int)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.logDensityLanes e eo offset scale out oo rows
        | ExpertFamily.StudentT -> StudentT.logDensityLanes e eo offset scale shape out oo rows
        | ExpertFamily.Poisson -> Poisson.logDensityLanes means eo y out oo rows
        | ExpertFamily.Bernoulli -> Bernoulli.logDensityLanes means eo y out oo rows
        | ExpertFamily.Binomial -> Binomial.logDensityLanes means eo y trials out oo rows

    /// log p_i + log f_i(y | μ_i) for a block's rows.
    let inline jointLanes
        (family: ExpertFamily)
        (e: float[])
        (means: float[])
        (y: float[])
        (trials: float[])
        (eo: int)
        (logGate: float[])
        (go: int)
        (offset: float)
        (scale: float)
        (shape: float)
        (out: float[])
        (oo: int)
        (rows: int)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.jointLanes e eo logGate go offset scale out oo rows
        | ExpertFamily.StudentT ->
            StudentT.logDensityLanes e eo offset scale shape out oo rows
            Lanes.addInPlace out oo logGate go rows
        | ExpertFamily.Poisson ->
            Poisson.logDensityLanes means eo y out oo rows
            Lanes.addInPlace out oo logGate go rows
        | ExpertFamily.Bernoulli ->
            Bernoulli.logDensityLanes means eo y out oo rows
            Lanes.addInPlace out oo logGate go rows
        | ExpertFamily.Binomial ->
            Binomial.logDensityLanes means eo y trials out oo rows
            Lanes.addInPlace out oo logGate go rows

    /// The weight of ∂LL/∂η per row into <c>weights</c>, and the lanes of the level's score into <c>squares</c>.
    let inline scoreLanes
        (family: ExpertFamily)
        (post: float[])
        (po: int)
        (e: float[])
        (eo: int)
        (slopes: float[])
        (so: int)
        (scale: float)
        (shape: float)
        (weights: float[])
        (squares: float[])
        (rows: int)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.scoreLanes post po e eo slopes so scale weights squares rows
        | ExpertFamily.StudentT -> StudentT.scoreLanes post po e eo scale shape weights squares rows
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> Canonical.scoreLanes post po e eo weights squares rows

    /// ∂LL/∂(the level) of a block from the sums of <c>scoreLanes</c>' squares and of the posterior.
    let inline scaleScore (family: ExpertFamily) (sumSquares: float) (sumPost: float) (scale: float) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.scaleScore sumSquares sumPost scale
        | ExpertFamily.StudentT -> StudentT.scaleScore sumSquares sumPost
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> 0.0

    /// The number of shape parameters per model in the gradient's layout, after the levels: k for Student-t (its ν_i),
    /// 0 otherwise.
    let shapeCount (family: ExpertFamily) (k: int) =
        match family with
        | ExpertFamily.StudentT -> k
        | _ -> 0

    /// ∂LL/∂(the shape) of a block for one expert (Student-t: ∂LL/∂ν_i); 0 for a family without one.
    let shapeScore
        (family: ExpertFamily)
        (post: float[])
        (po: int)
        (e: float[])
        (eo: int)
        (scale: float)
        (shape: float)
        (rows: int)
        =
        match family with
        | ExpertFamily.StudentT -> StudentT.shapeScore post po e eo scale shape rows
        | _ -> 0.0

    /// The expected information of the shape from a block's Σ r (Student-t: of ν_i).
    let shapeCurvature (family: ExpertFamily) (sumPost: float) (shape: float) =
        match family with
        | ExpertFamily.StudentT -> StudentT.shapeCurvature shape * sumPost
        | _ -> 0.0

    /// The complete-data information's weight of η per row into <c>weights</c>.
    let inline curvatureLanes
        (family: ExpertFamily)
        (post: float[])
        (po: int)
        (slopes: float[])
        (so: int)
        (scale: float)
        (shape: float)
        (weights: float[])
        (rows: int)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.curvatureLanes post po slopes so scale weights rows
        | ExpertFamily.StudentT -> StudentT.curvatureLanes post po scale shape weights rows
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> Canonical.curvatureLanes post po slopes so weights rows

    /// The complete-data information of the level from a block's Σ r.
    let inline scaleCurvature (family: ExpertFamily) (sumPost: float) (shape: float) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.scaleCurvature sumPost
        | ExpertFamily.StudentT -> StudentT.scaleCurvature sumPost shape
        // No level: a unit curvature keeps the (unused) variable's scaling finite.
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> 1.0

    /// The family's sums per expert in the EM statistics.
    let emSums (family: ExpertFamily) =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.EmSums
        | ExpertFamily.StudentT -> StudentT.EmSums
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> Canonical.EmSums

    /// One expert's EM sums over a block into acc at o, and the lanes of its Gram's and right-hand side's row weights.
    let inline emBlock
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
        (trials: float[])
        (scale: float)
        (shape: float)
        (work: float[][])
        (acc: float[])
        (o: int)
        (rows: int)
        =
        match family with
        | ExpertFamily.Gaussian ->
            Gaussian.emBlock identity interceptInDesign intercept post po e eo slopes so y work acc o rows
        | ExpertFamily.StudentT ->
            StudentT.emBlock interceptInDesign intercept post po e eo scale shape y work acc o rows
        | ExpertFamily.Poisson ->
            Poisson.logDensityLanes means eo y work.[0] 0 rows
            Canonical.emBlock post po e eo slopes so work acc o rows
        | ExpertFamily.Bernoulli ->
            Bernoulli.logDensityLanes means eo y work.[0] 0 rows
            Canonical.emBlock post po e eo slopes so work acc o rows
        | ExpertFamily.Binomial ->
            Binomial.logDensityLanes means eo y trials work.[0] 0 rows
            Canonical.emBlock post po e eo slopes so work acc o rows

    /// A candidate expert's expected loss over a block under the current posterior (lower is better); Student-t's
    /// also reads the current model's residuals <c>eNow</c> and its constants, which give the E-step's weights.
    let inline expectedLossBlock
        (family: ExpertFamily)
        (post: float[])
        (po: int)
        (eNow: float[])
        (e: float[])
        (means: float[])
        (y: float[])
        (trials: float[])
        (eo: int)
        (scale: float)
        (shape: float)
        (weighted: float[])
        (rows: int)
        =
        match family with
        | ExpertFamily.Gaussian -> Gaussian.expectedLossBlock post po e eo weighted rows
        | ExpertFamily.StudentT -> StudentT.expectedLossBlock post po eNow e eo scale shape rows
        | ExpertFamily.Poisson ->
            Poisson.logDensityLanes means eo y weighted 0 rows
            Canonical.expectedLossBlock post po weighted rows
        | ExpertFamily.Bernoulli ->
            Bernoulli.logDensityLanes means eo y weighted 0 rows
            Canonical.expectedLossBlock post po weighted rows
        | ExpertFamily.Binomial ->
            Binomial.logDensityLanes means eo y trials weighted 0 rows
            Canonical.expectedLossBlock post po weighted rows

    // ---- The M-step and the guard (Learning/MaximumLikelihood/) ----

    /// One expert's M-step solution from its Gram and right-hand side (Gaussian: weighted least squares, or a
    /// Gauss–Newton direction for a non-linear g).
    let expertSolution (family: ExpertFamily) (p: int) (gram: float[]) (rhs: float[]) =
        match family with
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> Gaussian.expertSolution p gram rhs
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> Canonical.expertSolution p gram rhs

    /// An expert's expected loss at the statistics' model, from its family sums (comparable with
    /// <c>expectedLossBlock</c>'s sums; Gaussian: Σ r·e²).
    let expectedLoss (family: ExpertFamily) (sums: float[]) =
        match family with
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> Gaussian.expectedLoss sums
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> Canonical.expectedLoss sums

    /// An identity expert's expected loss at new coefficients, from the statistics alone (no pass).
    let closedFormLoss (family: ExpertFamily) (p: int) (gram: float[]) (rhs: float[]) (sums: float[]) (a: float[]) =
        match family with
        // Student-t: the same algebra with the rows weighted by r·w (its Gram, right-hand side and Σ r·w·t²).
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> Gaussian.closedFormLoss p gram rhs sums a
        // Never asked: their M-step is not exact (exactMStep).
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> Canonical.expectedLoss sums

    /// The M-step's levels from the experts' expected losses and weights.
    let levels
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
        | ExpertFamily.StudentT -> StudentT.levels prior floor common losses weights n current
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> Canonical.levels current

    /// The M-step's degrees of freedom (Student-t's ECM step from the E-step's sums, at the levels the E-step used);
    /// none for the other families.
    let degreesOfFreedom
        (family: ExpertFamily)
        (sums: float[][])
        (weights: float[])
        (n: float)
        (sigmas: float[])
        (current: float[])
        =
        match family with
        | ExpertFamily.StudentT -> StudentT.degreesOfFreedom sums weights n sigmas current
        | _ -> Array.copy current

    /// The guard's log-prior on the levels (docs/math.md §7.4).
    let logPrior (family: ExpertFamily) (prior: float * float) (common: bool) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> Gaussian.logPrior prior common sigmas
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> 0.0

    /// The guard's log-prior's derivative in each level's log σ.
    let logPriorGradient (family: ExpertFamily) (prior: float * float) (common: bool) (sigmas: float[]) =
        match family with
        | ExpertFamily.Gaussian
        | ExpertFamily.StudentT -> Gaussian.logPriorGradient prior common sigmas
        | ExpertFamily.Poisson
        | ExpertFamily.Bernoulli
        | ExpertFamily.Binomial -> [||]
