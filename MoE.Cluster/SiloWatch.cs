using System.Diagnostics;
using Orleans.Runtime;

namespace MoE.Cluster;

/// <summary>
/// The coordinator's view of which silos are alive, kept while some request waits (docs/cluster.md, "When a silo
/// dies").
/// <para>
/// Why it is needed: a request can go through one silo (the client's gateway) to a grain on another; when either dies
/// with the request on it — the grain's silo while it computes or while the grain is being activated there, the gateway
/// while it forwards — often nobody answers and nobody says so: the request waits its whole timeout (5 minutes by
/// default), although the cluster knew the silo dead within seconds. So while any request is outstanding the
/// coordinator asks the cluster for its live silos every <see cref="Period"/>, and when a silo it has seen alive is no
/// longer listed, every request outstanding since before that poll is given up and sent again at once: which of them
/// passed through the dead silo the client cannot tell.
/// </para>
/// <para>
/// Cost: a request given up on a silo that in fact still works is computed twice (the repeat queues behind the first
/// on its grain), never answered wrongly: an answer is a pure function of the shard and the request. A poll that fails
/// or takes longer than <see cref="PollTimeout"/> (the silo answering it may be the dead one) says nothing; the next
/// one asks again.
/// </para>
/// </summary>
internal sealed class SiloWatch(IClusterClient client, CancellationToken cancellationToken)
{
    /// <summary>How often the live silos are asked for while a request waits.</summary>
    internal static readonly TimeSpan Period = TimeSpan.FromSeconds(1);

    /// <summary>How long one poll may take before it is given up (and says nothing).</summary>
    internal static readonly TimeSpan PollTimeout = TimeSpan.FromSeconds(2);

    private readonly object gate = new();
    private readonly List<Lease> leases = [];
    private readonly HashSet<string> seen = [];
    private readonly HashSet<string> dead = [];
    private Task? loop;

    /// <summary>A token cancelled when a silo leaves the cluster after this call. Dispose the lease when the request
    /// has its answer.</summary>
    public Lease Watch()
    {
        var lease = new Lease(this);
        lock (gate)
        {
            leases.Add(lease);
            loop ??= Task.Run(RunAsync);
        }

        return lease;
    }

    private void Release(Lease lease)
    {
        lock (gate)
        {
            leases.Remove(lease);
        }
    }

    private async Task RunAsync()
    {
        var management = client.GetGrain<IManagementGrain>(0);
        while (true)
        {
            lock (gate)
            {
                if (leases.Count == 0 || cancellationToken.IsCancellationRequested)
                {
                    loop = null;
                    return;
                }
            }

            var clock = Stopwatch.StartNew();
            Dictionary<SiloAddress, SiloStatus>? hosts = null;
            try
            {
                hosts = await management.GetHosts(onlyActive: true).WaitAsync(PollTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Says nothing, whatever the failure: the silo that would answer may be the one that died, or the
                // client be closing; the next poll asks again (or the loop ends with the last request).
            }

            if (hosts is not null)
            {
                Update(hosts.Keys.Select(s => s.ToString()).ToHashSet());
            }

            var rest = Period - clock.Elapsed;
            try
            {
                if (rest > TimeSpan.Zero)
                {
                    await Task.Delay(rest, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private void Update(HashSet<string> live)
    {
        Lease[] lost;
        string silo;
        lock (gate)
        {
            // A silo seen alive and now not listed has left.
            var left = seen.Where(s => !live.Contains(s) && !dead.Contains(s)).ToArray();
            seen.UnionWith(live);
            dead.UnionWith(left);
            if (left.Length == 0)
            {
                return;
            }

            silo = string.Join(", ", left);
            lost = [.. leases];
        }

        // Outside the lock: a cancellation runs the waiting request's continuation, which releases its lease.
        foreach (var lease in lost)
        {
            lease.Lose(silo);
        }
    }

    /// <summary>One request's watch.</summary>
    internal sealed class Lease(SiloWatch watch) : IDisposable
    {
        private readonly CancellationTokenSource lost = new();
        private readonly object sync = new();
        private bool disposed;

        /// <summary>Cancelled when a silo has left the cluster since the lease began.</summary>
        public CancellationToken Lost => lost.Token;

        /// <summary>The silo (or silos) that left, once <see cref="Lost"/> is cancelled.</summary>
        public string? Left { get; private set; }

        internal void Lose(string left)
        {
            lock (sync)
            {
                if (Left is not null || disposed)
                {
                    return;
                }

                Left = left;
            }

            lost.Cancel();
        }

        public void Dispose()
        {
            watch.Release(this);
            lock (sync)
            {
                disposed = true;
            }

            // The source is not disposed: it has no timer, and a poll may still be cancelling it.
        }
    }
}
