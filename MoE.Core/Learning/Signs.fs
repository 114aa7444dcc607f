namespace MoE.Core

/// <summary>Sign resolution (docs/math.md §6.3): L4 recovers each direction up to sign, and L_log is not
/// sign-invariant, so the signs are chosen by likelihood before the gating fit.</summary>
[<RequireQualifiedAccess>]
module Signs =

    /// <summary>Chooses the sign of each unit direction by likelihood: for each of the 2^k sign patterns, a short
    /// gating fit (40 L-BFGS iterations) on a seeded subsample, keeping the pattern of highest log-likelihood.</summary>
    /// <param name="directions">k unit directions (k×d).</param>
    /// <param name="activation">g.</param>
    /// <param name="sigma">σ &gt; 0 for the likelihood.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <param name="subsampleSize">Rows of the seeded subsample the candidates are judged on.</param>
    /// <param name="seed">The seed of the subsample.</param>
    /// <param name="context">Progress (one report per pattern, loss −log-likelihood/n) and cancellation.</param>
    /// <returns>The model of the best pattern (its gating fitted on the subsample), with 2^k candidates and the best
    /// −log-likelihood per sample.</returns>
    [<CompiledName("Resolve")>]
    let resolve
        (directions: float[,])
        (activation: Activation)
        (sigma: float)
        (x: float[,])
        (y: float[])
        (subsampleSize: int)
        (seed: int64)
        (context: RunContext)
        : StageOutcome<MoeModel> =
        let k, d = directions.GetLength 0, directions.GetLength 1
        let xs, ys = Sampling.subsample subsampleSize seed x y

        let candidates =
            [
                for pattern in 0 .. (1 <<< k) - 1 ->
                    let a =
                        Array2D.init k d (fun i t ->
                            (if (pattern >>> i) &&& 1 = 1 then -1.0 else 1.0) * directions.[i, t])

                    let start = MoeModel.create a (Array2D.zeroCreate (k - 1) d) activation sigma
                    let fitted = (Gating.fit start xs ys 40 context false).Value
                    let ll = MoeModel.logLikelihood fitted xs ys

                    context.Progress
                        {
                            Stage = "signs"
                            Iteration = pattern
                            Loss = -ll / float ys.Length
                        }

                    fitted, ll
            ]

        let best, ll = List.maxBy snd candidates

        {
            Value = best
            Iterations = candidates.Length
            FinalLoss = Some(-ll / float ys.Length)
            Reason = StopReason.Completed
        }
