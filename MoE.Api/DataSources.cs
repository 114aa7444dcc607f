using Microsoft.FSharp.Core;
using Core = MoE.Core;

namespace MoE.Api;

/// <summary>
/// Data read in passes: one or more shards, each read from its start on every pass. A fit over a source computes every
/// statistic as a pass, chunk by chunk, the chunks of a shard in order and then the shards in order, so the same shards
/// give the same model whether they are held in memory or read again from files (docs/math.md §7.6). Build one with
/// <see cref="DataSources"/>, or implement this interface over your own storage.
/// </summary>
public interface IDataSource
{
    /// <summary>The number of input columns d.</summary>
    int Dimension { get; }

    /// <summary>The shards, in order.</summary>
    IReadOnlyList<IDataShard> Shards { get; }
}

/// <summary>One shard of an <see cref="IDataSource"/>: a run of rows (a file, a partition) read in batches.</summary>
public interface IDataShard
{
    /// <summary>Where the rows come from, for messages.</summary>
    string Name { get; }

    /// <summary>The number of rows; every pass must yield exactly these.</summary>
    long Rows { get; }

    /// <summary>One pass over the shard: its rows in order, in batches of any size. Every call yields the same rows.
    /// The batches of the built-in sources are the caller's to keep.</summary>
    IEnumerable<Dataset> ReadBatches();
}

/// <summary>Data sources over files and memory.</summary>
public static class DataSources
{
    /// <summary>A dataset in memory, as one shard.</summary>
    /// <param name="data">The data.</param>
    public static IDataSource InMemory(Dataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return new CoreSource(Core.DataSourceModule.OfDataset(data.Inner));
    }

    /// <summary>A CSV file (<c>x1,…,xd,y</c>) read again for every pass, 65,536 rows at a time. Opening it parses
    /// the file once, to count its rows and to report a malformed line (with its line and column) at once.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">A malformed header, row or value.</exception>
    public static IDataSource Csv(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Dataset.CheckReadable(path);
        return new CoreSource(Core.DataCsv.Source(path));
    }

    /// <summary>A Parquet file read again for every pass, row group by row group.</summary>
    /// <param name="path">The file.</param>
    /// <param name="xColumns">The input columns by name; null for every numeric column but the response, in the
    /// file's order.</param>
    /// <param name="yColumn">The response column; null for the column named <c>y</c> (else the last numeric
    /// one).</param>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">A named column that is missing or not numeric, a missing or non-finite
    /// value.</exception>
    public static IDataSource Parquet(string path, IReadOnlyList<string>? xColumns = null, string? yColumn = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        Dataset.CheckReadable(path);
        return new CoreSource(Core.DataParquet.Source(path, Names(xColumns), Name(yColumn)));
    }

    /// <summary>A data file (<c>.csv</c> or <c>.parquet</c>, by extension) or a directory of them, sorted by name,
    /// one shard per file.</summary>
    /// <param name="path">The file or directory.</param>
    /// <param name="xColumns">Input columns by name; null for the convention.</param>
    /// <param name="yColumn">The response column by name; null for the convention.</param>
    /// <exception cref="FileNotFoundException">Neither a file nor a directory.</exception>
    /// <exception cref="ArgumentException">A directory without data files, or with both kinds.</exception>
    public static IDataSource Files(string path, IReadOnlyList<string>? xColumns = null, string? yColumn = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        return new CoreSource(Core.DataFiles.Source(path, Names(xColumns), Name(yColumn)));
    }

    /// <summary>A data file or a directory of shards with its columns in roles (<see cref="ColumnRoles"/>): a fit on
    /// it (<see cref="MoeLearner.FitSource"/>) uses that design and the model records the names.</summary>
    /// <param name="path">The file or directory.</param>
    /// <param name="roles">The roles.</param>
    /// <exception cref="ArgumentException">A role names a column the file lacks, or the roles clash.</exception>
    /// <exception cref="FileNotFoundException">Neither a file nor a directory.</exception>
    public static IDataSource Files(string path, ColumnRoles roles)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(roles);
        var (source, design) = Core.DataFiles.WithRoles(path, roles.ToCore()).ToValueTuple();
        return new CoreSource(source, design);
    }

    /// <summary>The design a source was opened with (<see cref="Files(string, ColumnRoles)"/>), or null.</summary>
    internal static Core.Design? DesignOf(IDataSource source) => source is CoreSource own ? own.Design : null;

    private static FSharpOption<string[]> Names(IReadOnlyList<string>? names) =>
        names is null ? FSharpOption<string[]>.None : FSharpOption<string[]>.Some(names.ToArray());

    private static FSharpOption<string> Name(string? name) =>
        name is null ? FSharpOption<string>.None : FSharpOption<string>.Some(name);

    /// <summary>The core's source of a façade source: its own for the built-in ones; a user's shards re-cut into
    /// batches of whole chunks (what every pass needs).</summary>
    /// <summary>A core source as a façade source (MoE.Cluster's sources of remote shards).</summary>
    internal static IDataSource FromCore(Core.DataSource source, Core.Design? design = null) => new CoreSource(source, design);

    internal static Core.DataSource ToCore(IDataSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source is CoreSource own)
        {
            return own.Inner;
        }

        if (source.Shards is null || source.Shards.Count == 0)
        {
            throw new ArgumentException("A data source needs at least one shard.", nameof(source));
        }

        if (source.Dimension < 1)
        {
            throw new ArgumentException($"A data source needs at least one input column, not {source.Dimension}.", nameof(source));
        }

        var shards = source.Shards.Select((shard, i) =>
        {
            if (shard is null)
            {
                throw new ArgumentException($"Shard {i} is null.", nameof(source));
            }

            if (shard.Rows < 1)
            {
                throw new ArgumentException($"Shard '{shard.Name}' has {shard.Rows} rows; every shard needs at least one.", nameof(source));
            }

            return new Core.Shard(shard.Name ?? $"shard {i}", shard.Rows,
                FuncConvert.FromFunc(() => Core.DataSourceModule.Rebatch(16 * Core.DataSourceModule.ChunkRows, Checked(shard, source.Dimension))),
                FSharpOption<Core.RemoteShard>.None, Tuple.Create(0L, ""), FSharpOption<double>.None);
        }).ToArray();
        return new Core.DataSource(source.Dimension, shards);
    }

    /// <summary>A user's batches as core datasets, each checked, and the shard's row count held to its word.</summary>
    private static IEnumerable<Core.Dataset> Checked(IDataShard shard, int dimension)
    {
        long rows = 0;
        foreach (var batch in shard.ReadBatches())
        {
            ArgumentNullException.ThrowIfNull(batch, nameof(shard));
            if (batch.Dimension != dimension)
            {
                throw new InvalidDataException($"Shard '{shard.Name}' yielded a batch with {batch.Dimension} input columns, not {dimension}.");
            }

            if (batch.Weights is not null)
            {
                throw new InvalidDataException($"Shard '{shard.Name}' yielded a batch of weighted rows; a shard of your own reads unweighted rows (fit weighted rows from a Dataset, or from a file with ColumnRoles.Weights).");
            }

            rows += batch.Count;
            yield return batch.Inner;
        }

        if (rows != shard.Rows)
        {
            throw new InvalidDataException($"Shard '{shard.Name}' yielded {rows} rows on a pass but says it has {shard.Rows}.");
        }
    }

    /// <summary>A built-in source: the core's, with the façade's view of its shards.</summary>
    private sealed class CoreSource(Core.DataSource inner, Core.Design? design = null) : IDataSource
    {
        public Core.DataSource Inner { get; } = inner;

        public Core.Design? Design { get; } = design;

        public int Dimension => Inner.Dimension;

        public IReadOnlyList<IDataShard> Shards { get; } = inner.Shards.Select(s => (IDataShard)new CoreShard(s)).ToArray();
    }

    private sealed class CoreShard(Core.Shard inner) : IDataShard
    {
        public string Name => inner.Name;

        public long Rows => inner.Rows;

        // The core's readers may hand each batch in the same arrays; a caller may keep what it is given.
        public IEnumerable<Dataset> ReadBatches() =>
            inner.Read.Invoke(null!).Select(d => new Dataset(new Core.Dataset((double[,])d.X.Clone(), (double[])d.Y.Clone(),
                (double[]?)d.Weights?.Clone()!)));
    }
}
