using Microsoft.Data.Analysis;
using MoE.Api;

namespace MoE.ML;

/// <summary>Microsoft.Data.Analysis DataFrames in and out of the toolkit: <c>Dataset.FromDataFrame</c>,
/// <c>dataset.ToDataFrame()</c>, <c>model.Predict(frame, xColumns)</c> and <c>prediction.ToDataFrame()</c>.
/// (From F#, call them as static methods of this class.)</summary>
public static class DataFrameExtensions
{
    extension(Dataset)
    {
        /// <summary>A dataset from a DataFrame's numeric columns, copied into double precision.</summary>
        /// <param name="frame">The data.</param>
        /// <param name="yColumn">The response column.</param>
        /// <param name="xColumns">The input columns in order; none for every numeric column but the response, in the
        /// frame's order.</param>
        /// <returns>The dataset.</returns>
        /// <exception cref="ArgumentException">A named column that is missing, repeated or not numeric, no input
        /// column, or a missing (null), NaN or infinite value (the message gives its column and row).</exception>
        public static Dataset FromDataFrame(DataFrame frame, string yColumn, params IReadOnlyList<string> xColumns)
        {
            ArgumentNullException.ThrowIfNull(frame);
            ArgumentNullException.ThrowIfNull(yColumn);
            ArgumentNullException.ThrowIfNull(xColumns);
            var y = Numeric(frame, yColumn, nameof(yColumn));
            var names = xColumns.Count > 0
                ? xColumns
                : frame.Columns.Where(c => c.Name != yColumn && IsNumeric(c)).Select(c => c.Name).ToArray();
            if (names.Count == 0)
            {
                throw new ArgumentException($"The frame has no numeric column besides the response '{yColumn}'.", nameof(xColumns));
            }

            var repeated = names.Append(yColumn).GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
            if (repeated is not null)
            {
                throw new ArgumentException($"The column '{repeated.Key}' is named twice among the response and the inputs.", nameof(xColumns));
            }

            var x = Matrix(frame, names, nameof(xColumns));
            return Dataset.FromArrays(x, Values(y, nameof(yColumn)));
        }
    }

    extension(Dataset)
    {
        /// <summary>A dataset from a DataFrame with its columns in roles (docs/data.md), as <c>Dataset.Load(path,
        /// roles)</c> reads a file: numeric columns, and string columns as categorical inputs (the indicators of their
        /// levels but the reference) or a two-level text response; the design and the names go with the dataset, so a
        /// fit records them. Missing values (nulls) follow <see cref="ColumnRoles.Missing"/>.</summary>
        /// <param name="frame">The data.</param>
        /// <param name="roles">The roles (<see cref="ColumnRoles.Parse"/> for a formula).</param>
        /// <returns>The dataset.</returns>
        /// <exception cref="ArgumentException">A role names a column the frame lacks, the roles clash, a column is
        /// neither numeric nor text, a value is missing (under <see cref="MissingValues.Refuse"/>) or not finite
        /// (the message gives its column and row), or a weight (<see cref="ColumnRoles.Weights"/>) is negative.</exception>
        public static Dataset FromDataFrame(DataFrame frame, ColumnRoles roles)
        {
            ArgumentNullException.ThrowIfNull(frame);
            ArgumentNullException.ThrowIfNull(roles);
            var available = frame.Columns.Select(c => c.Name).ToArray();
            var inputs = frame.Columns.Where(c => IsNumeric(c) || c is StringDataFrameColumn).Select(c => c.Name).ToArray();
            var categories = frame.Columns.OfType<StringDataFrameColumn>()
                .Select(c => Tuple.Create(c.Name, c.Where(v => v is not null).Distinct(StringComparer.Ordinal)
                    .Take(Core.DataCsv.MaxLevels + 1).Order(StringComparer.Ordinal).ToArray()))
                .Where(t => t.Item2.Length > 0).ToArray();
            var design = Core.ColumnRolesModule.Resolve("the frame", available, inputs, categories, roles.ToCore());
            var names = design.Columns.Value;
            if (roles.Weights is not { } weights)
            {
                var (x, y, dropped, first) = Coded(frame, names, roles.Missing, nameof(roles));
                return new Dataset(Core.DatasetModule.Create(x, y), design, Tuple.Create(dropped, first));
            }

            // The weights are read as one more column (its nulls under the same policy), then split off: never an input.
            var read = new Core.DataColumns([.. names.Inputs, weights], names.Response, names.Levels);
            var (xw, yw, droppedW, firstW) = Coded(frame, read, roles.Missing, nameof(roles));
            int n = xw.GetLength(0), d = names.Inputs.Length;
            var inputsOnly = new double[n, d];
            var w = new double[n];
            for (var i = 0; i < n; i++)
            {
                for (var t = 0; t < d; t++)
                {
                    inputsOnly[i, t] = xw[i, t];
                }

                w[i] = xw[i, d];
            }

            return new Dataset(Core.DatasetModule.Weighted(inputsOnly, yw, w), design, Tuple.Create(droppedW, firstW));
        }
    }

    /// <summary>The rows of a frame coded as a model's columns read them: numeric columns as they are, a categorical
    /// column's indicators from its levels, a two-level text response as 0/1; rows with a missing value refused or
    /// dropped (counted). <paramref name="predicting"/>: rows to predict, whose response is not read and whose gaps
    /// (under <see cref="MissingValues.Drop"/>) become rows of NaN in their place, so no row shifts.</summary>
    private static (double[,] X, double[] Y, long Dropped, string FirstDropped) Coded(DataFrame frame, Core.DataColumns columns, MissingValues missing,
        string parameter, bool predicting = false)
    {
        var levels = columns.Levels.ToDictionary(l => l.Item1, l => l.Item2, StringComparer.Ordinal);
        DataFrameColumn Column(string name) => frame.Columns.FirstOrDefault(c => c.Name == name)
            ?? throw new ArgumentException($"The frame has no column '{name}'; its columns are {string.Join(", ", frame.Columns.Select(c => $"'{c.Name}'"))}.", parameter);

        // Each input: its column, and for an indicator the level it marks.
        var reads = columns.Inputs.Select(name =>
        {
            var at = name.IndexOf('=');
            return at > 0 && levels.TryGetValue(name[..at], out var l) && Array.IndexOf(l, name[(at + 1)..]) > 0
                ? (Column: Column(name[..at]), Level: name[(at + 1)..])
                : (Column: Column(name), Level: (string?)null);
        }).ToArray();
        var response = predicting ? null : Column(columns.Response);
        long rows = frame.Rows.Count;
        var x = new List<double>();
        var y = new List<double>();
        long dropped = 0;
        var first = "";
        var row = new double[reads.Length];
        for (long i = 0; i < rows; i++)
        {
            string? gap = null;
            for (int t = 0; t < reads.Length && gap is null; t++)
            {
                var (column, level) = reads[t];
                var value = column[i];
                if (value is null)
                {
                    gap = column.Name;
                }
                else if (level is not null)
                {
                    var text = (string)value;
                    if (Array.IndexOf(levels[column.Name], text) < 0)
                    {
                        throw new ArgumentException($"The column '{column.Name}' holds '{text}' in row {i}, not one of its levels {string.Join(", ", levels[column.Name])}.", parameter);
                    }

                    row[t] = text == level ? 1 : 0;
                }
                else
                {
                    row[t] = Finite(column, i, Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture), parameter);
                }
            }

            var answer = response?[i];
            gap ??= response is not null && answer is null ? response.Name : null;
            if (gap is not null)
            {
                if (missing == MissingValues.Refuse)
                {
                    throw new ArgumentException($"The column '{gap}' has a missing value in row {i}; drop the rows that have one (ColumnRoles.Missing = MissingValues.Drop) or fill them first.", parameter);
                }

                if (dropped++ == 0)
                {
                    first = $"the frame, row {i}, column '{gap}'";
                }

                if (!predicting)
                {
                    continue;
                }

                Array.Fill(row, double.NaN);
            }

            x.AddRange(row);
            if (response is null)
            {
                y.Add(0);
                continue;
            }

            y.Add(levels.TryGetValue(response.Name, out var outcome)
                ? Array.IndexOf(outcome, (string)answer!) is var code and >= 0
                    ? code
                    : throw new ArgumentException($"The response '{response.Name}' holds '{answer}' in row {i}, not one of its levels {string.Join(", ", outcome)}.", parameter)
                : Finite(response, i, Convert.ToDouble(answer, System.Globalization.CultureInfo.InvariantCulture), parameter));
        }

        if (y.Count == 0)
        {
            throw new ArgumentException($"Every one of the frame's {rows} rows has a missing value in a column read; none is left.", parameter);
        }

        var matrix = new double[y.Count, reads.Length];
        for (int i = 0; i < y.Count; i++)
        {
            for (int t = 0; t < reads.Length; t++)
            {
                matrix[i, t] = x[i * reads.Length + t];
            }
        }

        return (matrix, y.ToArray(), dropped, first);
    }

    private static double Finite(DataFrameColumn column, long row, double value, string parameter) =>
        double.IsFinite(value)
            ? value
            : throw new ArgumentException($"The column '{column.Name}' holds {value} in row {row}; every value must be finite.", parameter);

    extension(Dataset data)
    {
        /// <summary>The dataset as a DataFrame with double columns x1..xd and y (copied).</summary>
        /// <returns>The frame.</returns>
        public DataFrame ToDataFrame()
        {
            ArgumentNullException.ThrowIfNull(data);
            var columns = Enumerable.Range(0, data.Dimension)
                .Select(j => (DataFrameColumn)new DoubleDataFrameColumn($"x{j + 1}", Column(data.X, j)))
                .Append(new DoubleDataFrameColumn("y", data.Y));
            return new DataFrame(columns);
        }
    }

    extension(MixtureOfExperts model)
    {
        /// <summary>Predictions for every row of a frame: the mixture mean, each expert's mean, the gate and, for
        /// <paramref name="level"/> &gt; 0, the central predictive interval (<see cref="MixtureOfExperts.PredictDistribution"/>).</summary>
        /// <param name="frame">The rows.</param>
        /// <param name="xColumns">The model's d input columns, in the order it was fitted on.</param>
        /// <param name="level">The interval's probability in (0, 1), or 0 for none.</param>
        /// <returns>A frame of the predictions (<see cref="ToDataFrame(Prediction)"/>), one row per input row.</returns>
        /// <exception cref="ArgumentException">The number of columns is not d, a column is missing or not numeric, or
        /// a value is missing or not finite.</exception>
        public DataFrame Predict(DataFrame frame, IReadOnlyList<string> xColumns, double level = 0)
        {
            ArgumentNullException.ThrowIfNull(model);
            ArgumentNullException.ThrowIfNull(frame);
            ArgumentNullException.ThrowIfNull(xColumns);
            if (xColumns.Count != model.Dimension)
            {
                throw new ArgumentException($"The model has d = {model.Dimension} inputs; {xColumns.Count} columns were named.", nameof(xColumns));
            }

            return model.PredictDistribution(Matrix(frame, xColumns, nameof(xColumns)), level).ToDataFrame();
        }

        /// <summary>Predictions for every row of a frame read by the names the model records (a model fitted with
        /// <see cref="ColumnRoles"/>): its columns in any order among others, text columns coded by the model's levels,
        /// the response not needed (docs/data.md).</summary>
        /// <param name="frame">The rows.</param>
        /// <param name="level">The interval's probability in (0, 1), or 0 for none.</param>
        /// <param name="missing">A missing value (null) in a column the model reads: refused (the default), or its
        /// row's predictions are NaN (no row shifts).</param>
        /// <returns>A frame of the predictions, one row per input row.</returns>
        /// <exception cref="ArgumentException">The model records no column names (use the overload with
        /// <c>xColumns</c>), a column it reads is missing, a text column holds a level the model was not fitted with,
        /// or a value is missing (under <see cref="MissingValues.Refuse"/>) or not finite.</exception>
        public DataFrame Predict(DataFrame frame, double level = 0, MissingValues missing = MissingValues.Refuse)
        {
            ArgumentNullException.ThrowIfNull(model);
            ArgumentNullException.ThrowIfNull(frame);
            if (model.Inner.Design.Columns is not { } columns)
            {
                throw new ArgumentException("The model records no column names (it was not fitted with ColumnRoles); name its input columns with Predict(frame, xColumns).", nameof(model));
            }

            var (x, _, _, _) = Coded(frame, columns.Value, missing, nameof(frame), predicting: true);
            return model.PredictDistribution(x, level, missing).ToDataFrame();
        }
    }

    extension(Prediction prediction)
    {
        /// <summary>The predictions as a frame: <c>mean</c>, <c>expert1</c>..<c>expertk</c>, <c>gate1</c>..<c>gatek</c>,
        /// with an interval <c>lower</c> and <c>upper</c>, and with quantiles <c>q0.05</c>, … (double columns).</summary>
        /// <returns>The frame.</returns>
        public DataFrame ToDataFrame()
        {
            ArgumentNullException.ThrowIfNull(prediction);
            int k = prediction.Gate.GetLength(1);
            var columns = new List<DataFrameColumn> { new DoubleDataFrameColumn("mean", prediction.Mean) };
            columns.AddRange(Enumerable.Range(0, k).Select(i => new DoubleDataFrameColumn($"expert{i + 1}", Column(prediction.ExpertMeans, i))));
            columns.AddRange(Enumerable.Range(0, k).Select(i => new DoubleDataFrameColumn($"gate{i + 1}", Column(prediction.Gate, i))));
            if (prediction.Level > 0)
            {
                columns.Add(new DoubleDataFrameColumn("lower", prediction.Lower));
                columns.Add(new DoubleDataFrameColumn("upper", prediction.Upper));
            }

            for (int j = 0; j < prediction.Probabilities.Count; j++)
            {
                columns.Add(new DoubleDataFrameColumn($"q{prediction.Probabilities[j].ToString("R", System.Globalization.CultureInfo.InvariantCulture)}",
                    Column(prediction.Quantiles, j)));
            }

            return new DataFrame(columns);
        }
    }

    private static double[] Column(double[,] m, int j)
    {
        var c = new double[m.GetLength(0)];
        for (int i = 0; i < c.Length; i++)
        {
            c[i] = m[i, j];
        }

        return c;
    }

    private static bool IsNumeric(DataFrameColumn c) =>
        c.DataType == typeof(double) || c.DataType == typeof(float) || c.DataType == typeof(int) || c.DataType == typeof(long)
        || c.DataType == typeof(short) || c.DataType == typeof(byte) || c.DataType == typeof(sbyte) || c.DataType == typeof(ushort)
        || c.DataType == typeof(uint) || c.DataType == typeof(ulong) || c.DataType == typeof(decimal);

    private static DataFrameColumn Numeric(DataFrame frame, string name, string parameter)
    {
        if (!frame.Columns.Any(c => c.Name == name))
        {
            throw new ArgumentException(
                $"The frame has no column '{name}'; its columns are {string.Join(", ", frame.Columns.Select(c => $"'{c.Name}'"))}.", parameter);
        }

        var column = frame.Columns[name];
        if (!IsNumeric(column))
        {
            throw new ArgumentException($"The column '{name}' holds {column.DataType.Name}, not numbers.", parameter);
        }

        return column;
    }

    private static double[] Values(DataFrameColumn column, string parameter)
    {
        var values = new double[column.Length];
        if (column is DoubleDataFrameColumn doubles)
        {
            long i = 0;
            foreach (var v in doubles)
            {
                values[i] = v ?? throw Missing(column.Name, i, parameter);
                i++;
            }
        }
        else
        {
            for (long i = 0; i < column.Length; i++)
            {
                values[i] = column[i] is { } v ? Convert.ToDouble(v, System.Globalization.CultureInfo.InvariantCulture) : throw Missing(column.Name, i, parameter);
            }
        }

        for (long i = 0; i < values.Length; i++)
        {
            if (!double.IsFinite(values[i]))
            {
                throw new ArgumentException($"The column '{column.Name}' holds {values[i]} in row {i}; every value must be finite.", parameter);
            }
        }

        return values;
    }

    private static ArgumentException Missing(string column, long row, string parameter) =>
        new($"The column '{column}' has a missing value in row {row}; drop or fill missing values first (DataFrame.DropNulls, FillNulls).", parameter);

    private static double[,] Matrix(DataFrame frame, IReadOnlyList<string> names, string parameter)
    {
        var x = new double[frame.Rows.Count, names.Count];
        for (int j = 0; j < names.Count; j++)
        {
            var values = Values(Numeric(frame, names[j], parameter), parameter);
            for (int i = 0; i < values.Length; i++)
            {
                x[i, j] = values[i];
            }
        }

        return x;
    }
}
