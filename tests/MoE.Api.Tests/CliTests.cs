using MoE.Api;
using MoE.Cli;

namespace MoE.Api.Tests;

/// <summary>The <c>moe</c> command line, run in-process with captured output.</summary>
public class CliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = Cli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary><c>moe diagnose</c> on a constant column and on a column whose powers overflow prints no NaN or
    /// Infinity: "n/a", "overflow", Mardia's tests "not defined", and no moment guarantee for data a fit refuses.</summary>
    [Fact]
    public void DiagnoseOnConstantAndOverflowingColumnsPrintsNoNaNOrInfinity()
    {
        using var dir = new TempDir();
        var rng = new Random(7);
        var constant = new System.Text.StringBuilder("x1,x2,y\n");
        var huge = new System.Text.StringBuilder("x1,x2,y\n");
        for (var r = 0; r < 300; r++)
        {
            var a = rng.NextDouble() - 0.5;
            var b = rng.NextDouble() - 0.5;
            constant.Append(System.FormattableString.Invariant($"{a},5,{a + 0.1 * b}\n"));
            huge.Append(System.FormattableString.Invariant($"{a * 1e300},{b},{a + 0.1 * b}\n"));
        }

        File.WriteAllText(dir.File("const.csv"), constant.ToString());
        File.WriteAllText(dir.File("huge.csv"), huge.ToString());
        foreach (var (file, expected) in new[] { ("const.csv", "n/a"), ("huge.csv", "overflow") })
        {
            var (code, stdout, stderr) = Run("diagnose", dir.File(file), "--k", "2");
            Assert.True(code == 0, stderr);
            Assert.DoesNotContain("NaN", stdout);
            Assert.DoesNotContain("Infinity", stdout);
            Assert.Contains("Mardia: not defined", stdout);
            Assert.Contains("moment guarantees (L4, spectral): do not apply", stdout);
            Assert.Contains(expected, stdout);
        }
    }

    [Fact]
    public void GenerateWritesDataAndATruthThatReloadsToTheSameParameters()
    {
        using var dir = new TempDir();
        var (code, stdout, stderr) = Run("generate", "--d", "10", "--k", "2", "--activation", "identity", "--sigma", "0.05",
            "--n", "5000", "--seed", "1", "--preset", "orthogonal", "--out", dir.File("data.csv"), "--truth", dir.File("truth.json"));
        Assert.True(code == 0, stderr);
        Assert.Contains("wrote 5000 samples", stdout);

        var truth = MixtureOfExperts.Load(dir.File("truth.json"));
        var expected = GroundTruth.Create(GroundTruthPreset.Orthogonal, 2, 10, Activation.Identity, 0.05);
        Assert.Equal(expected.Regressors, truth.Regressors);
        Assert.Equal(expected.Gating, truth.Gating);
        Assert.Equal(0.05, truth.Sigma);

        var data = Dataset.LoadCsv(dir.File("data.csv"));
        Assert.Equal(expected.Sample(5000, 1).Y, data.Y);
    }

    /// <summary><c>moe export</c> writes the façade's ONNX bytes (which tests/MoE.Onnx.Tests scores with ONNX Runtime),
    /// in double and in float32, for a model with intercepts and the gate on its own columns.</summary>
    [Fact]
    public void ExportWritesTheFacadesOnnxFile()
    {
        using var dir = new TempDir();
        var model = MixtureOfExperts.FromJson("""
            {"k": 3, "d": 4, "expertInputs": [0, 1, 3], "gateInputs": [2, 3], "activation": {"name": "leaky-relu", "slope": 0.2},
             "sigmas": [0.1, 0.2, 0.3], "regressors": [[1, 2, 3], [-1, 0.5, 2], [0, 1, -1]], "gating": [[1, -1], [0.5, 2]],
             "regressorIntercepts": [0.1, -0.2, 0.3], "gatingIntercepts": [1, -1]}
            """);
        model.Save(dir.File("model.json"));
        foreach (var float32 in new[] { false, true })
        {
            string[] args = ["export", dir.File("model.json"), "--onnx", dir.File(Path.Combine("out", "m.onnx")), .. float32 ? new[] { "--float32" } : []];
            var (code, stdout, stderr) = Run(args);
            Assert.True(code == 0, stderr);
            Assert.Contains($"3 experts on 4 inputs, {(float32 ? "float32" : "double")}, ONNX opset 17", stdout);
            Assert.Equal(model.ToOnnx(float32), File.ReadAllBytes(dir.File(Path.Combine("out", "m.onnx"))));
        }
    }

    [Fact]
    public void GenerateSupportsEveryPresetAndActivation()
    {
        using var dir = new TempDir();
        foreach (var (preset, activation, extra) in new[]
                 {
                     ("random-gating", "relu", Array.Empty<string>()),
                     ("random", "leaky-relu", ["--slope", "0.2"]),
                     ("random", "tanh", ["--free-gating", "--radius", "2"]),
                     ("orthogonal", "sigmoid", Array.Empty<string>()),
                 })
        {
            string[] args = ["generate", "--d", "6", "--k", "3", "--n", "100", "--preset", preset, "--activation", activation,
                "--out", dir.File("d.csv"), "--truth", dir.File("t.json"), .. extra];
            var (code, _, stderr) = Run(args);
            Assert.True(code == 0, $"{preset}/{activation}: {stderr}");
            Assert.Equal(activation, MixtureOfExperts.Load(dir.File("t.json")).Activation.Name);
        }
    }

    [Theory]
    [InlineData(2, "--d abc --k 2 --out x.csv", "--d")]
    [InlineData(2, "--k 2 --out x.csv", "--d")]
    [InlineData(2, "--d 10 --k 2 --out x.csv --bogus", "--bogus")]
    [InlineData(1, "--d 2 --k 2 --out x.csv", "d >= 2k-1")]
    [InlineData(1, "--d 10 --k 2 --sigma -1 --out x.csv", "sigma")]
    [InlineData(1, "--d 10 --k 2 --activation softplus --out x.csv", "Unknown activation 'softplus'")]
    [InlineData(1, "--d 10 --k 2 --slope 0.3 --out x.csv", "only meaningful for leaky-relu")]
    [InlineData(1, "--d 10 --k 2 --preset spiral --out x.csv", "Unknown preset 'spiral'")]
    [InlineData(1, "--d 10 --k 2 --n 0 --out x.csv", "--n must be at least 1")]
    public void BadArgumentsGiveOneLineOnStderrAndANonZeroExit(int expectedCode, string args, string fragment)
    {
        var (code, stdout, stderr) = Run(["generate", .. args.Split(' ')]);
        Assert.Equal(expectedCode, code);
        Assert.Equal("", stdout);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("moe: error: ", lines[0]);
        Assert.Contains(fragment, lines[0]);
    }

    [Fact]
    public void OutputFoldersAreCreatedAndUnwritablePathsAreOneLineErrors()
    {
        using var dir = new TempDir();
        var (code, _, stderr) = Run("generate", "--d", "3", "--k", "2", "--n", "10", "--out", dir.File("new/sub/d.csv"));
        Assert.True(code == 0, stderr);
        Assert.True(File.Exists(dir.File("new/sub/d.csv")));

        File.WriteAllText(dir.File("plain"), "a file, not a folder");
        var (code2, stdout2, stderr2) = Run("generate", "--d", "3", "--k", "2", "--n", "10", "--out", dir.File("plain/d.csv"));
        Assert.Equal(1, code2);
        Assert.Equal("", stdout2);
        Assert.Single(stderr2.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("moe: error: ", stderr2);
    }

    [Theory]
    [InlineData("identity", null)]
    [InlineData("relu", null)]
    [InlineData("leaky-relu", "0.1")]
    [InlineData("sigmoid", null)]
    [InlineData("tanh", null)]
    public void CoefficientsWorksForEveryBuiltInActivation(string activation, string? slope)
    {
        string[] args = ["coefficients", "--activation", activation, "--sigma", "0.05", "--json", .. slope is null ? Array.Empty<string>() : ["--slope", slope]];
        var (code, stdout, stderr) = Run(args);
        Assert.True(code == 0, stderr);
        using var json = System.Text.Json.JsonDocument.Parse(stdout);
        var expected = Transforms.Coefficients(Activation.Parse(activation, slope is null ? 0 : 0.1), 0.05);
        Assert.Equal(expected.C, json.RootElement.GetProperty("c").GetDouble());
        Assert.Equal(expected.Beta, json.RootElement.GetProperty("beta").GetDouble());
        Assert.Equal(activation, json.RootElement.GetProperty("activation").GetProperty("name").GetString());
    }

    [Fact]
    public void CoefficientsPrintsATableWithMathMdsReluValues()
    {
        var (code, stdout, _) = Run("coefficients", "--activation", "relu", "--sigma", "0.05");
        Assert.Equal(0, code);
        Assert.Contains("alpha", stdout);
        Assert.Contains("-5.35248", stdout);
        Assert.Contains("8.11002", stdout);
        var (bad, _, err) = Run("coefficients", "--activation", "relu", "--sigma", "-1");
        Assert.Equal(1, bad);
        Assert.StartsWith("moe: error: ", err);
    }

    /// <summary><c>moe report</c> writes one page that needs nothing else: every section, both pictures as embedded PNG
    /// data, no address of anything outside it (CI opens it in Chromium: tests/report/run).</summary>
    [Fact]
    public void ReportWritesOneSelfContainedPage()
    {
        using var dir = new TempDir();
        var truth = MixtureOfExperts.Create(new double[,] { { 1.0 }, { -1.0 } }, [0.5, -0.5], new double[,] { { 2.0 } }, [0.0],
            Activation.Identity, [0.3, 0.3]);
        var data = truth.Sample(n: 400, seed: 3);
        using (var w = new StreamWriter(dir.File("d.csv")))
        {
            w.WriteLine("x1,y");
            for (var r = 0; r < data.Count; r++)
            {
                w.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{data.X[r, 0]:R},{data.Y[r]:R}"));
            }
        }

        Assert.Equal(0, Run("fit", dir.File("d.csv"), "--k", "2", "--out", dir.File("m.json")).Code);
        var (code, stdout, stderr) = Run("report", dir.File("m.json"), dir.File("d.csv"), "--out", dir.File("r.html"), "--bootstrap", "20");
        Assert.True(code == 0, stderr);
        Assert.Contains("wrote r.html", stdout);
        var page = File.ReadAllText(dir.File("r.html"));
        foreach (var id in new[] { "model", "parameters", "k", "diagnosis", "fit", "calibration" })
        {
            Assert.Contains($"<section id=\"{id}\">", page);
        }

        Assert.Equal(2, page.Split("<img src=\"data:image/png;base64,").Length - 1);
        Assert.DoesNotContain("http://", page);
        Assert.DoesNotContain("https://", page);
        Assert.Contains("95% percentile interval", page);
        Assert.Contains("BIC&#39;s choice", page);
    }

    [Fact]
    public void HelpListsTheCommands()
    {
        var (code, stdout, _) = Run("--help");
        Assert.Equal(0, code);
        Assert.Contains("generate", stdout);
        Assert.Contains("coefficients", stdout);
        var (code2, stdout2, _) = Run();
        Assert.Equal(0, code2);
        Assert.Contains("generate", stdout2);
    }
}
