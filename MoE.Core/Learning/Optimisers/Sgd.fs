namespace MoE.Core

/// <summary>Settings of a mini-batch SGD run: a constant learning rate for the first half of the epochs, then a
/// linear decay to the final rate, with gradient-norm clipping.</summary>
type SgdSettings =
    {
        /// Passes over the data.
        Epochs: int
        /// Mini-batch size.
        BatchSize: int
        /// Learning rate for the first half of the epochs.
        LearningRate: float
        /// Learning rate reached by linear decay at the last epoch.
        FinalLearningRate: float
        /// Gradient-norm clipping threshold (∞ disables it).
        Clip: float
    }

/// Checks of <see cref="T:MoE.Core.SgdSettings"/>.
[<RequireQualifiedAccess>]
module SgdSettings =

    /// <summary>Checks every field; the message names the field (prefixed by <paramref name="name"/>) and the value.</summary>
    /// <param name="name">The settings' name in messages (e.g. "L2Sgd").</param>
    /// <param name="settings">The settings.</param>
    /// <exception cref="T:System.ArgumentException">A non-positive count, rate or clip.</exception>
    [<CompiledName("Validate")>]
    let validate (name: string) (settings: SgdSettings) : unit =
        Guard.notNull name (box settings)
        Guard.positiveInt (name + ".Epochs") settings.Epochs
        Guard.positiveInt (name + ".BatchSize") settings.BatchSize
        Guard.positive (name + ".LearningRate") settings.LearningRate
        Guard.positive (name + ".FinalLearningRate") settings.FinalLearningRate

        if not (settings.Clip > 0.0) then
            invalidArg
                (name + ".Clip")
                (Text.format "%s.Clip must be > 0, but was %s." [| box name; box (string settings.Clip) |])

/// <summary>Mini-batch SGD over a parameter vector (docs/math.md §6.4): the samples are reshuffled every epoch from
/// the seed's SGD-order stream, the gradient is clipped to the settings' norm, and every epoch's mean batch loss
/// is reported.</summary>
module internal Sgd =

    /// Learning rate at epoch e: constant for the first half, then linear decay to the final rate.
    let schedule (s: SgdSettings) (epoch: int) =
        let half = s.Epochs / 2

        if epoch < half then
            s.LearningRate
        else
            let f = float (epoch - half) / float (max 1 (s.Epochs - half - 1))
            s.LearningRate + (s.FinalLearningRate - s.LearningRate) * f

    /// <summary>Runs the schedule from p0; <paramref name="loss"/> xb yb p returns the value and gradient on a
    /// batch, <paramref name="snapshot"/> sees the start and every epoch's iterate.</summary>
    let minimize
        (stage: Stage)
        (settings: SgdSettings)
        (seed: int64)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        (loss: float[,] -> float[] -> float[] -> float * float[])
        (snapshot: float[] -> unit)
        (p0: float[])
        : StageOutcome<float[]> =
        let n, d = x.GetLength 0, x.GetLength 1
        let b = min settings.BatchSize n
        let xb = Array2D.zeroCreate b d
        let yb = Array.zeroCreate b
        let order = Array.init n id
        let rng = Rng.stream seed Streams.SgdOrder
        let p = Array.copy p0
        let mutable last = nan
        snapshot (Array.copy p)

        for epoch in 0 .. settings.Epochs - 1 do
            for i in n - 1 .. -1 .. 1 do
                let j = rng.NextInt(i + 1)
                let t = order.[i]
                order.[i] <- order.[j]
                order.[j] <- t

            let lr = schedule settings epoch
            let mutable sum = 0.0
            let mutable batches = 0

            for start in 0..b .. n - b do
                context.Cancellation.ThrowIfCancellationRequested()

                for i in 0 .. b - 1 do
                    let r = order.[start + i]
                    yb.[i] <- y.[r]

                    for t in 0 .. d - 1 do
                        xb.[i, t] <- x.[r, t]

                let value, g = loss xb yb p
                Divergence.check stage epoch value g
                let norm = sqrt (Array.sumBy (fun v -> v * v) g)
                let factor = if norm > settings.Clip then settings.Clip / norm else 1.0

                for i in 0 .. p.Length - 1 do
                    p.[i] <- p.[i] - lr * factor * g.[i]

                sum <- sum + value
                batches <- batches + 1

            last <- sum / float (max 1 batches)

            snapshot (Array.copy p)

            context.Progress
                {
                    Stage = stage
                    Iteration = epoch + 1
                    Loss = last
                }

        {
            Value = p
            Iterations = settings.Epochs
            FinalLoss = Some last
            Reason = StopReason.Completed
        }
