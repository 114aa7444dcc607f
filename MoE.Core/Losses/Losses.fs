namespace MoE.Core

open System

/// <summary>A loss value with its gradient with respect to one parameter matrix.</summary>
type LossEvaluation =
    {
        /// The loss.
        Value: float
        /// ∂loss/∂parameters, the shape of the parameter matrix.
        Gradient: float[,]
    }

/// <summary>A loss value with its gradients with respect to the regressors and the gating parameters.</summary>
type JointLossEvaluation =
    {
        /// The loss.
        Value: float
        /// ∂loss/∂A (k×d).
        RegressorGradient: float[,]
        /// ∂loss/∂W ((k−1)×d).
        GatingGradient: float[,]
    }

/// <summary>The regularisers of L4 (paper eq. 7): mu weighs the −Σ t2 term, lambda the normalisation
/// Σ(E[Q2 t3] − 1)², ridge the (ridge/2)‖A‖²_F term (the paper's δ, renamed: δ is also Q2's coefficient).</summary>
type L4Weights =
    {
        /// μ ≥ 0.
        Mu: float
        /// λ ≥ 0.
        Lambda: float
        /// The ridge weight ≥ 0.
        Ridge: float
        /// Whether Q4(y) and Q2(y) are centred (their unit-expert means subtracted) in the empirical loss.
        Centred: bool
    }

/// Construction and checks of <see cref="T:MoE.Core.L4Weights"/>.
[<RequireQualifiedAccess>]
module L4Weights =

    /// <summary>Checks μ, λ, ridge ≥ 0 and finite.</summary>
    /// <param name="weights">The weights.</param>
    /// <exception cref="T:System.ArgumentException">A negative or non-finite weight.</exception>
    [<CompiledName("Validate")>]
    let validate (weights: L4Weights) : unit =
        Guard.notNull "weights" (box weights)
        Guard.nonNegative "mu" weights.Mu
        Guard.nonNegative "lambda" weights.Lambda
        Guard.nonNegative "ridge" weights.Ridge

    /// <summary>Validated weights.</summary>
    /// <param name="mu">μ ≥ 0.</param>
    /// <param name="lambda">λ ≥ 0.</param>
    /// <param name="ridge">The ridge ≥ 0.</param>
    /// <param name="centred">Whether Q4, Q2 are centred in the empirical loss.</param>
    /// <returns>The weights.</returns>
    [<CompiledName("Create")>]
    let create (mu: float) (lambda: float) (ridge: float) (centred: bool) : L4Weights =
        let w =
            {
                Mu = mu
                Lambda = lambda
                Ridge = ridge
                Centred = centred
            }

        validate w
        w

/// <summary>
/// Empirical losses over a sample matrix with analytic gradients; each evaluation is one pass over the samples
/// with O(k) scratch memory (no per-sample allocation). Derivations: docs/math.md §4.1, §5.
/// </summary>
[<RequireQualifiedAccess>]
module Losses =

    let private checkData (dimension: int) (x: float[,]) (y: float[]) =
        Guard.columns "x" dimension x
        Guard.sameRows "x" x "y" y

        if y.Length = 0 then
            invalidArg "y" "The loss needs at least one sample; y is empty."

    /// <summary>The empirical L4 of paper eq. (7) and its gradient with respect to A.</summary>
    /// <param name="coefficients">Q4/Q2 coefficients and c, c' for the data's g and σ.</param>
    /// <param name="weights">μ, λ, ridge and centring.</param>
    /// <param name="regressors">A (k×d), k ≥ 1.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>L4(A) = Σ_{i≠j} mean[Q4·t1(a_i,a_j,x)] − μ Σ_i mean[Q4·t2(a_i,x)] + λ Σ_i (mean[Q2·t3(a_i,x)] − 1)²
    /// + (ridge/2)‖A‖² and ∂L4/∂A.</returns>
    /// <remarks>With s = Ax, n_i = |a_i|², G = AAᵀ, q = Q4(y)/c, ρ = Q2(y)/c', the gradient is Cᵀx̄ + (terms in A)
    /// where the per-sample coefficients and the k×k statistics mean[q], mean[q s_i s_j], mean[ρ], mean[ρ s_i x]
    /// are all accumulated in the single pass (docs/math.md §4.1).</remarks>
    [<CompiledName("L4")>]
    let l4
        (coefficients: TransformCoefficients)
        (weights: L4Weights)
        (regressors: float[,])
        (x: float[,])
        (y: float[])
        : LossEvaluation =
        Guard.notNull "coefficients" (box coefficients)
        L4Weights.validate weights
        Guard.finiteMatrix "regressors" regressors
        let k = regressors.GetLength 0
        let d = regressors.GetLength 1
        checkData d x y
        let n = y.Length
        let a = regressors
        let mu, lambda = weights.Mu, weights.Lambda
        let q4Shift = if weights.Centred then coefficients.Q4Mean else 0.0
        let q2Shift = if weights.Centred then coefficients.Q2Mean else 0.0
        // Gram matrix and squared norms.
        let g =
            Array2D.init k k (fun i j -> Seq.sum (seq { for t in 0 .. d - 1 -> a.[i, t] * a.[j, t] }))

        let norms = Array.init k (fun i -> g.[i, i])
        let sums = L4Kernel.sums coefficients q4Shift q2Shift mu a g norms x y
        let sumQ, sumRho, v1, v2 = sums.SumQ, sums.SumRho, sums.V1, sums.V2
        let m, qss, p, r = sums.M, sums.Qss, sums.P, sums.R

        let inv = 1.0 / float n
        let meanQ = sumQ * inv
        let meanRho = sumRho * inv
        let mutable value = (v1 - mu * v2) * inv
        let mutable ridgeTerm = 0.0

        for i in 0 .. k - 1 do
            let mi = m.[i] * inv
            value <- value + lambda * (mi - 1.0) * (mi - 1.0)
            ridgeTerm <- ridgeTerm + norms.[i]

        value <- value + 0.5 * weights.Ridge * ridgeTerm
        let grad = Array2D.zeroCreate k d

        for l in 0 .. k - 1 do
            let ml = m.[l] * inv
            let nl = norms.[l]
            // Coefficient of a_l itself: t1's 2Σ_{j≠l}(2n_j q̄ − 2 mean[q s_j²]), t2's −μ(12 n_l q̄ − 12 mean[q s_l²]),
            // λ's −4λ(M_l − 1) ρ̄, and the ridge.
            let mutable self =
                -mu * (12.0 * nl * meanQ - 12.0 * qss.[l, l] * inv)
                - 4.0 * lambda * (ml - 1.0) * meanRho
                + weights.Ridge

            for j in 0 .. k - 1 do
                if j <> l then
                    self <- self + 2.0 * (2.0 * norms.[j] * meanQ - 2.0 * qss.[j, j] * inv)

            for t in 0 .. d - 1 do
                let mutable gt =
                    p.[l, t] * inv + self * a.[l, t] + 4.0 * lambda * (ml - 1.0) * r.[l, t] * inv

                for j in 0 .. k - 1 do
                    if j <> l then
                        // t1's 2Σ_{j≠l}(4G_lj q̄ − 4 mean[q s_l s_j]) a_j
                        gt <- gt + 2.0 * (4.0 * g.[l, j] * meanQ - 4.0 * qss.[l, j] * inv) * a.[j, t]

                grad.[l, t] <- gt

        { Value = value; Gradient = grad }

    /// <summary>The empirical L_log of paper eq. (9), −mean log Σ_i p_i(x; W) N(y | g(&lt;a_i, x&gt;), σ²), and its
    /// gradient with respect to W (A, g and σ fixed).</summary>
    /// <param name="model">A, W, g and σ &gt; 0.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>The loss and ∂/∂w_i = −mean[(post_i(x,y) − p_i(x))·x], i &lt; k.</returns>
    [<CompiledName("LogLikelihoodLoss")>]
    let logLikelihoodLoss (model: MoeModel) (x: float[,]) (y: float[]) : LossEvaluation =
        MoeModel.validate model
        ModelRows.checkLikelihoodInputs model x y
        checkData model.Dimension x y
        let k, d, n = model.Experts, model.Dimension, y.Length
        let gate = Array.zeroCreate k
        let means = Array.zeroCreate k
        let joint = Array.zeroCreate k
        let grad = Array2D.zeroCreate (k - 1) d
        let logNorms, inv2s2, shapes = ModelRows.densityConstants model
        let mutable total = 0.0

        for row in 0 .. n - 1 do
            let ll =
                ModelRows.logJointInto model logNorms inv2s2 shapes x y row gate means joint

            total <- total + ll

            for i in 0 .. k - 2 do
                let diff = Math.Exp(joint.[i] - ll) - Math.Exp gate.[i]

                for t in 0 .. d - 1 do
                    grad.[i, t] <- grad.[i, t] - diff * x.[row, t]

        let inv = 1.0 / float n

        {
            Value = -total * inv
            Gradient = Array2D.map (fun v -> v * inv) grad
        }

    /// <summary>The mean-square loss ℓ2 = mean (ŷ(x) − y)² with ŷ = Σ_i p_i(x) g(&lt;a_i, x&gt;), and its gradients
    /// with respect to A and W.</summary>
    /// <param name="model">A, W and g (σ is not used).</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <returns>With e = ŷ − y: ∂/∂a_i = mean[2e p_i g'(s_i) x], ∂/∂w_i = mean[2e p_i (g(s_i) − ŷ) x].</returns>
    [<CompiledName("SquaredLoss")>]
    let squaredLoss (model: MoeModel) (x: float[,]) (y: float[]) : JointLossEvaluation =
        MoeModel.validate model
        checkData model.Dimension x y
        let k, d, n = model.Experts, model.Dimension, y.Length
        let a = model.Regressors
        let p = Array.zeroCreate k
        let gv = Array.zeroCreate k
        let gd = Array.zeroCreate k
        let gradA = Array2D.zeroCreate k d
        let gradW = Array2D.zeroCreate (k - 1) d
        let mutable total = 0.0

        for row in 0 .. n - 1 do
            Gate.logitsInto model.Gating model.GatingIntercepts null x row p
            Gate.softmaxInPlace p k
            let mutable yhat = 0.0

            for i in 0 .. k - 1 do
                let mutable si = 0.0

                for t in 0 .. d - 1 do
                    si <- si + a.[i, t] * x.[row, t]

                let si = si + model.RegressorIntercepts.[i]
                gv.[i] <- model.Activation.Value si
                gd.[i] <- model.Activation.Derivative si
                yhat <- yhat + p.[i] * gv.[i]

            let e = yhat - y.[row]
            total <- total + e * e

            for i in 0 .. k - 1 do
                let ca = 2.0 * e * p.[i] * gd.[i]
                let cw = 2.0 * e * p.[i] * (gv.[i] - yhat)

                for t in 0 .. d - 1 do
                    let xt = x.[row, t]
                    gradA.[i, t] <- gradA.[i, t] + ca * xt

                    if i < k - 1 then
                        gradW.[i, t] <- gradW.[i, t] + cw * xt

        let inv = 1.0 / float n

        {
            Value = total * inv
            RegressorGradient = Array2D.map (fun v -> v * inv) gradA
            GatingGradient = Array2D.map (fun v -> v * inv) gradW
        }
