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
    }

    extension(Prediction prediction)
    {
        /// <summary>The predictions as a frame: <c>mean</c>, <c>expert1</c>..<c>expertk</c>, <c>gate1</c>..<c>gatek</c>
        /// and, with an interval, <c>lower</c> and <c>upper</c> (double columns).</summary>
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
