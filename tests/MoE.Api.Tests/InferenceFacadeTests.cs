using System.Text.Json;
using MoE.Api;
using MoE.Cli;

namespace MoE.Api.Tests;

/// <summary>Choosing k, standard errors and predictions through the façade and the command line.</summary>
public class InferenceFacadeTests
{
    /// <summary>Two linear experts in d = 2 with intercepts and their own noise levels (the coverage study's truth).</summary>
    private static readonly MixtureOfExperts Truth = MixtureOfExperts.Create(
        new double[,] { { 1.0, -0.5 }, { -0.5, 1.0 } }, [0.5, -0.5],
        new double[,] { { 1.5, 0.5 } }, [0.3], Activation.Identity, [0.3, 0.5]);

    [Fact]
    public void SelectChoosesTheTrueNumberOfExpertsByBic()
    {
        var data = Truth.Sample(n: 3000, seed: 11);
        ExpertsSelection s = MoeLearner.Select(data, new FitOptions(), [1, 2, 3]);
        Assert.Equal([1, 2, 3], s.Results.Select(r => r.Experts));
        Assert.Equal([4, 11, 18], s.Results.Select(r => r.Parameters));
        Assert.Equal(2, s.Chosen);
        Assert.Null(s.Results[0].Model);
        Assert.NotNull(s.Results[1].Model);
        // Each criterion is its formula.
        var r2 = s.Results[1];
        Assert.Equal(-2 * r2.LogLikelihood + r2.Parameters * Math.Log(3000), r2.Bic, 9);
        Assert.Equal(-2 * r2.LogLikelihood + 2 * r2.Parameters, r2.Aic, 9);
        Assert.True(r2.Icl >= r2.Bic);
    }

    [Fact]
    public void AFitWithStandardErrorsHasIntervalsAroundTheTruth()
    {
        var data = Truth.Sample(n: 5000, seed: 12);
        var fit = MoeLearner.Fit(data, new FitOptions { Experts = 2, StandardErrors = StandardErrorKind.Observed });
        var se = fit.StandardErrors!;
        Assert.Equal(StandardErrorKind.Observed, se.Method);
        var e = Metrics.Compare(fit.Model, Truth);
        var swap = e.Permutation[0] == 1;
        for (var i = 0; i < 2; i++)
        {
            var f = swap ? 1 - i : i;
            // 4.5 standard errors: a miss has probability 7e-6 per parameter if the errors are right.
            Assert.InRange(Math.Abs(fit.Model.RegressorIntercepts[f] - Truth.RegressorIntercepts[i]), 0, 4.5 * se.RegressorIntercepts[f]);
            Assert.InRange(Math.Abs(fit.Model.Sigmas[f] - Truth.Sigmas[i]), 0, 4.5 * se.Sigmas[f]);
            Assert.InRange(se.Sigmas[f], 1e-4, 0.05);
        }

        Assert.Equal(1.959964, ParameterErrors.Z(0.95), 6);
        Assert.Null(MoeLearner.Fit(data, new FitOptions { Experts = 2 }).StandardErrors);
    }

    [Fact]
    public void PredictionsRoundTripAndIntervalsWiden()
    {
        var x = Truth.Sample(n: 50, seed: 13).X;
        var p = Truth.PredictDistribution(x, 0.9);
        var wide = Truth.PredictDistribution(x, 0.99);
        var mean = Truth.Predict(x);
        for (var r = 0; r < 50; r++)
        {
            Assert.Equal(mean[r], p.Mean[r], 12);
            Assert.Equal(p.Gate[r, 0] * p.ExpertMeans[r, 0] + p.Gate[r, 1] * p.ExpertMeans[r, 1], p.Mean[r], 12);
            Assert.True(p.Lower[r] < p.Upper[r] && wide.Lower[r] < p.Lower[r] && wide.Upper[r] > p.Upper[r]);
        }

        Assert.Empty(Truth.PredictDistribution(x).Lower);
        Assert.Throws<ArgumentOutOfRangeException>(() => MoeLearner.Fit(Truth.Sample(100, 1),
            new FitOptions { Experts = 2, StandardErrors = (StandardErrorKind)7 }));
    }

    [Fact]
    public void TheCliSelectsPredictsAndPrintsStandardErrors()
    {
        using var dir = new TempDir();
        Truth.Sample(n: 2000, seed: 14).SaveCsv(dir.File("d.csv"));
        var output = new StringWriter();
        Assert.Equal(0, Cli.Run(["select", dir.File("d.csv"), "--k", "1..3", "--json"], output, new StringWriter()));
        using var doc = JsonDocument.Parse(output.ToString());
        Assert.Equal(2, doc.RootElement.GetProperty("chosen").GetInt32());
        Assert.Equal(3, doc.RootElement.GetProperty("results").GetArrayLength());

        output = new StringWriter();
        Assert.Equal(0, Cli.Run(["fit", dir.File("d.csv"), "--k", "2", "--se", "--out", dir.File("m.json")], output, new StringWriter()));
        Assert.Contains("standard errors (observed information), 95% Wald intervals:", output.ToString());
        Assert.Contains("sigma2", output.ToString());

        Assert.Equal(0, Cli.Run(["predict", dir.File("m.json"), dir.File("d.csv"), "--interval", "0.9", "--out", dir.File("p.csv")],
            new StringWriter(), new StringWriter()));
        var lines = File.ReadAllLines(dir.File("p.csv"));
        Assert.Equal("mean,expert1,expert2,gate1,gate2,lower,upper", lines[0]);
        Assert.Equal(2001, lines.Length);
    }

    [Fact]
    public void ThePlotIsAPngOfTheRequestedShapeForOneAndForManyCovariates()
    {
        using var dir = new TempDir();
        // d = 1: a faithful-like fit of two lines and a gate on one covariate.
        var one = MixtureOfExperts.Create(new double[,] { { 1.0 }, { -1.0 } }, [0.0, 1.0], new double[,] { { 2.0 } }, [0.0],
            Activation.Identity, [0.2, 0.3]);
        one.Sample(n: 500, seed: 21).SaveCsv(dir.File("one.csv"));
        one.Save(dir.File("one.json"));
        var output = new StringWriter();
        Assert.Equal(0, Cli.Run(["plot", dir.File("one.json"), dir.File("one.csv"), "--out", dir.File("one.png")], output, new StringWriter()));
        Assert.Contains("plotted 500 of 500 rows (data, expert lines and gate)", output.ToString());
        Assert.Equal((900, 800), PngSize(dir.File("one.png")));

        // d = 2 with more rows than are drawn.
        Truth.Sample(n: 6000, seed: 22).SaveCsv(dir.File("two.csv"));
        Truth.Save(dir.File("two.json"));
        output = new StringWriter();
        Assert.Equal(0, Cli.Run(["plot", dir.File("two.json"), dir.File("two.csv"), "--out", dir.File("two.png")], output, new StringWriter()));
        Assert.Contains("plotted 5000 of 6000 rows (fitted against observed", output.ToString());
        Assert.Equal((1400, 600), PngSize(dir.File("two.png")));
    }

    /// <summary>Width and height from a PNG's IHDR chunk (big-endian at bytes 16 and 20), after checking the
    /// eight-byte signature.</summary>
    private static (int Width, int Height) PngSize(string path)
    {
        var b = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, b[..8]);
        return (System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(16)),
            System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(20)));
    }
}
