using System.CommandLine;
using System.Globalization;
using MoE.Api;

namespace MoE.Cli.Commands;

/// <summary><c>moe fit</c> and <c>moe eval</c>.</summary>
internal static class FitCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var data = new Argument<FileInfo>("data") { Description = "the CSV file (x1,...,xd,y)" };
        var k = new Option<int>("--k") { Description = "number of experts k >= 2", Required = true };
        var activation = Shared.ActivationOption();
        var slope = Shared.SlopeOption();
        var sigma = new Option<double?>("--sigma") { Description = "noise standard deviation if known (default: estimated)" };
        var method = new Option<string>("--method") { Description = "l4 (the paper's estimator), l2 or em (baselines from a random start)", DefaultValueFactory = _ => "l4" };
        var solver = new Option<string>("--l4-solver") { Description = "subspace (default) or sgd (the paper's SGD)", DefaultValueFactory = _ => "subspace" };
        var transform = new Option<string>("--transform") { Description = "bounded (default, variance-reduced) or polynomial (the paper's Q4/Q2)", DefaultValueFactory = _ => "bounded" };
        var noPolish = new Option<bool>("--no-polish") { Description = "stop after the paper's stages (no EM polish)" };
        var seed = new Option<long>("--seed") { Description = "random seed", DefaultValueFactory = _ => 1 };
        var outPath = new Option<FileInfo>("--out") { Description = "the model file (JSON) to write", Required = true };
        var maxRows = new Option<int?>("--max-rows") { Description = "stream the file: hold at most this many rows in memory (L4 uses every row through moment sums; the likelihood stages a uniform sample of this size)" };
        var command = new Command("fit", "fit a mixture of experts to a CSV file")
        {
            data, k, activation, slope, sigma, method, solver, transform, noPolish, seed, outPath, maxRows,
        };
        command.SetAction(parse =>
        {
            Shared.CheckPaths([parse.GetValue(data)], [parse.GetValue(outPath)]);
            Shared.Require(parse.GetValue(k) >= 2, "--k", "at least 2 (a mixture has k >= 2 experts)", parse.GetValue(k));
            Shared.Require(parse.GetValue(maxRows) is not < 1, "--max-rows", "at least 1", parse.GetValue(maxRows));
            var options = new FitOptions
            {
                Experts = parse.GetValue(k),
                Activation = Shared.ParseActivation(parse.GetValue(activation)!, parse.GetValue(slope)),
                Sigma = parse.GetValue(sigma),
                Method = parse.GetValue(method)!.ToLowerInvariant() switch
                {
                    "l4" => FitMethod.L4,
                    "l2" => FitMethod.L2,
                    "em" => FitMethod.Em,
                    var m => throw new ArgumentException($"Unknown method '{m}'; expected l4, l2 or em.", "method"),
                },
                Solver = parse.GetValue(solver)!.ToLowerInvariant() switch
                {
                    "subspace" => L4Solver.Subspace,
                    "sgd" => L4Solver.Sgd,
                    var s => throw new ArgumentException($"Unknown L4 solver '{s}'; expected subspace or sgd.", "l4-solver"),
                },
                Transform = parse.GetValue(transform)!.ToLowerInvariant() switch
                {
                    "bounded" => OutputTransformKind.Bounded,
                    "polynomial" => OutputTransformKind.Polynomial,
                    var t => throw new ArgumentException($"Unknown transform '{t}'; expected bounded or polynomial.", "transform"),
                },
                Polish = !parse.GetValue(noPolish),
                Seed = parse.GetValue(seed),
            };
            var reporter = ProgressReporter.For(error);
            FitResult result;
            string rows;
            if (parse.GetValue(maxRows) is int limit)
            {
                result = MoeLearner.FitCsv(parse.GetValue(data)!.FullName, options, limit, reporter);
                rows = string.Create(CultureInfo.InvariantCulture, $"streamed, at most {limit} rows in memory");
            }
            else
            {
                var dataset = Dataset.LoadCsv(parse.GetValue(data)!.FullName);
                result = MoeLearner.Fit(dataset, options, reporter);
                rows = string.Create(CultureInfo.InvariantCulture, $"n={dataset.Count}");
            }

            reporter.Finish();
            var file = parse.GetValue(outPath)!;
            result.Model.Save(Shared.PrepareOutput(file));
            foreach (var w in result.Warnings)
            {
                error.WriteLine($"moe: warning: {w.Message}");
            }

            var warned = result.Warnings.Count switch
            {
                0 => "",
                1 => "; 1 warning",
                var count => $"; {count} warnings",
            };
            var times = string.Join(", ", result.Stages.GroupBy(t => t.Stage)
                .Select(g => string.Create(CultureInfo.InvariantCulture, $"{g.Key} {g.Sum(t => t.Seconds):F2}s")));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"fitted k={result.Model.Experts}, d={result.Model.Dimension}, {result.Model.Activation}, sigma={result.Model.Sigma:G6} on {rows} ({Exit(result.Exit)}{warned}); wrote {file.Name}"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"stage times: {times}; total {result.Stages.Sum(t => t.Seconds):F2}s"));
            return CliApp.Success;
        });
        return command;
    }

    /// <summary>The exit condition as the CLI prints it.</summary>
    private static string Exit(ExitCondition exit) => exit switch
    {
        ExitCondition.Converged => "converged",
        ExitCondition.MaxIterations => "max-iterations",
        ExitCondition.NoProgress => "no-progress",
        _ => "completed",
    };

    public static Command CreateEval(TextWriter output)
    {
        var model = new Argument<FileInfo>("model") { Description = "the fitted model file" };
        var truth = new Argument<FileInfo>("truth") { Description = "the ground-truth model file" };
        var data = new Option<FileInfo?>("--data") { Description = "a CSV file for the average log-likelihood" };
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var command = new Command("eval", "compare a fitted model with a ground truth (E_reg, E_gating, ||W - W*||)")
        {
            model, truth, data, json,
        };
        command.SetAction(parse =>
        {
            Shared.CheckPaths([parse.GetValue(model), parse.GetValue(truth), parse.GetValue(data)], []);
            var fitted = MixtureOfExperts.Load(parse.GetValue(model)!.FullName);
            var reference = MixtureOfExperts.Load(parse.GetValue(truth)!.FullName);
            var e = Metrics.Compare(fitted, reference);
            double? avgLl = null;
            if (parse.GetValue(data) is { } csv)
            {
                var d = Dataset.LoadCsv(csv.FullName);
                avgLl = fitted.LogLikelihood(d.X, d.Y) / d.Count;
            }

            if (parse.GetValue(json))
            {
                // JSON has no infinities: a non-finite value is written as null, and "notes" says why.
                var notes = new List<string>();
                double? Finite(string name, double? v)
                {
                    if (v is { } value && !double.IsFinite(value))
                    {
                        notes.Add($"{name} is {value.ToString(CultureInfo.InvariantCulture)}");
                        return null;
                    }

                    return v;
                }

                var doc = new Dictionary<string, object?>
                {
                    ["regressor_error"] = Finite("regressor_error", e.RegressorError),
                    ["gating_error"] = Finite("gating_error", e.GatingError),
                    ["gating_distance"] = Finite("gating_distance", e.GatingDistance),
                    ["literal_gating_error"] = Finite("literal_gating_error", e.LiteralGatingError),
                    ["permutation"] = e.Permutation,
                    ["average_log_likelihood"] = Finite("average_log_likelihood", avgLl),
                };
                if (notes.Count > 0)
                {
                    doc["notes"] = notes;
                }
                output.WriteLine(System.Text.Json.JsonSerializer.Serialize(doc, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            }
            else
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"E_reg                    {e.RegressorError:E3}"));
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"E_gating (aligned)       {e.GatingError:E3}"));
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"||W - W*|| (aligned)     {e.GatingDistance:E3}"));
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"E_gating (paper, literal) {e.LiteralGatingError:E3}"));
                output.WriteLine($"expert matching          {string.Join(" ", e.Permutation.Select((p, i) => $"{i}->{p}"))}");
                if (avgLl is { } ll)
                {
                    output.WriteLine(double.IsFinite(ll)
                        ? string.Create(CultureInfo.InvariantCulture, $"average log-likelihood   {ll:F6}")
                        : $"average log-likelihood   not finite ({(ll < 0 ? "-inf" : "nan")}): the model gives some rows zero likelihood");
                }
            }

            return CliApp.Success;
        });
        return command;
    }
}
