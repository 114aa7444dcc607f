using Core = MoE.Core;

namespace MoE.Api;

/// <summary>
/// The output-transform coefficients for a non-linearity g and noise σ: Q4(y) = y⁴ + αy³ + βy² + γy,
/// Q2(y) = y² + δy, and the tensor scales c = E[S4·He4], c' = E[S2·He2] (paper §3.1 and App. B, corrected).
/// </summary>
public sealed class TransformCoefficients
{
    internal Core.TransformCoefficients Inner { get; }

    internal TransformCoefficients(Core.TransformCoefficients inner) => Inner = inner;

    /// <summary>α, the coefficient of y³ in Q4.</summary>
    public double Alpha => Inner.Alpha;

    /// <summary>β, the coefficient of y² in Q4.</summary>
    public double Beta => Inner.Beta;

    /// <summary>γ, the coefficient of y in Q4.</summary>
    public double Gamma => Inner.Gamma;

    /// <summary>δ, the coefficient of y in Q2.</summary>
    public double Delta => Inner.Delta;

    /// <summary>c = E[S4(Z)·He4(Z)], the scale of the fourth-order moment tensor.</summary>
    public double C => Inner.C;

    /// <summary>c' = E[S2(Z)·He2(Z)], the scale of the second-order moment tensor.</summary>
    public double CPrime => Inner.CPrime;

    /// <summary>E[Q4(Y)] for a unit-norm expert (subtracted when the loss centres Q4).</summary>
    public double Q4Mean => Inner.Q4Mean;

    /// <summary>E[Q2(Y)] for a unit-norm expert.</summary>
    public double Q2Mean => Inner.Q2Mean;

    /// <summary>The noise level the coefficients were solved for.</summary>
    public double Sigma => Inner.Sigma;

    /// <summary>Q4(y) (uncentred).</summary>
    /// <param name="y">A response.</param>
    public double Q4(double y) => Core.Transforms.Q4(Inner, y);

    /// <summary>Q2(y) (uncentred).</summary>
    /// <param name="y">A response.</param>
    public double Q2(double y) => Core.Transforms.Q2(Inner, y);
}

/// <summary>The paper's transforms.</summary>
public static class Transforms
{
    /// <summary>Solves Conditions 1 and 2 for the Q4/Q2 coefficients of an activation and noise level.</summary>
    /// <param name="activation">g.</param>
    /// <param name="sigma">σ ≥ 0.</param>
    /// <returns>The coefficients.</returns>
    /// <exception cref="ArgumentException">σ &lt; 0, or g is not valid (the message names the failing condition).</exception>
    public static TransformCoefficients Coefficients(Activation activation, double sigma)
    {
        ArgumentNullException.ThrowIfNull(activation);
        return new(Core.Coefficients.Solve(activation.Inner, sigma));
    }
}
