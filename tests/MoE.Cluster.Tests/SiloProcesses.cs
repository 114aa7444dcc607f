using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace MoE.Cluster.Tests;

/// <summary>
/// Silos as separate 'moe silo' processes on loopback (the moe.dll built beside the tests), so that one can be killed
/// as a machine dies: SIGKILL, no goodbye. Every process is killed at dispose.
/// </summary>
internal sealed class SiloProcesses : IAsyncDisposable
{
    private readonly List<Process> processes = [];
    private readonly List<int> siloPorts = [];

    public List<IPEndPoint> Gateways { get; } = [];

    public static async Task<SiloProcesses> StartAsync(int count)
    {
        var silos = new SiloProcesses();
        try
        {
            for (var i = 0; i < count; i++)
            {
                int siloPort = FreePort(), gatewayPort = FreePort();
                string[] args = ["silo", "--port", $"{siloPort}", "--gateway-port", $"{gatewayPort}", .. i == 0 ? Array.Empty<string>() : ["--join", $"127.0.0.1:{silos.siloPorts[0]}"]];
                var start = new ProcessStartInfo("dotnet")
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                };
                start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "moe.dll"));
                foreach (var a in args)
                {
                    start.ArgumentList.Add(a);
                }

                var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
                silos.processes.Add(process);
                silos.siloPorts.Add(siloPort);
                silos.Gateways.Add(new IPEndPoint(IPAddress.Loopback, gatewayPort));
                process.ErrorDataReceived += (_, _) => { };
                process.BeginErrorReadLine();
                // Up when it says so.
                var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
                if (line is null || !line.StartsWith("moe silo: up", StringComparison.Ordinal))
                {
                    throw new InvalidOperationException($"moe silo {string.Join(' ', args)} said '{line}' instead of starting.");
                }

                _ = process.StandardOutput.ReadToEndAsync();
            }

            return silos;
        }
        catch
        {
            await silos.DisposeAsync();
            throw;
        }
    }

    /// <summary>Whether silo <paramref name="index"/> served the shard when asked.</summary>
    public bool Serves(int index, ShardInfo shard) => shard.Silo.Contains($":{siloPorts[index]}:", StringComparison.Ordinal);

    /// <summary>Kills silo <paramref name="index"/> (SIGKILL) and waits for it to be gone.</summary>
    public void Kill(int index)
    {
        processes[index].Kill();
        processes[index].WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in processes)
        {
            if (!p.HasExited)
            {
                p.Kill();
                await p.WaitForExitAsync();
            }

            p.Dispose();
        }
    }

    /// <summary>A free TCP port on loopback (free when asked).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
