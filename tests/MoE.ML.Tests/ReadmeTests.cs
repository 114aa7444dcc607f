using Microsoft.ML;
using MoE.Api;

namespace MoE.ML.Tests;

/// <summary>The README's ML.NET pipeline, run as written: the block between the markers below must also appear, line
/// for line, in README.md (so the two cannot drift apart).</summary>
public sealed class ReadmeTests
{
    [Fact]
    public void The_readme_pipeline_runs_and_its_loaded_model_predicts_the_same()
    {
        using var dir = new TempDir();
        string csv = dir.File("data.csv");
        var rows = Synthetic.Rows(Synthetic.Sample(8_000, seed: 21));
        File.WriteAllLines(csv, rows.Select(r => FormattableString.Invariant($"{r.X1:R},{r.X2:R},{r.X3:R},{r.Label:R}")).Prepend("X1,X2,X3,Label"));
        var output = new StringWriter();
        var stdout = Console.Out;
        Console.SetOut(output);
        string cwd = Directory.GetCurrentDirectory();
        Directory.SetCurrentDirectory(dir.Info.FullName);
        try
        {
            // ---- README: ML.NET ----
            var mlContext = new MLContext(seed: 1);
            IDataView data = mlContext.Data.LoadFromTextFile<Row>("data.csv", separatorChar: ',', hasHeader: true);
            var pipeline = mlContext.Transforms.Concatenate("Features", "X1", "X2", "X3")
                .Append(mlContext.Transforms.NormalizeMeanVariance("Features"))
                .Append(mlContext.Regression.Trainers.MixtureOfExperts(labelColumnName: "Label", featureColumnName: "Features", experts: 2));
            var model = pipeline.Fit(data);
            Console.WriteLine($"RMSE {mlContext.Regression.Evaluate(model.Transform(data)).RootMeanSquaredError:F3}, σ_i {string.Join(", ", model.LastTransformer.Model.Sigmas)}");
            mlContext.Model.Save(model, data.Schema, "model.zip");
            mlContext.ComponentCatalog.RegisterAssembly(typeof(MixtureOfExpertsTrainer).Assembly); // once per context, before Load
            ITransformer loaded = mlContext.Model.Load("model.zip", out DataViewSchema schema);
            // ---- end ----

            Assert.StartsWith("RMSE ", output.ToString());
            var before = mlContext.Data.CreateEnumerable<TrainerTests.Scored>(model.Transform(data), false).Select(s => s.Score);
            var after = mlContext.Data.CreateEnumerable<TrainerTests.Scored>(loaded.Transform(data), false).Select(s => s.Score);
            Assert.Equal(before, after);
            var sigmas = model.LastTransformer.Model.Sigmas.Order().ToArray();
            // The truth's σ = 0.1, 0.2; at n = 8,000 each is estimated to ~2 %.
            Assert.InRange(sigmas[0], 0.09, 0.11);
            Assert.InRange(sigmas[1], 0.18, 0.22);
        }
        finally
        {
            Console.SetOut(stdout);
            Directory.SetCurrentDirectory(cwd);
        }
    }

    [Fact]
    public void The_readme_shows_the_pipeline_as_the_test_runs_it()
    {
        var source = File.ReadAllLines(SourcePath());
        int start = Array.FindIndex(source, l => l.Trim() == "// ---- README: ML.NET ----");
        int end = Array.FindIndex(source, l => l.Trim() == "// ---- end ----");
        var snippet = source[(start + 1)..end].Select(l => l.Trim()).ToArray();
        Assert.InRange(snippet.Length, 1, 10);
        var readme = File.ReadAllLines(Path.Combine(Root(), "README.md")).Select(l => l.Trim()).ToArray();
        int at = Array.IndexOf(readme, snippet[0]);
        Assert.True(at >= 0, $"README.md lacks the line: {snippet[0]}");
        Assert.Equal(snippet, readme[at..(at + snippet.Length)]);
    }

    // The repository's files, found from the test's bin folder (not [CallerFilePath]: CI builds map source paths).
    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MoE.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("the repository root (MoE.sln) is not above the test's folder");
    }

    private static string SourcePath() => Path.Combine(Root(), "tests", "MoE.ML.Tests", "ReadmeTests.cs");
}
