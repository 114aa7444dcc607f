// A C# tour of the façade: build a ground truth, sample it, write and read the files, and evaluate
// likelihoods and predictions. Run: dotnet run --project examples/MoE.Example -c Release
using System.Globalization;
using MoE.Api;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var folder = Directory.CreateTempSubdirectory("moe-example-");
try
{
    // The paper's setting: d = 10, k = 2, a_i = e_i, w_1 = e_3, identity experts, σ = 0.05.
    var truth = GroundTruth.Create(GroundTruthPreset.Orthogonal, experts: 2, dimension: 10, Activation.Identity, sigma: 0.05);
    Dataset data = truth.Sample(n: 100_000, seed: 7);
    Console.WriteLine($"sampled n = {data.Count}, d = {data.Dimension} from a {truth.Experts}-expert {truth.Activation} mixture");

    var csv = Path.Combine(folder.FullName, "data.csv");
    var json = Path.Combine(folder.FullName, "truth.json");
    data.SaveCsv(csv);
    truth.Save(json);
    var reloaded = Dataset.LoadCsv(csv);
    var model = MixtureOfExperts.Load(json);
    Console.WriteLine($"files round-trip: {reloaded.Y.SequenceEqual(data.Y) && model.ToJson() == truth.ToJson()}");

    // The truth has the highest average log-likelihood; a model with swapped gating is far worse.
    double[,] flipped = model.Gating;
    flipped[0, 2] = -flipped[0, 2];
    var wrong = MixtureOfExperts.Create(model.Regressors, flipped, model.Activation, model.Sigma);
    Console.WriteLine($"average log-likelihood: truth {model.LogLikelihood(data.X, data.Y) / data.Count:F4}, " +
                      $"flipped gate {wrong.LogLikelihood(data.X, data.Y) / data.Count:F4}");

    double[] yhat = model.Predict(data.X);
    var rmse = Math.Sqrt(yhat.Zip(data.Y, (p, y) => (p - y) * (p - y)).Average());
    // E[(y − ŷ)²] = E[Var(y | x)] = 2·E[p(1 − p)] + σ² ≈ 2·0.2066 + 0.0025 with p = sigmoid(x_3): RMSE ≈ 0.645, not σ.
    Console.WriteLine($"RMSE of the conditional mean: {rmse:F4} (theory: sqrt(2 E[p(1-p)] + sigma^2) = 0.645)");
}
finally
{
    folder.Delete(recursive: true);
}
