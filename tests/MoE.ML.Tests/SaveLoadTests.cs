using Microsoft.ML;
using Microsoft.ML.Data;
using MoE.Api;

namespace MoE.ML.Tests;

public sealed class SaveLoadTests
{
    private static (MLContext Ml, ITransformer Model, IDataView Train) Fitted()
    {
        var ml = new MLContext(seed: 1);
        var train = Synthetic.View(ml, 4_000, seed: 11);
        var trainer = ml.Regression.Trainers.MixtureOfExperts(new MixtureOfExpertsTrainer.Options
        {
            GateColumnName = "Gate",
            ExpertsColumnName = "Experts",
            Fit = new FitOptions { Experts = 2 },
        });
        var model = ml.Transforms.Concatenate("Features", "X1", "X2", "X3")
            .Append(ml.Transforms.NormalizeMeanVariance("Features"))
            .Append(trainer)
            .Fit(train);
        return (ml, model, train);
    }

    /// <summary>Saves the pipeline to a file and loads it in a fresh context, as another process would: registering the
    /// assembly whose mappings the file names first.</summary>
    private static (MLContext Ml, ITransformer Loaded, DataViewSchema Schema) SavedAndLoaded(MLContext ml, ITransformer model,
        DataViewSchema schema)
    {
        using var dir = new TempDir();
        string path = dir.File("moe.zip");
        ml.Model.Save(model, schema, path);
        var fresh = new MLContext(seed: 2);
        fresh.ComponentCatalog.RegisterAssembly(typeof(MixtureOfExpertsTrainer).Assembly);
        var loaded = fresh.Model.Load(path, out var loadedSchema);
        return (fresh, loaded, loadedSchema);
    }

    [Fact]
    public void Save_then_load_gives_the_same_predictions_bit_for_bit()
    {
        var (ml, model, train) = Fitted();
        var (ml2, loaded, schema) = SavedAndLoaded(ml, model, train.Schema);
        Assert.Equal(train.Schema.Select(c => c.Name), schema.Select(c => c.Name));

        var test = ml.Data.LoadFromEnumerable(Synthetic.Rows(Synthetic.Sample(500, seed: 12)));
        var before = ml.Data.CreateEnumerable<TrainerTests.ScoredFull>(model.Transform(test), reuseRowObject: false).ToArray();
        var after = ml2.Data.CreateEnumerable<TrainerTests.ScoredFull>(loaded.Transform(test), reuseRowObject: false).ToArray();
        Assert.Equal(before.Length, after.Length);
        for (int i = 0; i < before.Length; i++)
        {
            Assert.Equal(BitConverter.SingleToInt32Bits(before[i].Score), BitConverter.SingleToInt32Bits(after[i].Score));
            Assert.Equal(before[i].Gate, after[i].Gate);
            Assert.Equal(before[i].Experts, after[i].Experts);
        }

        // A prediction engine over the loaded model (one row at a time) gives the same bits too.
        var engine = ml2.Model.CreatePredictionEngine<Row, TrainerTests.Scored>(loaded);
        var row = Synthetic.Rows(Synthetic.Sample(500, seed: 12))[7];
        Assert.Equal(before[7].Score, engine.Predict(row).Score);
    }

    [Fact]
    public void The_model_is_read_back_from_a_loaded_pipeline()
    {
        var (ml, model, train) = Fitted();
        var (ml2, loaded, _) = SavedAndLoaded(ml, model, train.Schema);

        var fitted = Assert.Single(MixtureOfExpertsTransformer.ModelsIn(model));
        var back = Assert.Single(MixtureOfExpertsTransformer.ModelsIn(loaded));
        Assert.Equal(fitted.ToJson(), back.ToJson());
        Assert.Empty(MixtureOfExpertsTransformer.ModelsIn(ml.Transforms.Concatenate("Features", "X1").Fit(train)));
    }

    [Fact]
    public void A_loaded_model_given_features_of_another_size_says_which_sizes()
    {
        var (ml, model, train) = Fitted();
        var (ml2, loaded, _) = SavedAndLoaded(ml, model, train.Schema);
        var chain = (TransformerChain<ITransformer>)loaded;
        // The mixture's own part of the chain (after Concatenate and the normaliser) applied to two-wide features.
        var two = ml2.Data.LoadFromEnumerable(new[] { new Two { Features = [1, 2] } });
        var ex = Assert.ThrowsAny<Exception>(() => ml2.Data.CreateEnumerable<TrainerTests.Scored>(
            chain.Last().Transform(two), reuseRowObject: false).ToArray());
        Assert.Contains("fitted on vectors of size 3, got a vector of size 2", Flatten(ex));
    }

    public sealed class Two
    {
        [VectorType(2)]
        public float[] Features { get; set; } = [];
    }

    private static string Flatten(Exception e) => e.InnerException is null ? e.Message : e.Message + " | " + Flatten(e.InnerException);
}
