using MoE.Api;

namespace MoE.Api.Tests;

/// <summary>The bootstrap with aligned labels through the façade (docs/inference.md §2.2).</summary>
public class BootstrapFacadeTests
{
    /// <summary>Two linear experts in d = 2 with intercepts and their own noise levels (the coverage study's truth).</summary>
    private static readonly MixtureOfExperts Truth = MixtureOfExperts.Create(
        new double[,] { { 1.0, -0.5 }, { -0.5, 1.0 } }, [0.5, -0.5],
        new double[,] { { 1.5, 0.5 } }, [0.3], Activation.Identity, [0.3, 0.5]);

    [Fact]
    public void TheBootstrapNamesEveryParameterAndItsIntervalsHoldTheEstimate()
    {
        var data = Truth.Sample(n: 1500, seed: 51);
        var fit = MoeLearner.Fit(data, new FitOptions { Experts = 2, StandardErrors = StandardErrorKind.Observed });
        var reports = 0;
        var result = MoeLearner.Bootstrap(fit.Model, data, new BootstrapOptions { Replicates = 40 },
            new SynchronousProgress<int>(_ => Interlocked.Increment(ref reports)));
        Assert.Equal(["a1[1]", "a1[2]", "b1", "a2[1]", "a2[2]", "b2", "w1[1]", "w1[2]", "c1", "sigma1", "sigma2"], result.Names);
        Assert.Equal(40, reports);
        Assert.Equal(40, result.Used);
        Assert.Equal((40, 11), (result.Replicates.GetLength(0), result.Replicates.GetLength(1)));
        Assert.Equal(fit.Model.Regressors[1, 0], result.Estimates[3]);
        for (var t = 0; t < result.Names.Count; t++)
        {
            Assert.True(result.PercentileLower[t] < result.PercentileUpper[t], result.Names[t]);
            // The basic interval is the percentile interval reflected about the estimate.
            Assert.Equal(2 * result.Estimates[t] - result.PercentileUpper[t], result.BasicLower[t], 12);
        }

        // At n = 1,500 the bootstrap and Wald errors estimate the same spread: within a factor 1.6 (B = 40 alone gives
        // the bootstrap's ±11 %).
        var wald = fit.StandardErrors!;
        Assert.InRange(result.StandardErrors[0] / wald.Regressors[0, 0], 1 / 1.6, 1.6);
        Assert.InRange(result.StandardErrors[10] / wald.Sigmas[1], 1 / 1.6, 1.6);
    }

    [Fact]
    public void TheResultDoesNotDependOnTheCoresAndCancellationStopsIt()
    {
        var data = Truth.Sample(n: 400, seed: 52);
        var fit = MoeLearner.Fit(data, new FitOptions { Experts = 2 });
        var one = MoeLearner.Bootstrap(fit.Model, data, new BootstrapOptions { Replicates = 8, Kind = BootstrapKind.Parametric, MaxDegreeOfParallelism = 1 });
        var two = MoeLearner.Bootstrap(fit.Model, data, new BootstrapOptions { Replicates = 8, Kind = BootstrapKind.Parametric, MaxDegreeOfParallelism = 2 });
        Assert.Equal(one.Replicates.Cast<double>(), two.Replicates.Cast<double>());
        Assert.Equal(BootstrapKind.Parametric, one.Kind);

        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            MoeLearner.Bootstrap(fit.Model, data, new BootstrapOptions { Replicates = 8 }, cancellationToken: cancelled.Token));
        var e = Assert.Throws<ArgumentException>(() => MoeLearner.Bootstrap(fit.Model, data, new BootstrapOptions { Level = 95 }));
        Assert.Contains("must be in (0, 1), but is 95", e.Message);
    }

    [Fact]
    public void TheTestForKRejectsOneExpertWhereThereAreTwo()
    {
        var data = Truth.Sample(n: 600, seed: 53);
        var options = new FitOptions();
        var selection = MoeLearner.Select(data, options, [1, 2]);
        var test = MoeLearner.TestExperts(data, options, selection, 1, replicates: 9);
        Assert.Equal(1, test.Experts);
        Assert.Equal(0.1, test.P, 12);
        Assert.Equal(9, test.Replicates.Count);
        var e = Assert.Throws<ArgumentException>(() => MoeLearner.TestExperts(data, options, selection, 2));
        Assert.Contains("The selection fitted k = 1, 2; testing 2 against 3 experts needs both.", e.Message);
    }
}
