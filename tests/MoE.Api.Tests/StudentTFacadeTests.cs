namespace MoE.Api.Tests;

/// <summary>Student-t experts through the façade (docs/math.md §14): a fit with the degrees of freedom fixed
/// (<see cref="FitOptions.DegreesOfFreedom"/>) reports standard errors that do not allow for ν's estimation, and the
/// explicit call says which it wants.</summary>
public class StudentTFacadeTests
{
    private static readonly MixtureOfExperts Truth = MixtureOfExperts.Create(
        regressors: new double[,] { { 1.0, -0.5 }, { -0.5, 1.0 } },
        regressorIntercepts: [0.5, -0.5],
        gating: new double[,] { { 1.5, 0.5 } },
        gatingIntercepts: [0.3],
        Activation.Identity,
        sigmas: [0.3, 0.5]).WithFamily(ExpertFamily.StudentT).WithDegreesOfFreedom([4.0, 4.0]);

    [Fact]
    public void AFitWithFixedDegreesOfFreedomReportsErrorsWithoutThem()
    {
        var data = Truth.Sample(4000, seed: 3);
        var fit = MoeLearner.Fit(data, new FitOptions
        {
            Experts = 2, Family = ExpertFamily.StudentT, DegreesOfFreedom = 4.0, Seed = 1,
            StandardErrors = StandardErrorKind.Observed,
        });

        Assert.Equal([4.0, 4.0], fit.Model.DegreesOfFreedom);
        var reported = fit.StandardErrors!;
        var withoutNu = MoeLearner.StandardErrors(fit.Model, data, degreesOfFreedomFitted: false);
        var withNu = MoeLearner.StandardErrors(fit.Model, data, degreesOfFreedomFitted: true);
        for (var i = 0; i < 2; i++)
        {
            // The fit's own errors are the ones without ν (the same computation, so the same bits), and allowing for
            // ν's estimation widens σ's (the Schur complement of the information; docs/math.md §14.2).
            Assert.Equal(withoutNu.Sigmas[i], reported.Sigmas[i]);
            Assert.True(withoutNu.Sigmas[i] < withNu.Sigmas[i] * 0.999,
                $"sigma {i}: {withoutNu.Sigmas[i]} vs {withNu.Sigmas[i]}");
        }
    }
}
