using MoE.Api;

namespace MoE.Api.Tests;

/// <summary>The GRU entry points of the façade.</summary>
public class GruFacadeTests
{
    private static double[,] Random(int rows, int cols, Random rng) =>
        ToMatrix(rows, cols, (_, _) => rng.NextDouble() - 0.5);

    private static double[,] ToMatrix(int rows, int cols, Func<int, int, double> f)
    {
        var m = new double[rows, cols];
        for (var i = 0; i < rows; i++)
        {
            for (var j = 0; j < cols; j++)
            {
                m[i, j] = f(i, j);
            }
        }

        return m;
    }

    [Fact]
    public void ResetAfterGruWithThresholdResetEqualsItsMixtureForm()
    {
        var rng = new Random(3);
        const int m = 4, n = 3;
        var cell = new GruCell(Random(m, n, rng), Random(m, m, rng), Random(m, n, rng), Random(m, m, rng),
            Random(m, n, rng), Random(m, m, rng), Activation.Tanh, GateFunction.Sigmoid, GateFunction.Threshold,
            ResetPlacement.AfterRecurrence);
        var h0 = new[] { 0.1, -0.2, 0.3, 0.0 };
        var xs = Enumerable.Range(0, 8).Select(t => new[] { Math.Sin(t), Math.Cos(t), 0.5 }).ToArray();
        var gru = cell.Run(h0, xs);
        var moe = cell.ToHierarchicalMoe().Run(h0, xs);
        for (var t = 0; t < xs.Length; t++)
        {
            for (var i = 0; i < m; i++)
            {
                Assert.Equal(gru[t][i], moe[t][i], 12);
            }
        }

        // The original (reset-before) form differs in general.
        var before = cell.WithReset(ResetPlacement.BeforeRecurrence).Run(h0, xs);
        Assert.Contains(Enumerable.Range(0, xs.Length), t => Math.Abs(before[t][0] - gru[t][0]) > 1e-6 || Math.Abs(before[t][1] - gru[t][1]) > 1e-6);
    }

    [Fact]
    public void BadShapesNameTheMatrix()
    {
        var e = Assert.Throws<ArgumentException>(() => new GruCell(new double[2, 3], new double[2, 2], new double[2, 3],
            new double[3, 3], new double[2, 3], new double[2, 2], Activation.Tanh, GateFunction.Sigmoid,
            GateFunction.Sigmoid, ResetPlacement.AfterRecurrence));
        Assert.Equal("Wr", e.ParamName);
        Assert.Equal("uz", Assert.Throws<ArgumentNullException>(() => new GruCell(null!, new double[2, 2], new double[2, 3],
            new double[2, 2], new double[2, 3], new double[2, 2], Activation.Tanh, GateFunction.Sigmoid,
            GateFunction.Sigmoid, ResetPlacement.AfterRecurrence)).ParamName);
    }
}
