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

    public sealed class Columns
    {
        public float X1 { get; set; }
        public float X2 { get; set; }
        public float X3 { get; set; }
        public float Label { get; set; }
    }

    /// The route for a pipeline: Concatenate + NormalizeMeanVariance + the mixture, fitted and also saved and loaded,
    /// becomes one ONNX file (ML.NET's converter for the transforms, ours for the mixture); ONNX Runtime fed the raw
    /// columns gives ML.NET's scores and gates.
    [Fact]
    public void APipelineExportsWholeAndScoresLikeMlNet()
    {
        var truth = MixtureOfExperts.Create(new double[,] { { 1.0, -2.0, 0.5 }, { -1.5, 1.0, 0.25 } }, [2.0, -1.0],
            new double[,] { { 1.2, 0.0, -0.6 } }, [0.3], Activation.Tanh, [0.1, 0.2]);
        var data = truth.SampleCovariates(3_000, seed: 4, [5, -2, 10], [2, 0.5, 3]);
        var rows = Enumerable.Range(0, data.Count).Select(i => new Columns
        {
            X1 = (float)data.X[i, 0], X2 = (float)data.X[i, 1], X3 = (float)data.X[i, 2], Label = (float)data.Y[i],
        }).ToArray();
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(rows);
        var model = ml.Transforms.Concatenate("Features", "X1", "X2", "X3")
            .Append(ml.Transforms.NormalizeMeanVariance("Features"))
            .Append(ml.Regression.Trainers.MixtureOfExperts(new MixtureOfExpertsTrainer.Options
            {
                GateColumnName = "Gate",
                Fit = new FitOptions { Experts = 2, Activation = Activation.Tanh },
            }))
            .Fit(view);
        var scored = ml.Data.CreateEnumerable<Scored>(model.Transform(view), reuseRowObject: false).ToArray();

        var dir = Directory.CreateTempSubdirectory("moe-onnx-ml-");
        try
        {
            ml.Model.Save(model, view.Schema, Path.Combine(dir.FullName, "moe.zip"));
            var fresh = new MLContext(seed: 2);
            fresh.ComponentCatalog.RegisterAssembly(typeof(MixtureOfExpertsTrainer).Assembly);
            var loaded = fresh.Model.Load(Path.Combine(dir.FullName, "moe.zip"), out _);
            MixtureOfExpertsTransformer.SaveOnnx(ml, model, view, Path.Combine(dir.FullName, "fitted.onnx"));
            MixtureOfExpertsTransformer.SaveOnnx(fresh, loaded, view, Path.Combine(dir.FullName, "loaded.onnx"));
            var bytes = File.ReadAllBytes(Path.Combine(dir.FullName, "fitted.onnx"));
            Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(dir.FullName, "loaded.onnx")));

            using var session = new InferenceSession(bytes);
            Assert.Equal(["X1", "X2", "X3"], session.InputMetadata.Keys.OrderBy(k => k));
            Assert.Equal([OnnxExport.MeanName, OnnxExport.ExpertMeansName, OnnxExport.GateName], session.OutputMetadata.Keys);
            NamedOnnxValue Column(string name, Func<Columns, float> get) =>
                NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(rows.Select(get).ToArray(), [rows.Length, 1]));
            using var results = session.Run([Column("X1", r => r.X1), Column("X2", r => r.X2), Column("X3", r => r.X3)]);
            var mean = results.Single(r => r.Name == OnnxExport.MeanName).AsTensor<double>().ToArray();
            var gate = results.Single(r => r.Name == OnnxExport.GateName).AsTensor<double>().ToArray();
            double worstScore = 0, worstGate = 0;
            for (var i = 0; i < rows.Length; i++)
            {
                worstScore = Math.Max(worstScore, Math.Abs(mean[i] - scored[i].Score) / (1 + Math.Abs(scored[i].Score)));
                worstGate = Math.Max(worstGate, Math.Abs(gate[2 * i] - scored[i].Gate[0]));
            }

            // ML.NET normalises in float and stores the score and the gate as Single; the graph normalises with ONNX's
            // Scaler in float too, then computes in double. Both sides hold a float's 6e-8 relative rounding at two
            // places (the features, the stored output); a few of those propagated through |a| ~ 2 and the tanh stay
            // below 1e-6, while a wrong step of the pipeline (a normalizer skipped, a column swapped) is off by O(1).
            Assert.True(worstScore <= 1e-6, $"score off by {worstScore:E3}");
            Assert.True(worstGate <= 1e-6, $"gate off by {worstGate:E3}");
        }
        finally
        {
            dir.Delete(true);
        }
    }

    /// A mixture whose gate reads its own feature column exports whole too: the graph concatenates the features and
    /// the gate's features as the mixture's chain does, fitted and loaded give the same file, and ONNX Runtime fed the
    /// raw columns gives ML.NET's scores (to the float rounding bound of the test above).
    [Fact]
    public void APipelineWithAGateFeatureColumnExportsWhole()
    {
        var truth = MixtureOfExperts.Create(new double[,] { { 1.0, -2.0, 0.5 }, { -1.5, 1.0, 0.25 } }, [2.0, -1.0],
            new double[,] { { 1.2, 0.0, -0.6 } }, [0.3], Activation.Identity, [0.1, 0.2]);
        var data = truth.Sample(3_000, seed: 4);
        var rows = Enumerable.Range(0, data.Count).Select(i => new Columns
        {
            X1 = (float)data.X[i, 0], X2 = (float)data.X[i, 1], X3 = (float)data.X[i, 2], Label = (float)data.Y[i],
        }).ToArray();
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(rows);
        var model = ml.Transforms.Concatenate("Features", "X1", "X2")
            .Append(ml.Transforms.Concatenate("GateFeatures", "X1", "X3"))
            .Append(ml.Regression.Trainers.MixtureOfExperts(new MixtureOfExpertsTrainer.Options
            {
                GateFeatureColumnName = "GateFeatures",
                GateColumnName = "Gate",
                Fit = new FitOptions { Experts = 2, Seed = 1 },
            }))
            .Fit(view);
        var scored = ml.Data.CreateEnumerable<Scored>(model.Transform(view), reuseRowObject: false).ToArray();

        var dir = Directory.CreateTempSubdirectory("moe-onnx-ml-");
        try
        {
            ml.Model.Save(model, view.Schema, Path.Combine(dir.FullName, "moe.zip"));
            var fresh = new MLContext(seed: 2);
            fresh.ComponentCatalog.RegisterAssembly(typeof(MixtureOfExpertsTrainer).Assembly);
            var loaded = fresh.Model.Load(Path.Combine(dir.FullName, "moe.zip"), out _);
            MixtureOfExpertsTransformer.SaveOnnx(ml, model, view, Path.Combine(dir.FullName, "fitted.onnx"));
            MixtureOfExpertsTransformer.SaveOnnx(fresh, loaded, view, Path.Combine(dir.FullName, "loaded.onnx"));
            var bytes = File.ReadAllBytes(Path.Combine(dir.FullName, "fitted.onnx"));
            Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(dir.FullName, "loaded.onnx")));

            using var session = new InferenceSession(bytes);
            Assert.Equal(["X1", "X2", "X3"], session.InputMetadata.Keys.OrderBy(k => k));
            NamedOnnxValue Column(string name, Func<Columns, float> get) =>
                NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(rows.Select(get).ToArray(), [rows.Length, 1]));
            using var results = session.Run([Column("X1", r => r.X1), Column("X2", r => r.X2), Column("X3", r => r.X3)]);
            var mean = results.Single(r => r.Name == OnnxExport.MeanName).AsTensor<double>().ToArray();
            var gate = results.Single(r => r.Name == OnnxExport.GateName).AsTensor<double>().ToArray();
            double worstScore = 0, worstGate = 0;
            for (var i = 0; i < rows.Length; i++)
            {
                worstScore = Math.Max(worstScore, Math.Abs(mean[i] - scored[i].Score) / (1 + Math.Abs(scored[i].Score)));
                worstGate = Math.Max(worstGate, Math.Abs(gate[2 * i] - scored[i].Gate[0]));
            }

            Assert.True(worstScore <= 1e-6, $"score off by {worstScore:E3}");
            Assert.True(worstGate <= 1e-6, $"gate off by {worstGate:E3}");
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Fact]
    public void AMixtureAloneExportsThroughTheTransformer()
    {
        var truth = MixtureOfExperts.Create(new double[,] { { 1.0, -2.0, 0.5 }, { -1.5, 1.0, 0.25 } }, [2.0, -1.0],
            new double[,] { { 1.2, 0.0, -0.6 } }, [0.3], Activation.Identity, [0.1, 0.2]);
        var data = truth.Sample(2_000, seed: 4);
        var rows = Enumerable.Range(0, data.Count).Select(i => new Row
        {
            Features = [(float)data.X[i, 0], (float)data.X[i, 1], (float)data.X[i, 2]],
            Label = (float)data.Y[i],
        }).ToArray();
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(rows);
        var model = ml.Regression.Trainers.MixtureOfExperts(experts: 2).Fit(view);
        var dir = Directory.CreateTempSubdirectory("moe-onnx-ml-");
        try
        {
            model.SaveOnnx(Path.Combine(dir.FullName, "alone.onnx"));
            Assert.Equal(model.Model.ToOnnx(), File.ReadAllBytes(Path.Combine(dir.FullName, "alone.onnx")));
            MixtureOfExpertsTransformer.SaveOnnx(ml, model, view, Path.Combine(dir.FullName, "pipeline.onnx"));
            using var session = new InferenceSession(File.ReadAllBytes(Path.Combine(dir.FullName, "pipeline.onnx")));
            Assert.Equal(["Features"], session.InputMetadata.Keys);
            var x = rows.SelectMany(r => r.Features).ToArray();
            using var results = session.Run([NamedOnnxValue.CreateFromTensor("Features", new DenseTensor<float>(x, [rows.Length, 3]))]);
            var mean = results.Single(r => r.Name == OnnxExport.MeanName).AsTensor<double>().ToArray();
            var xd = new double[rows.Length, 3];
            for (var i = 0; i < rows.Length; i++)
                for (var j = 0; j < 3; j++)
                    xd[i, j] = rows[i].Features[j];
            var expected = model.Model.Predict(xd);
            for (var i = 0; i < rows.Length; i++)
                Assert.True(Math.Abs(mean[i] - expected[i]) <= 1e-12 * (1 + Math.Abs(expected[i])), $"row {i}");
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
        var e = Assert.Throws<ArgumentException>(() => MixtureOfExpertsTransformer.SaveOnnx(ml, plain, view, "never.onnx"));
        Assert.Contains("The pipeline holds no mixture of experts.", e.Message);
        Assert.False(File.Exists("never.onnx"));
    }
}
