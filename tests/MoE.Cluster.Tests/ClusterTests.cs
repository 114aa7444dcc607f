using MoE.Api;
using MoE.Api.Tests;

namespace MoE.Cluster.Tests;

/// <summary>Shards of one data set written as Parquet files in a temporary folder, deleted at dispose.</summary>
internal sealed class Shards : IDisposable
{
    private readonly DirectoryInfo dir = Directory.CreateTempSubdirectory("moe-cluster-test-");

    /// <summary>Six shards of unequal sizes (none a whole number of 4,096-row chunks) drawn from one model with
    /// random gating in d = 4.</summary>
    public Shards()
    {
        var truth = GroundTruth.Create(GroundTruthPreset.RandomGating, 2, 4, Activation.Identity, 0.1, seed: 5);
        Directory.CreateDirectory(Data);
        for (var i = 0; i < 6; i++)
        {
            truth.Sample(9_000 + 1_500 * i, 100 + i).SaveParquet(Path.Combine(Data, $"part-{i}.parquet"));
        }
    }

    public string Data => Path.Combine(dir.FullName, "data");

    public string File(string name) => Path.Combine(dir.FullName, name);

    public void Dispose() => dir.Delete(recursive: true);
}

/// <summary>
/// Fits on a cluster of three silos in this process, talking over loopback TCP (docs/cluster.md): the same model as the
/// single-process fit of the shards' union, bit for bit, and still the same with a silo killed mid-fit. Bounded in
/// time: every request has a timeout and a bounded retry, and each test gives up after two minutes.
/// </summary>
public class ClusterTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(2);

    private static FitOptions Options => new() { Experts = 2, Activation = Activation.Identity, Seed = 3 };

    [Fact]
    public async Task AFitOnThreeSilosIsTheFitOfTheShardsInOneProcess()
    {
        using var shards = new Shards();
        var here = MoeLearner.FitSource(DataSources.Files(shards.Data), Options);

        await using var cluster = await LocalCluster.StartAsync(3).WaitAsync(Limit);
        var source = await ClusterSources.OpenAsync(cluster.Client, shards.Data).WaitAsync(Limit);
        Assert.Equal(6, source.Shards.Count);
        Assert.Equal(here.Model.ToJson(), await Task.Run(() => MoeLearner.FitSource(source, Options).Model.ToJson()).WaitAsync(Limit));

        // The shards were served by the cluster, two on each silo (shard i on silo i mod 3).
        var placement = await ClusterSources.PlacementAsync(cluster.Client, shards.Data);
        Assert.All(placement.GroupBy(p => p.Silo), g => Assert.Equal(2, g.Count()));
        Assert.Equal(3, placement.Select(p => p.Silo).Distinct().Count());
    }

    [Fact]
    public async Task ASiloKilledMidFitChangesNothing()
    {
        using var shards = new Shards();
        var here = MoeLearner.FitSource(DataSources.Files(shards.Data), Options);

        // Three 'moe silo' processes on loopback; the second and third join the first.
        await using var silos = await SiloProcesses.StartAsync(3).WaitAsync(Limit);
        using var client = await Silos.ConnectAsync(silos.Gateways).WaitAsync(Limit);
        var retries = new List<ClusterRetry>();
        var source = await ClusterSources.OpenAsync(Silos.Client(client), shards.Data,
            options: new ClusterRequestOptions { RequestTimeout = TimeSpan.FromSeconds(30) },
            retries: new SynchronousProgress<ClusterRetry>(r => { lock (retries) { retries.Add(r); } })).WaitAsync(Limit);

        // The victim: a silo other than the first (which keeps the membership) that serves at least one shard.
        var placement = await ClusterSources.PlacementAsync(Silos.Client(client), shards.Data);
        var victim = Enumerable.Range(1, 2).FirstOrDefault(i => placement.Any(p => silos.Serves(i, p)));
        Assert.True(victim > 0, $"every shard is on the first silo: {string.Join(", ", placement.Select(p => p.Silo))}");

        // Killed (SIGKILL: no goodbye to the cluster) when the likelihood stages start, after the moment passes: the
        // fit has passes behind it and ahead of it.
        var killed = false;
        var progress = new SynchronousProgress<FitProgress>(p =>
        {
            if (!killed && p.Stage == FitStage.Candidates)
            {
                killed = true;
                silos.Kill(victim);
            }
        });
        var there = await Task.Run(() => MoeLearner.FitSource(source, Options, progress: progress)).WaitAsync(Limit);

        Assert.True(killed);
        Assert.Equal(here.Model.ToJson(), there.Model.ToJson());
        // The victim's shards were asked again and answered by the silos left.
        Assert.NotEmpty(retries);
        var after = await ClusterSources.PlacementAsync(Silos.Client(client), shards.Data);
        Assert.DoesNotContain(after, p => silos.Serves(victim, p));
    }

    [Fact]
    public async Task ThePackageReadmeSnippetRuns()
    {
        using var shards = new Shards();
        var expected = MoeLearner.FitSource(DataSources.Files(shards.Data), new FitOptions { Experts = 3 }).Model.ToJson();
        var written = new StringWriter();
        var cwd = Environment.CurrentDirectory;
        Environment.CurrentDirectory = Path.GetDirectoryName(shards.Data)!;
        Directory.Move("data", "shards");
        try
        {
            // ---- MoE.Cluster/README.md, as it stands (Console.WriteLine -> written) ----
            await using var cluster = await LocalCluster.StartAsync(3);           // or Silos.ConnectAsync([...gateways])
            var source = await ClusterSources.OpenAsync(cluster.Client, "shards/");
            var fit = MoeLearner.FitSource(source, new FitOptions { Experts = 3 });
            written.WriteLine(fit.Model.ToJson());
            // ---- end of the snippet ----
        }
        finally
        {
            Directory.Move("shards", "data");
            Environment.CurrentDirectory = cwd;
        }

        Assert.Equal(expected.TrimEnd(), written.ToString().TrimEnd());
    }

    [Fact]
    public async Task NoClusterThereIsAPreciseErrorNotAHang()
    {
        var free = SiloProcesses.FreePort();
        var e = await Assert.ThrowsAsync<IOException>(() =>
            Silos.ConnectAsync([new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, free)], connectTimeout: TimeSpan.FromSeconds(3)).WaitAsync(Limit));
        Assert.Contains($"Could not connect to the cluster at 127.0.0.1:{free}", e.Message);
    }

    [Fact]
    public async Task AnErrorOfTheDataIsReportedOnceNotRetried()
    {
        using var shards = new Shards();
        System.IO.File.WriteAllText(Path.Combine(shards.Data, "part-9.parquet"), "not parquet");
        await using var cluster = await LocalCluster.StartAsync(1).WaitAsync(Limit);
        var retries = 0;
        var e = await Assert.ThrowsAnyAsync<Exception>(() => ClusterSources.OpenAsync(cluster.Client, shards.Data,
            retries: new SynchronousProgress<ClusterRetry>(_ => retries++)).WaitAsync(Limit));
        Assert.Contains("part-9.parquet", e.Message);
        Assert.Equal(0, retries);
    }
}
