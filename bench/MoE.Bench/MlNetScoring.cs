using BenchmarkDotNet.Attributes;
using Microsoft.ML;
using Microsoft.ML.Data;
using MoE.ML;
using Api = MoE.Api;

namespace MoE.Bench;

/// <summary>
/// Scoring 100,000 rows (d = 10, k = 3) through ML.NET against the façade. Baseline: the façade's row predictor in a
/// plain loop on one thread (<see cref="Api.MixtureOfExperts.PredictRow"/>, no allocation) — what the ML.NET mapping
/// calls per row. The mixture's transformer (a chain of ML.NET transforms: copy, key, value map, the mapping) and the
/// same chain loaded from a file are read through a cursor, one thread, as <c>Transform</c> + enumeration would. ML.NET's
/// own linear regressor (Sdca) on the same view shows ML.NET's cost per row for the simplest model.
/// </summary>
[MemoryDiagnoser]
public class MlNetScoring
{
    private const int D = 10;
    private Api.MixtureOfExperts model = null!;
    private double[,] x = null!;
    private IDataView view = null!;
    private ITransformer mixture = null!;
    private ITransformer loaded = null!;
    private ITransformer sdca = null!;

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
        var rows = new Row[N];
        for (int i = 0; i < N; i++)
        {
            rows[i] = new Row { Features = new float[D], Label = (float)data.Y[i] };
            for (int j = 0; j < D; j++)
            {
                rows[i].Features[j] = (float)data.X[i, j];
                x[i, j] = (float)data.X[i, j];
            }
        }

        var ml = new MLContext(seed: 1);
        view = ml.Data.LoadFromEnumerable(rows);
        var trainer = ml.Regression.Trainers.MixtureOfExperts(experts: 3);
        var fitted = trainer.Fit(view);
        model = fitted.Model;
        mixture = fitted;
        string path = Path.Combine(Path.GetTempPath(), $"moe-bench-{Environment.ProcessId}.zip");
        ml.Model.Save(mixture, view.Schema, path);
        ml.ComponentCatalog.RegisterAssembly(typeof(MixtureOfExpertsTrainer).Assembly);
        loaded = ml.Model.Load(path, out _);
        File.Delete(path);
        sdca = ml.Regression.Trainers.Sdca().Fit(view);
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

    /// <summary>The fitted transformer, Score read through a cursor.</summary>
    [Benchmark]
    public double MixtureTransformer() => SumScores(mixture);

    /// <summary>The same transformer after Model.Save/Load.</summary>
    [Benchmark]
    public double MixtureLoaded() => SumScores(loaded);

    /// <summary>ML.NET's Sdca regressor on the same rows.</summary>
    [Benchmark]
    public double SdcaTransformer() => SumScores(sdca);

    private double SumScores(ITransformer transformer)
    {
        var scored = transformer.Transform(view);
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
}
