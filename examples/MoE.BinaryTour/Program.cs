// A yes/no tour: Pima Indians diabetes (532 women; seven clinical covariates, diabetes yes/no; tests/data/README.md has
// the source). It chooses the number of logistic experts by BIC, then compares a mixture of logistic experts in an
// ML.NET pipeline with ML.NET's own logistic regression (L-BFGS) and boosted trees (FastTree) on the same held-out
// folds, by AUC and log-loss, reported as they come.
//
//   dotnet run --project examples/MoE.BinaryTour -c Release -- [pima.csv] [--out folder]
//
// Writes <folder>/pima-tour.md (default folder out/pima-tour). Exits 1 if k = 1 misses R flexmix's logistic regression
// (log-likelihood −233.1611) or BIC does not choose it, as flexmix's BIC does.
using Microsoft.ML;
using Microsoft.ML.Data;
using MoE.Api;
using MoE.ML;

var (path, folder) = Arguments(args);
Directory.CreateDirectory(folder);
var data = Dataset.LoadCsv(path);
var report = new List<string> { $"# Tour: {Path.GetFileName(path)} (n = {data.Count}, d = {data.Dimension}, a yes/no response)", "" };
void Say(string line)
{
    Console.WriteLine(line);
    report.Add(line);
}

// ---- 1. How many logistic experts? k = 1 is one logistic regression; the mixtures' warnings say when an expert
// separates its rows (the likelihood then has no finite maximum and the guarded fit is not comparable).
var options = new FitOptions { Experts = 2, Family = ExpertFamily.Bernoulli, Seed = 1 };
var selection = MoeLearner.Select(data, options, [1, 2, 3]);
Say("## Choosing k (whole data; Bernoulli experts, logit link)");
Say("");
Say("| k | log-likelihood | parameters | BIC | note |");
Say("|---|---|---|---|---|");
foreach (var c in selection.Results)
{
    Say($"| {c.Experts} | {c.LogLikelihood:F4} | {c.Parameters} | {c.Bic:F2} | {(c.Degenerate ? "separated: guarded fit" : "")} |");
}

Say("");
Say($"BIC chooses k = {selection.Chosen} (R flexmix: k = 1, log-likelihood −233.1611, BIC 516.54).");
Say("");

// ---- 2. Held-out comparison in ML.NET: 10 folds of a seeded shuffle, the same for every model; each model's
// held-out probabilities pooled over the folds, then AUC and log-loss (the mean of −log p(observed)).
var ml = new MLContext(seed: 1);
const int folds = 10;
var order = Enumerable.Range(0, data.Count).ToArray();
new Random(1).Shuffle(order);
var candidates = new (string Name, Func<IEstimator<ITransformer>> Trainer)[]
{
    ("mixture of 2 logistic experts", () => ml.BinaryClassification.Trainers.MixtureOfExperts(experts: 2)),
    ("LbfgsLogisticRegression", () => ml.BinaryClassification.Trainers.LbfgsLogisticRegression()),
    ("FastTree (boosted trees)", () => ml.BinaryClassification.Trainers.FastTree()),
};
Say($"## Held-out comparison ({folds}-fold cross-validation, the same folds for every model)");
Say("");
Say("| model | AUC | log-loss | accuracy | fit time (ms per fold) |");
Say("|---|---|---|---|---|");
foreach (var (name, trainer) in candidates)
{
    var probability = new double[data.Count];
    var clock = System.Diagnostics.Stopwatch.StartNew();
    for (int f = 0; f < folds; f++)
    {
        var testRows = order.Where((_, i) => i % folds == f).ToArray();
        var trainRows = order.Where((_, i) => i % folds != f).ToArray();
        var model = ml.Transforms.NormalizeMeanVariance("Features").Append(trainer()).Fit(View(ml, data, trainRows));
        var scored = model.Transform(View(ml, data, testRows)).GetColumn<float>("Probability").ToArray();
        for (int i = 0; i < testRows.Length; i++)
        {
            probability[testRows[i]] = scored[i];
        }
    }

    var (auc, logLoss, accuracy) = Metrics(probability, data.Y);
    Say($"| {name} | {auc:F4} | {logLoss:F4} | {accuracy:F4} | {clock.Elapsed.TotalMilliseconds / folds:F0} |");
}

Say("");
File.WriteAllLines(Path.Combine(folder, "pima-tour.md"), report);
var single = selection.Results.First(r => r.Experts == 1);
bool ok = selection.Chosen == 1 && Math.Abs(single.LogLikelihood - -233.1611) < 1e-3;
Console.WriteLine(ok ? $"tour: done, {folder}/pima-tour.md" : "tour: k = 1 misses flexmix's logistic regression (-233.1611) or BIC chose another k");
return ok ? 0 : 1;

static (string Path, string Folder) Arguments(string[] args)
{
    string? path = null, folder = null;
    for (int i = 0; i < args.Length; i++)
    {
        if (args[i] == "--out" && i + 1 < args.Length)
        {
            folder = args[++i];
        }
        else
        {
            path = args[i];
        }
    }

    return (path ?? FindUp(Path.Combine("tests", "data", "pima.csv")), folder ?? Path.Combine("out", "pima-tour"));
}

static string FindUp(string relative)
{
    for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
    {
        string candidate = Path.Combine(dir.FullName, relative);
        if (File.Exists(candidate))
        {
            return candidate;
        }
    }

    throw new FileNotFoundException($"{relative} not found here or above; pass the data file's path.");
}

// The rows as ML.NET sees them: Features (d floats, a vector of known size) and a Boolean Label.
static IDataView View(MLContext ml, Dataset data, int[] rows)
{
    var schema = SchemaDefinition.Create(typeof(Row));
    schema[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, data.Dimension);
    return ml.Data.LoadFromEnumerable(rows.Select(r => new Row
    {
        Features = Enumerable.Range(0, data.Dimension).Select(j => (float)data.X[r, j]).ToArray(),
        Label = data.Y[r] > 0.5,
    }), schema);
}

// AUC (the probability that a random positive outranks a random negative, ties counted half), log-loss and accuracy.
static (double Auc, double LogLoss, double Accuracy) Metrics(double[] p, double[] y)
{
    var positives = Enumerable.Range(0, y.Length).Where(i => y[i] > 0.5).Select(i => p[i]).ToArray();
    var negatives = Enumerable.Range(0, y.Length).Where(i => y[i] <= 0.5).Select(i => p[i]).ToArray();
    double wins = 0;
    foreach (var a in positives)
    {
        foreach (var b in negatives)
        {
            wins += a > b ? 1 : a == b ? 0.5 : 0;
        }
    }

    double logLoss = -Enumerable.Range(0, y.Length)
        .Average(i => Math.Log(Math.Clamp(y[i] > 0.5 ? p[i] : 1 - p[i], 1e-15, 1)));
    double accuracy = Enumerable.Range(0, y.Length).Average(i => (p[i] > 0.5) == (y[i] > 0.5) ? 1.0 : 0.0);
    return (wins / (positives.Length * (double)negatives.Length), logLoss, accuracy);
}

internal sealed class Row
{
    public float[] Features = [];
    public bool Label;
}
