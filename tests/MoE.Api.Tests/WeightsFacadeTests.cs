using System.Globalization;
using MoE.Cli;

namespace MoE.Api.Tests;

/// <summary>
/// Frequency weights through the façade and the CLI (docs/data.md, docs/math.md §13): rows with integer weights fit as
/// the rows repeated that many times — the log-likelihood to 1e-8 relative and every parameter to 1e-4, the acceptance
/// of issue 32 — whether they come as arrays, as a file's weights column read with roles, or as <c>moe fit --weights</c>.
/// Both fits converge to the one maximum of a separated mixture to EM's and L-BFGS's tolerances, far inside both bounds;
/// a weight left out of any sum moves the maximum by ~1/√n ≈ 0.02.
/// </summary>
public class WeightsFacadeTests
{
    private static readonly MixtureOfExperts Truth =
        GroundTruth.Create(GroundTruthPreset.Orthogonal, experts: 2, dimension: 3, Activation.Identity, sigma: 0.1);

    private static string R(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Weights 1, 2 or 3 by row.</summary>
    private static double Weight(int i) => 1 + (i * 7) % 3;

    /// <summary>Each row as often as its weight says.</summary>
    private static Dataset Repeated(Dataset data)
    {
        var rows = Enumerable.Range(0, data.Count).SelectMany(i => Enumerable.Repeat(i, (int)data.Weights![i])).ToArray();
        var x = new double[rows.Length, data.Dimension];
        for (var i = 0; i < rows.Length; i++)
        {
            for (var t = 0; t < data.Dimension; t++)
            {
                x[i, t] = data.X[rows[i], t];
            }
        }

        return Dataset.FromArrays(x, rows.Select(r => data.Y[r]).ToArray());
    }

    /// <summary>Every parameter, the experts ordered by their first regressor's first entry.</summary>
    private static double[] Parameters(MixtureOfExperts m)
    {
        var a = m.Regressors;
        var order = a[0, 0] <= a[1, 0] ? new[] { 0, 1 } : new[] { 1, 0 };
        var values = new List<double>();
        foreach (var i in order)
        {
            for (var t = 0; t < a.GetLength(1); t++)
            {
                values.Add(a[i, t]);
            }

            values.Add(m.RegressorIntercepts[i]);
            values.Add(m.Sigmas[i]);
        }

        // The gate's one row: relabelling two experts negates it.
        var sign = order[0] == 0 ? 1.0 : -1.0;
        for (var t = 0; t < m.Gating.GetLength(1); t++)
        {
            values.Add(sign * m.Gating[0, t]);
        }

        values.Add(sign * m.GatingIntercepts[0]);
        return values.ToArray();
    }

    private static void AssertSameFit(MixtureOfExperts expected, MixtureOfExperts actual, Dataset repeated)
    {
        var ll0 = expected.LogLikelihood(repeated.X, repeated.Y);
        var ll1 = actual.LogLikelihood(repeated.X, repeated.Y);
        Assert.True(Math.Abs(ll1 - ll0) <= 1e-8 * Math.Abs(ll0), $"log-likelihood {ll1:R} weighted, {ll0:R} repeated");
        var p0 = Parameters(expected);
        var p1 = Parameters(actual);
        for (var i = 0; i < p0.Length; i++)
        {
            Assert.True(Math.Abs(p0[i] - p1[i]) <= 1e-4, $"parameter {i}: {p0[i]:R} repeated, {p1[i]:R} weighted");
        }
    }

    [Fact]
    public void WeightedArraysFitAsTheRowsRepeatedWithTheirStandardErrors()
    {
        var sample = Truth.Sample(3_000, 21);
        var data = Dataset.FromArrays(sample.X, sample.Y, Enumerable.Range(0, sample.Count).Select(Weight).ToArray());
        var repeated = Repeated(data);
        var options = new FitOptions { Experts = 2, Seed = 3, StandardErrors = StandardErrorKind.Observed };
        var weighted = MoeLearner.Fit(data, options);
        var plain = MoeLearner.Fit(repeated, options);
        AssertSameFit(plain.Model, weighted.Model, repeated);

        // Frequency weights' errors are the repeated rows' (finite differences of gradients that agree to 1e-12).
        var se0 = plain.StandardErrors!.Regressors;
        var se1 = weighted.StandardErrors!.Regressors;
        var swap = (plain.Model.Regressors[0, 0] <= plain.Model.Regressors[1, 0]) != (weighted.Model.Regressors[0, 0] <= weighted.Model.Regressors[1, 0]);
        for (var i = 0; i < 2; i++)
        {
            for (var t = 0; t < 3; t++)
            {
                var other = swap ? 1 - i : i;
                Assert.True(Math.Abs(se0[i, t] - se1[other, t]) <= 1e-3 * se0[i, t], $"SE [{i},{t}] {se0[i, t]:R} repeated, {se1[other, t]:R} weighted");
            }
        }
    }

    [Fact]
    public void AWeightsColumnThroughRolesAndTheCliFitsAsTheRowsRepeated()
    {
        using var dir = new TempDir();
        var sample = Truth.Sample(3_000, 21);
        var data = Dataset.FromArrays(sample.X, sample.Y, Enumerable.Range(0, sample.Count).Select(Weight).ToArray());
        var repeated = Repeated(data);
        using (var w = new StreamWriter(dir.File("weighted.csv")))
        {
            w.WriteLine("freq,y,x1,x2,x3");
            for (var i = 0; i < data.Count; i++)
            {
                w.WriteLine($"{R(data.Weights![i])},{R(data.Y[i])},{R(data.X[i, 0])},{R(data.X[i, 1])},{R(data.X[i, 2])}");
            }
        }

        repeated.SaveCsv(dir.File("repeated.csv"));

        var loaded = Dataset.Load(dir.File("weighted.csv"), new ColumnRoles { Weights = "freq" });
        Assert.Equal(data.Weights, loaded.Weights);
        Assert.Equal(["x1", "x2", "x3"], loaded.Columns);

        var error = new StringWriter();
        Assert.True(Cli.Run(["fit", dir.File("weighted.csv"), "--k", "2", "--seed", "3", "--weights", "freq", "--out", dir.File("w.json")], new StringWriter(), error) == 0, error.ToString());
        Assert.True(Cli.Run(["fit", dir.File("repeated.csv"), "--k", "2", "--seed", "3", "--out", dir.File("r.json")], new StringWriter(), error) == 0, error.ToString());
        var weighted = MixtureOfExperts.Load(dir.File("w.json"));
        AssertSameFit(MixtureOfExperts.Load(dir.File("r.json")), weighted, repeated);

        // The model reads new rows without the weights column: it is not an input.
        Assert.Equal(["x1", "x2", "x3"], weighted.ExpertColumns);
        Assert.True(Cli.Run(["predict", dir.File("w.json"), dir.File("repeated.csv"), "--out", dir.File("p.csv")], new StringWriter(), error) == 0, error.ToString());
    }
}
