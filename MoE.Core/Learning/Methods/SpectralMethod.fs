namespace MoE.Core

/// <summary>The spectral method of Makkuva, Oh, Kannan and Viswanath (ICML 2019; <c>FitMethod.Spectral</c>):
/// third-order moments for the regressors, then maximum likelihood in the gate and the noise with the regressors
/// fixed.</summary>
module internal SpectralMethod =

    /// <summary>The spectral method on a prepared problem.</summary>
    /// <exception cref="T:System.ArgumentException">The moments cannot give a start (d &lt; k, non-finite moments, a
    /// failed decomposition): the message says why.</exception>
    let run (problem: Problem) : MethodResult =
        let config = problem.Config

        let proposal =
            Candidates.moments config problem.Sigma0 problem.Working
            |> Result.bind (fun moments -> Initializers.spectral moments config.Experts config.Seed)
            |> Result.defaultWith (fun reason ->
                invalidArg "data" (Text.format "The spectral method cannot start: %s." [| box reason |]))

        let start =
            problem.Log.Direct(
                Stage.Spectral,
                fun () ->
                    let rows = problem.Sample()

                    Selection.startModel
                        proposal
                        config.Activation
                        problem.Sigma0
                        rows.X
                        rows.Y
                        config.Seed
                        problem.Context
            )

        let settings =
            { Chain.settings config problem.WorkingSd with
                FixRegressors = true
            }

        {
            Outcome = Chain.maximumLikelihood settings start problem.Working problem.Context problem.Log
            Candidates = [||]
            Initializer = "spectral"
        }
