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

    /// <summary>
    /// Columns in roles and dropped rows on a cluster (docs/data.md): CSV shards under a shuffled header with a text
    /// column (read by the gate as a categorical input), the gate on its own columns and gaps in some rows, fitted with a formula and the drop policy, give the
    /// in-process fit of the same shards bit for bit, the names in the model and the count of rows left out.
    /// </summary>
    [Fact]
    public async Task RolesAndDroppedRowsOnAClusterAreTheFitInOneProcess()
    {
        using var shards = new Shards();
        var truth = GroundTruth.Create(GroundTruthPreset.RandomGating, 2, 3, Activation.Identity, 0.1, seed: 6);
        var named = shards.File("named");
        Directory.CreateDirectory(named);
        for (var i = 0; i < 3; i++)
        {
            var data = truth.Sample(8_000 + 1_000 * i, 200 + i);
            var rows = Enumerable.Range(0, data.Count).Select(r =>
            {
                static string F(double v) => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
                var b = r % 101 == 3 ? "" : F(data.X[r, 1]);
                return $"{(r % 2 == 0 ? "north" : "south")},{b},{F(data.Y[r])},{F(data.X[r, 0])},{F(data.X[r, 2])}";
            });
            File.WriteAllLines(Path.Combine(named, $"part-{i}.csv"), new[] { "site,b,resp,a,c" }.Concat(rows));
        }

        var roles = ColumnRoles.Parse("resp ~ a + b | c + site");
        roles = new ColumnRoles { Response = roles.Response, Experts = roles.Experts, Gate = roles.Gate, Missing = MissingValues.Drop };
        var here = MoeLearner.FitSource(DataSources.Files(named, roles), Options);
        Assert.Equal(["a", "b"], here.Model.ExpertColumns);
        Assert.Equal(["c", "site=south"], here.Model.GateColumns);
        var dropped = Assert.Single(here.Warnings, w => w.Code == WarningCode.RowsDropped);
        var expected = Enumerable.Range(0, 3).Sum(i => Enumerable.Range(0, 8_000 + 1_000 * i).Count(r => r % 101 == 3));
        Assert.StartsWith($"{expected} of ", dropped.Message);

        await using var cluster = await LocalCluster.StartAsync(2).WaitAsync(Limit);
        var source = await ClusterSources.OpenAsync(cluster.Client, named, roles).WaitAsync(Limit);
        var there = await Task.Run(() => MoeLearner.FitSource(source, Options)).WaitAsync(Limit);
        Assert.Equal(here.Model.ToJson(), there.Model.ToJson());
        Assert.Equal(dropped.Message, Assert.Single(there.Warnings, w => w.Code == WarningCode.RowsDropped).Message);
    }

    /// <summary>
    /// A weights column on a cluster (docs/data.md): every grain reads the weights with its rows and weighs them in its
    /// passes and in the rows it sends for samples, so the cluster's fit is the in-process fit of the same shards, bit for
    /// bit, and a bad weight is named with its shard and row.
    /// </summary>
    [Fact]
    public async Task WeightsOnAClusterAreTheFitInOneProcess()
    {
        using var shards = new Shards();
        var truth = GroundTruth.Create(GroundTruthPreset.RandomGating, 2, 3, Activation.Identity, 0.1, seed: 6);
        var weighted = shards.File("weighted");
        Directory.CreateDirectory(weighted);
        for (var i = 0; i < 3; i++)
        {
            var data = truth.Sample(6_000 + 1_000 * i, 300 + i);
            static string F(double v) => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            File.WriteAllLines(Path.Combine(weighted, $"part-{i}.csv"), new[] { "x1,freq,x2,x3,y" }.Concat(Enumerable.Range(0, data.Count)
                .Select(r => $"{F(data.X[r, 0])},{(r * 7 + i) % 4},{F(data.X[r, 1])},{F(data.X[r, 2])},{F(data.Y[r])}")));
        }

        var roles = new ColumnRoles { Weights = "freq" };
        var here = MoeLearner.FitSource(DataSources.Files(weighted, roles), Options);
        Assert.Equal(["x1", "x2", "x3"], here.Model.ExpertColumns);

        await using var cluster = await LocalCluster.StartAsync(2).WaitAsync(Limit);
        var source = await ClusterSources.OpenAsync(cluster.Client, weighted, roles).WaitAsync(Limit);
        var there = await Task.Run(() => MoeLearner.FitSource(source, Options)).WaitAsync(Limit);
        Assert.Equal(here.Model.ToJson(), there.Model.ToJson());

        // A negative weight in a shard the grains have not opened yet: named with its file and row.
        var bad = shards.File("bad");
        Directory.CreateDirectory(bad);
        var lines = File.ReadAllLines(Path.Combine(weighted, "part-1.csv"));
        var cells = lines[4].Split(',');
        cells[1] = "-1";
        lines[4] = string.Join(',', cells);
        File.WriteAllLines(Path.Combine(bad, "part-1.csv"), lines);
        var e = await Assert.ThrowsAnyAsync<Exception>(() => ClusterSources.OpenAsync(cluster.Client, bad, roles).WaitAsync(Limit));
        Assert.Contains("the weights column 'freq' is -1 on data row 4", e.ToString());
    }

    /// <summary>When in a fit the silo dies.</summary>
    public enum Moment
    {
        /// <summary>As the shards are opened: the grains are being placed and activated, some on the silo that dies.</summary>
        Activation,

        /// <summary>As the fit's first pass is sent to a shard of the victim.</summary>
        FirstPass,

        /// <summary>As the fit's last pass is sent to a shard of the victim.</summary>
        LastPass,
    }

    /// <summary>
    /// A silo SIGKILLed (no goodbye to the cluster) at each moment of a fit: the model is the single-process one, bit
    /// for bit, and the fit ends within the test's two minutes although a request may wait five (the default request
    /// timeout): a request on a silo that left is given up as soon as the cluster knows (SiloWatch), not when its
    /// timeout ends. Before that watch, a kill during activation cost the whole timeout (304 s; docs/cluster.md).
    /// </summary>
    [Theory]
    [InlineData(Moment.Activation)]
    [InlineData(Moment.FirstPass)]
    [InlineData(Moment.LastPass)]
    public async Task ASiloKilledAtAnyMomentOfAFitChangesNothing(Moment moment)
    {
        using var shards = new Shards();
        var here = MoeLearner.FitSource(DataSources.Files(shards.Data), Options);

        // Three 'moe silo' processes on loopback; the second and third join the first. The victim is the third: not
        // the first (which keeps the membership), and shard i is placed on silo i mod 3 of the silos by address.
        await using var silos = await SiloProcesses.StartAsync(3).WaitAsync(Limit);
        using var client = await Silos.ConnectAsync(silos.Gateways).WaitAsync(Limit);
        const int victim = 2;
        var retries = new List<ClusterRetry>();
        var killed = false;
        var options = new ClusterRequestOptions();
        var source = await ClusterSources.OpenAsync(Silos.Client(client), shards.Data, options: options,
            retries: new SynchronousProgress<ClusterRetry>(r => { lock (retries) { retries.Add(r); } })).WaitAsync(Limit);
        if (moment == Moment.Activation)
        {
            // Fresh grains for a second opening: the same files under another name.
            var again = Path.Combine(Path.GetDirectoryName(shards.Data)!, "again");
            Directory.CreateDirectory(again);
            foreach (var f in Directory.GetFiles(shards.Data))
            {
                File.Copy(f, Path.Combine(again, Path.GetFileName(f)));
            }

            options.Sent = (_, kind) =>
            {
                if (!killed && kind == "open")
                {
                    killed = true;
                    silos.Kill(victim);
                }
            };
            source = await ClusterSources.OpenAsync(Silos.Client(client), again, options: options,
                retries: new SynchronousProgress<ClusterRetry>(r => { lock (retries) { retries.Add(r); } })).WaitAsync(Limit);
        }
        else
        {
            var placement = await ClusterSources.PlacementAsync(Silos.Client(client), shards.Data);
            var target = placement.Select((p, i) => (p, i)).First(x => silos.Serves(victim, x.p)).i;
            var passes = 0;
            if (moment == Moment.LastPass)
            {
                // How many passes the undisturbed fit sends to the shard: the kill comes with the last.
                options.Sent = (spec, kind) => { if (spec.Index == target && kind == "evaluate") { Interlocked.Increment(ref passes); } };
                Assert.Equal(here.Model.ToJson(), (await Task.Run(() => MoeLearner.FitSource(source, Options)).WaitAsync(Limit)).Model.ToJson());
            }

            var sent = 0;
            options.Sent = (spec, kind) =>
            {
                if (!killed && spec.Index == target && kind == "evaluate" && ++sent == Math.Max(passes, 1))
                {
                    killed = true;
                    silos.Kill(victim);
                }
            };
        }

        var there = await Task.Run(() => MoeLearner.FitSource(source, Options)).WaitAsync(Limit);

        Assert.True(killed);
        Assert.Equal(here.Model.ToJson(), there.Model.ToJson());
        // The victim's shards were asked again and answered by the silos left. During activation that may not be
        // needed: once the cluster has seen the connection to the killed silo drop, the shards still to be opened are
        // placed on the silos left and nothing is retried (seen once in a full CI run); a shard on the victim before
        // the kill (the two other moments) must be retried.
        if (moment != Moment.Activation)
        {
            Assert.NotEmpty(retries);
        }
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
