using Microsoft.FSharp.Core;
using Core = MoE.Core;

namespace MoE.Api;

/// <summary>Mini-batch SGD settings: a constant learning rate for the first half of the epochs, then linear decay.</summary>
/// <param name="Epochs">Passes over the data.</param>
/// <param name="BatchSize">Mini-batch size.</param>
/// <param name="LearningRate">Rate for the first half of the epochs.</param>
/// <param name="FinalLearningRate">Rate reached at the last epoch.</param>
/// <param name="Clip">Gradient-norm clipping threshold.</param>
public sealed record SgdOptions(int Epochs, int BatchSize, double LearningRate, double FinalLearningRate, double Clip)
{
    internal Core.SgdSettings ToCore() => new(Epochs, BatchSize, LearningRate, FinalLearningRate, Clip);
}

/// <summary>The paper's SGD runs with their whole trajectories (for the reproduced figures).</summary>
public static class Experiments
{
    private static Core.RunContext Context(CancellationToken token) =>
        new(FuncConvert.FromAction<Core.TraceEntry>(_ => { }), token);

    /// <summary>SGD on the empirical L4 (paper eq. 7, polynomial Q4/Q2 centred, μ = 0.1, λ = 10, ridge = 4):
    /// the regressors after every epoch (index 0: the random start).</summary>
    public static double[][,] SgdL4Path(Dataset data, int experts, Activation activation, double sigma, SgdOptions sgd,
        long seed, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(activation);
        ArgumentNullException.ThrowIfNull(sgd);
        return Core.Learner.SgdL4Path(Core.Coefficients.Solve(activation.Inner, sigma), Core.L4WeightsModule.Create(0.1, 10.0, 4.0, true),
            sgd.ToCore(), experts, seed, data.X, data.Y, Context(cancellationToken));
    }

    /// <summary>SGD on ℓ2 over (A, W) from a random start: the model after every epoch.</summary>
    public static MixtureOfExperts[] SgdL2Path(Dataset data, int experts, Activation activation, SgdOptions sgd, long seed,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(activation);
        ArgumentNullException.ThrowIfNull(sgd);
        return Core.Learner.SgdL2Path(sgd.ToCore(), experts, activation.Inner, seed, data.X, data.Y, Context(cancellationToken))
            .Select(m => new MixtureOfExperts(m)).ToArray();
    }

    /// <summary>SGD on L_log over W from W = 0, with the regressors, g and σ of <paramref name="model"/> fixed:
    /// the gating after every epoch.</summary>
    public static double[][,] SgdGatingPath(Dataset data, MixtureOfExperts model, SgdOptions sgd, long seed,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sgd);
        return Core.Learner.SgdGatingPath(sgd.ToCore(), model.Inner, seed, data.X, data.Y, Context(cancellationToken));
    }

    /// <summary>Turns raw L4 rows into a model ready for L_log: dual-basis unit directions, signs chosen by
    /// likelihood over the 2^k patterns, gating fitted.</summary>
    public static MixtureOfExperts ResolveRegressors(double[,] regressors, Activation activation, double sigma, Dataset data, long seed)
    {
        ArgumentNullException.ThrowIfNull(regressors);
        ArgumentNullException.ThrowIfNull(activation);
        ArgumentNullException.ThrowIfNull(data);
        var directions = Core.SubspaceL4.Directions(regressors);
        return new MixtureOfExperts(Core.Polish.ResolveSigns(directions, activation.Inner, sigma, data.X, data.Y, 20_000, seed,
            Core.RunContextModule.Silent));
    }
}
