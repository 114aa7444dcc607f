using Core = MoE.Core;

namespace MoE.Api;

/// <summary>What kind of response an expert models (docs/math.md §12): its density given the linear predictor
/// η_i = ⟨a_i, x⟩ + b_i. Mirrors the core's <c>ExpertFamily</c> case for case, in order.</summary>
public enum ExpertFamily
{
    /// <summary>y = g(η_i) + σ_i ξ, ξ ~ N(0, 1): continuous responses (the default).</summary>
    Gaussian,
    /// <summary>Counts: y ~ Poisson(e^η_i), the log link. The activation must be the identity.</summary>
    Poisson,
    /// <summary>Yes/no outcomes coded 0 or 1: P(y = 1) = 1/(1 + e^−η_i), the logit link. The activation must be the
    /// identity.</summary>
    Bernoulli,
    /// <summary>Heavy tails: y = η_i + σ_i ε, ε ~ t(ν_i), a robust regression per expert whose degrees of freedom are
    /// estimated (or fixed with <see cref="FitOptions.DegreesOfFreedom"/>). The activation must be the identity.</summary>
    StudentT,
    /// <summary>Successes out of each row's n trials: y ~ Binomial(n, 1/(1 + e^−η_i)), the logit link; the trials are a
    /// column named by <see cref="ColumnRoles.Trials"/>. The model's means are probabilities of a success. The
    /// activation must be the identity.</summary>
    Binomial,
}

/// <summary>The families' names (gaussian, poisson, bernoulli, student-t, binomial) and their conversions from and to the core's.</summary>
public static class ExpertFamilies
{
    /// <summary>The family's lower-case name, as in model files and on the command line.</summary>
    /// <param name="family">The family.</param>
    public static string Name(this ExpertFamily family) => ToCore(family).Name;

    /// <summary>The family of a name, in any case.</summary>
    /// <param name="name">gaussian, poisson, bernoulli, student-t or binomial.</param>
    /// <exception cref="ArgumentException">An unknown name: the message lists the known ones.</exception>
    public static ExpertFamily Parse(string name) => From(Core.ExpertFamilyModule.Parse(name));

    /// <summary>Whether the family has noise levels σ_i (Gaussian) or none (Poisson, Bernoulli: their models' σ_i are 1
    /// and mean nothing).</summary>
    /// <param name="family">The family.</param>
    public static bool HasNoiseLevels(this ExpertFamily family) => Core.ExpertFamilyModule.HasLevels(ToCore(family));

    internal static ExpertFamily From(Core.ExpertFamily family) => (ExpertFamily)family.Tag;

    internal static Core.ExpertFamily ToCore(ExpertFamily family) =>
        Enum.IsDefined(family)
            ? Core.ExpertFamily.All[(int)family]
            : throw new ArgumentOutOfRangeException(nameof(family), family,
                $"{family} is not a defined ExpertFamily value; expected one of {string.Join(", ", Enum.GetNames<ExpertFamily>())}.");
}
