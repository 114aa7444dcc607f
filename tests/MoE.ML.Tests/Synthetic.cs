using Microsoft.ML;
using Microsoft.ML.Data;
using MoE.Api;

namespace MoE.ML.Tests;

/// <summary>A row of three covariates and a label, as a user's class would hold them.</summary>
public sealed class Row
{
    [LoadColumn(0)]
    public float X1 { get; set; }

    [LoadColumn(1)]
    public float X2 { get; set; }

    [LoadColumn(2)]
    public float X3 { get; set; }

    [LoadColumn(3)]
    public float Label { get; set; }
}

/// <summary>The tests' ground truth: two linear experts with intercepts and their own noise, a gate with an
/// intercept, covariates far from standard (means 5, −2, 10; scales 2, 0.5, 3).</summary>
internal static class Synthetic
{
    public static readonly MixtureOfExperts Truth = MixtureOfExperts.Create(
        regressors: new double[,] { { 1.0, -2.0, 0.5 }, { -1.5, 1.0, 0.25 } },
        regressorIntercepts: [2.0, -1.0],
        gating: new double[,] { { 1.2, 0.0, -0.6 } },
        gatingIntercepts: [0.0],
        Activation.Identity,
        sigmas: [0.1, 0.2]);

    public static readonly double[] Mean = [5, -2, 10];
    public static readonly double[] Scale = [2, 0.5, 3];

    public static Dataset Sample(int n, long seed) => Truth.SampleCovariates(n, seed, Mean, Scale);

    public static Row[] Rows(Dataset data) => Enumerable.Range(0, data.Count)
        .Select(i => new Row { X1 = (float)data.X[i, 0], X2 = (float)data.X[i, 1], X3 = (float)data.X[i, 2], Label = (float)data.Y[i] })
        .ToArray();

    public static IDataView View(MLContext ml, int n, long seed) => ml.Data.LoadFromEnumerable(Rows(Sample(n, seed)));

    public static double Rmse(double[] predictions, Row[] rows) =>
        Math.Sqrt(predictions.Zip(rows, (p, r) => (p - r.Label) * (p - r.Label)).Average());

    /// <summary>The rows' covariates as the float values ML.NET saw, in double precision.</summary>
    public static double[,] X(Row[] rows)
    {
        var x = new double[rows.Length, 3];
        for (int i = 0; i < rows.Length; i++)
        {
            x[i, 0] = rows[i].X1;
            x[i, 1] = rows[i].X2;
            x[i, 2] = rows[i].X3;
        }

        return x;
    }
}
