using BenchmarkDotNet.Attributes;
using Microsoft.ML;
using Microsoft.ML.Data;
using MoE.ML;
using Api = MoE.Api;

namespace MoE.Bench;

/// <summary>
/// What the scoring benchmarks share (<see cref="MlNetScoring"/>, <see cref="OnnxScoring"/>): 100,000 rows (d = 10,
/// k = 3) from a random identity ground truth, as doubles and as ML.NET's Single rows, the mixture fitted by the ML.NET
/// trainer, and the baseline every ratio is taken against — the façade's allocation-free row predictor in a plain
/// loop on one thread (<see cref="Api.MixtureOfExperts.PredictRow"/>, what the ML.NET mapping calls per row).
/// </summary>
public abstract class ScoringBase
{
    protected const int D = 10;
    protected Api.MixtureOfExperts model = null!;
    protected double[,] x = null!;
    protected IDataView view = null!;
    protected ITransformer mixture = null!;
    protected MLContext ml = null!;

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

    /// <summary>The rows (x holds the Single values ML.NET sees, widened) and the fitted mixture.</summary>
    protected void SetupData()
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

        ml = new MLContext(seed: 1);
        view = ml.Data.LoadFromEnumerable(rows);
        var fitted = ml.Regression.Trainers.MixtureOfExperts(experts: 3).Fit(view);
        model = fitted.Model;
        mixture = fitted;
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

    /// <summary>The fitted ML.NET transformer, Score read through a cursor.</summary>
    [Benchmark]
    public double MixtureTransformer() => SumScores(mixture);

    /// <summary>An ML.NET transformer's Score over every row, through a cursor, one thread.</summary>
    protected double SumScores(ITransformer transformer)
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
