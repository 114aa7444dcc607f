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
}
