// A C# tour of the façade: generate data from a known mixture, fit it from a random start, evaluate the fit
// against the truth, and predict. Run: dotnet run --project examples/MoE.Example -c Release [-- n]
using System.Diagnostics;
using System.Globalization;
using MoE.Api;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
int n = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 100_000;
var folder = Directory.CreateTempSubdirectory("moe-example-");
try
{
    // 1. Generate: three ReLU experts in d = 6 with unit, non-orthogonal regressors and a free softmax gate.
    double[,] regressors =
    {
        { 1.0, 0.0, 0.0, 0.0, 0.0, 0.0 },
        { 0.6, 0.8, 0.0, 0.0, 0.0, 0.0 },
        { 0.0, 0.0, 1.0, 0.0, 0.0, 0.0 },
    };
    double[,] gating =   // k − 1 rows; the last expert's gate vector is 0
    {
        { 0.0, 0.0, 0.0, 1.0, 0.5, 0.0 },
        { 0.5, 0.0, 0.0, -0.5, 0.0, 1.0 },
    };
    var truth = MixtureOfExperts.Create(regressors, gating, Activation.Relu, sigma: 0.1);
    Dataset data = truth.Sample(n, seed: 7);
    Dataset test = truth.Sample(20_000, seed: 8);
    var csv = Path.Combine(folder.FullName, "data.csv");
    data.SaveCsv(csv);
    Console.WriteLine($"1. generated n = {data.Count} samples, d = {data.Dimension}, from {truth.Experts} {truth.Activation} experts (σ = {truth.Sigma})");

    // 2. Fit from the CSV, as a user with real data would: k and g are known, σ is estimated.
    var options = new FitOptions { Experts = 3, Activation = Activation.Relu, Seed = 1 };
    var clock = Stopwatch.StartNew();
    FitResult fit = MoeLearner.Fit(Dataset.LoadCsv(csv), options);   // optional: IProgress<FitProgress>, CancellationToken
    MixtureOfExperts model = fit.Model;
    Console.WriteLine($"2. fitted in {clock.Elapsed.TotalSeconds:F1} s ({string.Join(", ", fit.Stages.Select(t => $"{t.Stage.Name()} {t.Seconds:F2} s"))}); exit: {fit.Exit}");

    // 3. Evaluate: parameter errors against the truth (after aligning the experts' labels) and held-out likelihood.
    RecoveryErrors e = Metrics.Compare(model, truth);
    Console.WriteLine($"3. E_reg = {e.RegressorError:E2}, E_gating = {e.GatingError:E2}, ‖W − W*‖ = {e.GatingDistance:E2}, " +
                      $"σ̂ = {model.Sigma:F4} (expert i ↔ truth {string.Join(",", e.Permutation)})");
    Console.WriteLine($"   held-out average log-likelihood: fitted {model.LogLikelihood(test.X, test.Y) / test.Count:F4}, " +
                      $"truth {truth.LogLikelihood(test.X, test.Y) / test.Count:F4}");

    // 4. Predict: the conditional mean E[y | x] = Σ_i p_i(x) g(<a_i, x>) on held-out inputs, against the truth's.
    double[] yhat = model.Predict(test.X);
    double[] ideal = truth.Predict(test.X);
    double rmse = Math.Sqrt(yhat.Zip(test.Y, (p, y) => (p - y) * (p - y)).Average());
    double gap = Math.Sqrt(yhat.Zip(ideal, (p, q) => (p - q) * (p - q)).Average());
    Console.WriteLine($"4. held-out RMSE of the prediction {rmse:F4} (the truth's own: " +
                      $"{Math.Sqrt(ideal.Zip(test.Y, (p, y) => (p - y) * (p - y)).Average()):F4}); RMS distance to the truth's prediction {gap:E2}");

    var modelPath = Path.Combine(folder.FullName, "model.json");
    model.Save(modelPath);
    bool recovered = e.RegressorError <= 0.01 && e.GatingError <= 0.01;
    Console.WriteLine($"   model saved and reloaded identically: {MixtureOfExperts.Load(modelPath).ToJson() == model.ToJson()}; recovered: {recovered}");
    return recovered ? 0 : 1;
}
finally
{
    folder.Delete(recursive: true);
}
