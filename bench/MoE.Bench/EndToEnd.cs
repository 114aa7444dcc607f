using BenchmarkDotNet.Attributes;
using MoE.Core;

namespace MoE.Bench;

/// <summary>
/// The whole default fit (L4 subspace solver → directions → signs → gating → EM polish, σ estimated) at n = 200 000,
/// warm: what a process that fits repeatedly pays per fit. <c>moe fit</c> prints the same stages' times for one
/// cold run, JIT included.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 5)]
public class EndToEnd
{
    private Dataset data = null!;
    private FitConfig config = null!;

    /// <summary>"paper" (d=10, k=2, identity, σ=0.05, orthogonal) or "relu" (d=10, k=3, ReLU, σ=0.1, free gating).</summary>
    [Params("paper", "relu")]
    public string Setting { get; set; } = "paper";

    [GlobalSetup]
    public void Setup()
    {
        MoeModel truth = Setting == "paper"
            ? GroundTruth.Orthogonal(2, 10, MoE.Core.Activation.Identity, 0.05)
            : GroundTruth.Random(3, 10, MoE.Core.Activation.Relu, 0.1, 1.0, true, 3);
        data = Sampler.Sample(truth, 200_000, 3);
        config = FitConfigModule.Defaults(truth.Experts, truth.Activation);
    }

    /// <summary>One default fit.</summary>
    [Benchmark]
    public MoeModel Fit() => Learner.Fit(config, data, RunContextModule.Silent).Model;
}
