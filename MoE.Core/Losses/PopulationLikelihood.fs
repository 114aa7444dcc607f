namespace MoE.Core

open System

/// <summary>The population L_log of paper eq. (9): its infinite-sample value and W-gradient by product Gauss–Hermite
/// quadrature over the span of the truth's and the learner's parameters (docs/math.md §5.3).</summary>
[<RequireQualifiedAccess>]
module PopulationLikelihood =

    /// <summary>The population L_log(W; A) of paper eq. (9) and its gradient with respect to W.</summary>
    /// <param name="truth">The data distribution.</param>
    /// <param name="model">The learner's A, W, g and σ &gt; 0 (A, g and σ are held fixed).</param>
    /// <param name="options">Quadrature settings: product Gauss–Hermite over span{a*, w*, a, w} and over ξ.</param>
    /// <returns>−E log Σ_i p_i(x;W) N(y | g(&lt;a_i,x&gt;), σ²) and −E[(post_i − p_i)x].</returns>
    /// <exception cref="T:System.InvalidOperationException">The product rule exceeds MaxNodes (the span has
    /// dimension up to 4k−2, so this is for small k).</exception>
    [<CompiledName("LogLikelihoodLoss")>]
    let logLikelihoodLoss (truth: MoeModel) (model: MoeModel) (options: PopulationOptions) : LossEvaluation =
        MoeModel.validate truth
        MoeModel.validate model
        Population.validateOptions options

        if model.Dimension <> truth.Dimension then
            invalidArg
                "model"
                (Text.format
                    "The model has d = %d but the truth has d = %d."
                    [| box model.Dimension; box truth.Dimension |])

        if not (model.Sigma > 0.0) then
            invalidArg
                "model"
                (Text.format "L_log needs sigma > 0, but the model has sigma = %s." [| box (string model.Sigma) |])

        if model.HasIntercepts || not model.HasCommonSigma then
            invalidArg
                "model"
                "Population values are for the paper's model: no intercepts and one sigma (docs/math.md §4.3)."

        if truth.HasIntercepts || not truth.HasCommonSigma then
            invalidArg
                "truth"
                "Population values are for the paper's model: no intercepts and one sigma (docs/math.md §4.3)."

        let kt, k, d = truth.Experts, model.Experts, model.Dimension

        let u =
            Dense.orthonormalBasis (
                Array.concat
                    [
                        Dense.rows truth.Regressors
                        Dense.rows truth.Gating
                        Dense.rows model.Regressors
                        Dense.rows model.Gating
                    ]
            )

        let r = u.Length

        let proj (m: float[,]) =
            Dense.rows m |> Array.map (fun a -> u |> Array.map (Dense.dot a))

        let atz, wtz, az, wz =
            proj truth.Regressors, proj truth.Gating, proj model.Regressors, proj model.Gating

        let noise = Quadrature.gaussHermite options.NoiseNodes
        let axes = Array.create r (Quadrature.gaussHermite options.GateNodes)
        let pt = Array.zeroCreate kt
        let logp = Array.zeroCreate k
        let means = Array.zeroCreate k
        let joint = Array.zeroCreate k
        let gradZ = Array.init (k - 1) (fun _ -> Array.zeroCreate r)
        let sigma = model.Sigma
        let logNorm = -0.5 * Math.Log(2.0 * Math.PI * sigma * sigma)
        let mutable value = 0.0

        Population.product axes options.MaxNodes "The population L_log" (fun z w ->
            Population.gateInto wtz z pt

            for i in 0 .. k - 2 do
                logp.[i] <- Dense.dot wz.[i] z

            logp.[k - 1] <- 0.0
            let lse = Gate.logSumExp logp k

            for i in 0 .. k - 1 do
                logp.[i] <- logp.[i] - lse
                means.[i] <- model.Activation.Value(Dense.dot az.[i] z)

            for m in 0 .. kt - 1 do
                let wm = w * pt.[m]

                if wm > 0.0 then
                    let mean = truth.Activation.Value(Dense.dot atz.[m] z)

                    for q in 0 .. noise.Count - 1 do
                        let y = mean + truth.Sigma * noise.Nodes.[q]

                        for i in 0 .. k - 1 do
                            let e = (y - means.[i]) / sigma
                            joint.[i] <- logp.[i] + logNorm - 0.5 * e * e

                        let ll = Gate.logSumExp joint k
                        let wq = wm * noise.Weights.[q]
                        value <- value - wq * ll

                        for i in 0 .. k - 2 do
                            let diff = Math.Exp(joint.[i] - ll) - Math.Exp logp.[i]

                            for a in 0 .. r - 1 do
                                gradZ.[i].[a] <- gradZ.[i].[a] - wq * diff * z.[a])

        {
            Value = value
            Gradient =
                Array2D.init (k - 1) d (fun i t -> Seq.sum (seq { for a in 0 .. r - 1 -> u.[a].[t] * gradZ.[i].[a] }))
        }
