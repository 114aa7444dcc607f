using Microsoft.Data.Analysis;
using MoE.Api;

namespace MoE.ML.Tests;

public sealed class DataFrameTests
{
    /// <summary>A frame read with roles codes its text columns as a file does (docs/data.md): the same indicators and
    /// 0/1 outcome as the CSV of the same rows read by the same formula, the design's names carried to the fit; a null
    /// is refused, or dropped and counted.</summary>
    [Fact]
    public void A_frame_with_text_columns_reads_as_its_CSV_does()
    {
        string[] sites = ["west", "north", "south"];
        int n = 300;
        var x = Enumerable.Range(0, n).Select(i => Math.Sin(i) * 3).ToArray();
        var site = Enumerable.Range(0, n).Select(i => sites[i % 3]).ToArray();
        var outcome = Enumerable.Range(0, n).Select(i => x[i] + (i % 3) > 0.5 ? "yes" : "no").ToArray();
        var frame = new DataFrame(new DoubleDataFrameColumn("x", x), new StringDataFrameColumn("site", site),
            new StringDataFrameColumn("outcome", outcome));
        var roles = ColumnRoles.Parse("outcome ~ x + site");
        var fromFrame = Dataset.FromDataFrame(frame, roles);

        using var dir = new TempDir();
        File.WriteAllLines(dir.File("d.csv"), new[] { "x,site,outcome" }.Concat(Enumerable.Range(0, n)
            .Select(i => $"{x[i].ToString("R", System.Globalization.CultureInfo.InvariantCulture)},{site[i]},{outcome[i]}")));
        var fromCsv = Dataset.Load(dir.File("d.csv"), roles);
        Assert.Equal(["x", "site=south", "site=west"], fromFrame.Columns);
        Assert.Equal(fromCsv.X, fromFrame.X);
        Assert.Equal(fromCsv.Y, fromFrame.Y);
        Assert.Equal(outcome.Select(o => o == "yes" ? 1.0 : 0.0), fromFrame.Y);

        var fit = MoeLearner.Fit(fromFrame, new FitOptions { Experts = 2, Family = ExpertFamily.Bernoulli, Seed = 1 });
        Assert.Equal(["x", "site=south", "site=west"], fit.Model.ExpertColumns);
        Assert.Equal(["no", "yes"], fit.Model.Levels!["outcome"]);

        // New rows by the model's names: columns in another order, an extra one, no response; a gap gives a NaN row.
        var fresh = new DataFrame(new StringDataFrameColumn("note", site.Select(s => s + "!")), new StringDataFrameColumn("site", site),
            new DoubleDataFrameColumn("x", x));
        var byName = fit.Model.Predict(fresh);
        Assert.Equal(fit.Model.PredictDistribution(fromFrame.X).Mean, byName.Columns["mean"].Cast<double?>().Select(v => v!.Value));
        var holed = new DataFrame(new StringDataFrameColumn("site", site.Select((v, i) => i == 2 ? null : v)), new DoubleDataFrameColumn("x", x));
        Assert.Throws<ArgumentException>(() => fit.Model.Predict(holed));
        var withNaN = fit.Model.Predict(holed, missing: MissingValues.Drop).Columns["mean"].Cast<double?>().Select(v => v!.Value).ToArray();
        Assert.True(double.IsNaN(withNaN[2]));
        Assert.Equal(byName.Columns["mean"][3], withNaN[3]);
        var unseen = new DataFrame(new StringDataFrameColumn("site", site.Select((v, i) => i == 1 ? "east" : v)), new DoubleDataFrameColumn("x", x));
        Assert.Contains("holds 'east' in row 1, not one of its levels", Assert.Throws<ArgumentException>(() => fit.Model.Predict(unseen)).Message);

        var gapped = new DataFrame(new DoubleDataFrameColumn("x", x), new StringDataFrameColumn("site", site.Select((v, i) => i == 4 ? null : v)),
            new StringDataFrameColumn("outcome", outcome));
        var refused = Assert.Throws<ArgumentException>(() => Dataset.FromDataFrame(gapped, roles));
        Assert.Contains("The column 'site' has a missing value in row 4", refused.Message);
        var kept = Dataset.FromDataFrame(gapped, new ColumnRoles { Response = "outcome", Experts = ["x", "site"], Missing = MissingValues.Drop });
        Assert.Equal(1, kept.DroppedRows);
        Assert.Equal(n - 1, kept.Count);
        var warned = MoeLearner.Fit(kept, new FitOptions { Experts = 2, Family = ExpertFamily.Bernoulli, Seed = 1 });
        Assert.Contains("1 of 300 rows were left out for a missing value in a column read (the first at the frame, row 4, column 'site')",
            Assert.Single(warned.Warnings, w => w.Code == WarningCode.RowsDropped).Message);
    }

    /// <summary>A weights column of a frame (<see cref="ColumnRoles.Weights"/>) weighs the rows as the file's does and is
    /// never an input; a negative weight is refused with its row.</summary>
    [Fact]
    public void A_frame_weights_its_rows_as_its_CSV_does()
    {
        int n = 200;
        var x = Enumerable.Range(0, n).Select(i => Math.Sin(i) * 3).ToArray();
        var y = Enumerable.Range(0, n).Select(i => Math.Abs(x[i]) + 0.1 * Math.Cos(7 * i)).ToArray();
        var w = Enumerable.Range(0, n).Select(i => (double)(i % 4)).ToArray();
        var frame = new DataFrame(new DoubleDataFrameColumn("freq", w), new DoubleDataFrameColumn("x", x), new DoubleDataFrameColumn("y", y));
        var roles = new ColumnRoles { Weights = "freq" };
        var fromFrame = Dataset.FromDataFrame(frame, roles);

        using var dir = new TempDir();
        File.WriteAllLines(dir.File("d.csv"), new[] { "freq,x,y" }.Concat(Enumerable.Range(0, n)
            .Select(i => string.Join(',', new[] { w[i], x[i], y[i] }.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))))));
        var fromCsv = Dataset.Load(dir.File("d.csv"), roles);
        Assert.Equal(["x"], fromFrame.Columns);
        Assert.Equal(fromCsv.X, fromFrame.X);
        Assert.Equal(fromCsv.Weights, fromFrame.Weights);
        Assert.Equal(w, fromFrame.Weights);

        w[9] = -3;
        var negative = new DataFrame(new DoubleDataFrameColumn("freq", w), new DoubleDataFrameColumn("x", x), new DoubleDataFrameColumn("y", y));
        var e = Assert.Throws<ArgumentException>(() => Dataset.FromDataFrame(negative, roles));
        Assert.Contains("Row 9 has the weight -3", e.Message);
    }

    [Fact]
    public void A_dataset_goes_through_a_frame_and_back_unchanged()
    {
        var data = Synthetic.Sample(200, seed: 1);
        var frame = data.ToDataFrame();
        Assert.Equal(["x1", "x2", "x3", "y"], frame.Columns.Select(c => c.Name));
        var back = Dataset.FromDataFrame(frame, "y");
        Assert.Equal(data.Y, back.Y);
        Assert.Equal(data.X, back.X);
    }

    [Fact]
    public void Columns_are_chosen_by_name_and_any_numeric_type_is_read()
    {
        var frame = new DataFrame(
            new StringDataFrameColumn("site", ["a", "b", "c"]),
            new Int32DataFrameColumn("count", [1, 2, 3]),
            new SingleDataFrameColumn("w", [0.5f, 1.5f, 2.5f]),
            new DoubleDataFrameColumn("y", [1.0, 2.0, 4.0]));
        var all = Dataset.FromDataFrame(frame, "y");
        Assert.Equal(2, all.Dimension);
        Assert.Equal(new double[,] { { 1, 0.5 }, { 2, 1.5 }, { 3, 2.5 } }, all.X);
        var one = Dataset.FromDataFrame(frame, "y", "w");
        Assert.Equal(new double[,] { { 0.5 }, { 1.5 }, { 2.5 } }, one.X);
    }

    [Fact]
    public void Missing_text_and_absent_columns_are_named_with_their_row()
    {
        var frame = new DataFrame(
            new StringDataFrameColumn("site", ["a", "b", "c"]),
            new DoubleDataFrameColumn("x", [1.0, null, 3.0]),
            new DoubleDataFrameColumn("y", [1.0, 2.0, double.NaN]));
        var missing = Assert.Throws<ArgumentException>(() => Dataset.FromDataFrame(frame, "y", "x"));
        Assert.Contains("'x' has a missing value in row 1", missing.Message);
        frame["x"][1] = 2.0;
        var nan = Assert.Throws<ArgumentException>(() => Dataset.FromDataFrame(frame, "y", "x"));
        Assert.Contains("'y' holds NaN in row 2", nan.Message);
        var text = Assert.Throws<ArgumentException>(() => Dataset.FromDataFrame(frame, "y", "site"));
        Assert.Contains("'site' holds String, not numbers", text.Message);
        var absent = Assert.Throws<ArgumentException>(() => Dataset.FromDataFrame(frame, "z"));
        Assert.Contains("no column 'z'", absent.Message);
        var twice = Assert.Throws<ArgumentException>(() => Dataset.FromDataFrame(frame, "y", "y"));
        Assert.Contains("named twice", twice.Message);
    }

    [Fact]
    public void Predictions_come_back_as_a_frame_equal_to_the_facades()
    {
        var data = Synthetic.Sample(50, seed: 2);
        var frame = data.ToDataFrame();
        var predicted = Synthetic.Truth.Predict(frame, ["x1", "x2", "x3"], level: 0.9);
        var p = Synthetic.Truth.PredictDistribution(data.X, 0.9);
        Assert.Equal(["mean", "expert1", "expert2", "gate1", "gate2", "lower", "upper"], predicted.Columns.Select(c => c.Name));
        for (int i = 0; i < data.Count; i++)
        {
            Assert.Equal(p.Mean[i], (double)predicted["mean"][i]);
            Assert.Equal(p.Gate[i, 1], (double)predicted["gate2"][i]);
            Assert.Equal(p.Upper[i], (double)predicted["upper"][i]);
        }

        Assert.Throws<ArgumentException>(() => Synthetic.Truth.Predict(frame, ["x1", "x2"]));
    }
}
