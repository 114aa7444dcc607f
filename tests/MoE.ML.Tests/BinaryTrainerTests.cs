using Microsoft.ML;
using Microsoft.ML.Data;
using MoE.Api;

namespace MoE.ML.Tests;

/// <summary>The binary-classification trainer (a mixture of logistic experts) in ML.NET's own evaluation, cross-validation
/// and save/load, on Pima (tests/data/README.md: 532 rows, seven covariates, diabetes yes/no).</summary>
public sealed class BinaryTrainerTests
{
    public sealed class PimaRow
    {
        [LoadColumn(0, 6)]
        [VectorType(7)]
        public float[] Features = [];

        [LoadColumn(7)]
        public float Diabetes;
    }

    private static IDataView Pima(MLContext ml)
    {
        var raw = ml.Data.LoadFromTextFile<PimaRow>(Path.Combine(AppContext.BaseDirectory, "data", "pima.csv"),
            separatorChar: ',', hasHeader: true);
        return ml.Transforms.CustomMapping<PimaRow, LabelRow>((row, label) => label.Label = row.Diabetes > 0.5f, null)
            .Fit(raw).Transform(raw);
    }

    public sealed class LabelRow
    {
        public bool Label;
    }

    private static IEstimator<ITransformer> Pipeline(MLContext ml, int experts) =>
        ml.Transforms.NormalizeMeanVariance("Features")
            .Append(ml.BinaryClassification.Trainers.MixtureOfExperts(new MixtureOfExpertsBinaryTrainer.Options
            {
                GateColumnName = "Gate",
                ExpertsColumnName = "Experts",
                Fit = new FitOptions { Experts = experts, Seed = 1 },
            }));

    /// <summary>The outputs are what ML.NET's binary evaluators read: a probability in [0, 1], its logit as the
    /// score, the label p &gt; ½ — and the probability is the façade's Bernoulli mixture mean (to float rounding).
    /// The in-sample AUC of k = 2 logistic experts on Pima beats chance by far (one logistic regression reaches
    /// about 0.85; the bound 0.8 leaves room and still fails a wrong sign or a constant score).</summary>
    [Fact]
    public void ScoresAreProbabilitiesAndEvaluateReadsThem()
    {
        var ml = new MLContext(seed: 1);
        var data = Pima(ml);
        var model = Pipeline(ml, 2).Fit(data);
        var scored = model.Transform(data);
        var metrics = ml.BinaryClassification.Evaluate(scored);
        Assert.InRange(metrics.AreaUnderRocCurve, 0.8, 1.0);
        Assert.InRange(metrics.LogLoss, 0.0, 0.6);

        var mixture = MixtureOfExpertsTransformer.ModelsIn(model).Single();
        Assert.Equal(ExpertFamily.Bernoulli, mixture.Family);
        var normalized = ((IEnumerable<ITransformer>)model).First().Transform(data);
        var features = normalized.GetColumn<float[]>("Features").ToArray();
        var probability = scored.GetColumn<float>("Probability").ToArray();
        var score = scored.GetColumn<float>("Score").ToArray();
        var predicted = scored.GetColumn<bool>("PredictedLabel").ToArray();
        var x = new double[features.Length, 7];
        for (var r = 0; r < features.Length; r++)
            for (var j = 0; j < 7; j++)
                x[r, j] = features[r][j];
        var facade = mixture.Predict(x);
        for (var r = 0; r < features.Length; r++)
        {
            Assert.InRange(probability[r], 0f, 1f);
            Assert.Equal((float)facade[r], probability[r]);
            Assert.Equal(probability[r] > 0.5f, predicted[r]);
            Assert.Equal(MathF.Log(probability[r]) - MathF.Log(1 - probability[r]), score[r]);
        }
    }

    /// <summary>ML.NET's cross-validation runs the trainer per fold and evaluates each with the binary metrics.</summary>
    [Fact]
    public void CrossValidatesWithMlNet()
    {
        var ml = new MLContext(seed: 1);
        var folds = ml.BinaryClassification.CrossValidateNonCalibrated(Pima(ml), Pipeline(ml, 2), numberOfFolds: 3);
        Assert.Equal(3, folds.Count);
        foreach (var fold in folds)
            Assert.InRange(fold.Metrics.AreaUnderRocCurve, 0.7, 1.0);
    }

    /// <summary>Saved and loaded in a fresh context, the pipeline gives the same outputs, bit for bit.</summary>
    [Fact]
    public void SavesAndLoads()
    {
        var ml = new MLContext(seed: 1);
        var data = Pima(ml);
        var model = Pipeline(ml, 2).Fit(data);
        using var dir = new TempDir();
        var path = dir.File("pima.zip");
        ml.Model.Save(model, data.Schema, path);
        var fresh = new MLContext(seed: 2);
        fresh.ComponentCatalog.RegisterAssembly(typeof(MixtureOfExpertsTrainer).Assembly);
        var loaded = fresh.Model.Load(path, out _);
        var before = model.Transform(data);
        var after = loaded.Transform(data);
        foreach (var column in new[] { "Score", "Probability" })
            Assert.Equal(before.GetColumn<float>(column).ToArray(), after.GetColumn<float>(column).ToArray());
        Assert.Equal(before.GetColumn<bool>("PredictedLabel").ToArray(), after.GetColumn<bool>("PredictedLabel").ToArray());
        Assert.Equal(before.GetColumn<float[]>("Gate").SelectMany(v => v).ToArray(),
            after.GetColumn<float[]>("Gate").SelectMany(v => v).ToArray());
        Assert.Single(MixtureOfExpertsTransformer.ModelsIn(loaded));
    }

    /// <summary>A float label is refused with ML.NET's schema message, and Poisson experts with the reason.</summary>
    [Fact]
    public void RefusesAFloatLabelAndPoissonExperts()
    {
        var ml = new MLContext(seed: 1);
        var raw = ml.Data.LoadFromTextFile<PimaRow>(Path.Combine(AppContext.BaseDirectory, "data", "pima.csv"),
            separatorChar: ',', hasHeader: true);
        var trainer = ml.BinaryClassification.Trainers.MixtureOfExperts(labelColumnName: "Diabetes");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => trainer.Fit(raw));
        Assert.Contains("Schema mismatch for label column 'Diabetes': expected Boolean, got Single", e.Message);
        // A pipeline checks the schema before any row is read (ML.NET builds the shape with an internal method).
        var shape = (SchemaShape)typeof(SchemaShape).GetMethod("Create",
            System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic,
            [typeof(DataViewSchema)])!.Invoke(null, [raw.Schema])!;
        Assert.Throws<ArgumentOutOfRangeException>(() => trainer.GetOutputSchema(shape));

        var poisson = Assert.Throws<ArgumentException>(() => ml.BinaryClassification.Trainers.MixtureOfExperts(
            new MixtureOfExpertsBinaryTrainer.Options { Fit = new FitOptions { Experts = 2, Family = ExpertFamily.Poisson } }));
        Assert.Contains("not Poisson", poisson.Message);
    }

    /// <summary>The regression trainer with Poisson experts (its <c>Fit.Family</c>): the score is the expected count,
    /// the façade's prediction of the same model to float rounding.</summary>
    [Fact]
    public void TheRegressionTrainerFitsCountsWithThePoissonFamily()
    {
        var truth = GroundTruth.Create(GroundTruthPreset.RandomFreeGating, experts: 2, dimension: 3, Activation.Identity, 0.1, seed: 4)
            .WithFamily(ExpertFamily.Poisson);
        var data = truth.Sample(5_000, seed: 5);
        Assert.All(data.Y, y => Assert.True(y >= 0 && y == Math.Floor(y)));
        var ml = new MLContext(seed: 1);
        var frame = data.ToDataFrame();
        var model = ml.Transforms.Conversion.ConvertType(
                [new InputOutputColumnPair("Label", "y"), new("x1"), new("x2"), new("x3")], DataKind.Single)
            .Append(ml.Transforms.Concatenate("Features", "x1", "x2", "x3"))
            .Append(ml.Regression.Trainers.MixtureOfExperts(new MixtureOfExpertsTrainer.Options
            {
                Fit = new FitOptions { Experts = 2, Family = ExpertFamily.Poisson, Seed = 1 },
            }))
            .Fit(frame);
        var mixture = MixtureOfExpertsTransformer.ModelsIn(model).Single();
        Assert.Equal(ExpertFamily.Poisson, mixture.Family);
        var scores = model.Transform(frame).GetColumn<float>("Score").ToArray();
        var x = new double[data.Count, 3];
        for (var r = 0; r < data.Count; r++)
            for (var j = 0; j < 3; j++)
                x[r, j] = (float)data.X[r, j];
        var expected = mixture.Predict(x);
        for (var r = 0; r < data.Count; r++)
            Assert.Equal((float)expected[r], scores[r]);
        Assert.True(Metrics.Compare(mixture, truth).RegressorError < 0.05);
    }
}
