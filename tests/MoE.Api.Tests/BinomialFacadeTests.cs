namespace MoE.Api.Tests;

/// <summary>Binomial experts through the façade (docs/math.md §12.5): a file of covariates, trials and successes read
/// with <see cref="ColumnRoles.Trials"/>, fitted with <see cref="ExpertFamily.Binomial"/>, recovers the truth; the trials
/// and an exposure cannot both be named.</summary>
public class BinomialFacadeTests
{
    private static readonly MixtureOfExperts Truth = MixtureOfExperts.Create(
        regressors: new double[,] { { 0.8, -0.4 }, { -0.5, 0.6 } },
        regressorIntercepts: [1.0, -0.5],
        gating: new double[,] { { 1.5, 1.0 } },
        gatingIntercepts: [0.3],
        Activation.Identity,
        sigmas: [1.0, 1.0]).WithTrialsColumn();

    [Fact]
    public void SuccessesOutOfTrialsAreFittedFromAFileByTheTrialsColumn()
    {
        using var dir = new TempDir();
        var path = dir.File("successes.csv");
        // x1, x2, then the trials as x3, then y.
        Truth.SaveSample(path, 20_000, seed: 5);
        var data = Dataset.Load(path, new ColumnRoles { Experts = ["x1", "x2"], Trials = "x3" });
        var fit = MoeLearner.Fit(data, new FitOptions { Experts = 2, Family = ExpertFamily.Binomial, Seed = 1 });

        Assert.Equal(ExpertFamily.Binomial, fit.Model.Family);
        Assert.Equal(2, Truth.TrialsInput);
        Assert.Null(Truth.WithFamily(ExpertFamily.Poisson).TrialsInput);
        var errors = Metrics.Compare(fit.Model, Truth);
        // The toolkit's success rule; at n = 20,000 with ~10 trials a row the errors are ~1e-4.
        Assert.True(Metrics.IsRecovered(errors), $"E_reg = {errors.RegressorError:E2}, E_gating = {errors.GatingError:E2}");
        Assert.Empty(fit.Model.DegreesOfFreedom);
        Assert.False(ExpertFamily.Binomial.HasNoiseLevels());
        Assert.Equal("binomial", ExpertFamily.Binomial.Name());

        var e = Assert.Throws<ArgumentException>(() => Dataset.Load(path, new ColumnRoles { Offset = "x3", Trials = "x3" }));
        Assert.Contains("set one", e.Message);
    }
}
