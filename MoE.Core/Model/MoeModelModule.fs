namespace MoE.Core

open System

/// Construction, validation and the per-sample kernels of <see cref="T:MoE.Core.MoeModel"/>.
[<RequireQualifiedAccess; CompilationRepresentation(CompilationRepresentationFlags.ModuleSuffix)>]
module MoeModel =

    /// <summary>Checks a model's invariants.</summary>
    /// <param name="model">The model.</param>
    /// <exception cref="T:System.ArgumentException">The message names the parameter (regressors, gating,
    /// activation, sigma) and the offending shape or value.</exception>
    [<CompiledName("Validate")>]
    let validate (model: MoeModel) : unit =
        Guard.notNull "model" (box model)
        Guard.notNull "regressors" model.Regressors
        Guard.notNull "gating" model.Gating
        let k = model.Regressors.GetLength 0
        let d = model.Regressors.GetLength 1
        Design.validate model.Design
        let dG = model.Design.GateColumns.Length

        if k < 2 then
            invalidArg
                "regressors"
                (Text.format
                    "A mixture needs k >= 2 experts, but regressors has %d row(s) (shape %s)."
                    [| box k; box (Guard.shape model.Regressors) |])

        if d < 1 then
            invalidArg
                "regressors"
                (Text.format
                    "regressors must have at least one column, but has shape %s."
                    [| box (Guard.shape model.Regressors) |])

        if d <> model.Design.ExpertColumns.Length then
            invalidArg
                "regressors"
                (Text.format
                    "regressors have %d columns, but the design's experts read %d input columns."
                    [| box d; box model.Design.ExpertColumns.Length |])

        if model.Gating.GetLength 0 <> k - 1 || model.Gating.GetLength 1 <> dG then
            invalidArg
                "gating"
                (Text.format
                    "gating must be (k-1)x d = %dx%d to match regressors (%s), but has shape %s."
                    [|
                        box (k - 1)
                        box dG
                        box (Guard.shape model.Regressors)
                        box (Guard.shape model.Gating)
                    |])

        Guard.finiteMatrix "regressors" model.Regressors
        Guard.finiteMatrix "gating" model.Gating
        Activation.validate model.Activation

        Guard.expertVector "regressorIntercepts" k k model.RegressorIntercepts
        Guard.expertVector "gatingIntercepts" (k - 1) k model.GatingIntercepts
        ExpertFamily.validate model.Family k model.Sigma model.Sigmas model.DegreesOfFreedom

        match ExpertFamily.activationMismatch model.Family model.Activation with
        | Some reason -> invalidArg "activation" reason
        | None -> ()

    /// <summary>True when <c>validate</c> would not throw.</summary>
    /// <param name="model">The model.</param>
    [<CompiledName("IsValid")>]
    let isValid (model: MoeModel) : bool =
        try
            validate model
            true
        with :? ArgumentException ->
            false

    /// <summary>A validated model over copies of the given arrays.</summary>
    /// <param name="regressors">k×d, k ≥ 2; row i is a_i.</param>
    /// <param name="gating">(k−1)×d; row i is w_i.</param>
    /// <param name="activation">g.</param>
    /// <param name="sigma">Noise standard deviation, ≥ 0 (0 is allowed for sampling; likelihoods need σ &gt; 0).</param>
    /// <returns>The model.</returns>
    /// <exception cref="T:System.ArgumentException">See <c>validate</c>.</exception>
    /// <example>
    /// <code lang="fsharp">
    /// let a = array2D [ [ 1.0; 0.0; 0.0 ]; [ 0.0; 1.0; 0.0 ] ]
    /// let w = array2D [ [ 0.0; 0.0; 2.0 ] ]
    /// let model = MoeModel.create a w Relu 0.1
    /// MoeModel.predict model (array2D [ [ 1.0; -1.0; 0.0 ] ])   // [| 0.5 |]
    /// </code>
    /// </example>
    [<CompiledName("Create")>]
    let create (regressors: float[,]) (gating: float[,]) (activation: Activation) (sigma: float) : MoeModel =
        Guard.notNull "regressors" regressors
        Guard.notNull "gating" gating

        let model =
            {
                Regressors = Array2D.copy regressors
                Gating = Array2D.copy gating
                Activation = activation
                Family = ExpertFamily.Gaussian
                Design = Design.shared (regressors.GetLength 1)
                Sigma = sigma
                RegressorIntercepts = Array.zeroCreate (regressors.GetLength 0)
                GatingIntercepts = Array.zeroCreate (max 0 (regressors.GetLength 0 - 1))
                Sigmas = Array.create (regressors.GetLength 0) sigma
                DegreesOfFreedom = [||]
            }

        validate model
        model

    /// <summary>√(mean σ_i²): the common level of noise levels that may differ.</summary>
    /// <param name="sigmas">The experts' noise levels.</param>
    [<CompiledName("PooledSigma")>]
    let pooledSigma (sigmas: float[]) : float =
        Guard.notNull "sigmas" sigmas
        Gaussian.pooled sigmas

    /// <summary>A validated model of any design and expert family over copies of the given arrays (docs/math.md §9,
    /// docs/architecture.md): the experts' predictors over the design's expert columns with intercepts, the gate over
    /// its gate columns with intercepts, and the family's levels.</summary>
    /// <param name="design">Which input columns the experts and the gate read.</param>
    /// <param name="family">The experts' family.</param>
    /// <param name="regressors">k×d_E, k ≥ 2; row i is a_i.</param>
    /// <param name="regressorIntercepts">k expert intercepts b_i.</param>
    /// <param name="gating">(k−1)×d_G; row i is w_i.</param>
    /// <param name="gatingIntercepts">k−1 gate intercepts c_i (c_k = 0).</param>
    /// <param name="activation">g.</param>
    /// <param name="sigmas">The family's k levels (Gaussian: σ_i ≥ 0).</param>
    /// <returns>The model; its <c>Sigma</c> is the common level, or √(mean σ_i²); Student-t experts start with
    /// ν_i = 4 (<c>withDegreesOfFreedom</c> sets them).</returns>
    /// <exception cref="T:System.ArgumentException">See <c>validate</c>.</exception>
    [<CompiledName("CreateWith")>]
    let createWith
        (design: Design)
        (family: ExpertFamily)
        (regressors: float[,])
        (regressorIntercepts: float[])
        (gating: float[,])
        (gatingIntercepts: float[])
        (activation: Activation)
        (sigmas: float[])
        : MoeModel =
        Guard.notNull "design" (box design)
        Guard.notNull "regressors" regressors
        Guard.notNull "gating" gating
        Guard.notNull "regressorIntercepts" regressorIntercepts
        Guard.notNull "gatingIntercepts" gatingIntercepts
        Guard.notNull "sigmas" sigmas
        Guard.finiteVector "sigmas" sigmas

        let model =
            {
                Regressors = Array2D.copy regressors
                Gating = Array2D.copy gating
                Activation = activation
                Family = family
                Design =
                    Design(
                        design.Inputs,
                        Array.copy design.ExpertColumns,
                        Array.copy design.GateColumns,
                        design.Columns,
                        design.OffsetColumn
                    )
                Sigma =
                    (if sigmas.Length = 0 then
                         nan
                     else
                         ExpertFamily.pooled family sigmas)
                RegressorIntercepts = Array.copy regressorIntercepts
                GatingIntercepts = Array.copy gatingIntercepts
                Sigmas = Array.copy sigmas
                DegreesOfFreedom = ExpertFamily.startDegreesOfFreedom family (regressors.GetLength 0)
            }

        validate model
        model

    /// <summary>A validated general model over copies of the given arrays: intercepts and a noise level per expert
    /// (docs/math.md §9), Gaussian experts.</summary>
    /// <param name="regressors">k×d, k ≥ 2; row i is a_i.</param>
    /// <param name="regressorIntercepts">k expert intercepts b_i.</param>
    /// <param name="gating">(k−1)×d; row i is w_i.</param>
    /// <param name="gatingIntercepts">k−1 gate intercepts c_i (c_k = 0).</param>
    /// <param name="activation">g.</param>
    /// <param name="sigmas">k noise levels σ_i ≥ 0.</param>
    /// <returns>The model; its <c>Sigma</c> is the common level, or √(mean σ_i²).</returns>
    /// <exception cref="T:System.ArgumentException">See <c>validate</c>.</exception>
    [<CompiledName("CreateGeneral")>]
    let createGeneral
        (regressors: float[,])
        (regressorIntercepts: float[])
        (gating: float[,])
        (gatingIntercepts: float[])
        (activation: Activation)
        (sigmas: float[])
        : MoeModel =
        Guard.notNull "regressors" regressors

        createWith
            (Design.shared (regressors.GetLength 1))
            ExpertFamily.Gaussian
            regressors
            regressorIntercepts
            gating
            gatingIntercepts
            activation
            sigmas

    /// <summary>The model with another expert family: the same linear predictors, gate and design; the levels kept
    /// for a family with levels, 1 for one without (Poisson, Bernoulli).</summary>
    /// <param name="family">The family.</param>
    /// <param name="model">The model.</param>
    /// <exception cref="T:System.ArgumentException">The family does not fit the model's activation.</exception>
    [<CompiledName("WithFamily")>]
    let withFamily (family: ExpertFamily) (model: MoeModel) : MoeModel =
        createWith
            model.Design
            family
            model.Regressors
            model.RegressorIntercepts
            model.Gating
            model.GatingIntercepts
            model.Activation
            (if ExpertFamily.hasLevels family then
                 model.Sigmas
             else
                 Array.create model.Experts 1.0)
        |> fun next ->
            // A Student-t model keeps its degrees of freedom; any other starts from the family's.
            if family = model.Family then
                { next with
                    DegreesOfFreedom = Array.copy model.DegreesOfFreedom
                }
            else
                next

    /// <summary>The model with Student-t experts' degrees of freedom set (docs/math.md §14).</summary>
    /// <param name="degreesOfFreedom">k values ν_i &gt; 0 for a Student-t model; empty for any other family.</param>
    /// <param name="model">The model.</param>
    /// <exception cref="T:System.ArgumentException">The wrong number of values for the family, or a ν_i ≤ 0.</exception>
    [<CompiledName("WithDegreesOfFreedom")>]
    let withDegreesOfFreedom (degreesOfFreedom: float[]) (model: MoeModel) : MoeModel =
        Guard.notNull "degreesOfFreedom" degreesOfFreedom
        Guard.finiteVector "degreesOfFreedom" degreesOfFreedom

        let next =
            { model with
                DegreesOfFreedom = Array.copy degreesOfFreedom
            }

        validate next
        next

    /// <summary>The binomial model of <paramref name="model"/>'s linear predictors and gate reading one more input
    /// column, the last, as each row's number of trials (docs/math.md §12.5): what <c>moe generate --family binomial</c>
    /// samples (the sampler draws the trials as round(10·e^(z/2)), at least 1).</summary>
    /// <param name="model">A model without a row column (its column names are dropped).</param>
    /// <exception cref="T:System.ArgumentException">The model already has a row column (an exposure or trials).</exception>
    [<CompiledName("WithTrialsColumn")>]
    let withTrialsColumn (model: MoeModel) : MoeModel =
        validate model

        if model.Design.HasOffset then
            invalidArg "model" "The model already reads a row column (an exposure or trials)."

        let m = model.Dimension

        createWith
            (Design.create (m + 1) model.Design.ExpertColumns model.Design.GateColumns
             |> Design.withOffset m)
            ExpertFamily.Binomial
            model.Regressors
            model.RegressorIntercepts
            model.Gating
            model.GatingIntercepts
            model.Activation
            (Array.create model.Experts 1.0)

    /// <summary>The model with every expert's noise level set to σ.</summary>
    /// <param name="sigma">σ ≥ 0.</param>
    /// <param name="model">The model.</param>
    [<CompiledName("WithSigma")>]
    let withSigma (sigma: float) (model: MoeModel) : MoeModel =
        { model with
            Sigma = sigma
            Sigmas = Array.create model.Experts sigma
        }

    /// <summary>The model with the experts' noise levels set.</summary>
    /// <param name="sigmas">k levels σ_i ≥ 0.</param>
    /// <param name="model">The model.</param>
    [<CompiledName("WithSigmas")>]
    let withSigmas (sigmas: float[]) (model: MoeModel) : MoeModel =
        { model with
            Sigma = pooledSigma sigmas
            Sigmas = Array.copy sigmas
        }

    /// <summary>The same mixture with its experts in another order (docs/math.md §1: the labels of a mixture are not
    /// identified): new expert i is old expert <c>order[i]</c>, and the gate is rebased on the new last expert,
    /// w'_i = w_order[i] − w_order[k−1] and c'_i = c_order[i] − c_order[k−1] (with w_k = 0, c_k = 0), so every gate
    /// probability, prediction and likelihood is unchanged up to the rounding of the differences.</summary>
    /// <param name="order">A permutation of 0..k−1.</param>
    /// <param name="model">The model.</param>
    /// <exception cref="T:System.ArgumentException">order is not a permutation of 0..k−1.</exception>
    [<CompiledName("Relabel")>]
    let relabel (order: int[]) (model: MoeModel) : MoeModel =
        validate model
        Guard.notNull "order" order
        let k, dE, dG = model.Experts, model.ExpertDimension, model.GateDimension

        if order.Length <> k || (Array.sort order) <> Array.init k id then
            invalidArg
                "order"
                (Text.format
                    "order must be a permutation of 0..%d (k = %d), but is [%s]."
                    [| box (k - 1); box k; box (String.Join(", ", order)) |])

        let w (i: int) (t: int) =
            if i = k - 1 then 0.0 else model.Gating.[i, t]

        let c (i: int) =
            if i = k - 1 then 0.0 else model.GatingIntercepts.[i]

        let last = order.[k - 1]
        let sigmas = Array.init k (fun i -> model.Sigmas.[order.[i]])

        let dof =
            if model.DegreesOfFreedom.Length = 0 then
                [||]
            else
                Array.init k (fun i -> model.DegreesOfFreedom.[order.[i]])

        { model with
            Regressors = Array2D.init k dE (fun i t -> model.Regressors.[order.[i], t])
            Gating = Array2D.init (k - 1) dG (fun i t -> w order.[i] t - w last t)
            RegressorIntercepts = Array.init k (fun i -> model.RegressorIntercepts.[order.[i]])
            GatingIntercepts = Array.init (k - 1) (fun i -> c order.[i] - c last)
            Sigma = pooledSigma sigmas
            Sigmas = sigmas
            DegreesOfFreedom = dof
        }

    /// <summary>Gate probabilities p_i(x) for every sample.</summary>
    /// <param name="model">The model.</param>
    /// <param name="x">n×d inputs.</param>
    /// <returns>n×k probabilities; each row is non-negative and sums to 1.</returns>
    /// <remarks>O(n·k·d), one pass over x, one k-buffer for the whole call.</remarks>
    /// <exception cref="T:System.ArgumentException">x does not have d columns, or holds a NaN or infinite value.</exception>
    [<CompiledName("GateProbabilities")>]
    let gateProbabilities (model: MoeModel) (x: float[,]) : float[,] =
        ModelRows.checkInputs model x
        let n = x.GetLength 0
        let k = model.Experts
        let result = Array2D.zeroCreate n k

        Chunks.forChunks n (fun _ lo hi ->
            let buffer = Array.zeroCreate k

            for r in lo .. hi - 1 do
                Gate.logitsInto model.Gating model.GatingIntercepts (Gate.columnsOf model.Design) x r buffer
                Gate.softmaxInPlace buffer k

                for i in 0 .. k - 1 do
                    result.[r, i] <- buffer.[i])

        result

    /// <summary>The conditional mean ŷ(x) = Σ_i p_i(x) g(&lt;a_i, x&gt; + b_i) for every sample.</summary>
    /// <param name="model">The model.</param>
    /// <param name="x">n×d inputs.</param>
    /// <returns>n predictions.</returns>
    /// <exception cref="T:System.ArgumentException">x does not have d columns, or holds a NaN or infinite value.</exception>
    [<CompiledName("Predict")>]
    let predict (model: MoeModel) (x: float[,]) : float[] =
        ModelRows.checkInputs model x
        let n = x.GetLength 0
        let k = model.Experts
        let result = Array.zeroCreate n

        Chunks.forChunks n (fun _ lo hi ->
            let gate = Array.zeroCreate k
            let means = Array.zeroCreate k

            for r in lo .. hi - 1 do
                result.[r] <- ModelRows.mixtureRowInto model x r gate means)

        result

    /// <summary>One row's prediction without allocating, for hosts that score a row at a time (an ML.NET mapping, a
    /// service): fills <paramref name="gate"/> with p_i(x) and <paramref name="means"/> with g(&lt;a_i, x&gt; + b_i)
    /// and returns the mixture mean Σ_i p_i(x) g(&lt;a_i, x&gt; + b_i) — the arithmetic of
    /// <see cref="M:MoE.Core.MoeModelModule.GateProbabilities(MoE.Core.MoeModel,System.Double[0:,0:])"/> and
    /// <see cref="M:MoE.Core.MoeModelModule.Predict(MoE.Core.MoeModel,System.Double[0:,0:])"/> for that row, so
    /// the same bits.</summary>
    /// <param name="model">The model.</param>
    /// <param name="x">Inputs with d columns (a reused 1×d buffer, or a whole matrix).</param>
    /// <param name="row">The row of <paramref name="x"/> to predict.</param>
    /// <param name="gate">A buffer of at least k values; receives the gate probabilities.</param>
    /// <param name="means">A buffer of at least k values; receives the expert means.</param>
    /// <returns>The mixture mean.</returns>
    /// <exception cref="T:System.ArgumentException">x does not have d columns, the row is outside x, a buffer is
    /// shorter than k, or the row holds a NaN or infinite value.</exception>
    [<CompiledName("PredictRowInto")>]
    let predictRowInto (model: MoeModel) (x: float[,]) (row: int) (gate: float[]) (means: float[]) : float =
        Guard.notNull "model" (box model)
        Guard.columns "x" model.Dimension x
        let k = model.Experts

        if row < 0 || row >= x.GetLength 0 then
            invalidArg "row" (Text.format "Row %d is outside x's %d rows." [| box row; box (x.GetLength 0) |])

        if isNull gate || gate.Length < k then
            invalidArg "gate" (Text.format "The gate buffer needs k = %d values." [| box k |])

        if isNull means || means.Length < k then
            invalidArg "means" (Text.format "The means buffer needs k = %d values." [| box k |])

        for j in 0 .. model.Dimension - 1 do
            if not (Double.IsFinite x.[row, j]) then
                invalidArg "x" (Text.format "x[%d, %d] = %g is not finite." [| box row; box j; box x.[row, j] |])

        ModelRows.mixtureRowInto model x row gate means

    /// <summary>Per-sample log-likelihoods log Σ_i p_i(x) N(y | g(&lt;a_i, x&gt; + b_i), σ_i²), by log-sum-exp.</summary>
    /// <param name="model">The model (σ &gt; 0).</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>n log-likelihoods, finite for finite inputs: everything stays in log space, so a residual of
    /// many σ gives a large negative number, not −∞.</returns>
    /// <exception cref="T:System.ArgumentException">Shapes do not match, a value is NaN or infinite, or σ = 0.</exception>
    [<CompiledName("LogLikelihoods")>]
    let logLikelihoods (model: MoeModel) (x: float[,]) (y: float[]) : float[] =
        ModelRows.checkLikelihoodInputs model x y
        let n = x.GetLength 0
        let k = model.Experts
        let result = Array.zeroCreate n

        let logNorms, inv2s2, shapes = ModelRows.densityConstants model

        Chunks.forChunks n (fun _ lo hi ->
            let gate = Array.zeroCreate k
            let means = Array.zeroCreate k
            let joint = Array.zeroCreate k

            for r in lo .. hi - 1 do
                result.[r] <- ModelRows.logJointInto model logNorms inv2s2 shapes x y r gate means joint)

        result

    /// <summary>The total log-likelihood Σ_n log p(y_n | x_n) (summed in sample order).</summary>
    /// <param name="model">The model (σ &gt; 0).</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>The sum of <c>logLikelihoods</c>.</returns>
    /// <exception cref="T:System.ArgumentException">Shapes do not match, a value is NaN or infinite, or σ = 0.</exception>
    [<CompiledName("LogLikelihood")>]
    let logLikelihood (model: MoeModel) (x: float[,]) (y: float[]) : float =
        let ll = logLikelihoods model x y
        let mutable s = 0.0

        for v in ll do
            s <- s + v

        s

    /// <summary>Posterior responsibilities P(z = i | x, y) ∝ p_i(x) N(y | g(&lt;a_i, x&gt; + b_i), σ_i²).</summary>
    /// <param name="model">The model (σ &gt; 0).</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>n×k responsibilities; each row is non-negative and sums to 1.</returns>
    /// <exception cref="T:System.ArgumentException">Shapes do not match, a value is NaN or infinite, or σ = 0.</exception>
    [<CompiledName("Responsibilities")>]
    let responsibilities (model: MoeModel) (x: float[,]) (y: float[]) : float[,] =
        ModelRows.checkLikelihoodInputs model x y
        let n = x.GetLength 0
        let k = model.Experts
        let result = Array2D.zeroCreate n k

        let logNorms, inv2s2, shapes = ModelRows.densityConstants model

        Chunks.forChunks n (fun _ lo hi ->
            let gate = Array.zeroCreate k
            let means = Array.zeroCreate k
            let joint = Array.zeroCreate k

            for r in lo .. hi - 1 do
                let total =
                    ModelRows.logJointInto model logNorms inv2s2 shapes x y r gate means joint

                for i in 0 .. k - 1 do
                    result.[r, i] <- Math.Exp(joint.[i] - total))

        result
