using Microsoft.ML;
using Microsoft.ML.Data;
using MoE.Api;

namespace MoE.ML.Tests;

public sealed class SchemaTests
{
    private static readonly MLContext Ml = new(seed: 1);

    public sealed class DoubleLabel
    {
        [VectorType(2)]
        public float[] Features { get; set; } = [];

        public double Label { get; set; }
    }

    public sealed class ScalarFeatures
    {
        public float Features { get; set; }

        public float Label { get; set; }
    }

    public sealed class Wide
    {
        [VectorType(2)]
        public float[] Features { get; set; } = [];

        public float Label { get; set; }
    }

    /// <summary>ML.NET builds a schema shape from a schema with an internal method (SchemaShape.Create); pipelines call
    /// it before GetOutputSchema, so the test does too.</summary>
    private static SchemaShape ShapeOf(DataViewSchema schema) =>
        (SchemaShape)typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic, [typeof(DataViewSchema)])!
            .Invoke(null, [schema])!;

    [Fact]
    public void A_double_label_is_a_schema_mismatch_in_MLNET_words()
    {
        var data = Ml.Data.LoadFromEnumerable(new[] { new DoubleLabel { Features = [1, 2], Label = 1 } });
        var trainer = Ml.Regression.Trainers.MixtureOfExperts();
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => trainer.Fit(data));
        Assert.StartsWith("Schema mismatch for label column 'Label': expected Single, got Double", ex.Message);
        var shape = Assert.Throws<ArgumentOutOfRangeException>(() => trainer.GetOutputSchema(ShapeOf(data.Schema)));
        Assert.StartsWith("Schema mismatch for label column 'Label': expected Single, got Double", shape.Message);
    }

    [Fact]
    public void Scalar_features_are_a_schema_mismatch()
    {
        var data = Ml.Data.LoadFromEnumerable(new[] { new ScalarFeatures { Features = 1, Label = 1 } });
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Regression.Trainers.MixtureOfExperts().Fit(data));
        Assert.StartsWith("Schema mismatch for feature column 'Features': expected known-size vector of Single, got Single", ex.Message);
    }

    [Fact]
    public void A_missing_column_is_named()
    {
        var data = Ml.Data.LoadFromEnumerable(new[] { new Wide { Features = [1, 2], Label = 1 } });
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            Ml.Regression.Trainers.MixtureOfExperts(featureColumnName: "X").Fit(data));
        Assert.StartsWith("Could not find feature column 'X'", ex.Message);
    }

    [Fact]
    public void The_fitted_transformer_refuses_features_of_another_size_before_reading_a_row()
    {
        var model = Ml.Transforms.Concatenate("Features", "X1", "X2", "X3")
            .Append(Ml.Regression.Trainers.MixtureOfExperts())
            .Fit(Synthetic.View(Ml, 2_000, seed: 1));
        var wide = Ml.Data.LoadFromEnumerable(new[] { new Wide { Features = [1, 2], Label = 1 } });
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => model.LastTransformer.Transform(wide));
        Assert.StartsWith("Schema mismatch for feature column 'Features': expected vector of Single of size 3, got Vector<Single, 2>", ex.Message);
    }

    [Fact]
    public void Output_schema_adds_the_score_and_the_requested_columns()
    {
        var data = Synthetic.View(Ml, 10, seed: 1);
        var shape = ShapeOf(Ml.Transforms.Concatenate("Features", "X1", "X2", "X3").Fit(data).Transform(data).Schema);
        var trainer = Ml.Regression.Trainers.MixtureOfExperts(new MixtureOfExpertsTrainer.Options { GateColumnName = "Gate" });
        var names = trainer.GetOutputSchema(shape).Select(c => c.Name).ToArray();
        Assert.Contains("Score", names);
        Assert.Contains("Gate", names);
        Assert.DoesNotContain("Experts", names);
        Assert.DoesNotContain(names, n => n.StartsWith("MoE.", StringComparison.Ordinal));
    }

    [Fact]
    public void Rows_with_a_missing_value_are_skipped_and_counted()
    {
        var rows = Synthetic.Rows(Synthetic.Sample(3_000, seed: 2));
        rows[5].Label = float.NaN;
        rows[9].X2 = float.NaN;
        var model = Ml.Transforms.Concatenate("Features", "X1", "X2", "X3")
            .Append(Ml.Regression.Trainers.MixtureOfExperts())
            .Fit(Ml.Data.LoadFromEnumerable(rows));
        Assert.Equal(2, model.LastTransformer.RowsSkipped);
        var scored = Ml.Data.CreateEnumerable<TrainerTests.Scored>(model.Transform(Ml.Data.LoadFromEnumerable(rows)), false).ToArray();
        Assert.True(float.IsNaN(scored[9].Score));
        Assert.True(float.IsFinite(scored[5].Score));
    }

    [Fact]
    public void The_trainer_keeps_the_options_it_was_given()
    {
        var options = new MixtureOfExpertsTrainer.Options { Fit = new FitOptions { Experts = 2 } };
        var trainer = new MixtureOfExpertsTrainer(options);
        options.Fit.Experts = 3;
        options.ScoreColumnName = "Other";
        var model = Ml.Transforms.Concatenate("Features", "X1", "X2", "X3").Append(trainer).Fit(Synthetic.View(Ml, 2_000, seed: 3));
        Assert.Equal(2, model.LastTransformer.Model.Experts);
        Assert.Equal("Score", model.LastTransformer.ScoreColumnName);
    }

    [Fact]
    public void Bad_options_are_refused_when_the_trainer_is_made()
    {
        Assert.Contains("must have different names", Assert.Throws<ArgumentException>(() =>
            new MixtureOfExpertsTrainer(new MixtureOfExpertsTrainer.Options { GateColumnName = "Score" })).Message);
        Assert.Contains("reserved", Assert.Throws<ArgumentException>(() =>
            new MixtureOfExpertsTrainer(new MixtureOfExpertsTrainer.Options { ScoreColumnName = "MoE.Score" })).Message);
        Assert.Throws<ArgumentException>(() => new MixtureOfExpertsTrainer(new MixtureOfExpertsTrainer.Options { LabelColumnName = " " }));
        var custom = Assert.Throws<ArgumentException>(() => new MixtureOfExpertsTrainer(new MixtureOfExpertsTrainer.Options
        {
            Fit = new FitOptions { Experts = 2, Activation = Activation.Custom("cube", z => z * z * z, z => 3 * z * z) },
        }));
        Assert.Contains("custom activation 'cube'", custom.Message);
        var data = Synthetic.View(Ml, 100, seed: 1);
        var bad = Ml.Transforms.Concatenate("Features", "X1", "X2", "X3")
            .Append(Ml.Regression.Trainers.MixtureOfExperts(new MixtureOfExpertsTrainer.Options { Fit = new FitOptions { Experts = 1 } }));
        var ex = Assert.ThrowsAny<ArgumentException>(() => bad.Fit(data));
        Assert.Contains("Experts", ex.Message);
    }
}
