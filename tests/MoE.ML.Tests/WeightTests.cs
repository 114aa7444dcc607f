using Microsoft.ML;
using MoE.Api;

namespace MoE.ML.Tests;

/// <summary>A row with a frequency weight.</summary>
public sealed class WeightedRow
{
    public float X1 { get; set; }

    public float X2 { get; set; }

    public float X3 { get; set; }

    public float Label { get; set; }

    public float Weight { get; set; }
}

/// <summary>
/// Frequency weights in ML.NET (<c>ExampleWeightColumnName</c>, docs/data.md): rows with integer weights train the
/// model of the rows repeated that many times — the log-likelihood to 1e-8 relative and every parameter to 1e-4 (both
/// fits converge to the one maximum of a separated mixture to EM's and L-BFGS's tolerances; a weight left out of any
/// sum moves the maximum by ~1/√n ≈ 0.02) — and a negative weight is refused with its row.
/// </summary>
public sealed class WeightTests
{
    private static WeightedRow[] Weighted(Row[] rows) => rows
        .Select((r, i) => new WeightedRow { X1 = r.X1, X2 = r.X2, X3 = r.X3, Label = r.Label, Weight = 1 + (i * 7) % 3 })
        .ToArray();

    private static MixtureOfExperts Train(MLContext ml, IDataView data, string? weight)
    {
        var trainer = ml.Regression.Trainers.MixtureOfExperts(new MixtureOfExpertsTrainer.Options
        {
            ExampleWeightColumnName = weight,
            Fit = new FitOptions { Experts = 2, Seed = 1 },
        });
        return ml.Transforms.Concatenate("Features", "X1", "X2", "X3").Append(trainer).Fit(data).LastTransformer.Model;
    }

    [Fact]
    public void Integer_weights_train_the_model_of_the_rows_repeated()
    {
        var ml = new MLContext(seed: 1);
        var rows = Weighted(Synthetic.Rows(Synthetic.Sample(3_000, seed: 4)));
        var repeated = rows.SelectMany(r => Enumerable.Repeat(r, (int)r.Weight)).ToArray();
        var weighted = Train(ml, ml.Data.LoadFromEnumerable(rows), "Weight");
        var plain = Train(ml, ml.Data.LoadFromEnumerable(repeated), null);

        var x = Synthetic.X(repeated.Select(r => new Row { X1 = r.X1, X2 = r.X2, X3 = r.X3, Label = r.Label }).ToArray());
        var y = repeated.Select(r => (double)r.Label).ToArray();
        double ll0 = plain.LogLikelihood(x, y), ll1 = weighted.LogLikelihood(x, y);
        Assert.True(Math.Abs(ll1 - ll0) <= 1e-8 * Math.Abs(ll0), $"log-likelihood {ll1:R} weighted, {ll0:R} repeated");

        // The experts in the same order: by their first slope.
        bool swap = (plain.Regressors[0, 0] <= plain.Regressors[1, 0]) != (weighted.Regressors[0, 0] <= weighted.Regressors[1, 0]);
        for (int i = 0; i < 2; i++)
        {
            int j = swap ? 1 - i : i;
            for (int t = 0; t < 3; t++)
            {
                Assert.True(Math.Abs(plain.Regressors[i, t] - weighted.Regressors[j, t]) <= 1e-4, $"a[{i},{t}]");
            }

            Assert.True(Math.Abs(plain.RegressorIntercepts[i] - weighted.RegressorIntercepts[j]) <= 1e-4, $"b[{i}]");
            Assert.True(Math.Abs(plain.Sigmas[i] - weighted.Sigmas[j]) <= 1e-4, $"sigma[{i}]");
        }

        rows[17].Weight = -1;
        var e = Assert.Throws<ArgumentException>(() => Train(ml, ml.Data.LoadFromEnumerable(rows), "Weight"));
        Assert.Contains("Row 18 has the weight -1 in the column 'Weight'", e.Message);
    }
}
