namespace MoE.Core

open System

/// <summary>
/// The mixture of experts of Makkuva et al., eq. (1): x ~ N(0, I_d); z ~ Categorical(p(x)) with the softmax
/// gate p_i(x) ∝ exp(&lt;w_i, x&gt;), w_k = 0; y = g(&lt;a_z, x&gt;) + ξ, ξ ~ N(0, σ²).
/// </summary>
/// <remarks>
/// Shapes: <c>Regressors</c> is k×d (row i = a_i), <c>Gating</c> is (k−1)×d (row i = w_i; the k-th gate is
/// fixed at 0). Build one with <c>MoeModel.create</c>, which checks k ≥ 2, consistent shapes, finite values
/// and σ ≥ 0, and copies the arrays, so a model is an immutable value.
/// </remarks>
type MoeModel =
    {
        /// k×d regressors; row i is a_i.
        Regressors: float[,]
        /// (k−1)×d gating parameters; row i is w_i, and w_k = 0.
        Gating: float[,]
        /// The expert non-linearity g.
        Activation: Activation
        /// The noise standard deviation σ ≥ 0.
        Sigma: float
    }

    /// The number of experts k.
    member this.Experts = this.Regressors.GetLength 0
    /// The input dimension d.
    member this.Dimension = this.Regressors.GetLength 1

/// Construction, validation and the per-sample kernels of <see cref="T:MoE.Core.MoeModel"/>.
[<RequireQualifiedAccess>]
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

        if k < 2 then
            invalidArg
                "regressors"
                (sprintf
                    "A mixture needs k >= 2 experts, but regressors has %d row(s) (shape %s)."
                    k
                    (Guard.shape model.Regressors))

        if d < 1 then
            invalidArg
                "regressors"
                (sprintf "regressors must have at least one column, but has shape %s." (Guard.shape model.Regressors))

        if model.Gating.GetLength 0 <> k - 1 || model.Gating.GetLength 1 <> d then
            invalidArg
                "gating"
                (sprintf
                    "gating must be (k-1)x d = %dx%d to match regressors (%s), but has shape %s."
                    (k - 1)
                    d
                    (Guard.shape model.Regressors)
                    (Guard.shape model.Gating))

        Guard.finiteMatrix "regressors" model.Regressors
        Guard.finiteMatrix "gating" model.Gating
        Activation.validate model.Activation
        Guard.nonNegative "sigma" model.Sigma

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
                Sigma = sigma
            }

        validate model
        model

    let private checkInputs (model: MoeModel) (x: float[,]) =
        Guard.notNull "model" (box model)
        Guard.columns "x" model.Dimension x
        Guard.finiteMatrix "x" x

    let internal checkLikelihoodInputs (model: MoeModel) (x: float[,]) (y: float[]) =
        checkInputs model x
        Guard.sameRows "x" x "y" y
        Guard.finiteVector "y" y

        if not (model.Sigma > 0.0) then
            invalidArg
                "model"
                (sprintf "Likelihoods need a noise level sigma > 0, but the model has sigma = %s." (string model.Sigma))

    /// <summary>The expert means g(&lt;a_i, x_row&gt;), i = 1..k, into <paramref name="means"/>. Unchecked.</summary>
    let inline internal expertMeansInto (model: MoeModel) (x: float[,]) (row: int) (means: float[]) =
        let a = model.Regressors
        let d = a.GetLength 1

        for i in 0 .. a.GetLength 0 - 1 do
            let mutable s = 0.0

            for j in 0 .. d - 1 do
                s <- s + a.[i, j] * x.[row, j]

            means.[i] <- model.Activation.Value s

    /// <summary>Gate probabilities p_i(x) for every sample.</summary>
    /// <param name="model">The model.</param>
    /// <param name="x">n×d inputs.</param>
    /// <returns>n×k probabilities; each row is non-negative and sums to 1.</returns>
    /// <remarks>O(n·k·d), one pass over x, one k-buffer for the whole call.</remarks>
    /// <exception cref="T:System.ArgumentException">x does not have d columns, or holds a NaN or infinite value.</exception>
    [<CompiledName("GateProbabilities")>]
    let gateProbabilities (model: MoeModel) (x: float[,]) : float[,] =
        checkInputs model x
        let n = x.GetLength 0
        let k = model.Experts
        let result = Array2D.zeroCreate n k

        Chunks.forChunks n (fun _ lo hi ->
            let buffer = Array.zeroCreate k

            for r in lo .. hi - 1 do
                Gate.logitsInto model.Gating x r buffer
                Gate.softmaxInPlace buffer k

                for i in 0 .. k - 1 do
                    result.[r, i] <- buffer.[i])

        result

    /// <summary>The conditional mean ŷ(x) = Σ_i p_i(x) g(&lt;a_i, x&gt;) for every sample.</summary>
    /// <param name="model">The model.</param>
    /// <param name="x">n×d inputs.</param>
    /// <returns>n predictions.</returns>
    /// <exception cref="T:System.ArgumentException">x does not have d columns, or holds a NaN or infinite value.</exception>
    [<CompiledName("Predict")>]
    let predict (model: MoeModel) (x: float[,]) : float[] =
        checkInputs model x
        let n = x.GetLength 0
        let k = model.Experts
        let result = Array.zeroCreate n

        Chunks.forChunks n (fun _ lo hi ->
            let gate = Array.zeroCreate k
            let means = Array.zeroCreate k

            for r in lo .. hi - 1 do
                Gate.logitsInto model.Gating x r gate
                Gate.softmaxInPlace gate k
                expertMeansInto model x r means
                let mutable s = 0.0

                for i in 0 .. k - 1 do
                    s <- s + gate.[i] * means.[i]

                result.[r] <- s)

        result

    /// For one sample: fills `gate` with log p_i(x), `means` with g(<a_i,x>), `joint` with
    /// log p_i(x) + log N(y | g(<a_i,x>), σ²), and returns log Σ_i exp(joint_i), the sample's log-likelihood.
    /// Buffers of length k, owned by the caller. Unchecked.
    let inline internal logJointInto
        (model: MoeModel)
        (x: float[,])
        (y: float[])
        (row: int)
        (gate: float[])
        (means: float[])
        (joint: float[])
        =
        let k = model.Experts
        let sigma = model.Sigma
        let logNorm = -0.5 * Math.Log(2.0 * Math.PI * sigma * sigma)
        let inv2s2 = 0.5 / (sigma * sigma)
        Gate.logitsInto model.Gating x row gate
        let lseGate = Gate.logSumExp gate k
        expertMeansInto model x row means

        for i in 0 .. k - 1 do
            let e = y.[row] - means.[i]
            gate.[i] <- gate.[i] - lseGate
            joint.[i] <- gate.[i] + logNorm - e * e * inv2s2

        Gate.logSumExp joint k

    /// <summary>Per-sample log-likelihoods log Σ_i p_i(x) N(y | g(&lt;a_i, x&gt;), σ²), by log-sum-exp.</summary>
    /// <param name="model">The model (σ &gt; 0).</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>n log-likelihoods, finite for finite inputs: everything stays in log space, so a residual of
    /// many σ gives a large negative number, not −∞.</returns>
    /// <exception cref="T:System.ArgumentException">Shapes do not match, a value is NaN or infinite, or σ = 0.</exception>
    [<CompiledName("LogLikelihoods")>]
    let logLikelihoods (model: MoeModel) (x: float[,]) (y: float[]) : float[] =
        checkLikelihoodInputs model x y
        let n = x.GetLength 0
        let k = model.Experts
        let result = Array.zeroCreate n

        Chunks.forChunks n (fun _ lo hi ->
            let gate = Array.zeroCreate k
            let means = Array.zeroCreate k
            let joint = Array.zeroCreate k

            for r in lo .. hi - 1 do
                result.[r] <- logJointInto model x y r gate means joint)

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

    /// <summary>Posterior responsibilities P(z = i | x, y) ∝ p_i(x) N(y | g(&lt;a_i, x&gt;), σ²).</summary>
    /// <param name="model">The model (σ &gt; 0).</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>n×k responsibilities; each row is non-negative and sums to 1.</returns>
    /// <exception cref="T:System.ArgumentException">Shapes do not match, a value is NaN or infinite, or σ = 0.</exception>
    [<CompiledName("Responsibilities")>]
    let responsibilities (model: MoeModel) (x: float[,]) (y: float[]) : float[,] =
        checkLikelihoodInputs model x y
        let n = x.GetLength 0
        let k = model.Experts
        let result = Array2D.zeroCreate n k

        Chunks.forChunks n (fun _ lo hi ->
            let gate = Array.zeroCreate k
            let means = Array.zeroCreate k
            let joint = Array.zeroCreate k

            for r in lo .. hi - 1 do
                let total = logJointInto model x y r gate means joint

                for i in 0 .. k - 1 do
                    result.[r, i] <- Math.Exp(joint.[i] - total))

        result
