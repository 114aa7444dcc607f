using Core = MoE.Core;

namespace MoE.Api;

/// <summary>The ground-truth families used by the paper's experiments.</summary>
public enum GroundTruthPreset
{
    /// <summary>a_i = e_i, w_i = e_{k+i} (needs d ≥ 2k−1).</summary>
    Orthogonal,
    /// <summary>a_i = e_i, w_i uniform on the sphere of radius R (needs d ≥ k).</summary>
    RandomGating,
    /// <summary>Unit regressors in random non-orthogonal directions, gating orthogonal to their span (needs d ≥ k+1).</summary>
    Random,
    /// <summary>Unit regressors in random non-orthogonal directions, gating anywhere on the sphere of radius R.</summary>
    RandomFreeGating,
}

/// <summary>Ground-truth models for experiments.</summary>
public static class GroundTruth
{
    /// <summary>A ground truth of the given family.</summary>
    /// <param name="preset">The family.</param>
    /// <param name="experts">k ≥ 2.</param>
    /// <param name="dimension">d (at least what the family needs).</param>
    /// <param name="activation">g.</param>
    /// <param name="sigma">σ ≥ 0.</param>
    /// <param name="radius">Norm R of each gating row (random families only).</param>
    /// <param name="seed">Seed of the random draws (random families only).</param>
    /// <exception cref="ArgumentOutOfRangeException">k or d too small for the family.</exception>
    public static MixtureOfExperts Create(
        GroundTruthPreset preset, int experts, int dimension, Activation activation, double sigma,
        double radius = 1.0, long seed = 1)
    {
        ArgumentNullException.ThrowIfNull(activation);
        var corePreset = preset switch
        {
            GroundTruthPreset.Orthogonal => Core.Preset.Orthogonal,
            GroundTruthPreset.RandomGating => Core.Preset.RandomGating,
            GroundTruthPreset.Random => Core.Preset.NewRandom(false),
            GroundTruthPreset.RandomFreeGating => Core.Preset.NewRandom(true),
            _ => throw new ArgumentOutOfRangeException(nameof(preset), preset, "Unknown ground-truth preset."),
        };
        return new(Core.GroundTruth.Create(corePreset, experts, dimension, activation.Inner, sigma, radius, seed));
    }

    /// <summary>A ground truth of the general model: <paramref name="model"/> (e.g. a preset) for standard covariates
    /// u, given intercepts and noise levels, expressed in the units of x = μ + s ⊙ u, so that
    /// <see cref="MixtureOfExperts.SampleCovariates"/> with the same μ and s draws its data.</summary>
    /// <param name="model">The model for standard covariates.</param>
    /// <param name="regressorIntercepts">b_i for standard covariates (k).</param>
    /// <param name="gatingIntercepts">c_i for standard covariates (k − 1).</param>
    /// <param name="sigmas">σ_i (k).</param>
    /// <param name="covariateMean">μ (d).</param>
    /// <param name="covariateScale">s (d, every entry &gt; 0).</param>
    /// <exception cref="ArgumentException">A length that does not match k or d, a non-finite value or a scale ≤ 0.</exception>
    public static MixtureOfExperts InCovariateUnits(MixtureOfExperts model, double[] regressorIntercepts,
        double[] gatingIntercepts, double[] sigmas, double[] covariateMean, double[] covariateScale)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(regressorIntercepts);
        ArgumentNullException.ThrowIfNull(gatingIntercepts);
        ArgumentNullException.ThrowIfNull(sigmas);
        ArgumentNullException.ThrowIfNull(covariateMean);
        ArgumentNullException.ThrowIfNull(covariateScale);
        return new(Core.GroundTruth.InCovariateUnits(model.Inner, regressorIntercepts, gatingIntercepts, sigmas,
            covariateMean, covariateScale));
    }

    /// <summary>Random intercepts for a ground truth of the general model: b_i, c_i ~ N(0, 1) from a stream of their
    /// own, so the preset drawn with the same seed does not change.</summary>
    /// <param name="experts">k ≥ 2.</param>
    /// <param name="seed">The seed.</param>
    /// <returns>k regressor intercepts and k − 1 gating intercepts.</returns>
    public static (double[] RegressorIntercepts, double[] GatingIntercepts) RandomIntercepts(int experts, long seed)
    {
        var (b, c) = Core.GroundTruth.RandomIntercepts(experts, seed);
        return (b, c);
    }
}
