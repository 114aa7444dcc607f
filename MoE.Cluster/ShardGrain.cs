using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;
using Core = MoE.Core;

namespace MoE.Cluster;

/// <summary>Which file a shard is, and which of its columns are read: what any silo needs to serve it.</summary>
[GenerateSerializer, Immutable, Alias("MoE.Cluster.ShardSpec")]
public sealed record ShardSpec
{
    /// <summary>The shard's file (CSV or Parquet), a path every silo can read.</summary>
    [Id(0)] public required string Path { get; init; }

    /// <summary>The input columns by name, or null for the file's convention.</summary>
    [Id(1)] public string[]? XColumns { get; init; }

    /// <summary>The response column by name, or null for the file's convention.</summary>
    [Id(2)] public string? YColumn { get; init; }

    /// <summary>Whether rows with a missing value in a column read are left out (else refused).</summary>
    [Id(4)] public bool DropMissing { get; init; }

    /// <summary>The categorical columns read, each as its name then its levels (the reference first).</summary>
    [Id(5)] public string[][]? Levels { get; init; }

    /// <summary>The column of the rows' frequency weights, read with the rows and split off (never an input), or null.</summary>
    [Id(6)] public string? Weights { get; init; }

    /// <summary>The shard's place in its data set (0-based), which spreads the shards over the silos.</summary>
    [Id(3)] public int Index { get; init; }

    /// <summary>The key of the grain that serves this shard (<see cref="IShardGrain"/>): one per place, file and column
    /// choice, the place first (<see cref="ShardIndexPlacement"/> reads it).</summary>
    public string GrainKey => string.Join('\n', Index.ToString(System.Globalization.CultureInfo.InvariantCulture), Path,
        string.Join(',', XColumns ?? []), YColumn ?? "", DropMissing ? "drop" : "",
        string.Join(';', (Levels ?? []).Select(l => string.Join(',', l))), Weights ?? "");
}

/// <summary>What a silo found when it opened a shard.</summary>
[GenerateSerializer, Immutable, Alias("MoE.Cluster.ShardInfo")]
public sealed record ShardInfo
{
    /// <summary>The shard's rows.</summary>
    [Id(0)] public long Rows { get; init; }

    /// <summary>Its input columns d.</summary>
    [Id(1)] public int Dimension { get; init; }

    /// <summary>The silo that serves it now.</summary>
    [Id(2)] public string Silo { get; init; } = "";

    /// <summary>Rows of the file left out for a missing value (<see cref="ShardSpec.DropMissing"/>), and where the
    /// first was.</summary>
    [Id(3)] public long DroppedRows { get; init; }

    /// <summary>Where the first row left out was ("line 5, column 3 ('x2')"), or empty.</summary>
    [Id(4)] public string FirstDropped { get; init; } = "";

    /// <summary>Σ of the rows' frequency weights (<see cref="ShardSpec.Weights"/>), or null when they carry none.</summary>
    [Id(5)] public double? Weight { get; init; }
}

/// <summary>Rows of a shard sent by request (row-major inputs, then the responses).</summary>
[GenerateSerializer, Immutable, Alias("MoE.Cluster.ShardRows")]
public sealed record ShardRows
{
    /// <summary>d.</summary>
    [Id(0)] public int Dimension { get; init; }

    /// <summary>The inputs, row after row (count × d).</summary>
    [Id(1)] public double[] X { get; init; } = [];

    /// <summary>The responses.</summary>
    [Id(2)] public double[] Y { get; init; } = [];

    /// <summary>The rows' frequency weights, or null when they carry none.</summary>
    [Id(3)] public double[]? Weights { get; init; }
}

/// <summary>
/// A shard's worker: answers "this pass, at these parameters" over its file's rows (docs/math.md §7.7). Every call
/// names the shard in full, so whichever silo activates the grain — after the one that held it died — can open the
/// file and answer the same bits.
/// </summary>
[Alias("MoE.Cluster.IShardGrain")]
public interface IShardGrain : IGrainWithStringKey
{
    /// <summary>Opens the shard (if not open) and says what it holds.</summary>
    [Alias("Open")]
    Task<ShardInfo> Open(ShardSpec spec);

    /// <summary>The shard's part of one pass: the request computed over its rows, chunks merged in order.</summary>
    [Alias("Evaluate")]
    Task<double[]> Evaluate(ShardSpec spec, byte[] request);

    /// <summary>Rows of the shard by position, in the request's units.</summary>
    [Alias("Gather")]
    Task<ShardRows> Gather(ShardSpec spec, byte[] request);
}

/// <summary>How a silo serves shards.</summary>
public sealed class ShardServingOptions
{
    /// <summary>A shard of at most this many bytes of values (rows × (d + 1) × 8) is read once and kept in the
    /// silo's memory, as stored and in the units of the fit that uses it (two copies); a larger one is read from its
    /// file again for every pass. Default 1 GiB. The same bits either way.</summary>
    public long CacheBytes { get; set; } = 1L << 30;
}

/// <summary>The grain behind <see cref="IShardGrain"/>.</summary>
[ShardIndexPlacement]
internal sealed class ShardGrain(ILocalSiloDetails silo, IOptions<ShardServingOptions> options, ILogger<ShardGrain> log)
    : Grain, IShardGrain
{
    private string key = "";
    private bool held;
    private Microsoft.FSharp.Core.FSharpOption<Core.Standardisation>? unitsOfCopy;
    private Core.DataSource? inUnits;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        key = this.GetPrimaryKeyString();
        return Task.CompletedTask;
    }

    private Core.DataSource? source;

    // Everything runs off the grain's scheduler, on the thread pool: the passes use every core of the silo, and the
    // file readers wait on tasks of their own, which must not be queued behind the turn that waits for them.
    public Task<ShardInfo> Open(ShardSpec spec) => Task.Run(() =>
    {
        var data = Source(spec);
        var (dropped, first) = Core.DataSourceModule.Dropped(data).ToValueTuple();
        return new ShardInfo
        {
            Rows = data.Rows, Dimension = data.Dimension, Silo = silo.SiloAddress.ToString(), DroppedRows = dropped, FirstDropped = first,
            Weight = data.IsWeighted ? data.Weight : null,
        };
    });

    public Task<double[]> Evaluate(ShardSpec spec, byte[] request) => Task.Run(() =>
    {
        var data = Source(spec);
        if (!held)
        {
            return Core.ShardWork.Evaluate(request, data);
        }

        // A held shard keeps its rows in the units of the latest request too: a fit's passes after the summary are all
        // in its standardised units, and standardising the shard for every pass would cost a copy of it each time.
        var units = Core.ShardWork.Units(request);
        if (inUnits is null || !Equals(units, unitsOfCopy))
        {
            inUnits = null; // the previous copy may go before the next one is made
            inUnits = Core.DataSourceModule.OfDataset(Core.DataSourceModule.Load(Core.ShardWork.InUnits(units, data)));
            unitsOfCopy = units;
        }

        return Core.ShardWork.EvaluateInUnits(request, inUnits);
    });

    public Task<ShardRows> Gather(ShardSpec spec, byte[] request) => Task.Run(() =>
    {
        var rows = Core.ShardWork.Gather(request, Source(spec));
        var x = new double[rows.X.Length];
        Buffer.BlockCopy(rows.X, 0, x, 0, x.Length * sizeof(double));
        return new ShardRows { Dimension = rows.Dimension, X = x, Y = rows.Y, Weights = rows.Weights };
    });

    private Core.DataSource Source(ShardSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        // The key names the file and its columns: a spec that matches it is the shard this grain serves.
        if (spec.GrainKey != key)
        {
            throw new ArgumentException($"The grain for '{key}' was asked to serve '{spec.Path}'.", nameof(spec));
        }

        if (source is not null)
        {
            return source;
        }

        // A weights column is read as one more column and split off (DataSource.withWeightColumn): the passes weigh the
        // rows here, where they live.
        var read = spec.Weights is null ? spec.XColumns : [.. spec.XColumns ?? [], spec.Weights];
        var file = Core.DataFiles.SourceWith(spec.Path,
            read is null ? null : Microsoft.FSharp.Core.FSharpOption<string[]>.Some(read),
            spec.YColumn is null ? null : Microsoft.FSharp.Core.FSharpOption<string>.Some(spec.YColumn),
            spec.DropMissing ? Core.MissingValues.Drop : Core.MissingValues.Refuse,
            (spec.Levels ?? []).Select(l => Tuple.Create(l[0], l[1..])).ToArray());
        if (spec.Weights is { } weights)
        {
            file = Core.DataSourceModule.WithWeightColumn(weights, file);
        }

        var bytes = file.Rows * (file.Dimension + 1) * 8;
        held = bytes <= options.Value.CacheBytes;
        if (held)
        {
            // Held as one batch per shard: the same chunks, so the same bits, as reading the file again.
            file = Core.DataSourceModule.OfDatasetDropping(Core.DataSourceModule.Dropped(file).Item1, Core.DataSourceModule.Dropped(file).Item2, Core.DataSourceModule.Load(file));
        }

        log.LogInformation("Serving {Path}: {Rows} rows, {Dimension} columns, {Held}", spec.Path, file.Rows, file.Dimension,
            held ? "held in memory" : "read from the file on every pass");
        source = file;
        return file;
    }
}

/// <summary>Shard i on silo i mod s of the s live silos (sorted by address): the shards spread evenly, and the same
/// way whichever silo places them. When a silo dies, its shards go round the silos left.</summary>
[GenerateSerializer, Immutable, Alias("MoE.Cluster.ShardIndexPlacement")]
public sealed class ShardIndexPlacement : PlacementStrategy
{
    internal static readonly ShardIndexPlacement Instance = new();
}

/// <summary>Places a grain by <see cref="ShardIndexPlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class ShardIndexPlacementAttribute() : PlacementAttribute(ShardIndexPlacement.Instance);

/// <summary>The director of <see cref="ShardIndexPlacement"/>: the shard's index is the first line of its key.</summary>
internal sealed class ShardIndexPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target).OrderBy(s => s.ToParsableString(), StringComparer.Ordinal).ToArray();
        var key = target.GrainIdentity.Key.ToString();
        var end = key.IndexOf('\n');
        var index = end > 0 && int.TryParse(key.AsSpan(0, end), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var i)
            ? i
            : (key.GetHashCode() & int.MaxValue);
        return Task.FromResult(silos[index % silos.Length]);
    }
}
