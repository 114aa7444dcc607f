using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;
using MoE.Core;

namespace MoE.Bench;

/// <summary>
/// The learner's kernels at n = 10⁶ against the memory floor measured in the same run: <see cref="ReadFloor"/> is a
/// vectorised sum over an array as large as X (n·d doubles), the least any pass over X can cost, and every ratio in
/// the table is against it. Scalar references (the loops the kernels replaced) run beside their kernels.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 5)]
public class LearnerKernels
{
    private MoeModel model = null!;
    private Dataset data = null!;
    private double[] flat = null!;
    private ExpertDensities densities = null!;
    private double[,] posterior = null!;
    private OutputTransform transform = null!;
    private double[,] basis = null!;
    private TransformCoefficients coefficients = null!;
    private L4Weights weights = null!;

    /// <summary>Samples.</summary>
    [Params(1_000_000)]
    public int N { get; set; }

    /// <summary>"d×k[×g]": 10×2 (the paper's setting), 10×3 with ReLU experts, and 50×4.</summary>
    [Params("10x2", "10x3xrelu", "50x4")]
    public string Shape { get; set; } = "10x2";

    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split('x');
        int d = int.Parse(parts[0]), k = int.Parse(parts[1]);
        var g = parts.Length > 2 ? MoE.Core.ActivationModule.Parse(parts[2], 0.0) : MoE.Core.Activation.Identity;
        model = GroundTruth.Random(k, d, g, 0.05, 1.0, true, 3);
        data = Sampler.Sample(model, N, 1);
        flat = new double[N * d];
        Buffer.BlockCopy(data.X, 0, flat, 0, flat.Length * sizeof(double));
        densities = GatingKernel.expertDensities(model, data.X, data.Y);
        posterior = new double[N, k];
        transform = OutputTransforms.Bounded(g, 0.05);
        basis = new double[d, k];
        for (var a = 0; a < k; a++) basis[a, a] = 1.0;
        coefficients = MoE.Core.Coefficients.Solve(g, 0.05);
        weights = L4WeightsModule.Create(0.1, 10.0, 0.01, true);
    }

    /// <summary>A vectorised sum over n·d doubles: the memory-bandwidth floor of one pass over X.</summary>
    [Benchmark(Baseline = true)]
    public double ReadFloor() => TensorPrimitives.Sum(flat);

    /// <summary>L_log value and W-gradient, fused kernel (densities precomputed; one pass over X).</summary>
    [Benchmark]
    public double GatingLoss() => GatingKernel.loss(densities, data.X, model.Gating, model.GatingIntercepts).Item1;

    /// <summary>L_log value and W-gradient, scalar reference (recomputes the experts every call).</summary>
    [Benchmark]
    public double GatingLossScalar() => Losses.LogLikelihoodLoss(model, data.X, data.Y).Value;

    /// <summary>The EM E-step with every M-step sum (likelihood, posterior, Grams, gate gradient and Hessian).</summary>
    [Benchmark]
    public double EmStatistics() => EmKernel.statistics(model, false, (model.Experts - 1) * model.Dimension <= 64, data.X, data.Y).LogLikelihood;

    /// <summary>The log-likelihood and its gradient in every parameter (L-BFGS on the likelihood; intercepts fitted).</summary>
    [Benchmark]
    public double LikelihoodGradient() => LikelihoodKernel.valueAndGradient(model, true, data.X, data.Y).Item1;

    /// <summary>The log-likelihood alone (held-out scoring of candidates).</summary>
    [Benchmark]
    public double LogLikelihood() => MoeModelModule.LogLikelihood(model, data.X, data.Y);

    /// <summary>Posterior responsibilities (one pass; chunked over cores).</summary>
    [Benchmark]
    public double[,] Responsibilities() => MoeModelModule.Responsibilities(model, data.X, data.Y);

    /// <summary>The subspace L4's first pass: Σ Q2·x xᵀ (mergeable sums).</summary>
    [Benchmark]
    public double SecondMomentSums() => MomentSums.Second(transform, data.X, data.Y).SumQ2;

    /// <summary>The subspace L4's second pass: projected fourth and second moments in a rank-k basis.</summary>
    [Benchmark]
    public double ProjectedMomentSums() => MomentSums.Projected(transform, basis, data.X, data.Y).F4s;

    /// <summary>The full-dimensional empirical L4 value and gradient (the paper's SGD objective, scalar).</summary>
    [Benchmark]
    public double L4Gradient() => Losses.L4(coefficients, weights, model.Regressors, data.X, data.Y).Value;
}
