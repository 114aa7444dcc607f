using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Hosting;
using MoE.Api;
using MoE.Cluster;

namespace MoE.Cli.Commands;

/// <summary><c>moe silo</c> and the cluster half of <c>moe fit --cluster</c>.</summary>
internal static class ClusterCommands
{
    /// <summary>Whether this process can host Orleans: a natively compiled <c>moe</c> cannot (Orleans makes code at run
    /// time), and hands cluster commands to the framework-dependent copy published beside it.</summary>
    public static bool NeedsRuntime => !RuntimeFeature.IsDynamicCodeSupported;

    /// <summary>Whether the command line asks for the cluster (<c>moe silo</c>, <c>moe fit … --cluster …</c>).</summary>
    public static bool Wanted(string[] args) =>
        args.Length > 0 && (args[0] == "silo" || (args[0] == "fit" && args.Any(a => a == "--cluster" || a.StartsWith("--cluster=", StringComparison.Ordinal))));

    /// <summary>Runs the command line with the framework-dependent <c>jit/moe.dll</c> published beside the native
    /// binary (<c>dotnet publish MoE.Cli -c Release -o dist</c> writes both), its output and errors passed through.</summary>
    public static int RunOnRuntime(string[] args, TextWriter output, TextWriter error)
    {
        var companion = Path.Combine(AppContext.BaseDirectory, "jit", "moe.dll");
        if (!File.Exists(companion))
        {
            throw new NotSupportedException(
                $"The cluster commands need the .NET runtime (Orleans makes code at run time, which this natively compiled moe cannot), and {companion} is missing: publish with 'dotnet publish MoE.Cli -c Release -o dist', or run 'dotnet run --project MoE.Cli -c Release -- {args[0]} ...'.");
        }

        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(companion);
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start dotnet.");
        // A silo runs until stopped: pass its lines on as they come, and a stop on to it — SIGTERM as SIGTERM, so it
        // leaves the cluster cleanly; Ctrl-C reaches it by itself (one process group), so this one only waits.
        using var stop = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            _ = Kill(process.Id, 15);
        });
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => c.Cancel = true);
        var copyOut = Task.Run(() => Copy(process.StandardOutput, output));
        var copyErr = Task.Run(() => Copy(process.StandardError, error));
        process.WaitForExit();
        Task.WaitAll(copyOut, copyErr);
        return process.ExitCode;
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private static void Copy(StreamReader from, TextWriter to)
    {
        while (from.ReadLine() is { } line)
        {
            to.WriteLine(line);
            to.Flush();
        }
    }

    public static Command CreateSilo(TextWriter output, TextWriter error)
    {
        var port = new Option<int>("--port") { Description = "the port silos talk to each other on", DefaultValueFactory = _ => 11111 };
        var gatewayPort = new Option<int>("--gateway-port") { Description = "the port clients (moe fit --cluster) connect to", DefaultValueFactory = _ => 30000 };
        var join = new Option<string?>("--join") { Description = "host:port of the first silo's --port (omit for the first silo, which keeps the cluster's membership)" };
        var host = new Option<string>("--host") { Description = "the address others reach this silo at (default 127.0.0.1: one machine; on a LAN, this machine's address)", DefaultValueFactory = _ => "127.0.0.1" };
        var cache = new Option<long>("--cache-mb") { Description = "shards of at most this many MB of values are kept in memory; larger ones are read again for every pass", DefaultValueFactory = _ => 1024 };
        var verbose = new Option<bool>("--verbose") { Description = "log the silo's information messages (the shards it serves)" };
        var command = new Command("silo", "run one silo of a cluster that fits over sharded data (stop it with Ctrl-C or SIGTERM)")
        {
            port, gatewayPort, join, host, cache, verbose,
        };
        command.SetAction(parse =>
        {
            Shared.Require(parse.GetValue(port) is >= 1 and <= 65535, "--port", "from 1 to 65535", parse.GetValue(port));
            Shared.Require(parse.GetValue(gatewayPort) is >= 1 and <= 65535, "--gateway-port", "from 1 to 65535", parse.GetValue(gatewayPort));
            Shared.Require(parse.GetValue(port) != parse.GetValue(gatewayPort), "--gateway-port", "different from --port", parse.GetValue(gatewayPort));
            Shared.Require(parse.GetValue(cache) >= 0, "--cache-mb", "at least 0", parse.GetValue(cache));
            if (!IPAddress.TryParse(parse.GetValue(host), out var address))
            {
                throw new ArgumentException($"--host must be an IP address, not '{parse.GetValue(host)}'.", "host");
            }

            var options = new SiloOptions
            {
                Address = address,
                SiloPort = parse.GetValue(port),
                GatewayPort = parse.GetValue(gatewayPort),
                Join = parse.GetValue(join) is { } j ? Silos.ParseEndpoint(j) : null,
                Serving = new ShardServingOptions { CacheBytes = parse.GetValue(cache) * 1024 * 1024 },
                LogLevel = parse.GetValue(verbose) ? Microsoft.Extensions.Logging.LogLevel.Information : Microsoft.Extensions.Logging.LogLevel.Warning,
            };
            using var stopped = new CancellationTokenSource();
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stopped.Cancel(); });
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stopped.Cancel(); });
            using var silo = Silos.CreateSilo(options);
            try
            {
                silo.StartAsync().GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new IOException($"The silo could not start on {address}:{options.SiloPort} (gateway {options.GatewayPort}): {e.Message}", e);
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"moe silo: up on {address}:{options.SiloPort}, gateway {address}:{options.GatewayPort}, {(options.Join is null ? "the first silo" : $"joined {options.Join}")}; Ctrl-C to stop"));
            output.Flush();
            stopped.Token.WaitHandle.WaitOne();
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                silo.StopAsync(limit.Token).GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
            }

            output.WriteLine("moe silo: stopped");
            return CliApp.Success;
        });
        return command;
    }

    /// <summary>
    /// A fit on a cluster: <c>local:N</c> starts N silos in this process on loopback and stops them after; otherwise a
    /// comma-separated list of gateways (host:port) of a running cluster.
    /// </summary>
    public static FitResult Fit(string cluster, string path, ColumnRoles? roles, FitOptions options, int maxRows,
        IProgress<FitProgress> progress, TimeSpan timeout, TextWriter error, out long rows, out int shards, out string where)
    {
        var retries = new SynchronousProgress<ClusterRetry>(r =>
            error.WriteLine($"moe: retrying shard {Path.GetFileName(r.Shard)} after attempt {r.Attempt} failed: {r.Error}"));
        var requests = new ClusterRequestOptions { RequestTimeout = timeout };
        if (cluster.StartsWith("local:", StringComparison.Ordinal))
        {
            if (!int.TryParse(cluster.AsSpan(6), NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count is < 1 or > 16)
            {
                throw new ArgumentException($"--cluster local:N takes 1 to 16 silos, not '{cluster[6..]}'.", "cluster");
            }

            var local = LocalCluster.StartAsync(count, requestTimeout: timeout).GetAwaiter().GetResult();
            try
            {
                where = $"{count} silos on loopback";
                return Run(local.Client, out rows, out shards);
            }
            finally
            {
                local.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }

        var gateways = cluster.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(Silos.ParseEndpoint).ToArray();
        if (gateways.Length == 0)
        {
            throw new ArgumentException("--cluster needs host:port of a gateway, or local:N.", "cluster");
        }

        using var client = Silos.ConnectAsync(gateways, timeout).GetAwaiter().GetResult();
        where = $"the cluster at {cluster}";
        return Run(Silos.Client(client), out rows, out shards);

        FitResult Run(IClusterClient client, out long total, out int count)
        {
            var source = (roles is null
                ? ClusterSources.OpenAsync(client, path, null, null, requests, retries)
                : ClusterSources.OpenAsync(client, path, roles, requests, retries)).GetAwaiter().GetResult();
            total = source.Shards.Sum(s => s.Rows);
            count = source.Shards.Count;
            return MoeLearner.FitSource(source, options, maxRows, progress);
        }
    }
}
