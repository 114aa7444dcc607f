using Microsoft.Data.Analysis;
using MoE.Api;

namespace MoE.ML.Tests;

public sealed class DataFrameTests
{
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
