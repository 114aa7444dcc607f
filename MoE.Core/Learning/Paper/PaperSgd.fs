namespace MoE.Core

/// <summary>The paper's three SGD runs (docs/math.md §6.2, §6.4): on the empirical L4 over A, on ℓ2 over (A, W),
/// and on L_log over W with A fixed. Each returns its final iterate with its outcome and hands the start and every
/// epoch's iterate to a snapshot callback (the figures' trajectories, <c>Trajectories</c>).</summary>
module internal PaperSgd =

    /// SGD on the empirical L4 from A ~ N(0, 1/d) (the seed's SGD-start stream).
    let l4
        (coefficients: TransformCoefficients)
        (settings: SgdL4Settings)
        (experts: int)
        (seed: int64)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        (snapshot: float[,] -> unit)
        : StageOutcome<float[,]> =
        let d = x.GetLength 1
        let rng = Rng.stream seed Streams.SgdL4Start
        let a0 = Array.init (experts * d) (fun _ -> rng.NextGaussian() / sqrt (float d))
        let unflat = Dense.unflatten experts d

        let loss xb yb (p: float[]) =
            let e = Losses.l4 coefficients settings.Weights (unflat p) xb yb
            e.Value, Array.init (experts * d) (fun idx -> e.Gradient.[idx / d, idx % d])

        let outcome =
            Sgd.minimize Stage.L4Sgd settings.Schedule seed x y context loss (unflat >> snapshot) a0

        {
            Value = unflat outcome.Value
            Iterations = outcome.Iterations
            FinalLoss = outcome.FinalLoss
            Reason = outcome.Reason
        }

    /// SGD on ℓ2 over (A, W) from A, W ~ N(0, 1/d) (the random-start stream; σ = 1 placeholder in the iterates).
    let l2
        (settings: SgdSettings)
        (experts: int)
        (activation: Activation)
        (seed: int64)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        (snapshot: MoeModel -> unit)
        : StageOutcome<MoeModel> =
        let k, d = experts, x.GetLength 1
        let rng = Rng.stream seed Streams.RandomStart
        let na, nw = k * d, (k - 1) * d
        let p0 = Array.init (na + nw) (fun _ -> rng.NextGaussian() / sqrt (float d))

        let split (p: float[]) =
            MoeModel.create
                (Array2D.init k d (fun i t -> p.[i * d + t]))
                (Array2D.init (k - 1) d (fun i t -> p.[na + i * d + t]))
                activation
                1.0

        let loss xb yb (p: float[]) =
            let e = Losses.squaredLoss (split p) xb yb

            e.Value,
            Array.append
                (Seq.cast<float> e.RegressorGradient |> Seq.toArray)
                (Seq.cast<float> e.GatingGradient |> Seq.toArray)

        let outcome =
            Sgd.minimize Stage.L2 settings seed x y context loss (split >> snapshot) p0

        {
            Value = split outcome.Value
            Iterations = outcome.Iterations
            FinalLoss = outcome.FinalLoss
            Reason = outcome.Reason
        }

    /// SGD on L_log over W from W = 0 with A, g and σ of the model fixed (paper §3.2, Fig. 2b).
    let gating
        (settings: SgdSettings)
        (model: MoeModel)
        (seed: int64)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        (snapshot: float[,] -> unit)
        : StageOutcome<float[,]> =
        let km1, d = model.Experts - 1, model.Dimension
        let unflat = Dense.unflatten km1 d

        let loss xb yb (p: float[]) =
            let e = Losses.logLikelihoodLoss { model with Gating = unflat p } xb yb
            e.Value, Array.init (km1 * d) (fun idx -> e.Gradient.[idx / d, idx % d])

        let outcome =
            Sgd.minimize
                Stage.GatingSgd
                settings
                seed
                x
                y
                context
                loss
                (unflat >> snapshot)
                (Array.zeroCreate (km1 * d))

        {
            Value = unflat outcome.Value
            Iterations = outcome.Iterations
            FinalLoss = outcome.FinalLoss
            Reason = outcome.Reason
        }
