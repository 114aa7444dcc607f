using BenchmarkDotNet.Attributes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MoE.ML;
using Api = MoE.Api;

namespace MoE.Bench;

/// <summary>
/// Scoring 100,000 rows (d = 10, k = 3) through ONNX Runtime (the exported graph, docs/deploying.md) against the
/// façade and the ML.NET transformer, same run. Baseline: the façade's row predictor in a plain loop on one thread
/// (<see cref="Api.MixtureOfExperts.PredictRow"/>). ONNX Runtime: the CPU provider on one intra-op thread (as a service
/// scoring requests side by side would run it), the whole batch in one <c>Run</c> in double and in float32, and one
/// row per <c>Run</c> — the cost of a request of one row.
/// </summary>
[MemoryDiagnoser]
public class OnnxScoring
{
    private const int D = 10;
    private Api.MixtureOfExperts model = null!;
    private double[,] x = null!;
    private double[] flat = null!;
    private float[] flat32 = null!;
    private IDataView view = null!;
    private ITransformer mixture = null!;
    private InferenceSession session = null!;
    private InferenceSession session32 = null!;

    /// <summary>Rows scored.</summary>
    [Params(100_000)]
    public int N { get; set; }

    /// <summary>A row as ML.NET reads it.</summary>
    public sealed class Row
    {
        [VectorType(D)]
        public float[] Features { get; set; } = [];

        public float Label { get; set; }
    }

    [GlobalSetup]
    public void Setup()
    {
        var truth = Api.GroundTruth.Create(Api.GroundTruthPreset.Random, experts: 3, dimension: D, Api.Activation.Identity, sigma: 0.1);
        var data = truth.Sample(N, seed: 1);
        x = new double[N, D];
        flat = new double[N * D];
        flat32 = new float[N * D];
        var rows = new Row[N];
        for (int i = 0; i < N; i++)
        {
            rows[i] = new Row { Features = new float[D], Label = (float)data.Y[i] };
            for (int j = 0; j < D; j++)
            {
                rows[i].Features[j] = (float)data.X[i, j];
                x[i, j] = flat[i * D + j] = flat32[i * D + j] = (float)data.X[i, j];
            }
        }

        var ml = new MLContext(seed: 1);
        view = ml.Data.LoadFromEnumerable(rows);
        var fitted = ml.Regression.Trainers.MixtureOfExperts(experts: 3).Fit(view);
        model = fitted.Model;
        mixture = fitted;
        var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        session = new InferenceSession(model.ToOnnx(), options);
        session32 = new InferenceSession(model.ToOnnx(float32: true), options);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        session.Dispose();
        session32.Dispose();
    }

    /// <summary>The façade's row predictor over every row, one thread, reused buffers.</summary>
    [Benchmark(Baseline = true)]
    public double FacadeRows()
    {
        var one = new double[1, D];
        var gate = new double[3];
        var means = new double[3];
        double sum = 0;
        for (int i = 0; i < N; i++)
        {
            for (int j = 0; j < D; j++)
            {
                one[0, j] = x[i, j];
            }

            sum += model.PredictRow(one, 0, gate, means);
        }

        return sum;
    }

    /// <summary>The façade's batch prediction (all cores).</summary>
    [Benchmark]
    public double FacadeBatch() => model.Predict(x).Sum();

    /// <summary>The ML.NET transformer, Score read through a cursor.</summary>
    [Benchmark]
    public double MlNetTransformer()
    {
        var scored = mixture.Transform(view);
        var column = scored.Schema["Score"];
        using var cursor = scored.GetRowCursor([column]);
        var getter = cursor.GetGetter<float>(column);
        float score = 0;
        double sum = 0;
        while (cursor.MoveNext())
        {
            getter(ref score);
            sum += score;
        }

        return sum;
    }

    /// <summary>ONNX Runtime, double graph, the whole batch in one Run.</summary>
    [Benchmark]
    public double OnnxBatch()
    {
        using var input = OrtValue.CreateTensorValueFromMemory(flat, [N, D]);
        using var results = session.Run(new RunOptions(), [Onnx.OnnxExport.InputName], [input], [Onnx.OnnxExport.MeanName]);
        double sum = 0;
        foreach (var v in results[0].GetTensorDataAsSpan<double>())
        {
            sum += v;
        }

        return sum;
    }

    /// <summary>ONNX Runtime, float32 graph, the whole batch in one Run.</summary>
    [Benchmark]
    public double OnnxBatchFloat32()
    {
        using var input = OrtValue.CreateTensorValueFromMemory(flat32, [N, D]);
        using var results = session32.Run(new RunOptions(), [Onnx.OnnxExport.InputName], [input], [Onnx.OnnxExport.MeanName]);
        double sum = 0;
        foreach (var v in results[0].GetTensorDataAsSpan<float>())
        {
            sum += v;
        }

        return sum;
    }

    /// <summary>ONNX Runtime, double graph, one row per Run (a request of one row).</summary>
    [Benchmark]
    public double OnnxRows()
    {
        var one = new double[D];
        double sum = 0;
        using var options = new RunOptions();
        string[] inputs = [Onnx.OnnxExport.InputName];
        string[] outputs = [Onnx.OnnxExport.MeanName];
        for (int i = 0; i < N; i++)
        {
            Array.Copy(flat, i * D, one, 0, D);
            using var input = OrtValue.CreateTensorValueFromMemory(one, [1, D]);
            using var results = session.Run(options, inputs, [input], outputs);
            sum += results[0].GetTensorDataAsSpan<double>()[0];
        }

        return sum;
    }
}
