namespace MoE.Core

/// <summary>The paper's SGD runs with their whole trajectories: the iterates the figures plot (docs/math.md §6.2,
/// §6.4). Index 0 is the start; index e is the iterate after epoch e.</summary>
[<RequireQualifiedAccess>]
module Trajectories =

    /// <summary>SGD on the empirical L4 from A ~ N(0, 1/d): A after every epoch.</summary>
    /// <param name="coefficients">Q4/Q2 coefficients for the data's g and σ.</param>
    /// <param name="settings">Weights and schedule.</param>
    /// <param name="experts">k.</param>
    /// <param name="seed">The seed of the start and of the sample order.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <param name="context">Progress (mean loss per epoch) and cancellation.</param>
    /// <returns>Epochs + 1 iterates.</returns>
    [<CompiledName("SgdL4Path")>]
    let sgdL4Path
        (coefficients: TransformCoefficients)
        (settings: SgdL4Settings)
        (experts: int)
        (seed: int64)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        : float[,][] =
        let path = ResizeArray<float[,]>()
        PaperSgd.l4 coefficients settings experts seed x y context path.Add |> ignore
        path.ToArray()

    /// <summary>Mini-batch SGD on ℓ2 over (A, W) from A, W ~ N(0, 1/d): the model after every epoch.</summary>
    /// <param name="settings">The schedule.</param>
    /// <param name="experts">k.</param>
    /// <param name="activation">g.</param>
    /// <param name="seed">The seed of the start and of the sample order.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <param name="context">Progress and cancellation.</param>
    /// <returns>Epochs + 1 models (σ = 1 placeholders).</returns>
    [<CompiledName("SgdL2Path")>]
    let sgdL2Path
        (settings: SgdSettings)
        (experts: int)
        (activation: Activation)
        (seed: int64)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        : MoeModel[] =
        let path = ResizeArray<MoeModel>()
        PaperSgd.l2 settings experts activation seed x y context path.Add |> ignore
        path.ToArray()

    /// <summary>Mini-batch SGD on L_log over W with A, g and σ of <paramref name="model"/> fixed (paper §3.2,
    /// Fig. 2b), from W = 0: W after every epoch.</summary>
    /// <param name="settings">The schedule.</param>
    /// <param name="model">A, g and σ &gt; 0 (its W is not used).</param>
    /// <param name="seed">The seed of the sample order.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <param name="context">Progress and cancellation.</param>
    /// <returns>Epochs + 1 gating matrices.</returns>
    [<CompiledName("SgdGatingPath")>]
    let sgdGatingPath
        (settings: SgdSettings)
        (model: MoeModel)
        (seed: int64)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        : float[,][] =
        let path = ResizeArray<float[,]>()
        PaperSgd.gating settings model seed x y context path.Add |> ignore
        path.ToArray()
