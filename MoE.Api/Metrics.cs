using Core = MoE.Core;

namespace MoE.Api;

/// <summary>Recovery errors of a fitted model against a ground truth (paper §4, aligned as docs/math.md §8 defines).</summary>
public sealed class RecoveryErrors
{
    internal RecoveryErrors(Core.RecoveryErrors e)
    {
        Inner = e;
        RegressorError = e.RegressorError;
        GatingError = e.GatingError;
        GatingDistance = e.GatingDistance;
        LiteralGatingError = e.LiteralGatingError;
        Permutation = e.Permutation.ToArray();
    }

    internal Core.RecoveryErrors Inner { get; }

    /// <summary>E_reg = 1 − max_π min_i |cos(â_i, a*_π(i))|.</summary>
    public double RegressorError { get; }

    /// <summary>E_gating after aligning experts by the regressors' matching and rebasing the reference expert.</summary>
    public double GatingError { get; }

    /// <summary>max_j ‖ŵ'_j − w*_j‖ after the same alignment.</summary>
    public double GatingDistance { get; }

    /// <summary>The paper's literal E_gating (no alignment; blind to label swaps).</summary>
    public double LiteralGatingError { get; }

    /// <summary>Fitted expert i matches true expert Permutation[i].</summary>
    public IReadOnlyList<int> Permutation { get; }
}

/// <summary>Parameter-recovery metrics.</summary>
public static class Metrics
{
    /// <summary>Compares a fitted model with the ground truth (same k and d).</summary>
    /// <exception cref="ArgumentException">k or d differ.</exception>
    public static RecoveryErrors Compare(MixtureOfExperts fitted, MixtureOfExperts truth)
    {
        ArgumentNullException.ThrowIfNull(fitted);
        ArgumentNullException.ThrowIfNull(truth);
        return new RecoveryErrors(Core.Metrics.Compare(fitted.Inner, truth.Inner));
    }

    /// <summary>The success threshold of every recovery study and acceptance table: 0.01.</summary>
    public const double SuccessThreshold = Core.Success.Threshold;

    /// <summary>Whether a fit recovered the truth: E_reg ≤ 0.01 and aligned E_gating ≤ 0.01.</summary>
    /// <param name="errors">The fit's errors.</param>
    public static bool IsRecovered(RecoveryErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        return Core.Success.IsRecovered(errors.Inner);
    }

    /// <summary>The median of repeated runs' values (the mean of the two middle values for an even count).</summary>
    /// <param name="values">At least one value.</param>
    /// <exception cref="ArgumentException">No values.</exception>
    public static double Median(IEnumerable<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return Core.Summary.Median(values);
    }
}
