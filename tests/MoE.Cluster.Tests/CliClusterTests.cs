using System.Diagnostics;
using MoE.Cli;

namespace MoE.Cluster.Tests;

/// <summary>
/// The acceptance runs of docs/cluster.md through the command line: <c>moe fit dir --cluster local:3</c> writes the
/// model file <c>moe fit dir</c> writes, and a <c>moe fit --cluster</c> process against three <c>moe silo</c> processes
/// writes it too when one silo is killed mid-fit.
/// </summary>
public class CliClusterTests
{
    private static string Moe(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = CliApp.Run(args, output, error);
        Assert.True(code == 0, $"moe {string.Join(' ', args)}: exit {code}; {error}");
        return output.ToString();
    }

    [Fact]
    public void LocalThreeSilosWriteTheModelOfTheUnion()
    {
        using var shards = new Shards();
        Moe("fit", shards.Data, "--k", "2", "--out", shards.File("here.json"));
        var said = Moe("fit", shards.Data, "--k", "2", "--out", shards.File("there.json"), "--cluster", "local:3");
        Assert.Contains("in 6 shards on 3 silos on loopback", said);
        Assert.Equal(File.ReadAllText(shards.File("here.json")), File.ReadAllText(shards.File("there.json")));
    }

    [Fact]
    public async Task AFitProcessSurvivesASiloProcessKilledMidFit()
    {
        using var shards = new Shards();
        Moe("fit", shards.Data, "--k", "2", "--out", shards.File("here.json"));
        await using var silos = await SiloProcesses.StartAsync(3).WaitAsync(TimeSpan.FromMinutes(2));

        // Where the shards are (asking opens them, and the fit finds them open); the victim is a silo other than the
        // first (which keeps the membership) that serves a shard.
        int victim;
        using (var client = await Silos.ConnectAsync(silos.Gateways))
        {
            var placement = await ClusterSources.PlacementAsync(Silos.Client(client), shards.Data);
            victim = Enumerable.Range(1, 2).FirstOrDefault(i => placement.Any(p => silos.Serves(i, p)));
            Assert.True(victim > 0, $"every shard is on the first silo: {string.Join(", ", placement.Select(p => p.Silo))}");
        }

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "moe.dll"));
        foreach (var a in new[] { "fit", shards.Data, "--k", "2", "--out", shards.File("there.json"), "--request-timeout", "30",
                     "--cluster", string.Join(',', silos.Gateways.Select(g => $"127.0.0.1:{g.Port}")) })
        {
            start.ArgumentList.Add(a);
        }

        using var fit = Process.Start(start)!;
        var stdout = fit.StandardOutput.ReadToEndAsync();
        var errors = new List<string>();
        var killed = false;
        // Progress goes to stderr, a line per stage: the likelihood stages start after the moment passes.
        while (await fit.StandardError.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(2)) is { } line)
        {
            errors.Add(line);
            if (!killed && line.Contains("candidates", StringComparison.Ordinal))
            {
                killed = true;
                silos.Kill(victim);
            }
        }

        await fit.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        Assert.True(fit.ExitCode == 0, $"exit {fit.ExitCode}: {string.Join('\n', errors)}");
        Assert.True(killed, string.Join('\n', errors));
        Assert.Contains(errors, l => l.StartsWith("moe: retrying shard", StringComparison.Ordinal));
        Assert.Contains("on the cluster at", await stdout);
        Assert.Equal(File.ReadAllText(shards.File("here.json")), File.ReadAllText(shards.File("there.json")));
    }
}
