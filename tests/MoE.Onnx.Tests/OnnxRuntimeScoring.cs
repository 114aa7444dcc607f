using System.Globalization;
using System.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MoE.Api;

namespace MoE.Onnx.Tests;

/// <summary>A model to export: its shape, activation, covariate layout and whether it has intercepts, with
/// parameters drawn from a seed. Built through the model file (JSON), the same way a user's fitted model arrives.</summary>
public sealed record ModelSpec(int K, int D, string Activation, double Slope, bool SplitLayout, bool Intercepts, int Seed,
    string Family = "gaussian")
{
    public override string ToString() =>
        $"{Family} k={K} d={D} {Activation}{(Activation == "leaky-relu" ? $"({Slope})" : "")} "
        + $"{(SplitLayout ? "gate/experts apart" : "shared columns")} {(Intercepts ? "intercepts" : "no intercepts")} seed {Seed}";

    /// The experts read the even-numbered columns and the last, the gate the columns from the middle on (in
    /// reverse): overlapping, unordered subsets, so the export's column selection is really exercised.
    public (int[] Experts, int[] Gate) Columns()
    {
        if (!SplitLayout) return (Enumerable.Range(0, D).ToArray(), Enumerable.Range(0, D).ToArray());
        var experts = Enumerable.Range(0, D).Where(j => j % 2 == 0 || j == D - 1).Distinct().ToArray();
        var gate = Enumerable.Range(D / 2, D - D / 2).Reverse().ToArray();
        return (experts, gate);
    }

    public MixtureOfExperts Build()
    {
        var rng = new Random(Seed);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        string Num(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        string Row(int n) => "[" + string.Join(", ", Enumerable.Range(0, n).Select(_ => Num(Normal()))) + "]";
        var (experts, gate) = Columns();
        var json = new StringBuilder();
        json.Append($"{{\"k\": {K}, \"d\": {D}, ");
        if (SplitLayout)
            json.Append($"\"expertInputs\": [{string.Join(",", experts)}], \"gateInputs\": [{string.Join(",", gate)}], ");
        json.Append($"\"activation\": {{\"name\": \"{Activation}\", \"slope\": {Num(Activation == "leaky-relu" ? Slope : 0.0)}}}, ");
        json.Append(Family switch
        {
            "gaussian" => "\"sigma\": 0.5, ",
            "student-t" => "\"family\": \"student-t\", \"sigma\": 0.5, ",
            _ => $"\"family\": \"{Family}\", ",
        });
        json.Append("\"regressors\": [" + string.Join(", ", Enumerable.Range(0, K).Select(_ => Row(experts.Length))) + "], ");
        json.Append("\"gating\": [" + string.Join(", ", Enumerable.Range(0, K - 1).Select(_ => Row(gate.Length))) + "]");
        if (Intercepts)
            json.Append($", \"regressorIntercepts\": {Row(K)}, \"gatingIntercepts\": {Row(K - 1)}");
        if (Family == "student-t")
            json.Append($", \"degreesOfFreedom\": [{string.Join(", ", Enumerable.Range(0, K).Select(i => Num(1.5 + 2 * i)))}]");
        json.Append('}');
        return MixtureOfExperts.FromJson(json.ToString());
    }

    /// Rows of inputs: standard normal, with every 50th row scaled by 30 so the gate saturates and the
    /// activations' far tails are reached.
    public double[,] Inputs(int rows, int seed)
    {
        var rng = new Random(seed);
        var x = new double[rows, D];
        for (var r = 0; r < rows; r++)
        {
            var scale = r % 50 == 49 ? 30.0 : 1.0;
            for (var j = 0; j < D; j++)
                x[r, j] = scale * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        }

        return x;
    }
}

/// <summary>What ONNX Runtime gives for an exported model, and what the façade gives for the same rows.</summary>
public sealed record Scores(double[] Mean, double[,] ExpertMeans, double[,] Gate)
{
    /// The façade's own prediction, row by row (PredictRow: the same bits as Predict and GateProbabilities).
    public static Scores OfFacade(MixtureOfExperts model, double[,] x)
    {
        int n = x.GetLength(0), k = model.Experts;
        var mean = new double[n];
        var means = new double[n, k];
        var gate = new double[n, k];
        var g = new double[k];
        var m = new double[k];
        for (var r = 0; r < n; r++)
        {
            mean[r] = model.PredictRow(x, r, g, m);
            for (var i = 0; i < k; i++)
            {
                means[r, i] = m[i];
                gate[r, i] = g[i];
            }
        }

        return new(mean, means, gate);
    }

    /// Scores with ONNX Runtime (the CPU execution provider, one thread so runs are repeatable).
    public static Scores OfOnnx(byte[] onnx, double[,] x, bool float32)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        using var session = new InferenceSession(onnx, options);
        int n = x.GetLength(0), d = x.GetLength(1);
        var flat = new double[n * d];
        Buffer.BlockCopy(x, 0, flat, 0, flat.Length * sizeof(double));
        var input = float32
            ? NamedOnnxValue.CreateFromTensor(OnnxExport.InputName,
                new DenseTensor<float>(flat.Select(v => (float)v).ToArray(), [n, d]))
            : NamedOnnxValue.CreateFromTensor(OnnxExport.InputName, new DenseTensor<double>(flat, [n, d]));
        using var results = session.Run([input]);
        double[] Values(string name) =>
            float32
                ? results.Single(v => v.Name == name).AsTensor<float>().Select(v => (double)v).ToArray()
                : results.Single(v => v.Name == name).AsTensor<double>().ToArray();
        double[,] Matrix(string name)
        {
            var v = Values(name);
            var k = v.Length / n;
            var m = new double[n, k];
            Buffer.BlockCopy(v, 0, m, 0, v.Length * sizeof(double));
            return m;
        }

        return new(Values(OnnxExport.MeanName), Matrix(OnnxExport.ExpertMeansName), Matrix(OnnxExport.GateName));
    }
}
