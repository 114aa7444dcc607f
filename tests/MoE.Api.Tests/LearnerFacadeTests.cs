using MoE.Api;
using MoE.Cli;

namespace MoE.Api.Tests;

/// <summary>The learner through the façade and the command line.</summary>
public class LearnerFacadeTests
{
    private static readonly MixtureOfExperts Truth =
        GroundTruth.Create(GroundTruthPreset.Orthogonal, experts: 2, dimension: 10, Activation.Identity, sigma: 0.05);

    /// <summary>One home for the defaults: a default <see cref="FitOptions"/> is the core's FitConfig.defaults field for
    /// field (F# records compare structurally, so a default added or changed on one side only fails here), and
    /// <see cref="FitOptions.Paper"/> is FitConfig.paper.</summary>
    [Fact]
    public void Default_options_are_the_core_defaults_field_for_field()
    {
        foreach (var (k, g) in new[] { (2, Activation.Identity), (4, Activation.Relu), (3, Activation.LeakyRelu(0.2)) })
        {
            Assert.Equal(MoE.Core.FitConfigModule.Defaults(k, g.Inner), new FitOptions { Experts = k, Activation = g }.ToCore());
            Assert.Equal(MoE.Core.FitConfigModule.Paper(k, g.Inner), FitOptions.Paper(k, g).ToCore());
            Assert.Equal(MoE.Core.FitConfigModule.Paper(k, g.Inner),
                new FitOptions { Experts = k, Activation = g, Method = FitMethod.L4 }.WithPaperModel().ToCore());
        }

        Assert.Equal(0, new FitOptions().Experts);
        Assert.Null(new FitOptions().Sigma);
        Assert.Equal(StandardErrorKind.None, new FitOptions().StandardErrors);
        var em = new FitOptions { Experts = 2, Method = FitMethod.Em, Seed = 7, StandardErrors = StandardErrorKind.Observed }.WithPaperModel();
        Assert.Equal((FitMethod.Em, 7L, false, true, false, 1e-9, StandardErrorKind.Observed),
            (em.Method, em.Seed, em.Intercepts, em.CommonSigma, em.Standardise, em.EmTolerance, em.StandardErrors));
    }

    /// <summary>The façade's enumerations mirror the core's unions case for case: the same count, each value the case of
    /// the same name (so a case added in one place and not the other fails here), and the stable names the core
    /// gives.</summary>
    [Fact]
    public void Stage_and_warning_enums_mirror_the_core_unions_case_for_case()
    {
        Assert.Equal(MoE.Core.Stage.All.Length, Enum.GetValues<FitStage>().Length);
        foreach (var stage in Enum.GetValues<FitStage>())
        {
            var core = MoE.Core.Stage.All[(int)stage];
            Assert.Equal((int)stage, core.Tag);
            Assert.Equal(stage.ToString(), CaseName(core));
            Assert.Equal(core.Name, stage.Name());
        }

        Assert.Equal("l4-sgd", FitStage.L4Sgd.Name());
        Assert.Equal(MoE.Core.FindingCode.All.Length, Enum.GetValues<WarningCode>().Length);
        foreach (var code in Enum.GetValues<WarningCode>())
        {
            var core = MoE.Core.FindingCode.All[(int)code];
            Assert.Equal((int)code, core.Tag);
            Assert.Equal(code.ToString(), CaseName(core));
            Assert.Equal(core.Name, code.Name());
        }

        Assert.Equal("likelihood-degenerate", WarningCode.LikelihoodDegenerate.Name());

        // A fieldless union case is a singleton whose "Is<Case>" property is true.
        static string CaseName(object unionCase) => unionCase.GetType().GetProperties()
            .Single(p => p.Name.StartsWith("Is", StringComparison.Ordinal) && p.PropertyType == typeof(bool) && (bool)p.GetValue(unionCase)!)
            .Name[2..];
    }

    [Fact]
    public void FitRecoversThePaperSettingAndReportsProgress()
    {
        var data = Truth.Sample(n: 20_000, seed: 7);
        var reports = new List<FitProgress>();
        var progress = new SynchronousProgress<FitProgress>(reports.Add);
        var options = FitOptions.Paper(2);
        options.Sigma = 0.05;
        FitResult fit = MoeLearner.Fit(data, options, progress);
        RecoveryErrors e = Metrics.Compare(fit.Model, Truth);
        Assert.True(e.RegressorError <= 0.01 && e.GatingError <= 0.01, $"E_reg {e.RegressorError}, E_gating {e.GatingError}");
        Assert.Contains(reports, r => r.Stage == FitStage.Em);
        Assert.Equal(fit.Trace.Count, reports.Count);
        Assert.Contains(fit.Stages, t => t.Stage == FitStage.L4);
        Assert.Equal(ExitCondition.Converged, fit.Exit);
        Assert.Equal(FitStage.Em, fit.Stages[^1].Stage);
        Assert.Equal("l4", fit.Initializer);
        Assert.Empty(fit.Candidates);
    }

    [Fact]
    public void TheDefaultFitScreensCandidatesAndNamesTheWinner()
    {
        var data = Truth.Sample(n: 20_000, seed: 7);
        FitResult fit = MoeLearner.Fit(data, new FitOptions { Experts = 2 });
        RecoveryErrors e = Metrics.Compare(fit.Model, Truth);
        Assert.True(e.RegressorError <= 0.01 && e.GatingError <= 0.01, $"E_reg {e.RegressorError}, E_gating {e.GatingError}");
        // spectral, l4, l4-whitened, two subspace starts, one random start: best first, the winner is the first.
        Assert.Equal(6, fit.Candidates.Count);
        Assert.Equal(fit.Initializer, fit.Candidates[0].Initializer);
        Assert.True(fit.Candidates.Zip(fit.Candidates.Skip(1)).All(p => p.First.LogLikelihood >= p.Second.LogLikelihood));
        Assert.All(fit.Candidates, c => Assert.True((c.Model is null) == (c.Failure is not null), c.Initializer));
        // The general model: an intercept and a level per expert, all near the truth's (0 and 0.05).
        Assert.All(fit.Model.RegressorIntercepts, b => Assert.InRange(b, -0.01, 0.01));
        Assert.All(fit.Model.Sigmas, s => Assert.InRange(s, 0.045, 0.055));
    }

    [Fact]
    public void TheFacadeAndTheCoreGiveIdenticalResultsForTheSameSeed()
    {
        var data = Truth.Sample(n: 5_000, seed: 3);
        var a = MoeLearner.Fit(data, new FitOptions { Experts = 2, Seed = 4 });
        var b = MoeLearner.Fit(data, new FitOptions { Experts = 2, Seed = 4 });
        Assert.Equal(a.Model.ToJson(), b.Model.ToJson());
        // The core's own defaults, built without the façade's conversion: the same request is the same estimator.
        var config = MoE.Core.FitConfigModule.Defaults(2, MoE.Core.Activation.Identity).WithSeed(4);
        var core = MoE.Core.Learner.Fit(config, MoE.Core.DatasetModule.Create(data.X, data.Y), MoE.Core.RunContextModule.Silent);
        Assert.Equal(MoE.Core.ModelJson.Serialize(core.Model), a.Model.ToJson());
    }

    [Fact]
    public void TheSgdSolverIsTheSameEstimatorFromCSharpAndFromFSharp()
    {
        // The solver carries its own weights (ridge 4 for SGD); the façade only picks the case.
        var data = Truth.Sample(n: 4_000, seed: 5);
        var options = FitOptions.Paper(2);
        options.Sigma = 0.05;
        options.Solver = L4Solver.Sgd;
        options.Polish = false;
        options.Seed = 2;
        var fromCSharp = MoeLearner.Fit(data, options);
        var config = MoE.Core.FitConfigModule.Paper(2, MoE.Core.Activation.Identity)
            .WithL4Solver(MoE.Core.L4Solver.DefaultSgd).WithSigma(0.05).WithPolish(false).WithSeed(2);
        var fromFSharp = MoE.Core.Learner.Fit(config, MoE.Core.DatasetModule.Create(data.X, data.Y), MoE.Core.RunContextModule.Silent);
        Assert.Equal(MoE.Core.ModelJson.Serialize(fromFSharp.Model), fromCSharp.Model.ToJson());
        Assert.Equal(FitStage.L4, fromCSharp.Stages[0].Stage);
        Assert.Equal(ExitCondition.Completed, fromCSharp.Stages[0].Exit);
    }

    [Fact]
    public void UndefinedEnumValuesAreRejectedNotReplacedByDefaults()
    {
        var data = Truth.Sample(n: 2_000, seed: 1);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => MoeLearner.Fit(data, new FitOptions { Experts = 2, Method = (FitMethod)7 }));
        Assert.Equal("Method", e.ParamName);
        Assert.Contains("not a defined FitMethod", e.Message);
        Assert.Equal("Solver", Assert.Throws<ArgumentOutOfRangeException>(() =>
            MoeLearner.Fit(data, new FitOptions { Experts = 2, Solver = (L4Solver)(-1) })).ParamName);
        Assert.Equal("Transform", Assert.Throws<ArgumentOutOfRangeException>(() =>
            MoeLearner.Fit(data, new FitOptions { Experts = 2, Transform = (OutputTransformKind)2 })).ParamName);
    }

    [Fact]
    public void CancellationThrowsPromptly()
    {
        var data = Truth.Sample(n: 20_000, seed: 7);
        using var cts = new CancellationTokenSource();
        var count = 0;
        var progress = new SynchronousProgress<FitProgress>(_ =>
        {
            if (++count == 2)
            {
                cts.Cancel();
            }
        });
        Assert.ThrowsAny<OperationCanceledException>(() => MoeLearner.Fit(data, new FitOptions { Experts = 2 }, progress, cts.Token));
        Assert.True(count < 10, $"{count} reports");
    }

    [Fact]
    public void DivergenceAndBadOptionsHaveTypedErrors()
    {
        var data = Truth.Sample(n: 2_000, seed: 1);
        var huge = Dataset.FromArrays(data.X, data.Y.Select(v => v * 1e80).ToArray());
        // y⁴ overflows: the data check refuses it before any stage (a stage that diverges is FitDivergedException).
        var e = Assert.Throws<ArgumentException>(() =>
            MoeLearner.Fit(huge, new FitOptions { Experts = 2, Sigma = 0.1, Transform = OutputTransformKind.Polynomial, Method = FitMethod.L4, Standardise = false, Intercepts = false, CommonSigma = true }));
        Assert.Contains("y holds values too large to fit", e.Message);
        Assert.Equal("Experts", Assert.Throws<ArgumentOutOfRangeException>(() => MoeLearner.Fit(data, new FitOptions())).ParamName);
    }

    [Fact]
    public void TheCommandLineFitsAndEvaluates()
    {
        using var dir = new TempDir();
        Truth.Sample(20_000, 2).SaveCsv(dir.File("d.csv"));
        Truth.Save(dir.File("t.json"));
        var output = new StringWriter();
        var error = new StringWriter();
        var code = Cli.Run(["fit", dir.File("d.csv"), "--k", "2", "--sigma", "0.05", "--out", dir.File("m.json")], output, error);
        Assert.True(code == 0, error.ToString());
        Assert.Contains("stage times:", output.ToString());
        Assert.Contains("em", error.ToString());
        var evalOut = new StringWriter();
        Assert.Equal(0, Cli.Run(["eval", dir.File("m.json"), dir.File("t.json"), "--data", dir.File("d.csv"), "--json"], evalOut, error));
        using var json = System.Text.Json.JsonDocument.Parse(evalOut.ToString());
        Assert.True(json.RootElement.GetProperty("regressor_error").GetDouble() < 0.01);
        Assert.True(json.RootElement.GetProperty("average_log_likelihood").GetDouble() > 0.9);

        var bad = new StringWriter();
        Assert.Equal(1, Cli.Run(["fit", dir.File("d.csv"), "--k", "2", "--method", "newton", "--out", dir.File("x.json")], new StringWriter(), bad));
        Assert.StartsWith("moe: error: Unknown method 'newton'", bad.ToString());
    }

    [Fact]
    public void FitCsvStreamsAFileAndGivesTheInMemoryFit()
    {
        using var dir = new TempDir();
        var data = Truth.Sample(n: 40_000, seed: 12);
        data.SaveCsv(dir.File("d.csv"));
        var options = new FitOptions { Experts = 2, Seed = 1 };
        FitResult streamed = MoeLearner.FitCsv(dir.File("d.csv"), options, maxRowsInMemory: 15_000);
        RecoveryErrors e = Metrics.Compare(streamed.Model, Truth);
        Assert.True(e.RegressorError <= 0.01 && e.GatingError <= 0.01, $"E_reg {e.RegressorError}, E_gating {e.GatingError}");
        // Every stage of the default fit is a pass over all rows in a fixed chunk order: the same bits in memory.
        FitResult inMemory = MoeLearner.Fit(data, options);
        Assert.Equal(inMemory.Model.ToJson(), streamed.Model.ToJson());

        // EM from random starts streams too; the paper's SGD needs every row in memory.
        FitResult em = MoeLearner.FitCsv(dir.File("d.csv"), new FitOptions { Experts = 2, Method = FitMethod.Em, Seed = 1 }, 15_000);
        Assert.True(double.IsFinite(em.Model.Sigma));
        var sgd = Assert.Throws<ArgumentException>(() => MoeLearner.FitCsv(dir.File("d.csv"),
            new FitOptions { Experts = 2, Method = FitMethod.L4, Solver = L4Solver.Sgd }, 15_000));
        Assert.Contains("paper's SGD needs every row in memory", sgd.Message);
        Assert.Throws<FileNotFoundException>(() => MoeLearner.FitCsv(dir.File("missing.csv"), new FitOptions { Experts = 2 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => MoeLearner.FitCsv(dir.File("d.csv"), new FitOptions { Experts = 2 }, 0));

        var output = new StringWriter();
        Assert.Equal(0, Cli.Run(["fit", dir.File("d.csv"), "--k", "2", "--max-rows", "15000", "--out", dir.File("m.json")], output, new StringWriter()));
        Assert.Contains("read in passes, at most 15000 rows in memory", output.ToString());
    }
}
