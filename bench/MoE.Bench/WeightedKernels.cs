using BenchmarkDotNet.Attributes;
using MoE.Core;

namespace MoE.Bench;

/// <summary>
/// What frequency weights cost (docs/math.md §13): the EM statistics and the likelihood's gradient over the same 10⁶
/// rows, unweighted and with a weight per row, as passes over a source (the fit's route). The unweighted E-step is the
/// baseline measured in the same run; a weighted pass adds a multiply of the posterior and the row log-likelihood per
/// block, and of the gate's terms as they are formed.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 5)]
public class WeightedKernels
{
    private MoeModel model = null!;
    private DataSource plain = null!;
    private DataSource weighted = null!;

    /// <summary>Samples.</summary>
    [Params(1_000_000)]
    public int N { get; set; }

    /// <summary>"d×k": 10×2 (the paper's setting) and 50×4.</summary>
    [Params("10x2", "50x4")]
    public string Shape { get; set; } = "10x2";

    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split('x');
        int d = int.Parse(parts[0]), k = int.Parse(parts[1]);
        model = GroundTruth.Random(k, d, MoE.Core.Activation.Identity, 0.05, 1.0, true, 3);
        var data = Sampler.Sample(model, N, 1);
        plain = DataSourceModule.OfDataset(data);
        weighted = DataSourceModule.OfDataset(DatasetModule.Weighted(data.X, data.Y,
            Enumerable.Range(0, N).Select(i => (double)(1 + i % 3)).ToArray()));
    }

    private bool Hessian => (model.Experts - 1) * model.Dimension <= 64;

    /// <summary>The E-step with every M-step sum, unweighted rows.</summary>
    [Benchmark(Baseline = true)]
    public double EmStatistics() => EmKernel.statisticsOf(model, false, Hessian, plain).LogLikelihood;

    /// <summary>The same, weighted rows.</summary>
    [Benchmark]
    public double EmStatisticsWeighted() => EmKernel.statisticsOf(model, false, Hessian, weighted).LogLikelihood;

    /// <summary>The log-likelihood and its gradient, unweighted rows.</summary>
    [Benchmark]
    public double LikelihoodGradient() => LikelihoodKernel.valueAndGradientOf(model, true, plain).Item1;

    /// <summary>The same, weighted rows.</summary>
    [Benchmark]
    public double LikelihoodGradientWeighted() => LikelihoodKernel.valueAndGradientOf(model, true, weighted).Item1;
}
