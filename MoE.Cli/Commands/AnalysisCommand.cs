using System.CommandLine;
using System.Globalization;
using System.Text;
using MoE.Api;

namespace MoE.Cli.Commands;

/// <summary><c>moe select</c>, <c>moe predict</c>, <c>moe plot</c>, <c>moe diagnose</c> and <c>moe coverage</c>: what a fit says beyond its estimate.</summary>
internal static class AnalysisCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Parses "1..6", "2,3,5" or "4".</summary>
    internal static int[] ParseRange(string text)
    {
        var t = text.Trim();
        var dots = t.IndexOf("..", StringComparison.Ordinal);
        if (dots >= 0
            && int.TryParse(t[..dots], NumberStyles.Integer, Inv, out var lo)
            && int.TryParse(t[(dots + 2)..], NumberStyles.Integer, Inv, out var hi))
        {
            Shared.Require(lo >= 1 && hi >= lo && hi <= 50, "--k", "a range lo..hi with 1 <= lo <= hi <= 50", text);
            return Enumerable.Range(lo, hi - lo + 1).ToArray();
        }

        var parts = t.Split(',', StringSplitOptions.TrimEntries);
        var ks = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.Integer, Inv, out ks[i]) || ks[i] < 1 || ks[i] > 50)
            {
                throw new ArgumentException($"--k must be a range like 1..6 or a list like 1,2,4 of values in 1..50, but is '{text}'.", "k");
            }
        }

        return ks;
    }

    public static Command CreateSelect(TextWriter output, TextWriter error)
    {
        var data = new Argument<FileInfo>("data") { Description = "the data: a CSV file (x1,...,xd,y) or a Parquet file" };
        var k = new Option<string>("--k") { Description = "the numbers of experts to compare, e.g. 1..6 or 1,2,4", DefaultValueFactory = _ => "1..4" };
        var activation = Shared.ActivationOption();
        var slope = Shared.SlopeOption();
        var family = Shared.FamilyOption();
        var df = Shared.DegreesOfFreedomOption();
        var noIntercept = new Option<bool>("--no-intercept") { Description = "no intercepts in the experts and the gate" };
        var commonSigma = new Option<bool>("--common-sigma") { Description = "one noise level for every expert" };
        var seed = new Option<long?>("--seed") { Description = "random seed (default 1)" };
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var test = new Option<bool>("--test") { Description = "also test each k against k + 1 by a parametric bootstrap of the likelihood ratio (p-values beside the criteria)" };
        var testReplicates = new Option<int>("--test-replicates") { Description = "the test's bootstrap replicates per k (default 99)", DefaultValueFactory = _ => 99 };
        var roleOptions = new Shared.RoleOptions();
        var command = new Command("select", "choose the number of experts: log-likelihood, parameters, AIC, BIC and ICL per k (k = 1 is one regression)")
        {
            data, k, activation, slope, family, df, noIntercept, commonSigma, seed, json, test, testReplicates,
        };
        roleOptions.AddTo(command);
        command.SetAction(parse =>
        {
            Shared.CheckPaths([parse.GetValue(data)], []);
            var ks = ParseRange(parse.GetValue(k)!);
            Shared.Require(parse.GetValue(testReplicates) >= 1, "--test-replicates", "at least 1", parse.GetValue(testReplicates));
            // What was typed; the rest is FitOptions' default (the core's FitConfig.defaults).
            var options = new FitOptions { Activation = Shared.ParseActivation(parse.GetValue(activation)!, parse.GetValue(slope)) };
            if (parse.GetValue(family) is { } familyName)
            {
                options.Family = ExpertFamilies.Parse(familyName);
            }

            options.DegreesOfFreedom = Shared.DegreesOfFreedom(parse.GetValue(df), options.Family);
            if (parse.GetValue(noIntercept))
            {
                options.Intercepts = false;
            }

            if (parse.GetValue(commonSigma))
            {
                options.CommonSigma = true;
            }

            if (parse.GetValue(seed) is long chosenSeed)
            {
                options.Seed = chosenSeed;
            }

            var roles = roleOptions.Read(parse, options.Family);
            var dataset = roles is null ? Dataset.Load(parse.GetValue(data)!.FullName) : Dataset.Load(parse.GetValue(data)!.FullName, roles);
            var selection = Terminal.WithFitProgress(error, reporter => MoeLearner.Select(dataset, options, ks, reporter));
            foreach (var r in selection.Results)
            {
                foreach (var w in r.Warnings)
                {
                    error.WriteLine($"moe: warning: k={r.Experts}: {w.Message}");
                }
            }

            // Each k against the next one fitted, when both are in the range.
            var tests = new List<ExpertsTest>();
            if (parse.GetValue(test))
            {
                var fitted = selection.Results.Select(r => r.Experts).ToHashSet();
                var pairs = fitted.Where(e => fitted.Contains(e + 1)).Order().ToArray();
                Shared.Require(pairs.Length > 0, "--test", "used with a range of k holding two consecutive values (e.g. --k 1..3)", parse.GetValue(k));
                var replicates = parse.GetValue(testReplicates);
                var step = Math.Max(1, replicates / 4);
                foreach (var e in pairs)
                {
                    tests.Add(MoeLearner.TestExperts(dataset, options, selection, e, replicates, options.Seed,
                        new SynchronousProgress<int>(done =>
                        {
                            if (done % step == 0)
                            {
                                error.WriteLine($"test of k = {e} against {e + 1}: {done} of {replicates} replicates");
                            }
                        })));
                }
            }

            if (parse.GetValue(json))
            {
                var doc = new Dictionary<string, object?>
                {
                    ["results"] = selection.Results.Select(r => new Dictionary<string, object?>
                    {
                        ["k"] = r.Experts,
                        ["logLikelihood"] = r.LogLikelihood,
                        ["parameters"] = r.Parameters,
                        ["aic"] = r.Aic,
                        ["bic"] = r.Bic,
                        ["icl"] = r.Icl,
                        ["degenerate"] = r.Degenerate,
                    }).ToArray(),
                    ["chosen"] = selection.Chosen,
                    ["chosenByIcl"] = selection.ChosenByIcl,
                };
                if (tests.Count > 0)
                {
                    doc["tests"] = tests.Select(t => new Dictionary<string, object?>
                    {
                        ["k"] = t.Experts,
                        ["against"] = t.Experts + 1,
                        ["statistic"] = t.Statistic,
                        ["p"] = t.P,
                        ["replicates"] = t.Replicates.Count - t.Failed,
                    }).ToArray();
                }

                output.WriteLine(JsonText.Write(doc, indented: false));
            }
            else
            {
                if (Terminal.IsTerminal(output))
                {
                    Terminal.On(output).Write(Tables.Selection(selection));
                }
                else
                {
                    output.WriteLine($"{"k",3} {"log-likelihood",15} {"params",7} {"AIC",12} {"BIC",12} {"ICL",12}");
                    foreach (var r in selection.Results)
                    {
                        output.WriteLine(string.Create(Inv,
                            $"{r.Experts,3} {r.LogLikelihood,15:F4} {r.Parameters,7} {r.Aic,12:F3} {r.Bic,12:F3} {r.Icl,12:F3}{(r.Experts == selection.Chosen ? "  <- BIC" : r.Degenerate ? "  degenerate: not chosen" : "")}"));
                    }
                }

                output.WriteLine(string.Create(Inv,
                    $"chosen: k = {selection.Chosen} by BIC (lowest -2 LL + p ln n, n = {(dataset.Weights is { } w ? $"{w.Sum().ToString("G6", CultureInfo.InvariantCulture)}, the weights' sum over {dataset.Count} rows" : dataset.Count.ToString(CultureInfo.InvariantCulture))}: consistent for the number of experts, as flexmix uses it); ICL, which also penalises overlapping experts, chooses k = {selection.ChosenByIcl}."));
                foreach (var t in tests)
                {
                    output.WriteLine(string.Create(Inv,
                        $"test of k = {t.Experts} against {t.Experts + 1}: LR = {t.Statistic:F3}, p = {t.P:F3} (parametric bootstrap, {t.Replicates.Count - t.Failed} replicates{(t.Failed > 0 ? $"; {t.Failed} failed: {t.FirstFailure}" : "")}){(t.P <= 0.05 ? $": {t.Experts + 1} experts fit better than chance gives" : $": no evidence for a {Ordinal(t.Experts + 1)} expert")}"));
                }
            }

            return CliApp.Success;
        });
        return command;
    }

    public static Command CreateDiagnose(TextWriter output)
    {
        var data = new Argument<FileInfo>("data") { Description = "the data: a CSV file (x1,...,xd,y) or a Parquet file" };
        var k = new Option<int>("--k") { Description = "the number of experts to judge the data for", Required = true };
        var family = Shared.FamilyOption();
        var roleOptions = new Shared.RoleOptions();
        var command = new Command("diagnose", "check the data against the estimators' assumptions: moments, Mardia's tests, conditioning, rows per parameter, and a verdict")
        {
            data, k, family,
        };
        roleOptions.AddTo(command);
        command.SetAction(parse =>
        {
            Shared.CheckPaths([parse.GetValue(data)], []);
            Shared.Require(parse.GetValue(k) >= 1, "--k", "at least 1", parse.GetValue(k));
            var experts = parse.GetValue(family) is { } familyName ? ExpertFamilies.Parse(familyName) : ExpertFamily.Gaussian;
            var roles = roleOptions.Read(parse, experts);
            var dataset = roles is null ? Dataset.Load(parse.GetValue(data)!.FullName) : Dataset.Load(parse.GetValue(data)!.FullName, roles);
            var r = MoeLearner.Diagnose(dataset, parse.GetValue(k), experts);
            output.WriteLine(string.Create(Inv, $"n = {r.Rows} rows, d = {r.Dimension} covariates; k = {r.Experts} experts have {r.Parameters} parameters ({(double)r.Rows / r.Parameters:F1} rows each)"));
            if (Terminal.IsTerminal(output))
            {
                Terminal.On(output).Write(Tables.Columns(r, dataset.Columns));
            }
            else
            {
                var width = Math.Max(7, dataset.Columns?.Max(c => c.Length) ?? 0);
                output.WriteLine($"{"column".PadLeft(width)} {"mean",12} {"sd",12} {"skewness",10} {"ex.kurtosis",12}");
                for (var t = 0; t < r.Columns.Count; t++)
                {
                    var c = r.Columns[t];
                    output.WriteLine(string.Create(Inv, $"{(dataset.Columns?[t] ?? "x" + (t + 1)).PadLeft(width)} {Tables.Stat(c.Mean, "G5"),12} {Tables.Stat(c.Sd, "G5"),12} {Tables.Stat(c.Sd > 0 ? c.Skewness : double.NaN, "F3"),10} {Tables.Stat(c.Sd > 0 ? c.ExcessKurtosis : double.NaN, "F3"),12}"));
                }
            }

            output.WriteLine(Tables.Mardia(r));
            output.WriteLine($"moment guarantees (L4, spectral): {(r.MomentGuarantees ? "apply" : "do not apply")}");
            foreach (var v in r.Verdict)
            {
                output.WriteLine($"- {v}");
            }

            return CliApp.Success;
        });
        return command;
    }

    public static Command CreatePredict(TextWriter output)
    {
        var model = new Argument<FileInfo>("model") { Description = "the model file (JSON)" };
        var data = new Argument<FileInfo>("data") { Description = "the new rows: a CSV or Parquet file with the model's columns (by name when the model records them, in any order; else x1..xd, y optional)" };
        var outPath = new Option<FileInfo>("--out") { Description = "the predictions CSV to write", Required = true };
        var interval = new Option<double?>("--interval") { Description = "also write the central predictive interval with this probability, e.g. 0.9" };
        var quantiles = new Option<string?>("--quantiles") { Description = "also write the predictive distribution's quantiles at these probabilities, e.g. 0.05,0.5,0.95 (columns q0.05, q0.5, q0.95)" };
        var hdi = new Option<double?>("--hdi") { Description = "also write the highest-density region of this probability, e.g. 0.9: the shortest set holding it, one interval per mode (columns hdi1_lower, hdi1_upper, …)" };
        var conformal = new Option<FileInfo?>("--conformal") { Description = "calibrate --interval on these held-out rows (split conformal): the intervals then cover at least that share of new rows whatever the model's errors" };
        var missing = Shared.MissingOption();
        var command = new Command("predict", "predict: the mixture mean, each expert's mean, the gate probabilities and optionally predictive quantiles")
        {
            model, data, outPath, interval, quantiles, hdi, conformal, missing,
        };
        command.SetAction(parse =>
        {
            Shared.CheckPaths([parse.GetValue(model), parse.GetValue(data), parse.GetValue(conformal)], [parse.GetValue(outPath)]);
            var level = parse.GetValue(interval) ?? 0;
            Shared.Require(level is > 0 and < 1 || parse.GetValue(interval) is null, "--interval", "in (0, 1)", parse.GetValue(interval));
            Shared.Require(parse.GetValue(conformal) is null || level > 0, "--conformal", "used with --interval (the coverage to calibrate)", "without --interval");
            var m = MixtureOfExperts.Load(parse.GetValue(model)!.FullName);
            var stated = level;
            if (parse.GetValue(conformal) is { } calibrationFile)
            {
                var calibration = m.ReadData(calibrationFile.FullName);
                level = m.ConformalLevel(calibration, stated);
                output.WriteLine(string.Create(Inv,
                    $"conformal: the {stated:P0} intervals are the model's {level:P2} central intervals, calibrated on {calibration.Count} rows of {calibrationFile.Name}"));
            }

            var policy = Shared.ParseMissing(parse.GetValue(missing));
            var x = m.ReadCovariates(parse.GetValue(data)!.FullName, policy);
            var probabilities = ParseProbabilities(parse.GetValue(quantiles));
            var p = m.PredictDistribution(x, level, policy, probabilities);
            var hdiLevel = parse.GetValue(hdi);
            Shared.Require(hdiLevel is null or (> 0 and < 1), "--hdi", "in (0, 1)", hdiLevel);
            var regions = hdiLevel is { } hl ? m.HighestDensity(x, hl) : [];
            var pieces = regions.Length == 0 ? 0 : regions.Max(r => r.Count);
            var k = m.Experts;
            var text = new StringBuilder();
            text.Append("mean");
            for (var i = 1; i <= k; i++)
            {
                text.Append(Inv, $",expert{i}");
            }

            for (var i = 1; i <= k; i++)
            {
                text.Append(Inv, $",gate{i}");
            }

            if (level > 0)
            {
                text.Append(",lower,upper");
            }

            foreach (var q in probabilities)
            {
                text.Append(Inv, $",q{q.ToString("R", Inv)}");
            }

            for (var j = 1; j <= pieces; j++)
            {
                text.Append(Inv, $",hdi{j}_lower,hdi{j}_upper");
            }

            text.Append('\n');
            for (var r = 0; r < p.Mean.Length; r++)
            {
                text.Append(p.Mean[r].ToString("R", Inv));
                for (var i = 0; i < k; i++)
                {
                    text.Append(',').Append(p.ExpertMeans[r, i].ToString("R", Inv));
                }

                for (var i = 0; i < k; i++)
                {
                    text.Append(',').Append(p.Gate[r, i].ToString("R", Inv));
                }

                if (level > 0)
                {
                    text.Append(',').Append(p.Lower[r].ToString("R", Inv)).Append(',').Append(p.Upper[r].ToString("R", Inv));
                }

                for (var j = 0; j < probabilities.Length; j++)
                {
                    text.Append(',').Append(p.Quantiles[r, j].ToString("R", Inv));
                }

                // A row with fewer pieces than the most any row has leaves the rest empty.
                for (var j = 0; j < pieces; j++)
                {
                    text.Append(',');
                    if (j < regions[r].Count)
                    {
                        text.Append(regions[r][j].Lower.ToString("R", Inv)).Append(',').Append(regions[r][j].Upper.ToString("R", Inv));
                    }
                    else
                    {
                        text.Append(',');
                    }
                }

                text.Append('\n');
            }

            var file = parse.GetValue(outPath)!;
            AtomicFile.WriteAllText(Shared.PrepareOutput(file), text.ToString());
            var unpredicted = p.Mean.Count(double.IsNaN);
            output.WriteLine(string.Create(Inv,
                $"predicted {p.Mean.Length - unpredicted} rows with k={k}{(stated > 0 ? $" and {stated:P0} intervals{(level != stated ? " (conformal)" : "")}" : "")}{(probabilities.Length > 0 ? $", quantiles at {string.Join(", ", probabilities.Select(q => q.ToString("R", Inv)))}" : "")}{(hdiLevel is { } shown ? $", {shown:P0} highest-density regions of up to {pieces} intervals" : "")}{(unpredicted > 0 ? $"; {unpredicted} rows with a missing value have NaN predictions" : "")}; wrote {file.Name}"));
            return CliApp.Success;
        });
        return command;
    }

    public static Command CreateTest(TextWriter output)
    {
        var model = new Argument<FileInfo>("model") { Description = "the fitted model file (JSON)" };
        var data = new Argument<FileInfo>("data") { Description = "the data it was fitted to (by the model's column names when it records them)" };
        var hypothesis = new Option<string>("--hypothesis") { Description = "linear hypotheses about the coefficients, ';'-separated: e.g. \"x1[1] = x1[2]\" (expert 1's and 2's slopes on x1), intercept[i], gate.z[j], factors as 2*x1[1]", Required = true };
        var sandwich = new Option<bool>("--sandwich") { Description = "use the sandwich covariance instead of the observed information's" };
        var weights = new Option<string?>("--weights") { Description = "the column of the rows' frequency weights, as the fit read them (a weighted fit's errors are the weighted ones)" };
        var command = new Command("test", "Wald test of linear hypotheses across experts' coefficients (e.g. is an effect the same in every expert?)")
        {
            model, data, hypothesis, sandwich, weights,
        };
        command.SetAction(parse =>
        {
            Shared.CheckPaths([parse.GetValue(model), parse.GetValue(data)], []);
            var m = MixtureOfExperts.Load(parse.GetValue(model)!.FullName);
            var rows = Shared.ReadFitData(m, parse.GetValue(data)!, parse.GetValue(weights));

            var result = MoeLearner.Test(m, rows, parse.GetValue(hypothesis)!,
                parse.GetValue(sandwich) ? StandardErrorKind.Sandwich : StandardErrorKind.Observed);
            for (var h = 0; h < result.Hypotheses.Count; h++)
            {
                var (estimate, se) = result.Estimates[h];
                output.WriteLine(string.Create(Inv, $"  {result.Hypotheses[h]}: difference {estimate:G6} ± {se:G4}"));
            }

            output.WriteLine(string.Create(Inv,
                $"Wald chi-square = {result.Statistic:G6} on {result.DegreesOfFreedom} degree{(result.DegreesOfFreedom == 1 ? "" : "s")} of freedom, p = {result.P:G3} ({(parse.GetValue(sandwich) ? "sandwich" : "observed information")})"));
            return CliApp.Success;
        });
        return command;
    }

    public static Command CreateCheck(TextWriter output)
    {
        var model = new Argument<FileInfo>("model") { Description = "the model file (JSON)" };
        var data = new Argument<FileInfo>("data") { Description = "held-out rows: a CSV or Parquet file with the model's columns and the response (by name when the model records them)" };
        var levels = new Option<string?>("--levels") { Description = "the central intervals whose coverage to count (default 0.5,0.9)" };
        var seed = new Option<long>("--seed") { Description = "the seed of the randomised PIT of a count or a 0/1 outcome", DefaultValueFactory = _ => 1 };
        var command = new Command("check", "check a model's predictive distributions on held-out rows: PIT uniformity (Kolmogorov-Smirnov), log score, CRPS and interval coverage")
        {
            model, data, levels, seed,
        };
        command.SetAction(parse =>
        {
            Shared.CheckPaths([parse.GetValue(model), parse.GetValue(data)], []);
            var m = MixtureOfExperts.Load(parse.GetValue(model)!.FullName);
            var rows = m.ReadData(parse.GetValue(data)!.FullName);
            var asked = parse.GetValue(levels) is { } text ? ParseProbabilities(text, "--levels") : [0.5, 0.9];
            var report = m.Check(rows, asked, parse.GetValue(seed));
            output.WriteLine(string.Create(Inv, $"{report.Rows} held-out rows"));
            output.WriteLine(string.Create(Inv, $"PIT histogram (10 bins, {report.Rows / 10.0:G4} each if uniform): {string.Join(" ", report.Histogram)}"));
            output.WriteLine(string.Create(Inv,
                $"Kolmogorov-Smirnov against uniform: D = {report.KsStatistic:G4}, p = {report.KsP:G3} ({(report.KsP < 0.01 ? "the PIT departs from uniform: the predictive distributions are off, or the rows are many enough to see the fit's own estimation error" : "consistent with a calibrated model")})"));
            output.WriteLine(string.Create(Inv, $"log score (mean log predictive density): {report.LogScore:G6}; CRPS: {report.Crps:G6}"));
            foreach (var (level, observed) in report.Coverage)
            {
                output.WriteLine(string.Create(Inv, $"{level:P0} central intervals cover {observed:P1} of the rows"));
            }

            return CliApp.Success;
        });
        return command;
    }

    private static string Ordinal(int n) => n switch
    {
        2 => "second",
        3 => "third",
        4 => "fourth",
        5 => "fifth",
        _ => string.Create(Inv, $"{n}th"),
    };

    /// <summary>--quantiles 0.05,0.5,0.95 as probabilities, each in (0, 1) and named once (none when not typed).</summary>
    private static double[] ParseProbabilities(string? text, string option = "--quantiles")
    {
        if (text is null)
        {
            return [];
        }

        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var values = new double[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!double.TryParse(parts[i], System.Globalization.NumberStyles.Float, Inv, out values[i]) || !(values[i] is > 0 and < 1))
            {
                throw new ArgumentException($"{option} takes probabilities in (0, 1) separated by commas, but has '{parts[i]}'.", option.TrimStart('-'));
            }
        }

        if (values.Distinct().Count() != values.Length)
        {
            throw new ArgumentException($"{option} names a probability twice ('{text}').", option.TrimStart('-'));
        }

        return values;
    }

    public static Command CreatePlot(TextWriter output)
    {
        var model = new Argument<FileInfo>("model") { Description = "the model file (JSON)" };
        var data = new Argument<FileInfo>("data") { Description = "the data: a CSV or Parquet file with the model's columns and its response (by name when the model records them)" };
        var outPath = new Option<FileInfo>("--out") { Description = "the PNG to write", Required = true };
        var command = new Command("plot", "plot a fitted model against its data: for d = 1 the data, each expert's line and the gate below; for d > 1 fitted against observed and the gate along each expert's direction")
        {
            model, data, outPath,
        };
        command.SetAction(parse =>
        {
            var file = parse.GetValue(outPath)!;
            Shared.CheckPaths([parse.GetValue(model), parse.GetValue(data)], [file]);
            if (!file.Extension.Equals(".png", StringComparison.OrdinalIgnoreCase))
            {
                throw new ArgumentException($"--out must name a .png file, but is '{file.Name}'.", "out");
            }

            var m = MixtureOfExperts.Load(parse.GetValue(model)!.FullName);
            var set = m.ReadData(parse.GetValue(data)!.FullName);

            var title = string.Create(Inv, $"{Path.GetFileNameWithoutExtension(parse.GetValue(data)!.Name)}: k = {m.Experts}, {(m.Family.HasNoiseLevels() ? m.Activation.ToString() : $"{m.Family.Name()} experts")}, n = {set.Count}");
            var drawn = Reproduce.FitChart.Save(Shared.PrepareOutput(file), m, set.X, set.Y, title);
            output.WriteLine(string.Create(Inv,
                $"plotted {drawn} of {set.Count} rows ({(m.Dimension == 1 ? "data, expert lines and gate" : "fitted against observed and the gate along each expert's direction")}); wrote {file.Name}"));
            return CliApp.Success;
        });
        return command;
    }

    public static Command CreateCoverage(TextWriter output, TextWriter error)
    {
        var replicates = new Option<int>("--replicates") { Description = "seeded replicates", DefaultValueFactory = _ => 200 };
        var n = new Option<int>("--n") { Description = "rows per replicate", DefaultValueFactory = _ => 1000 };
        var level = new Option<double>("--level") { Description = "the intervals' probability", DefaultValueFactory = _ => 0.95 };
        var sandwich = new Option<bool>("--sandwich") { Description = "sandwich standard errors instead of the observed information's" };
        var outPath = new Option<FileInfo?>("--out") { Description = "also write the Markdown table to this file" };
        var family = Shared.FamilyOption();
        var gateApart = new Option<bool>("--gate-apart") { Description = "the gate reads its own covariate x3 and the experts x1, x2 (a split design, as --gate-x gives a fit)" };
        var bootstrap = new Option<int?>("--bootstrap") { Description = "the bootstrap study instead: B replicates per data set of a known k = 3 model, percentile and basic intervals beside Wald's" };
        var parametric = new Option<bool>("--parametric") { Description = "with --bootstrap: the parametric bootstrap" };
        var kTest = new Option<int?>("--k-test") { Description = "the size of the test for k instead: B replicates per data set, 2 experts tested against 3 on data of the k = 2 model" };
        var power = new Option<bool>("--power") { Description = "with --k-test: its power, on data of the k = 3 bootstrap model" };
        var command = new Command("coverage", "check the standard errors by simulation: Wald-interval coverage over seeded replicates of a known model")
        {
            replicates, n, level, sandwich, outPath, family, gateApart, bootstrap, parametric, kTest, power,
        };
        command.SetAction(parse =>
        {
            Shared.CheckPaths([], [parse.GetValue(outPath)]);
            Shared.Require(parse.GetValue(replicates) >= 1, "--replicates", "at least 1", parse.GetValue(replicates));
            Shared.Require(parse.GetValue(n) >= 50, "--n", "at least 50", parse.GetValue(n));
            Shared.Require(parse.GetValue(level) is > 0 and < 1, "--level", "in (0, 1)", parse.GetValue(level));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            if (parse.GetValue(kTest) is { } testReplicates)
            {
                Shared.Require(testReplicates >= 1, "--k-test", "at least 1", testReplicates);
                Shared.Require(parse.GetValue(bootstrap) is null && !parse.GetValue(sandwich) && parse.GetValue(family) is null && !parse.GetValue(gateApart), "--k-test",
                    "used without --bootstrap, --sandwich, --family and --gate-apart (its study has known Gaussian models)", "combined with them");
                var isPower = parse.GetValue(power);
                var ps = Experiments.ExpertsTestStudy(isPower, parse.GetValue(replicates), parse.GetValue(n), testReplicates,
                    new Progress<int>(r =>
                    {
                        if (r % 10 == 0)
                        {
                            error.WriteLine($"coverage: {r} data sets");
                        }
                    }));
                var valid = ps.Where(p => !double.IsNaN(p)).ToArray();
                var text = new StringBuilder();
                text.Append(Inv, $"The test of 2 experts against 3 ({testReplicates} bootstrap replicates each) on {valid.Length} data sets of n = {parse.GetValue(n)} drawn from {(isPower ? "the k = 3 bootstrap model (its power)" : "the k = 2 coverage model (its size)")}, {clock.Elapsed.TotalSeconds:F0} s");
                text.Append(Inv, $"{(valid.Length < ps.Count ? $"; {ps.Count - valid.Length} data set(s) whose own fits failed left out" : "")}.\n\n");
                text.Append("| nominal level | rejected |\n|---|---|\n");
                foreach (var alpha in new[] { 0.01, 0.05, 0.10 })
                {
                    text.Append(Inv, $"| {alpha:F2} | {valid.Count(p => p <= alpha + 1e-12) / (double)Math.Max(1, valid.Length):F3} |\n");
                }

                text.Append(Inv, $"\nP-values in ten bins of 0.1: {string.Join(" ", Enumerable.Range(0, 10).Select(i => valid.Count(p => p > i / 10.0 && p <= (i + 1) / 10.0 + 1e-12)))}\n");
                output.Write(text.ToString());
                if (parse.GetValue(outPath) is { } testFile)
                {
                    AtomicFile.WriteAllText(Shared.PrepareOutput(testFile), text.ToString());
                }

                return CliApp.Success;
            }

            if (parse.GetValue(bootstrap) is { } b)
            {
                Shared.Require(b >= 2, "--bootstrap", "at least 2", b);
                Shared.Require(!parse.GetValue(sandwich) && parse.GetValue(family) is null && !parse.GetValue(gateApart), "--bootstrap",
                    "used without --sandwich, --family and --gate-apart (its study has one known Gaussian model)", "combined with them");
                var study = Experiments.BootstrapCoverage(parse.GetValue(replicates), parse.GetValue(n), b, parse.GetValue(level),
                    parse.GetValue(parametric) ? BootstrapKind.Parametric : BootstrapKind.Nonparametric, new Progress<int>(r =>
                    {
                        if (r % 25 == 0)
                        {
                            error.WriteLine($"coverage: {r} data sets");
                        }
                    }));
                var table = new StringBuilder();
                table.Append(Inv, $"Coverage of {parse.GetValue(level):P0} intervals, {study.DataSets} data sets of n = {parse.GetValue(n)}, {(parse.GetValue(parametric) ? "parametric" : "nonparametric")} bootstrap of B = {b} replicates each, {clock.Elapsed.TotalSeconds:F0} s. ");
                table.Append("Truth: k = 3 linear experts on x ~ N(0, 1) with intercepts and their own noise levels, a gate with intercepts (13 parameters); each data set fitted with the defaults and put in the truth's labels, each replicate aligned to the fit.");
                if (study.Skipped > 0)
                {
                    table.Append(Inv, $" {study.Skipped} data set(s) left out: a degenerate or failed fit, no Wald errors, or labels not clearly the truth's.");
                }

                table.Append(Inv, $" Ambiguous alignments: {study.Ambiguous} of {study.Replicates} replicates; failed replicates: {study.Failed}.\n\n");
                table.Append("| parameters | intervals | Wald | percentile | basic |\n|---|---|---|---|---|\n");
                foreach (var r in study.Rows)
                {
                    table.Append(Inv, $"| {r.Group} | {r.Intervals} | {r.Wald:F3} | {r.Percentile:F3} | {r.Basic:F3} |\n");
                }

                output.Write(table.ToString());
                if (parse.GetValue(outPath) is { } tableFile)
                {
                    AtomicFile.WriteAllText(Shared.PrepareOutput(tableFile), table.ToString());
                }

                return CliApp.Success;
            }

            var experts = parse.GetValue(family) is { } familyName ? ExpertFamilies.Parse(familyName) : ExpertFamily.Gaussian;
            var rows = Experiments.Coverage(parse.GetValue(replicates), parse.GetValue(n), parse.GetValue(level),
                parse.GetValue(sandwich), new Progress<int>(r =>
                {
                    if (r % 50 == 0)
                    {
                        error.WriteLine($"coverage: {r} replicates");
                    }
                }), family: experts, gateApart: parse.GetValue(gateApart));
            var md = new StringBuilder();
            md.Append(Inv, $"Coverage of {parse.GetValue(level):P0} Wald intervals ({(parse.GetValue(sandwich) ? "sandwich" : "observed information")}), {parse.GetValue(replicates)} replicates of n = {parse.GetValue(n)}, {clock.Elapsed.TotalSeconds:F0} s. ");
            md.Append(experts == ExpertFamily.StudentT
                ? "Truth: k = 2 linear Student-t experts (nu = 4) in d = 2 with intercepts and their own scales, a gate with an intercept, x ~ N(0, I); fitted with the defaults and the family."
                : experts.HasNoiseLevels()
                ? "Truth: k = 2 linear experts in d = 2 with intercepts and their own noise levels, a gate with an intercept, x ~ N(0, I); fitted with the defaults."
                : $"Truth: k = 2 {experts.Name()} experts in d = 2 with intercepts (the same linear predictors), a gate with an intercept, x ~ N(0, I); fitted with the defaults and the family.");
            if (parse.GetValue(gateApart))
            {
                md.Append(" The experts read x1, x2 and the gate its own x3 ~ N(0, 1) (w = 1.5, c = 0.3); each replicate is fitted with that design.");
            }

            if (rows.Count > 0 && rows[0].Skipped > 0)
            {
                md.Append(Inv, $" {rows[0].Skipped} replicate(s) left out: their fit or standard errors failed, or their likelihood had no finite maximum (a degenerate sample).");
            }

            md.Append("\n\n");
            md.Append("| parameters | intervals | coverage | lowest, highest single parameter |\n|---|---|---|---|\n");
            foreach (var r in rows)
            {
                md.Append(Inv, $"| {r.Group} | {r.Intervals} | {r.Coverage:F3} | {r.Lowest:F3}, {r.Highest:F3} |\n");
            }

            output.Write(md.ToString());
            if (parse.GetValue(outPath) is { } file)
            {
                AtomicFile.WriteAllText(Shared.PrepareOutput(file), md.ToString());
            }

            return CliApp.Success;
        });
        return command;
    }
}
