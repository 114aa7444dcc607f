using Microsoft.ML;
using Microsoft.ML.Data;
using MoE.Api;

namespace MoE.ML.Tests;

/// <summary>
/// A gate feature column beside the feature column (docs/data.md): the experts read the features, the gate its own
/// column. The synthetic truth's gate reads X1 and X3; with the gate on [X1, X3] and the experts on [X1, X2, X3] the
/// fit predicts held-out rows as the truth does, the pipeline's score is the model's prediction on the features then
/// the gate's, and the saved pipeline loads and scores bit for bit.
/// </summary>
public sealed class GateFeatureTests
{
    [Fact]
    public void The_gate_reads_its_own_feature_column()
    {
        var ml = new MLContext(seed: 1);
        var train = Synthetic.View(ml, 20_000, seed: 1);
        var trainer = ml.Regression.Trainers.MixtureOfExperts(new MixtureOfExpertsTrainer.Options
        {
            FeatureColumnName = "Features",
            GateFeatureColumnName = "GateFeatures",
            Fit = new FitOptions { Experts = 2, Seed = 1 },
        });
        var pipeline = ml.Transforms.Concatenate("Features", "X1", "X2", "X3")
            .Append(ml.Transforms.Concatenate("GateFeatures", "X1", "X3"))
            .Append(trainer);
        var model = pipeline.Fit(train);
        var fitted = model.LastTransformer.Model;
        Assert.Equal(5, fitted.Dimension);
        Assert.Equal(2, fitted.GateColumnsCount());

        var rows = Synthetic.Rows(Synthetic.Sample(5_000, seed: 2));
        var test = ml.Data.LoadFromEnumerable(rows);
        var scores = model.Transform(test).GetColumn<float>("Score").ToArray();
        // The same rows, as the model reads them: the features, then the gate's.
        var x = new double[rows.Length, 5];
        for (int i = 0; i < rows.Length; i++)
        {
            double[] values = [rows[i].X1, rows[i].X2, rows[i].X3, rows[i].X1, rows[i].X3];
            for (int j = 0; j < 5; j++)
            {
                x[i, j] = values[j];
            }
        }

        var predicted = fitted.Predict(x);
        for (int i = 0; i < rows.Length; i++)
        {
            Assert.Equal((float)predicted[i], scores[i]);
        }

        // The truth's gate is visible in [X1, X3]: held-out RMSE within 2 % of the truth's (as the shared-column test).
        double truthRmse = Synthetic.Rmse(Synthetic.Truth.Predict(Synthetic.X(rows)), rows);
        Assert.InRange(Synthetic.Rmse(predicted, rows), 0.98 * truthRmse, 1.02 * truthRmse);

        using var dir = new TempDir();
        ml.Model.Save(model, train.Schema, dir.File("gate.zip"));
        var fresh = new MLContext(seed: 2);
        fresh.ComponentCatalog.RegisterAssembly(typeof(MixtureOfExpertsTrainer).Assembly);
        var loaded = fresh.Model.Load(dir.File("gate.zip"), out _);
        Assert.Equal(scores, loaded.Transform(test).GetColumn<float>("Score").ToArray());

        // A gate feature column of the wrong width is refused with ML.NET's schema message.
        var narrow = ml.Transforms.Concatenate("Features", "X1", "X2", "X3").Append(ml.Transforms.Concatenate("GateFeatures", "X1"))
            .Fit(test).Transform(test);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => model.LastTransformer.Transform(narrow));
        Assert.Contains("gate feature", e.Message);
    }
}

internal static class ModelExtensions
{
    public static int GateColumnsCount(this MixtureOfExperts model) => model.Gating.GetLength(1);
}
