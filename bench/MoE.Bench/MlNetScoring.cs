using BenchmarkDotNet.Attributes;
using Microsoft.ML;
using MoE.ML;

namespace MoE.Bench;

/// <summary>
/// Scoring 100,000 rows (d = 10, k = 3) through ML.NET against the façade (<see cref="ScoringBase"/>: the rows, the
/// baseline, the façade's batch and the fitted transformer). The mixture's transformer is a chain of ML.NET transforms
/// (copy, key, value map, the mapping); here also the same chain loaded from a file, read through a cursor on one
/// thread, as <c>Transform</c> + enumeration would. ML.NET's own linear regressor (Sdca) on the same view shows
/// ML.NET's cost per row for the simplest model.
/// </summary>
[MemoryDiagnoser]
public class MlNetScoring : ScoringBase
{
    private ITransformer loaded = null!;
    private ITransformer sdca = null!;

    [GlobalSetup]
    public void Setup()
    {
        SetupData();
        string path = Path.Combine(Path.GetTempPath(), $"moe-bench-{Environment.ProcessId}.zip");
        ml.Model.Save(mixture, view.Schema, path);
        ml.ComponentCatalog.RegisterAssembly(typeof(MixtureOfExpertsTrainer).Assembly);
        loaded = ml.Model.Load(path, out _);
        File.Delete(path);
        sdca = ml.Regression.Trainers.Sdca().Fit(view);
    }

    /// <summary>The same transformer after Model.Save/Load.</summary>
    [Benchmark]
    public double MixtureLoaded() => SumScores(loaded);

    /// <summary>ML.NET's Sdca regressor on the same rows.</summary>
    [Benchmark]
    public double SdcaTransformer() => SumScores(sdca);
}
