using Core = MoE.Core;

namespace MoE.Api;

/// <summary>Samples (x_i, y_i): an n×d input matrix <see cref="X"/>, n responses <see cref="Y"/> and, optionally, each
/// row's frequency weight (<see cref="Weights"/>).</summary>
/// <remarks>
/// The arrays are shared with the dataset, not copied (datasets can hold 10⁸ values): treat them as
/// read-only. Every value is checked to be finite when the dataset is built.
/// </remarks>
public sealed class Dataset
{
    internal Core.Dataset Inner { get; }

    /// <summary>The columns in roles, when the dataset was read with <see cref="ColumnRoles"/>.</summary>
    internal Core.Design? Design { get; }

    /// <summary>The rows the reader left out for a missing value, and where the first was.</summary>
    internal Tuple<long, string> Dropped { get; } = Tuple.Create(0L, "");

    internal Dataset(Core.Dataset core, Core.Design? design = null, Tuple<long, string>? dropped = null)
    {
        Inner = core;
        Design = design;
        Dropped = dropped ?? Dropped;
    }

    /// <summary>How many rows of the file were left out for a missing value (<see cref="MissingValues.Drop"/>); 0
    /// otherwise. A fit on the dataset warns with the count (<see cref="WarningCode.RowsDropped"/>).</summary>
    public long DroppedRows => Dropped.Item1;

    /// <summary>Reads a data file (CSV or Parquet, by extension) or a directory of shards with its columns in roles:
    /// the columns the experts and the gate read, and the response, by name. A fit on it uses that design and the model
    /// records the names (<see cref="MixtureOfExperts.ExpertColumns"/>).</summary>
    /// <param name="path">The file or directory.</param>
    /// <param name="roles">The roles (<see cref="ColumnRoles.Parse"/> for a formula).</param>
    /// <exception cref="ArgumentException">A role names a column the file lacks, or the roles clash (the message says
    /// which).</exception>
    /// <exception cref="System.IO.InvalidDataException">A malformed file, or a value that is not a finite number in a
    /// column a role reads (with its line and column).</exception>
    /// <exception cref="System.IO.FileNotFoundException">No such file.</exception>
    public static Dataset Load(string path, ColumnRoles roles)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(roles);
        var (source, design) = Core.DataFiles.WithRoles(path, roles.ToCore()).ToValueTuple();
        return new(Core.DataSourceModule.Load(source), design, Core.DataSourceModule.Dropped(source));
    }

    /// <summary>The experts' columns by name, in the order of a row of the regressors (null unless read with
    /// <see cref="ColumnRoles"/>).</summary>
    public IReadOnlyList<string>? ExpertColumns => Design?.ExpertNames?.Value;

    /// <summary>The gate's columns by name, in the order of a row of the gating (null unless read with
    /// <see cref="ColumnRoles"/>).</summary>
    public IReadOnlyList<string>? GateColumns => Design?.GateNames?.Value;

    /// <summary>The names of the input columns, in the order of <see cref="X"/>'s columns (a categorical column's
    /// indicators named <c>column=level</c>); null unless read with <see cref="ColumnRoles"/>.</summary>
    public IReadOnlyList<string>? Columns => Design?.Columns?.Value.Inputs;

    /// <summary>The response column's name (null unless read with <see cref="ColumnRoles"/>).</summary>
    public string? Response => Design?.Columns?.Value.Response;

    /// <summary>A dataset over the given arrays (not copied).</summary>
    /// <param name="x">n×d inputs; row i is x_i.</param>
    /// <param name="y">n responses.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The row counts differ, a matrix is empty, or a value is NaN or infinite
    /// (the message gives its position).</exception>
    public static Dataset FromArrays(double[,] x, double[] y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        return new(Core.DatasetModule.Create(x, y));
    }

    /// <summary>A dataset of weighted rows over the given arrays (not copied): row i counts <c>weights[i]</c> times in
    /// a fit, its standard errors and its criteria (n = Σw), so integer weights fit as the rows repeated that many
    /// times; a weight of 0 leaves the row out.</summary>
    /// <param name="x">n×d inputs; row i is x_i.</param>
    /// <param name="y">n responses.</param>
    /// <param name="weights">n frequency weights, finite and at least 0, not all 0.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The row counts differ, a matrix is empty, a value is NaN or infinite, or a
    /// weight is negative or not finite (the message gives its row).</exception>
    public static Dataset FromArrays(double[,] x, double[] y, double[] weights)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        ArgumentNullException.ThrowIfNull(weights);
        return new(Core.DatasetModule.Weighted(x, y, weights));
    }

    /// <summary>The rows' frequency weights (shared, not copied); null when every row weighs 1.</summary>
    public double[]? Weights => Inner.Weights;

    /// <summary>Reads a data file by its extension: <c>.parquet</c> as Parquet (<see cref="LoadParquet"/>, every
    /// numeric column but y as an input), anything else as CSV (<see cref="LoadCsv"/>).</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="System.IO.InvalidDataException">As the reader of its format.</exception>
    /// <exception cref="System.IO.FileNotFoundException">No such file, or the path is a directory.</exception>
    public static Dataset Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Path.GetExtension(path).Equals(".parquet", StringComparison.OrdinalIgnoreCase) ? LoadParquet(path) : LoadCsv(path);
    }

    /// <summary>Reads the covariates of a CSV file for a model of <paramref name="dimension"/> inputs: a file
    /// <c>x1,…,xd,y</c> (the responses dropped) or of the covariates alone (<c>x1,…,xd</c>), as new rows to predict
    /// come.</summary>
    /// <param name="path">The file.</param>
    /// <param name="dimension">The model's d.</param>
    /// <returns>The n×d covariates.</returns>
    /// <exception cref="System.IO.InvalidDataException">A malformed file, or columns that are neither d nor d and a
    /// response y (the message says which).</exception>
    /// <exception cref="System.IO.FileNotFoundException">No such file.</exception>
    public static double[,] LoadCovariatesCsv(string path, int dimension)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Core.DataCsv.LoadCovariates(path, dimension);
    }

    /// <summary>Reads a CSV file with the header <c>x1,…,xd,y</c>.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="System.IO.InvalidDataException">A malformed header, width or value; the message gives
    /// the line and column.</exception>
    /// <exception cref="System.IO.FileNotFoundException">No such file, or the path is a directory.</exception>
    public static Dataset LoadCsv(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        CheckReadable(path);
        return new(Core.DataCsv.Load(path));
    }

    /// <summary>Reads a Parquet file into memory.</summary>
    /// <param name="path">The file.</param>
    /// <param name="xColumns">The input columns by name; null for every numeric column but the response, in the
    /// file's order.</param>
    /// <param name="yColumn">The response column; null for the column named <c>y</c> (else the last numeric one).</param>
    /// <exception cref="System.IO.InvalidDataException">A named column that is missing or not numeric, a missing or
    /// non-finite value (with its column and row).</exception>
    /// <exception cref="System.IO.FileNotFoundException">No such file, or the path is a directory.</exception>
    public static Dataset LoadParquet(string path, IReadOnlyList<string>? xColumns = null, string? yColumn = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        CheckReadable(path);
        return new(Core.DataSourceModule.Load(DataSources.ToCore(DataSources.Parquet(path, xColumns, yColumn))));
    }

    /// <summary>Writes the dataset as a Parquet file: columns x1..xd and y (doubles, uncompressed), one row group per
    /// 1,048,576 rows, replaced atomically.</summary>
    /// <param name="path">The file (created or replaced).</param>
    public void SaveParquet(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Core.DataParquet.Save(path, Inner);
    }

    /// <summary>A data path that names a readable file: not missing, not a directory.</summary>
    internal static void CheckReadable(string path)
    {
        if (Directory.Exists(path))
        {
            throw new FileNotFoundException($"'{path}' is a directory, not a data file.", path);
        }

        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The data file '{path}' does not exist.", path);
        }
    }

    /// <summary>Writes the dataset as CSV; doubles round-trip exactly. The file is replaced atomically: a failed
    /// write leaves the previous file, never one cut mid-row.</summary>
    /// <param name="path">The file (created or replaced).</param>
    public void SaveCsv(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Core.DataCsv.Save(path, Inner);
    }

    /// <summary>The n×d inputs (shared, not copied).</summary>
    public double[,] X => Inner.X;

    /// <summary>The n responses (shared, not copied).</summary>
    public double[] Y => Inner.Y;

    /// <summary>The number of samples n.</summary>
    public int Count => Inner.Count;

    /// <summary>The input dimension d.</summary>
    public int Dimension => Inner.Dimension;
}
