using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;

namespace MoE.Cluster;

/// <summary>Where a silo listens and which cluster it joins.</summary>
public sealed class SiloOptions
{
    /// <summary>The address other silos and clients reach this one at. Default: loopback (one machine); on a LAN,
    /// this machine's address.</summary>
    public IPAddress Address { get; set; } = IPAddress.Loopback;

    /// <summary>The port silos talk to each other on. Default 11111.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>The port clients (a fit's coordinator) connect to. Default 30000.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>The first silo's silo endpoint (host:port), which keeps the cluster's membership; null for the first
    /// silo itself.</summary>
    public IPEndPoint? Join { get; set; }

    /// <summary>How shards are served (what is kept in memory).</summary>
    public ShardServingOptions Serving { get; set; } = new();

    /// <summary>Log level of the silo's own messages. Default warnings.</summary>
    public LogLevel LogLevel { get; set; } = LogLevel.Warning;
}

/// <summary>Silos and clients of a MoE cluster (Orleans, development membership: the first silo keeps the list of
/// members, and every other joins it).</summary>
public static class Silos
{
    /// <summary>The cluster's identity; silos and clients of one cluster must agree on it.</summary>
    public const string ClusterId = "moe";

    /// <summary>
    /// A silo host (not started): one process's share of the cluster. Silos probe each other every second and declare
    /// a silo dead after three missed probes, so a killed silo's shards move within a few seconds.
    /// </summary>
    /// <param name="options">Where it listens and whom it joins.</param>
    /// <exception cref="IOException">The silo port or the gateway port is already in use (found before Orleans starts,
    /// so the caller gets one line instead of Orleans' startup errors).</exception>
    public static IHost CreateSilo(SiloOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var listenOn = IPAddress.IsLoopback(options.Address) ? options.Address : IPAddress.Any;
        CheckPortFree(listenOn, options.SiloPort, "silo port");
        CheckPortFree(listenOn, options.GatewayPort, "gateway port");
        var primary = options.Join ?? new IPEndPoint(options.Address, options.SiloPort);
        return new HostBuilder()
            .ConfigureLogging(l => Log(l, options.LogLevel))
            .UseOrleans(silo =>
            {
                silo.UseDevelopmentClustering(primary);
                silo.Configure<ClusterOptions>(o => { o.ClusterId = ClusterId; o.ServiceId = ClusterId; });
                silo.ConfigureEndpoints(options.Address, options.SiloPort, options.GatewayPort, listenOnAnyHostAddress: !IPAddress.IsLoopback(options.Address));
                silo.Configure<ClusterMembershipOptions>(o =>
                {
                    o.ProbeTimeout = TimeSpan.FromSeconds(1);
                    o.NumMissedProbesLimit = 3;
                    o.NumVotesForDeathDeclaration = 1;
                    o.TableRefreshTimeout = TimeSpan.FromSeconds(2);
                    o.DeathVoteExpirationTimeout = TimeSpan.FromSeconds(10);
                });
                silo.Configure<ShardServingOptions>(o => o.CacheBytes = options.Serving.CacheBytes);
                silo.AddPlacementDirector<ShardIndexPlacement, ShardIndexPlacementDirector>();
            })
            .Build();
    }

    /// <summary>Whether any gateway accepts a TCP connection within 2 s.</summary>
    private static async Task<bool> AnyListensAsync(IReadOnlyList<IPEndPoint> gateways, CancellationToken cancellationToken)
    {
        foreach (var gateway in gateways)
        {
            using var socket = new Socket(gateway.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(TimeSpan.FromSeconds(2));
            try
            {
                await socket.ConnectAsync(gateway, limit.Token).ConfigureAwait(false);
                return true;
            }
            catch (Exception e) when (e is SocketException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
            }
        }

        return false;
    }

    /// <summary>Binds the port for a moment: a port in use fails here, with its number, not inside Orleans.</summary>
    private static void CheckPortFree(IPAddress address, int port, string role)
    {
        var probe = new TcpListener(address, port);
        try
        {
            probe.Start();
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AccessDenied)
        {
            throw new IOException($"The {role} {port} on {address} is {(e.SocketErrorCode == SocketError.AccessDenied ? "not open to this user" : "already in use by another program or silo")}; choose another port.", e);
        }
        finally
        {
            probe.Stop();
        }
    }

    /// <summary>Log lines on standard error, one per message: standard output is the program's results.</summary>
    private static ILoggingBuilder Log(ILoggingBuilder logging, LogLevel level) =>
        logging.AddSimpleConsole(c => c.SingleLine = true)
            .AddConsole(c => c.LogToStandardErrorThreshold = LogLevel.Trace)
            // Orleans advises server GC at every start; a silo of this toolkit runs its passes on every core either
            // way, so the advice is noise.
            .AddFilter((category, l) => l >= level && !(category == "Orleans.Runtime.Silo" && l == LogLevel.Warning));

    /// <summary>A client connected to a cluster through any of its gateways.</summary>
    /// <param name="gateways">Gateway endpoints (host:port) of some of the cluster's silos.</param>
    /// <param name="requestTimeout">How long a request may take (default 5 minutes; see
    /// <see cref="ClusterRequestOptions.RequestTimeout"/>).</param>
    /// <param name="connectTimeout">How long to try to reach a gateway (default 30 s).</param>
    /// <param name="cancellationToken">Cancels the connection attempt.</param>
    /// <returns>The started client host; dispose it to disconnect. Its <see cref="IClusterClient"/> is in its
    /// services.</returns>
    /// <exception cref="IOException">No gateway answered (the message names them).</exception>
    public static async Task<IHost> ConnectAsync(IReadOnlyList<IPEndPoint> gateways, TimeSpan? requestTimeout = null,
        TimeSpan? connectTimeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(gateways);
        if (gateways.Count == 0)
        {
            throw new ArgumentException("A client needs at least one gateway (host:port).", nameof(gateways));
        }

        // Orleans retries a gateway that refuses the connection until its connect timeout (30 s); nothing listening
        // anywhere is known at once.
        if (!await AnyListensAsync(gateways, cancellationToken).ConfigureAwait(false))
        {
            throw new IOException($"Could not connect to the cluster at {string.Join(", ", gateways)}: nothing listens there (is 'moe silo' running, and is this its --gateway-port?)");
        }

        var host = new HostBuilder()
            // A client that cannot connect says so in the exception; its host's own log line would be a second one.
            .ConfigureLogging(l => Log(l, LogLevel.None))
            .UseOrleansClient(client =>
            {
                client.UseStaticClustering(gateways.ToArray());
                client.Configure<ClusterOptions>(o => { o.ClusterId = ClusterId; o.ServiceId = ClusterId; });
                client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = requestTimeout ?? TimeSpan.FromMinutes(5));
                client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(5));
            })
            .Build();
        try
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(connectTimeout ?? TimeSpan.FromSeconds(30));
            await host.StartAsync(limit.Token).ConfigureAwait(false);
            return host;
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            // Something listens (AnyListensAsync said so) but no gateway handshake came back within the limit: most
            // often a silo's --port (silo to silo) given where its --gateway-port belongs.
            host.Dispose();
            throw new IOException($"Could not connect to the cluster at {string.Join(", ", gateways)}: a program listens there but no moe gateway answered within {(connectTimeout ?? TimeSpan.FromSeconds(30)).TotalSeconds:0} s (is this a silo's --port rather than its --gateway-port?)", e);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            host.Dispose();
            throw new IOException($"Could not connect to the cluster at {string.Join(", ", gateways)}: {e.Message} (is 'moe silo' running there?)", e);
        }
    }

    /// <summary>The cluster client of a connected client host.</summary>
    /// <param name="clientHost">A host from <see cref="ConnectAsync"/>.</param>
    public static IClusterClient Client(IHost clientHost) => clientHost.Services.GetRequiredService<IClusterClient>();

    /// <summary>Parses "host:port" (a name or an address), resolving names.</summary>
    /// <param name="text">The endpoint.</param>
    /// <exception cref="FormatException">Not host:port with a port in 1..65535.</exception>
    public static IPEndPoint ParseEndpoint(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), out var port) || port is < 1 or > 65535)
        {
            throw new FormatException($"'{text}' is not host:port (a port from 1 to 65535).");
        }

        var host = text[..colon].Trim('[', ']');
        if (IPAddress.TryParse(host, out var address))
        {
            return new IPEndPoint(address, port);
        }

        var found = Dns.GetHostAddresses(host).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
            ?? throw new FormatException($"The host '{host}' has no IPv4 address.");
        return new IPEndPoint(found, port);
    }

    /// <summary>A free TCP port on loopback (asked of the system; free when asked).</summary>
    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>
/// A cluster of silos in this process on loopback (<c>moe fit --cluster local:3</c>, tests, demos): real silos talking
/// over TCP, with a client connected to all of them. Dispose it to stop them.
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private readonly List<IHost> silos;
    private readonly IHost client;

    private LocalCluster(List<IHost> silos, IReadOnlyList<IPEndPoint> siloEndpoints, IReadOnlyList<IPEndPoint> gateways, IHost client)
    {
        this.silos = silos;
        SiloEndpoints = siloEndpoints;
        Gateways = gateways;
        this.client = client;
    }

    /// <summary>The silos' silo-to-silo endpoints, in start order (a <see cref="ShardInfo.Silo"/> names one).</summary>
    public IReadOnlyList<IPEndPoint> SiloEndpoints { get; }

    /// <summary>The client connected to the cluster.</summary>
    public IClusterClient Client => Silos.Client(client);

    /// <summary>The silos' gateway endpoints, in start order (the first silo keeps the membership).</summary>
    public IReadOnlyList<IPEndPoint> Gateways { get; }

    /// <summary>Starts <paramref name="count"/> silos on free loopback ports and connects a client.</summary>
    /// <param name="count">Silos, at least 1.</param>
    /// <param name="serving">How the silos serve shards (default: <see cref="ShardServingOptions"/>).</param>
    /// <param name="requestTimeout">The client's request timeout (default 5 minutes).</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    public static async Task<LocalCluster> StartAsync(int count, ShardServingOptions? serving = null, TimeSpan? requestTimeout = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var hosts = new List<IHost>();
        var gateways = new List<IPEndPoint>();
        var endpoints = new List<IPEndPoint>();
        IPEndPoint? primary = null;
        try
        {
            for (var i = 0; i < count; i++)
            {
                var options = new SiloOptions
                {
                    SiloPort = Silos.FreePort(),
                    GatewayPort = Silos.FreePort(),
                    Join = primary,
                    Serving = serving ?? new ShardServingOptions(),
                };
                var host = Silos.CreateSilo(options);
                hosts.Add(host);
                await host.StartAsync(cancellationToken).ConfigureAwait(false);
                primary ??= new IPEndPoint(IPAddress.Loopback, options.SiloPort);
                gateways.Add(new IPEndPoint(IPAddress.Loopback, options.GatewayPort));
                endpoints.Add(new IPEndPoint(IPAddress.Loopback, options.SiloPort));
            }

            var client = await Silos.ConnectAsync(gateways, requestTimeout, cancellationToken: cancellationToken).ConfigureAwait(false);
            return new LocalCluster(hosts, endpoints, gateways, client);
        }
        catch
        {
            foreach (var host in hosts)
            {
                host.Dispose();
            }

            throw;
        }
    }

    /// <summary>Disconnects the client and stops every silo (the first last).</summary>
    public async ValueTask DisposeAsync()
    {
        await client.StopAsync().ConfigureAwait(false);
        client.Dispose();
        for (var i = silos.Count - 1; i >= 0; i--)
        {
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await silos[i].StopAsync(limit.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            silos[i].Dispose();
        }
    }
}
