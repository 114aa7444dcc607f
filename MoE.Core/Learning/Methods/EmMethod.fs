namespace MoE.Core

/// <summary>The EM baseline (<c>FitMethod.Em</c>): maximum likelihood from random starts — from the one start
/// directly, from several the best of a screening (Candidates.screenAndPolish).</summary>
module internal EmMethod =

    /// <summary>The EM method on a prepared problem.</summary>
    let run (problem: Problem) : MethodResult =
        let config = problem.Config
        let k, d, g = config.Experts, problem.Working.Dimension, config.Activation

        let starts =
            Initializers.randomStarts
                config.Family
                problem.WorkingMean
                k
                problem.Design
                g
                problem.Sigma0
                config.Intercepts
                config.RandomStarts
                config.Seed
            |> Array.map (Initializers.inFamily config.Family config.DegreesOfFreedom)

        if starts.Length = 1 then
            // A random start is a model: no rows are needed to make it.
            let start =
                Selection.startModel
                    starts.[0]
                    g
                    problem.Sigma0
                    (Array2D.zeroCreate 0 d)
                    [||]
                    config.Seed
                    problem.Context

            {
                Outcome =
                    Chain.maximumLikelihood
                        (Chain.settings config problem.WorkingSd)
                        start
                        problem.Working
                        problem.Context
                        problem.Log
                Candidates = [||]
                Initializer = starts.[0].Initializer
            }
        else
            Candidates.screenAndPolish problem (starts |> Array.map Ok) problem.Sigma0
