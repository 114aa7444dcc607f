using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MoE.Api;
using MoE.ML;

namespace MoE.Onnx.Tests;

public sealed class MlNetTests
{
    public sealed class Row
    {
        [VectorType(3)] public float[] Features { get; set; } = [];
        public float Label { get; set; }
    }

    public sealed class Scored
    {
        public float Score { get; set; }
        [VectorType(2)] public float[] Gate { get; set; } = [];
    }

    /// The route for a pipeline: the mixture of a fitted pipeline, and of the same pipeline saved and loaded, is
    /// exported; ONNX Runtime fed the feature column gives ML.NET's scores and gates (to the float they are stored in).
    [Fact]
    public void APipelinesMixtureExportsAndScoresLikeMlNet()
    {
        var truth = MixtureOfExperts.Create(new double[,] { { 1.0, -2.0, 0.5 }, { -1.5, 1.0, 0.25 } }, [2.0, -1.0],
            new double[,] { { 1.2, 0.0, -0.6 } }, [0.3], Activation.Identity, [0.1, 0.2]);
        var data = truth.Sample(3_000, seed: 4);
        var rows = Enumerable.Range(0, data.Count).Select(i => new Row
        {
            Features = [(float)data.X[i, 0], (float)data.X[i, 1], (float)data.X[i, 2]],
            Label = (float)data.Y[i],
        }).ToArray();
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(rows);
        var model = ml.Regression.Trainers.MixtureOfExperts(new MixtureOfExpertsTrainer.Options
        {
            GateColumnName = "Gate",
            Fit = new FitOptions { Experts = 2 },
        }).Fit(view);

        var dir = Directory.CreateTempSubdirectory("moe-onnx-ml-");
        try
        {
            ml.Model.Save(model, view.Schema, Path.Combine(dir.FullName, "moe.zip"));
            var loaded = ml.Model.Load(Path.Combine(dir.FullName, "moe.zip"), out _);
            model.SaveOnnx(Path.Combine(dir.FullName, "fitted.onnx"));
            MixtureOfExpertsTransformer.SaveOnnx(loaded, Path.Combine(dir.FullName, "loaded.onnx"));
            var bytes = File.ReadAllBytes(Path.Combine(dir.FullName, "fitted.onnx"));
            Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(dir.FullName, "loaded.onnx")));

            var scored = ml.Data.CreateEnumerable<Scored>(model.Transform(view), reuseRowObject: false).ToArray();
            var x = new double[rows.Length * 3];
            for (var i = 0; i < rows.Length; i++)
                for (var j = 0; j < 3; j++)
                    x[3 * i + j] = rows[i].Features[j];
            using var session = new InferenceSession(bytes);
            using var results = session.Run([
                NamedOnnxValue.CreateFromTensor(OnnxExport.InputName, new DenseTensor<double>(x, [rows.Length, 3]))]);
            var mean = results.Single(r => r.Name == OnnxExport.MeanName).AsTensor<double>().ToArray();
            var gate = results.Single(r => r.Name == OnnxExport.GateName).AsTensor<double>().ToArray();
            for (var i = 0; i < rows.Length; i++)
            {
                // ML.NET computes in double and stores the score as Single: the double graph's value, rounded to
                // float, is within one float ulp of it (a double 1e-15 apart can round the other way).
                Assert.True(Math.Abs((float)mean[i] - scored[i].Score) <= MathF.BitIncrement(Math.Abs(scored[i].Score)) - Math.Abs(scored[i].Score),
                    $"row {i}: onnx {mean[i]:R}, ML.NET {scored[i].Score:R}");
                Assert.True(Math.Abs((float)gate[2 * i] - scored[i].Gate[0]) <= 6e-8, $"row {i} gate");
            }
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Fact]
    public void APipelineWithoutAMixtureIsRefused()
    {
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(new[] { new Row { Features = [1, 2, 3], Label = 1 } });
        var plain = ml.Transforms.NormalizeMinMax("Features").Fit(view);
        var e = Assert.Throws<ArgumentException>(() => MixtureOfExpertsTransformer.SaveOnnx(plain, "never.onnx"));
        Assert.Contains("The pipeline holds 0 mixtures of experts; an ONNX export takes exactly one.", e.Message);
        Assert.False(File.Exists("never.onnx"));
    }
}
