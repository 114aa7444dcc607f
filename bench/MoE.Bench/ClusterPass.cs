using BenchmarkDotNet.Attributes;
using MoE.Cluster;
using MoE.Core;

namespace MoE.Bench;

/// <summary>
/// One pass of a fit on a cluster against the same arithmetic in one process: the log-likelihood of a model over six
/// shards of <see cref="Rows"/> rows (d = 10, k = 3) held by three silos on loopback (<c>LocalCluster</c>: real
/// silos, TCP), each shard's part computed by its grain and the six asked at once, against <c>InProcess</c>, the six
/// <c>ShardWork.Evaluate</c> calls one after another here. The difference is what the cluster adds per pass: the
/// requests and answers on the wire, the grains' scheduling and the coordinator's wait (docs/math.md §7.7).
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class ClusterPass
{
    private LocalCluster cluster = null!;
    private string folder = "";
    private ShardSpec[] specs = [];
    private IShardGrain[] grains = [];
    private DataSource[] held = [];
    private byte[] request = [];

    /// <summary>Rows per shard.</summary>
    [Params(5_000, 200_000)]
    public int Rows { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        folder = Directory.CreateTempSubdirectory("moe-bench-cluster-").FullName;
        var truth = GroundTruth.Orthogonal(3, 10, MoE.Core.Activation.Identity, 0.05);
        var files = new string[6];
        for (var i = 0; i < 6; i++)
        {
            files[i] = Path.Combine(folder, $"part-{i}.parquet");
            DataParquet.Save(files[i], Sampler.Sample(truth, Rows, i + 1));
        }

        cluster = LocalCluster.StartAsync(3).GetAwaiter().GetResult();
        specs = ClusterSources.Specs(folder);
        grains = specs.Select(s => cluster.Client.GetGrain<IShardGrain>(s.GrainKey)).ToArray();
        Task.WhenAll(grains.Select((g, i) => g.Open(specs[i]))).GetAwaiter().GetResult();
        held = files.Select(f => DataSourceModule.OfDataset(DataSourceModule.Load(DataFiles.Source(f, null, null)))).ToArray();
        request = ShardWork.Encode(null, PassRequest.NewLogLikelihood(truth));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        cluster.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(folder, recursive: true);
    }

    /// <summary>The six shards' parts computed here, one after another (each on every core).</summary>
    [Benchmark(Baseline = true)]
    public double InProcess()
    {
        var total = 0.0;
        foreach (var shard in held)
        {
            total += ShardWork.Evaluate(request, shard)[0];
        }

        return total;
    }

    /// <summary>The six parts asked of the shards' grains at once and awaited.</summary>
    [Benchmark]
    public double OnThreeSilos()
    {
        var parts = Task.WhenAll(grains.Select((g, i) => g.Evaluate(specs[i], request))).GetAwaiter().GetResult();
        return parts.Sum(p => p[0]);
    }
}
