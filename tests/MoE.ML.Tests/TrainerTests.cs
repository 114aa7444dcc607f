using Microsoft.ML;
using Microsoft.ML.Data;
using MoE.Api;

namespace MoE.ML.Tests;

public sealed class TrainerTests
{
    [Fact]
    public void A_pipeline_with_concatenate_recovers_the_truth()
    {
        var ml = new MLContext(seed: 1);
        var train = Synthetic.View(ml, 20_000, seed: 1);
        var pipeline = ml.Transforms.Concatenate("Features", "X1", "X2", "X3")
            .Append(ml.Regression.Trainers.MixtureOfExperts(labelColumnName: "Label", featureColumnName: "Features", experts: 2));
        var model = pipeline.Fit(train);

        var fitted = model.LastTransformer.Model;
        var errors = Metrics.Compare(fitted, Synthetic.Truth);
        // The toolkit's success rule (E_reg and aligned E_gating ≤ 0.01); at n = 20,000 and σ ≤ 0.2 the errors are
        // ~1e-5, so the rule has a wide margin and still fails for a wrong model (E ~ 0.1–1).
        Assert.True(Metrics.IsRecovered(errors), $"E_reg = {errors.RegressorError:E2}, E_gating = {errors.GatingError:E2}");
        var b = fitted.RegressorIntercepts;
        var perm = errors.Permutation;
        for (int i = 0; i < 2; i++)
        {
            // Intercepts in the data's units: their standard error at this n is ~0.01 (the covariates' means are large).
            Assert.InRange(b[i] - Synthetic.Truth.RegressorIntercepts[perm[i]], -0.1, 0.1);
        }

        var rows = Synthetic.Rows(Synthetic.Sample(5_000, seed: 2));
        var metrics = ml.Regression.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(rows)));
        // The experts are far apart, so even the truth's conditional mean leaves R² ≈ 0.5; the fit's held-out RMSE
        // is the truth's up to the parameters' sampling error (~0.1 %), and 2 % is far below a wrong model's (≥ 20 %).
        double truthRmse = Synthetic.Rmse(Synthetic.Truth.Predict(Synthetic.X(rows)), rows);
        Assert.InRange(metrics.RootMeanSquaredError, 0.98 * truthRmse, 1.02 * truthRmse);
    }

    [Fact]
    public void After_NormalizeMeanVariance_the_predictions_are_the_truths_conditional_mean()
    {
        var ml = new MLContext(seed: 1);
        var pipeline = ml.Transforms.Concatenate("Features", "X1", "X2", "X3")
            .Append(ml.Transforms.NormalizeMeanVariance("Features"))
            .Append(ml.Regression.Trainers.MixtureOfExperts(experts: 2));
        var raw = ml.Transforms.Concatenate("Features", "X1", "X2", "X3")
            .Append(ml.Regression.Trainers.MixtureOfExperts(experts: 2));
        var train = Synthetic.View(ml, 20_000, seed: 3);
        var rows = Synthetic.Rows(Synthetic.Sample(2_000, seed: 4));
        var test = ml.Data.LoadFromEnumerable(rows);
        var normalised = Scores(ml, pipeline.Fit(train).Transform(test));
        var plain = Scores(ml, raw.Fit(train).Transform(test));
        var truth = Synthetic.Truth.Predict(Synthetic.X(rows));

        // The likelihood is equivariant under an affine map of x, so both pipelines reach the same maximum: their
        // predictions agree to the optimiser's tolerance (measured 6e-8 RMS; 1e-3 leaves room for a different
        // path to the same optimum and is 300x below the sampling error below).
        Assert.True(Rms(normalised, plain) < 1e-3, $"RMS gap between the pipelines {Rms(normalised, plain)}");
        // Against the truth's mean: the sampling error (measured 0.26, the gate is sharp and the experts ~10 apart
        // near its boundary) is 3 % of the mean's spread (sd 8); a model that ignored the gate would be off by ~5.
        Assert.True(Rms(normalised, truth) < 0.8, $"RMS gap to the truth's mean {Rms(normalised, truth)}");
    }

    [Fact]
    public void Cross_validation_runs_the_trainer_on_every_fold()
    {
        var ml = new MLContext(seed: 1);
        var pipeline = ml.Transforms.Concatenate("Features", "X1", "X2", "X3")
            .Append(ml.Regression.Trainers.MixtureOfExperts(experts: 2));
        var data = Synthetic.Sample(6_000, seed: 5);
        var folds = ml.Regression.CrossValidate(ml.Data.LoadFromEnumerable(Synthetic.Rows(data)), pipeline, numberOfFolds: 3);
        Assert.Equal(3, folds.Count);
        // Each fold's held-out RMSE within 5 % of the truth's on all rows (fold-to-fold noise is ~2 % at 2,000 rows).
        double truthRmse = Synthetic.Rmse(Synthetic.Truth.Predict(data.X), Synthetic.Rows(data));
        Assert.All(folds, f => Assert.InRange(f.Metrics.RootMeanSquaredError, 0.95 * truthRmse, 1.05 * truthRmse));
    }

    [Fact]
    public void Gate_and_expert_columns_are_written_on_request()
    {
        var ml = new MLContext(seed: 1);
        var trainer = ml.Regression.Trainers.MixtureOfExperts(new MixtureOfExpertsTrainer.Options
        {
            GateColumnName = "Gate",
            ExpertsColumnName = "Experts",
            Fit = new FitOptions { Experts = 2, Seed = 3 },
        });
        var model = ml.Transforms.Concatenate("Features", "X1", "X2", "X3").Append(trainer).Fit(Synthetic.View(ml, 5_000, seed: 6));
        var rows = Synthetic.Rows(Synthetic.Sample(100, seed: 7));
        var out_ = ml.Data.CreateEnumerable<ScoredFull>(model.Transform(ml.Data.LoadFromEnumerable(rows)), reuseRowObject: false).ToArray();
        var fitted = model.LastTransformer.Model;
        var x = Synthetic.X(rows);
        var mean = fitted.Predict(x);
        var gate = fitted.GateProbabilities(x);
        var experts = fitted.PredictDistribution(x).ExpertMeans;
        for (int i = 0; i < rows.Length; i++)
        {
            // The score and the gate are the façade's batch values rounded to float, exactly (the same arithmetic);
            // the expert means agree to a float's rounding (PredictDistribution adds the intercept first: ≤ 1 ulp of
            // a double apart before rounding, which can flip the float's last bit).
            Assert.Equal((float)mean[i], out_[i].Score);
            Assert.Equal([(float)gate[i, 0], (float)gate[i, 1]], out_[i].Gate);
            for (int e = 0; e < 2; e++)
            {
                Assert.Equal(experts[i, e], out_[i].Experts[e], Math.Abs(experts[i, e]) * 1.2e-7);
            }
        }
    }

    [Fact]
    public void Progress_is_reported_and_a_cancelled_token_stops_the_fit()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Transforms.Concatenate("Features", "X1", "X2", "X3").Fit(Synthetic.View(ml, 1, 1)).Transform(Synthetic.View(ml, 3_000, seed: 8));
        var stages = new List<FitStage>();
        var progress = new Inline(p => stages.Add(p.Stage));
        ml.Regression.Trainers.MixtureOfExperts(new MixtureOfExpertsTrainer.Options { Progress = progress }).Fit(data);
        Assert.Contains(FitStage.Em, stages);

        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var trainer = ml.Regression.Trainers.MixtureOfExperts(new MixtureOfExpertsTrainer.Options { CancellationToken = cancelled.Token });
        Assert.ThrowsAny<OperationCanceledException>(() => trainer.Fit(data));
    }

    /// <summary>Reports on the calling thread (System.Progress would post to the thread pool).</summary>
    private sealed class Inline(Action<FitProgress> report) : IProgress<FitProgress>
    {
        private readonly Lock gate = new();

        public void Report(FitProgress value)
        {
            lock (gate)
            {
                report(value);
            }
        }
    }

    private static double[] Scores(MLContext ml, IDataView scored) =>
        ml.Data.CreateEnumerable<Scored>(scored, reuseRowObject: false).Select(s => (double)s.Score).ToArray();

    private static double Rms(double[] a, double[] b) => Math.Sqrt(a.Zip(b, (u, v) => (u - v) * (u - v)).Average());

    public sealed class Scored
    {
        public float Score { get; set; }
    }

    public sealed class ScoredFull
    {
        public float Score { get; set; }

        [VectorType]
        public float[] Gate { get; set; } = [];

        [VectorType]
        public float[] Experts { get; set; } = [];
    }
}
