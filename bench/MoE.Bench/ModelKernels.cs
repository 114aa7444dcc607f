using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;
using MoE.Core;

namespace MoE.Bench;

/// <summary>
/// The model's per-sample kernels against the memory floor: <see cref="ReadFloor"/> sums an array of the same
/// size as X with SIMD, which is the least any pass over X can cost. Ratios are reported against it.
/// </summary>
[MemoryDiagnoser]
public class ModelKernels
{
    private MoeModel model = null!;
    private Dataset data = null!;
    private double[] flat = null!;

    /// <summary>Number of samples.</summary>
    [Params(1_000_000)]
    public int N { get; set; }

    /// <summary>Input dimension.</summary>
    [Params(10)]
    public int D { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        model = GroundTruth.Orthogonal(2, D, MoE.Core.Activation.Identity, 0.05);
        data = Sampler.Sample(model, N, 1);
        flat = new double[N * D];
        Buffer.BlockCopy(data.X, 0, flat, 0, flat.Length * sizeof(double));
    }

    /// <summary>A vectorised sum over n·d doubles: the memory-bandwidth floor of one pass over X.</summary>
    [Benchmark(Baseline = true)]
    public double ReadFloor() => TensorPrimitives.Sum(flat);

    /// <summary>Per-sample log-likelihoods (one pass over X).</summary>
    [Benchmark]
    public double[] LogLikelihoods() => MoeModelModule.LogLikelihoods(model, data.X, data.Y);

    /// <summary>Posterior responsibilities (one pass over X).</summary>
    [Benchmark]
    public double[,] Responsibilities() => MoeModelModule.Responsibilities(model, data.X, data.Y);

    /// <summary>Sampling n rows (parallel over chunks).</summary>
    [Benchmark]
    public Dataset Sample() => Sampler.Sample(model, N, 2);
}
