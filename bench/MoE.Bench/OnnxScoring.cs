using BenchmarkDotNet.Attributes;
using Microsoft.ML.OnnxRuntime;
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
public class OnnxScoring : ScoringBase
{
    private double[] flat = null!;
    private float[] flat32 = null!;
    private InferenceSession session = null!;
    private InferenceSession session32 = null!;

    [GlobalSetup]
    public void Setup()
    {
        SetupData();
        flat = new double[N * D];
        flat32 = new float[N * D];
        for (int i = 0; i < N; i++)
        {
            for (int j = 0; j < D; j++)
            {
                flat[i * D + j] = x[i, j];
                flat32[i * D + j] = (float)x[i, j];
            }
        }

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

    /// <summary>ONNX Runtime, double graph, the whole batch in one Run.</summary>
    [Benchmark]
    public double OnnxBatch() => SumMeans<double>(session, OrtValue.CreateTensorValueFromMemory(flat, [N, D]));

    /// <summary>ONNX Runtime, float32 graph, the whole batch in one Run.</summary>
    [Benchmark]
    public double OnnxBatchFloat32() => SumMeans<float>(session32, OrtValue.CreateTensorValueFromMemory(flat32, [N, D]));

    private static double SumMeans<T>(InferenceSession s, OrtValue input)
        where T : unmanaged, IConvertible
    {
        using (input)
        {
            using var results = s.Run(new RunOptions(), [Onnx.OnnxExport.InputName], [input], [Onnx.OnnxExport.MeanName]);
            double sum = 0;
            foreach (var v in results[0].GetTensorDataAsSpan<T>())
            {
                sum += v.ToDouble(null);
            }

            return sum;
        }
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
