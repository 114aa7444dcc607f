namespace MoE.Core

open System

/// <summary>
/// A mixture of experts (docs/math.md §1, §9): z ~ Categorical(p(x)) with the softmax gate
/// p_i(x) ∝ exp(&lt;w_i, x&gt; + c_i), w_k = 0 and c_k = 0; y = g(&lt;a_z, x&gt; + b_z) + ξ, ξ ~ N(0, σ_z²). The paper's
/// model (Makkuva et al., eq. 1) is the case without intercepts (b = c = 0) and with one σ for every expert.
/// </summary>
/// <remarks>
/// Shapes: <c>Regressors</c> is k×d_E (row i = a_i), <c>Gating</c> is (k−1)×d_G (row i = w_i; the k-th gate is
/// fixed at 0), <c>RegressorIntercepts</c> has k entries, <c>GatingIntercepts</c> k−1, <c>Sigmas</c> k. The
/// <c>Design</c> says which of the m input columns the experts (d_E of them) and the gate (d_G) read; by default both
/// read all, d_E = d_G = m = d.
/// <c>Sigma</c> is the common noise level when every σ_i is equal, and √(mean σ_i²) otherwise (what the moment
/// estimators' transforms use). Build one with <c>MoeModel.create</c> (the paper's model) or
/// <c>MoeModel.createGeneral</c>, which check shapes, finite values and σ ≥ 0 and copy the arrays, so a model is
/// an immutable value.
/// </remarks>
type MoeModel =
    {
        /// k×d_E regressors; row i is a_i, over the design's expert columns.
        Regressors: float[,]
        /// (k−1)×d_G gating parameters; row i is w_i over the design's gate columns, and w_k = 0.
        Gating: float[,]
        /// The expert non-linearity g.
        Activation: Activation
        /// The experts' family: what density each expert gives y around g(η_i) (Model/Families/).
        Family: ExpertFamily
        /// Which input columns the experts and the gate read.
        Design: Design
        /// The common noise level σ ≥ 0, or √(mean σ_i²) when the experts' levels differ.
        Sigma: float
        /// The experts' intercepts b_i (k; all zero in the paper's model).
        RegressorIntercepts: float[]
        /// The gate's intercepts c_i (k−1; c_k = 0; all zero in the paper's model).
        GatingIntercepts: float[]
        /// The experts' noise levels σ_i (k; all equal to Sigma for a common σ; Student-t experts' scales).
        Sigmas: float[]
        /// Student-t experts' degrees of freedom ν_i (k of them, each &gt; 0); empty for every other family.
        DegreesOfFreedom: float[]
    }

    /// The number of experts k.
    member this.Experts = this.Regressors.GetLength 0
    /// The input dimension m: the columns of the x the model reads (d in the paper's model).
    member this.Dimension = this.Design.Inputs
    /// d_E, the experts' inputs: the columns of <c>Regressors</c>.
    member this.ExpertDimension = this.Regressors.GetLength 1
    /// d_G, the gate's inputs: the columns of <c>Gating</c>.
    member this.GateDimension = this.Gating.GetLength 1

    /// Whether the model has intercepts (any b_i or c_i not zero).
    member this.HasIntercepts =
        Array.exists (fun v -> v <> 0.0) this.RegressorIntercepts
        || Array.exists (fun v -> v <> 0.0) this.GatingIntercepts

    /// Whether every expert has the same noise level.
    member this.HasCommonSigma = this.Sigmas |> Array.forall (fun s -> s = this.Sigmas.[0])

/// The per-row pieces every scalar path of a model shares (MoeModelModule.fs: predictions, likelihoods,
/// responsibilities, the one-row predictor): input checks, the gate's and experts' values for one row, the joint
/// log-densities. Unchecked where marked; callers own the buffers.
module internal ModelRows =

    let checkInputs (model: MoeModel) (x: float[,]) =
        Guard.notNull "model" (box model)
        Guard.columns "x" model.Dimension x
        Guard.finiteMatrix "x" x

        if model.Family = ExpertFamily.Binomial && model.Design.HasOffset then
            // Binomial trials (docs/math.md §12.5): whole numbers ≥ 1.
            let o = model.Design.OffsetColumn

            for r in 0 .. x.GetLength 0 - 1 do
                if not (Binomial.validTrials x.[r, o]) then
                    invalidArg
                        "x"
                        (Text.format
                            "The trials in data row %d are %s, but a row's trials must be a whole number >= 1."
                            [|
                                box (r + 1)
                                box (x.[r, o].ToString("R", Globalization.CultureInfo.InvariantCulture))
                            |])
        else
            Design.checkExposures model.Design x

    let checkLikelihoodInputs (model: MoeModel) (x: float[,]) (y: float[]) =
        checkInputs model x
        Guard.sameRows "x" x "y" y
        Guard.finiteVector "y" y

        match ExpertFamily.likelihoodDefined model.Family model.Sigmas with
        | Some reason -> invalidArg "model" reason
        | None -> ()

    /// <summary>Whether the design's row column enters every expert's linear predictor as the offset log t: a Poisson
    /// exposure (docs/math.md §12.4), not binomial trials, which the density reads (§12.5). The one test of every path
    /// that forms η.</summary>
    let inline hasPredictorOffset (model: MoeModel) =
        model.Design.HasOffset && ExpertFamily.offsetsPredictor model.Family

    /// <summary>Expert i's linear predictor at one row: ⟨a_i, x_row[ExpertColumns]⟩ + b_i, plus log t_row with an
    /// exposure column (docs/math.md §12.4). The one scalar η of the predictors, the split moves and the quantiles.
    /// Unchecked.</summary>
    let inline linearPredictor (model: MoeModel) (x: float[,]) (row: int) (i: int) =
        let a = model.Regressors
        let d = a.GetLength 1
        let shared = model.Design.IsShared
        let columns = model.Design.ExpertColumns
        let mutable s = 0.0

        for j in 0 .. d - 1 do
            s <- s + a.[i, j] * x.[row, (if shared then j else columns.[j])]

        let eta = s + model.RegressorIntercepts.[i]

        if hasPredictorOffset model then
            eta + Design.offsetAt model.Design x row
        else
            eta

    /// <summary>Row <paramref name="row"/>'s trials for binomial experts (the design's row column, docs/math.md
    /// §12.5), 0 for every other family. Unchecked.</summary>
    let inline trialsAt (model: MoeModel) (x: float[,]) (row: int) =
        if model.Family = ExpertFamily.Binomial && model.Design.HasOffset then
            x.[row, model.Design.OffsetColumn]
        else
            0.0

    /// <summary>The expert means g(&lt;a_i, x_row&gt;), i = 1..k, into <paramref name="means"/>. Unchecked.</summary>
    let inline expertMeansInto (model: MoeModel) (x: float[,]) (row: int) (means: float[]) =
        for i in 0 .. model.Regressors.GetLength 0 - 1 do
            means.[i] <- model.Activation.Value(linearPredictor model x row i)

    /// <summary>One row: the gate probabilities into <paramref name="gate"/>, the expert means into
    /// <paramref name="means"/>, the mixture mean returned. The one body of <c>predict</c> and <c>predictRowInto</c>,
    /// so they give the same bits. Unchecked.</summary>
    let inline mixtureRowInto (model: MoeModel) (x: float[,]) (row: int) (gate: float[]) (means: float[]) =
        let k = model.Experts
        Gate.logitsInto model.Gating model.GatingIntercepts (Gate.columnsOf model.Design) x row gate
        Gate.softmaxInPlace gate k
        expertMeansInto model x row means
        let mutable s = 0.0

        for i in 0 .. k - 1 do
            // The expert's mean response: g(η) itself for Gaussian experts, the inverse link's value for the GLM ones.
            means.[i] <- ExpertFamily.responseMean model.Family means.[i]
            s <- s + gate.[i] * means.[i]

        s

    /// Expert i's degrees of freedom (Student-t), or 0 for a family without them.
    let inline degreesOfFreedomOf (model: MoeModel) (i: int) =
        if model.DegreesOfFreedom.Length = 0 then
            0.0
        else
            model.DegreesOfFreedom.[i]

    /// The family's per-expert log-density constants (Gaussian: −½ log(2πσ_i²) and 1/(2σ_i²); Student-t: c, νσ², ν + 1).
    let densityConstants (model: MoeModel) : float[] * float[] * float[] =
        ExpertFamily.constants model.Family model.Sigmas model.DegreesOfFreedom

    /// For one sample: fills `gate` with log p_i(x), `means` with g(<a_i,x> + b_i), `joint` with
    /// log p_i(x) + log N(y | g(<a_i,x> + b_i), σ_i²), and returns log Σ_i exp(joint_i), the sample's log-likelihood.
    /// Buffers of length k, owned by the caller; the constants from `densityConstants`. Unchecked.
    let inline logJointInto
        (model: MoeModel)
        (logNorms: float[])
        (inv2s2: float[])
        (shapes: float[])
        (x: float[,])
        (y: float[])
        (row: int)
        (gate: float[])
        (means: float[])
        (joint: float[])
        =
        let k = model.Experts
        Gate.logitsInto model.Gating model.GatingIntercepts (Gate.columnsOf model.Design) x row gate
        let lseGate = Gate.logSumExp gate k
        expertMeansInto model x row means
        let trials = trialsAt model x row

        for i in 0 .. k - 1 do
            gate.[i] <- gate.[i] - lseGate

            joint.[i] <-
                ExpertFamily.jointLogDensity
                    model.Family
                    gate.[i]
                    logNorms.[i]
                    inv2s2.[i]
                    shapes.[i]
                    trials
                    y.[row]
                    means.[i]

        Gate.logSumExp joint k
