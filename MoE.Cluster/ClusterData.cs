using System.Diagnostics;
using MoE.Api;
using Core = MoE.Core;

namespace MoE.Cluster;

/// <summary>How the coordinator of a fit talks to the shard grains.</summary>
public sealed class ClusterRequestOptions
{
    /// <summary>How long one request (one shard's part of one pass) may take before it is given up and retried.
    /// Default 5 minutes: a pass over a shard of 10⁸ rows takes tens of seconds.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How many times a request is sent before the fit fails (the first try included). Default 8.</summary>
    public int Attempts { get; set; } = 8;

    /// <summary>The wait before the first retry, doubled after every failure up to <see cref="MaxBackoff"/>.
    /// Default 0.5 s.</summary>
    public TimeSpan Backoff { get; set; } = TimeSpan.FromSeconds(0.5);

    /// <summary>The longest wait between tries. Default 8 s: with the defaults a request is retried for about 30 s,
    /// longer than a cluster takes to declare a dead silo dead (<see cref="Silos"/>).</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(8);

    /// <summary>Told of every request as it is sent (the shard, and "open", "evaluate" or "gather"): for tests that
    /// stop a silo at a chosen moment of a fit.</summary>
    internal Action<ShardSpec, string>? Sent { get; set; }

    internal void Validate()
    {
        if (RequestTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(RequestTimeout), RequestTimeout, "The request timeout must be positive.");
        }

        if (Attempts < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(Attempts), Attempts, "A request needs at least one attempt.");
        }

        if (Backoff < TimeSpan.Zero || MaxBackoff < Backoff)
        {
            throw new ArgumentOutOfRangeException(nameof(Backoff), Backoff, "The backoff must be non-negative and at most MaxBackoff.");
        }
    }
}

/// <summary>A retry, as the coordinator saw it: which shard, which attempt failed, and why.</summary>
/// <param name="Shard">The shard's file.</param>
/// <param name="Attempt">The attempt that failed (1 for the first).</param>
/// <param name="Error">What failed.</param>
public sealed record ClusterRetry(string Shard, int Attempt, string Error);

/// <summary>Data sources whose shards are served by grains of an Orleans cluster.</summary>
public static class ClusterSources
{
    /// <summary>
    /// A file or a directory of shards (its .csv or .parquet files in name order, as <see cref="DataSources.Files(string, IReadOnlyList{string}?, string?)"/>)
    /// served by the cluster: one grain per file opens it on some silo and computes every pass over it there; only
    /// requests (parameters) and sums cross the network. A fit of the returned source
    /// (<see cref="MoeLearner.FitSource"/>) gives the bits of a fit of <see cref="DataSources.Files(string, IReadOnlyList{string}?, string?)"/> in one process.
    /// </summary>
    /// <param name="client">A client connected to the cluster (<see cref="Silos.ConnectAsync"/>).</param>
    /// <param name="path">The file or directory; the paths of its files must name the same files on every silo (a
    /// shared file system, or the same copies at the same place), since a silo that takes over a dead silo's shard
    /// reads it again.</param>
    /// <param name="xColumns">The input columns by name, or null.</param>
    /// <param name="yColumn">The response column by name, or null.</param>
    /// <param name="options">Timeouts and retries (default: <see cref="ClusterRequestOptions"/>' defaults).</param>
    /// <param name="retries">Told of every retry (optional).</param>
    /// <param name="cancellationToken">Cancels the opening and, through the source, every later request.</param>
    /// <returns>The source.</returns>
    /// <exception cref="ArgumentException">No data files, or shards of different dimensions.</exception>
    /// <exception cref="IOException">No silo could open a shard after every attempt (the message names it).</exception>
    public static async Task<IDataSource> OpenAsync(IClusterClient client, string path, IReadOnlyList<string>? xColumns = null,
        string? yColumn = null, ClusterRequestOptions? options = null, IProgress<ClusterRetry>? retries = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(path);
        return await OpenCoreAsync(client, Specs(path, xColumns, yColumn), options, retries, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<IDataSource> OpenCoreAsync(IClusterClient client, ShardSpec[] specs,
        ClusterRequestOptions? options, IProgress<ClusterRetry>? retries, CancellationToken cancellationToken)
    {
        options ??= new ClusterRequestOptions();
        options.Validate();
        var watch = new SiloWatch(client, cancellationToken);
        var workers = specs.Select(spec => new ShardWorker(client, spec, options, watch, retries, cancellationToken)).ToArray();
        var infos = await Task.WhenAll(workers.Select(w => w.OpenAsync())).ConfigureAwait(false);
        var shards = workers.Select((w, i) => Core.DataSourceModule.RemoteShardWeighted(specs[i].Path, infos[i].Rows,
            infos[i].DroppedRows, infos[i].FirstDropped,
            infos[i].Weight is { } weight ? Microsoft.FSharp.Core.FSharpOption<double>.Some(weight) : Microsoft.FSharp.Core.FSharpOption<double>.None,
            w)).ToArray();
        var sources = shards.Select((s, i) => new Core.DataSource(infos[i].Dimension, [s]));
        return DataSources.FromCore(Core.DataSourceModule.Concat(sources));
    }

    /// <summary>
    /// As <see cref="OpenAsync(IClusterClient, string, IReadOnlyList{string}?, string?, ClusterRequestOptions?, IProgress{ClusterRetry}?, CancellationToken)"/>,
    /// with the columns in roles (<see cref="ColumnRoles"/>): the roles are resolved against the first shard's header
    /// here (the client sees the files, as it lists them), every shard reads the design's columns by name, and a fit of
    /// the source uses the design and records the names.
    /// </summary>
    /// <param name="client">A client connected to the cluster.</param>
    /// <param name="path">The file or directory.</param>
    /// <param name="roles">The roles.</param>
    /// <param name="options">Timeouts and retries.</param>
    /// <param name="retries">Told of every retry (optional).</param>
    /// <param name="cancellationToken">Cancels the opening and every later request.</param>
    /// <returns>The source.</returns>
    /// <exception cref="ArgumentException">A role names a column the file lacks, or the roles clash.</exception>
    public static async Task<IDataSource> OpenAsync(IClusterClient client, string path, ColumnRoles roles,
        ClusterRequestOptions? options = null, IProgress<ClusterRetry>? retries = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(roles);
        ArgumentNullException.ThrowIfNull(client);
        var design = Core.DataFiles.Design(Path.GetFullPath(path), roles.ToCore());
        var names = design.Columns.Value;
        var specs = Specs(path, names.Inputs, names.Response)
            .Select(spec => spec with
            {
                DropMissing = roles.Missing == MissingValues.Drop,
                Weights = roles.Weights,
                Levels = names.Levels.Select(l => new[] { l.Item1 }.Concat(l.Item2).ToArray()).ToArray(),
            }).ToArray();
        var source = await OpenCoreAsync(client, specs, options, retries, cancellationToken).ConfigureAwait(false);
        return DataSources.FromCore(DataSources.ToCore(source), design);
    }

    /// <summary>Which silo serves each shard now (opening any shard not yet open), in shard order.</summary>
    /// <param name="client">A client connected to the cluster.</param>
    /// <param name="path">The file or directory, as given to <see cref="OpenAsync(IClusterClient, string, IReadOnlyList{string}?, string?, ClusterRequestOptions?, IProgress{ClusterRetry}?, CancellationToken)"/>.</param>
    /// <param name="xColumns">As given to <see cref="OpenAsync(IClusterClient, string, IReadOnlyList{string}?, string?, ClusterRequestOptions?, IProgress{ClusterRetry}?, CancellationToken)"/>.</param>
    /// <param name="yColumn">As given to <see cref="OpenAsync(IClusterClient, string, IReadOnlyList{string}?, string?, ClusterRequestOptions?, IProgress{ClusterRetry}?, CancellationToken)"/>.</param>
    public static async Task<IReadOnlyList<ShardInfo>> PlacementAsync(IClusterClient client, string path,
        IReadOnlyList<string>? xColumns = null, string? yColumn = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        return await Task.WhenAll(Specs(path, xColumns, yColumn)
            .Select(spec => client.GetGrain<IShardGrain>(spec.GrainKey).Open(spec))).ConfigureAwait(false);
    }

    /// <summary>The shards of a file or directory (its data files in name order), as the grains know them.</summary>
    /// <param name="path">A file or a directory.</param>
    /// <param name="xColumns">The input columns by name, or null.</param>
    /// <param name="yColumn">The response column by name, or null.</param>
    public static ShardSpec[] Specs(string path, IReadOnlyList<string>? xColumns = null, string? yColumn = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Core.DataFiles.Files(Path.GetFullPath(path))
            .Select((f, i) => new ShardSpec { Path = f, Index = i, XColumns = xColumns?.ToArray(), YColumn = yColumn })
            .ToArray();
    }
}

/// <summary>
/// The coordinator's end of one shard: every request sent to the shard's grain with a timeout, and sent again — to
/// whichever silo the cluster activates the grain on — after a failure of the cluster (a dead silo, a lost connection,
/// a timeout), a bounded number of times with growing waits. A request whose silo leaves the cluster while it waits
/// (<see cref="SiloWatch"/>) is given up at once and sent again. An error of the data (a malformed file, a request that
/// does not fit) is not retried: it would fail again.
/// </summary>
internal sealed class ShardWorker(IClusterClient client, ShardSpec spec, ClusterRequestOptions options, SiloWatch watch,
    IProgress<ClusterRetry>? retries, CancellationToken cancellationToken) : Core.IShardWorker
{
    private readonly IShardGrain grain = client.GetGrain<IShardGrain>(spec.GrainKey);

    public Task<ShardInfo> OpenAsync() => Call("open", g => g.Open(spec));

    public Task<double[]> Evaluate(byte[] request) => Call("evaluate", g => g.Evaluate(spec, request));

    public async Task<Core.Dataset> Gather(byte[] request)
    {
        var rows = await Call("gather", g => g.Gather(spec, request)).ConfigureAwait(false);
        var count = rows.Dimension == 0 ? 0 : rows.X.Length / rows.Dimension;
        if (rows.Dimension < 1 || count * rows.Dimension != rows.X.Length || count != rows.Y.Length
            || (rows.Weights is not null && rows.Weights.Length != count))
        {
            throw new InvalidDataException($"The worker of {spec.Path} sent malformed rows.");
        }

        var x = new double[count, rows.Dimension];
        Buffer.BlockCopy(rows.X, 0, x, 0, rows.X.Length * sizeof(double));
        return new Core.Dataset(x, rows.Y, rows.Weights!);
    }

    private async Task<T> Call<T>(string kind, Func<IShardGrain, Task<T>> call)
    {
        var wait = options.Backoff;
        var clock = Stopwatch.StartNew();
        for (var attempt = 1; ; attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var lease = watch.Watch();
            using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lease.Lost);
            try
            {
                options.Sent?.Invoke(spec, kind);
                return await call(grain).WaitAsync(options.RequestTimeout, either.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (Transient(e) || (e is OperationCanceledException && lease.Lost.IsCancellationRequested && !cancellationToken.IsCancellationRequested))
            {
                var left = e is OperationCanceledException;
                var error = left
                    ? $"the silo {lease.Left} left the cluster while the request waited"
                    : $"{e.GetType().Name}: {FirstLine(e.Message)}";
                if (attempt >= options.Attempts)
                {
                    throw new IOException(
                        $"No silo answered for the shard {spec.Path} in {attempt} attempts over {clock.Elapsed.TotalSeconds:F0} s (the last: {error}). Is the cluster up, and can every silo read the file?",
                        e);
                }

                retries?.Report(new ClusterRetry(spec.Path, attempt, error));
                // A silo known gone: the cluster places its grains anew at once, so the request goes again at once.
                if (!left)
                {
                    await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
                    wait = TimeSpan.FromTicks(Math.Min(options.MaxBackoff.Ticks, wait.Ticks * 2));
                }
            }
        }
    }

    /// <summary>A failure of the cluster, not of the data: the same request may succeed on another silo.</summary>
    private static bool Transient(Exception e) => e is TimeoutException or OrleansException;

    private static string FirstLine(string message)
    {
        var end = message.IndexOfAny(['\r', '\n']);
        return end < 0 ? message : message[..end];
    }
}
