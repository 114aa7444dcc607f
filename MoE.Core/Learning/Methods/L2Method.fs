namespace MoE.Core

/// <summary>The ℓ2 baseline (<c>FitMethod.L2</c>): mini-batch SGD on the mean-square loss over (A, W) from a random
/// start, the paper's model only; σ given, or implied by the residuals.</summary>
module internal L2Method =

    /// <summary>The ℓ2 baseline on a prepared problem (the rows in memory).</summary>
    let run (problem: Problem) : MethodResult =
        let config = problem.Config
        let rows = problem.Sample()

        let fitted =
            problem.Log.Run(
                Stage.L2,
                fun () ->
                    PaperSgd.l2
                        config.L2Sgd
                        config.Experts
                        config.Activation
                        config.Seed
                        rows.X
                        rows.Y
                        problem.Context
                        ignore
            )

        {
            Outcome =
                { fitted with
                    Value =
                        MoeModel.withSigma
                            (defaultArg config.Sigma (Sigma.implied fitted.Value rows.X rows.Y))
                            fitted.Value
                }
            Candidates = [||]
            Initializer = "random-start-1"
        }
