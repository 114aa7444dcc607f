using System.CommandLine;
using System.Globalization;
using MoE.Api;

namespace MoE.Cli.Commands;

/// <summary><c>moe fit</c> and <c>moe eval</c>.</summary>
internal static class FitCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var data = new Argument<FileInfo>("data") { Description = "the data: a CSV file (x1,...,xd,y), a Parquet file, or a directory of either (its files, in name order, are the shards of one data set)" };
        var roleOptions = new Shared.RoleOptions();
        var k = new Option<int>("--k") { Description = "number of experts k >= 2", Required = true };
        var activation = Shared.ActivationOption();
        var slope = Shared.SlopeOption();
        var sigma = new Option<double?>("--sigma") { Description = "noise standard deviation if known (default: estimated)" };
        var family = Shared.FamilyOption();
        var df = Shared.DegreesOfFreedomOption();
        var method = new Option<string?>("--method")
        {
            Description = "auto (several initializers, the best by held-out likelihood; default), l4 (the paper's estimator), spectral (the third-order method of [31]), em (random starts) or l2 (baseline)",
        };
        var paperModel = new Option<bool>("--paper-model") { Description = "the paper's model: no intercepts, one sigma, the data as given (with --method l4: the paper's configuration)" };
        var noIntercept = new Option<bool>("--no-intercept") { Description = "no intercepts in the experts and the gate" };
        var commonSigma = new Option<bool>("--common-sigma") { Description = "one noise level for every expert" };
        var noStandardise = new Option<bool>("--no-standardise") { Description = "run the moment initializers on the data as given" };
        var randomStarts = new Option<int?>("--random-starts") { Description = "random whole-space starts (default 1)" };
        var solver = new Option<string?>("--l4-solver") { Description = "subspace (default) or sgd (the paper's SGD)" };
        var transform = new Option<string?>("--transform") { Description = "bounded (default, variance-reduced) or polynomial (the paper's Q4/Q2)" };
        var noPolish = new Option<bool>("--no-polish") { Description = "stop after the paper's stages (no EM polish)" };
        var seed = new Option<long?>("--seed") { Description = "random seed (default 1)" };
        var outPath = new Option<FileInfo>("--out") { Description = "the model file (JSON) to write", Required = true };
        var report = new Option<FileInfo?>("--report") { Description = "also write a JSON report: the winning initializer, every candidate with its held-out likelihood, the stages and the warnings" };
        var se = new Option<string?>("--se") { Description = "standard errors and 95% Wald intervals of every parameter: observed (the inverse observed information), sandwich, or bootstrap (200 replicates aligned to the fit's labels, percentile and basic intervals; moe bootstrap has the options)", Arity = ArgumentArity.ZeroOrOne };
        var maxRows = new Option<int?>("--max-rows") { Description = "a memory bound: hold at most this many rows in memory; larger data are read again for every pass (the same model, bit for bit)" };
        var cluster = new Option<string?>("--cluster") { Description = "fit on a cluster where the shards live: host:port[,host:port...] of running silos' gateways (moe silo), or local:N to start N silos on loopback for this fit" };
        var requestTimeout = new Option<double>("--request-timeout") { Description = "with --cluster: seconds one shard's part of a pass may take before it is retried elsewhere", DefaultValueFactory = _ => 300 };
        var command = new Command("fit", "fit a mixture of experts to a CSV file")
        {
            data, k, activation, slope, family, df, sigma, method, paperModel, noIntercept, commonSigma, noStandardise, randomStarts,
            solver, transform, noPolish, seed, outPath, report, se, maxRows, cluster, requestTimeout,
        };
        roleOptions.AddTo(command);
        command.SetAction(parse =>
        {
            var dataPath = parse.GetValue(data)!;
            var shards = Directory.Exists(dataPath.FullName);
            Shared.CheckPaths(shards ? [] : [dataPath], [parse.GetValue(outPath), parse.GetValue(report)]);
            if (shards)
            {
                Shared.CheckOutsideShards(new DirectoryInfo(dataPath.ToString()), [parse.GetValue(outPath), parse.GetValue(report)]);
            }
            Shared.Require(parse.GetValue(k) >= 2, "--k", "at least 2 (a mixture has k >= 2 experts)", parse.GetValue(k));
            Shared.Require(parse.GetValue(maxRows) is not < 1, "--max-rows", "at least 1", parse.GetValue(maxRows));
            Shared.Require(parse.GetValue(randomStarts) is not < 0, "--random-starts", "at least 0", parse.GetValue(randomStarts));
            // The options state what was typed; everything else is FitOptions' default (the core's FitConfig.defaults).
            var options = new FitOptions
            {
                Experts = parse.GetValue(k),
                Activation = Shared.ParseActivation(parse.GetValue(activation)!, parse.GetValue(slope)),
            };
            if (parse.GetValue(family) is { } familyName)
            {
                options.Family = ExpertFamilies.Parse(familyName);
            }
            options.DegreesOfFreedom = Shared.DegreesOfFreedom(parse.GetValue(df), options.Family);
            if (parse.GetValue(method) is { } m)
            {
                options.Method = m.ToLowerInvariant() switch
                {
                    "auto" => FitMethod.Auto,
                    "l4" => FitMethod.L4,
                    "spectral" => FitMethod.Spectral,
                    "l2" => FitMethod.L2,
                    "em" => FitMethod.Em,
                    _ => throw new ArgumentException($"Unknown method '{m}'; expected auto, l4, spectral, em or l2.", "method"),
                };
            }

            if (parse.GetValue(paperModel))
            {
                options = options.WithPaperModel();
            }

            options.Sigma = parse.GetValue(sigma);
            if (parse.GetValue(noIntercept))
            {
                options.Intercepts = false;
            }

            if (parse.GetValue(commonSigma))
            {
                options.CommonSigma = true;
            }

            if (parse.GetValue(noStandardise))
            {
                options.Standardise = false;
            }

            if (parse.GetValue(randomStarts) is int starts)
            {
                options.RandomStarts = starts;
            }

            if (parse.GetValue(solver) is { } l4Solver)
            {
                options.Solver = l4Solver.ToLowerInvariant() switch
                {
                    "subspace" => L4Solver.Subspace,
                    "sgd" => L4Solver.Sgd,
                    _ => throw new ArgumentException($"Unknown L4 solver '{l4Solver}'; expected subspace or sgd.", "l4-solver"),
                };
            }

            if (parse.GetValue(transform) is { } transformName)
            {
                options.Transform = transformName.ToLowerInvariant() switch
                {
                    "bounded" => OutputTransformKind.Bounded,
                    "polynomial" => OutputTransformKind.Polynomial,
                    _ => throw new ArgumentException($"Unknown transform '{transformName}'; expected bounded or polynomial.", "transform"),
                };
            }

            // --se bootstrap: the aligned bootstrap of the fitted model on its rows (moe bootstrap's defaults).
            var bootstrapSe = false;
            if (parse.GetResult(se) is not null)
            {
                bootstrapSe = string.Equals(parse.GetValue(se), "bootstrap", StringComparison.OrdinalIgnoreCase);
                options.StandardErrors = bootstrapSe ? StandardErrorKind.None : (parse.GetValue(se) ?? "observed").ToLowerInvariant() switch
                {
                    "observed" => StandardErrorKind.Observed,
                    "sandwich" => StandardErrorKind.Sandwich,
                    var kind => throw new ArgumentException($"Unknown --se '{kind}'; expected observed, sandwich or bootstrap.", "se"),
                };
                Shared.Require(!bootstrapSe || parse.GetValue(sigma) is null, "--se bootstrap", "used without --sigma (its replicates fit every noise level)", "with --sigma");
                Shared.Require(parse.GetValue(maxRows) is null, "--se", "used without --max-rows (standard errors need the data in memory)", "with --max-rows");
            }

            if (parse.GetValue(noPolish))
            {
                options.Polish = false;
            }

            if (parse.GetValue(seed) is long chosenSeed)
            {
                options.Seed = chosenSeed;
            }

            var roles = roleOptions.Read(parse, options.Family);
            FitResult result;
            string rows;
            Dataset? fitted = null;
            if (parse.GetValue(cluster) is { } where)
            {
                // Plain progress lines: the retry messages of a cluster fit go to the same stream.
                var reporter = new ProgressReporter(error);
                Shared.Require(parse.GetResult(se) is null, "--se", "used without --cluster (standard errors need the data in memory)", "with --cluster");
                Shared.Require(parse.GetValue(requestTimeout) > 0, "--request-timeout", "positive", parse.GetValue(requestTimeout));
                var limit = parse.GetValue(maxRows) ?? int.MaxValue;
                result = ClusterCommands.Fit(where, dataPath.FullName, roles, options, limit, reporter,
                    TimeSpan.FromSeconds(parse.GetValue(requestTimeout)), error, out var total, out var count, out var on);
                rows = string.Create(CultureInfo.InvariantCulture, $"n={total} in {count} shards on {on}, {result.Passes} passes");
            }
            else if (parse.GetValue(maxRows) is not null || shards)
            {
                Shared.Require(parse.GetResult(se) is null, "--se", "used with a single data file and without --max-rows (standard errors need the data in memory)", "with a source read in passes");
                var source = roles is null ? DataSources.Files(dataPath.FullName) : DataSources.Files(dataPath.FullName, roles);
                var limit = parse.GetValue(maxRows) ?? int.MaxValue;
                var total = source.Shards.Sum(sh => sh.Rows);
                result = Terminal.WithFitProgress(error, reporter => MoeLearner.FitSource(source, options, limit, reporter));
                var pieces = source.Shards.Count == 1 ? "" : $" in {source.Shards.Count} shards";
                rows = total <= limit
                    ? string.Create(CultureInfo.InvariantCulture, $"n={total}{pieces}")
                    : string.Create(CultureInfo.InvariantCulture, $"n={total}{pieces}, read in passes, at most {limit} rows in memory, {result.Passes} passes");
            }
            else
            {
                var dataset = roles is null ? Dataset.Load(dataPath.FullName) : Dataset.Load(dataPath.FullName, roles);
                fitted = dataset;
                result = Terminal.WithFitProgress(error, reporter => MoeLearner.Fit(dataset, options, reporter));
                rows = dataset.Weights is { } weights
                    ? string.Create(CultureInfo.InvariantCulture, $"n={dataset.Count} rows weighing {weights.Sum():G6}")
                    : string.Create(CultureInfo.InvariantCulture, $"n={dataset.Count}");
            }

            var file = parse.GetValue(outPath)!;
            result.Model.Save(Shared.PrepareOutput(file));
            if (parse.GetValue(report) is { } reportFile)
            {
                AtomicFile.WriteAllText(Shared.PrepareOutput(reportFile), Report(result));
            }

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
                .Select(g => string.Create(CultureInfo.InvariantCulture, $"{g.Key.Name()} {g.Sum(t => t.Seconds):F2}s")));
            var model = result.Model;
            var sigmas = model.Sigmas.Distinct().Count() == 1
                ? string.Create(CultureInfo.InvariantCulture, $"sigma={model.Sigma:G6}")
                : string.Create(CultureInfo.InvariantCulture, $"sigmas={string.Join("/", model.Sigmas.Select(v => v.ToString("G4", CultureInfo.InvariantCulture)))}");
            var experts = model.Family == ExpertFamily.StudentT
                ? string.Create(CultureInfo.InvariantCulture, $"student-t experts, {sigmas}, df={string.Join("/", model.DegreesOfFreedom.Select(v => v.ToString("G4", CultureInfo.InvariantCulture)))}")
                : model.Family.HasNoiseLevels() ? $"{model.Activation}, {sigmas}" : $"{model.Family.Name()} experts";
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"fitted k={model.Experts}, d={model.Dimension}, {experts} on {rows} ({Exit(result.Exit)}{warned}); wrote {file.Name}"));
            if (Terminal.IsTerminal(output))
            {
                var console = Terminal.On(output);
                if (result.Candidates.Count > 0)
                {
                    console.Write(Tables.Candidates(result));
                }

                console.Write(Tables.Stages(result));
            }
            else
            {
                if (result.Candidates.Count > 0)
                {
                    var scored = result.Candidates[0].AllRows ? "log-likelihood per row, each fitted on every row" : "held-out log-likelihood per row";
                    output.WriteLine($"initializer: {result.Initializer}; candidates by {scored}:");
                    foreach (var c in result.Candidates)
                    {
                        output.WriteLine(c.Model is null
                            ? $"  {c.Initializer,-18} failed: {c.Failure}"
                            : string.Create(CultureInfo.InvariantCulture, $"  {c.Initializer,-18} {c.LogLikelihood,12:F6}"));
                    }
                }

                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"stage times: {times}; total {result.Stages.Sum(t => t.Seconds):F2}s"));
            }
            if (result.StandardErrors is { } errors)
            {
                WriteErrors(output, model, errors);
            }

            if (bootstrapSe && fitted is not null)
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                var boot = MoeLearner.Bootstrap(model, fitted, new BootstrapOptions { CommonSigma = options.CommonSigma, Seed = options.Seed });
                output.Write(BootstrapCommand.Table(boot, clock.Elapsed.TotalSeconds));
            }

            return CliApp.Success;
        });
        return command;
    }

    /// <summary>The fit report: the winner, every candidate, the stages and the warnings (JSON; a failed candidate's
    /// likelihood is null, as JSON has no infinities).</summary>
    private static string Report(FitResult result)
    {
        var doc = new Dictionary<string, object?>
        {
            ["initializer"] = result.Initializer,
            ["exit"] = Exit(result.Exit),
            ["candidates"] = result.Candidates.Select(c => new Dictionary<string, object?>
            {
                ["initializer"] = c.Initializer,
                ["log_likelihood"] = double.IsFinite(c.LogLikelihood) ? c.LogLikelihood : null,
                ["scored_on"] = c.AllRows ? "all-rows" : "held-out",
                ["failure"] = c.Failure,
                ["seconds"] = c.Seconds,
            }).ToArray(),
            ["stages"] = result.Stages.Select(st => new Dictionary<string, object?>
            {
                ["stage"] = st.Stage.Name(),
                ["iterations"] = st.Iterations,
                ["final_loss"] = st.FinalLoss is { } v && double.IsFinite(v) ? v : null,
                ["exit"] = Exit(st.Exit),
                ["seconds"] = st.Seconds,
            }).ToArray(),
            ["warnings"] = result.Warnings.Select(w => new Dictionary<string, object?>
            {
                ["code"] = w.Code.Name(),
                ["message"] = w.Message,
            }).ToArray(),
        };
        return JsonText.Write(doc, indented: true) + "\n";
    }

    /// <summary>Every parameter with its standard error and 95% Wald interval, a coefficient named by its column (the
    /// data's name, a categorical column's level as <c>column=level</c>, when the model records them; else its
    /// position).</summary>
    private static void WriteErrors(TextWriter output, MixtureOfExperts model, ParameterErrors errors)
    {
        var z = ParameterErrors.Z(0.95);
        output.WriteLine($"standard errors ({(errors.Method == StandardErrorKind.Sandwich ? "sandwich" : "observed information")}), 95% Wald intervals:");
        var a = model.Regressors;
        var w = model.Gating;
        string Column(IReadOnlyList<string>? names, int t) => names is { } n && t < n.Count ? n[t] : (t + 1).ToString(CultureInfo.InvariantCulture);
        var width = Math.Max(12, new[] { model.ExpertColumns, model.GateColumns }
            .Where(n => n is not null).SelectMany(n => n!).Select(n => n.Length + 5).DefaultIfEmpty(0).Max());
        void Row(string name, double estimate, double se) => output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {name.PadRight(width)} {estimate,12:G6} ± {se,10:G4}   [{estimate - z * se:G6}, {estimate + z * se:G6}]"));
        for (var i = 0; i < model.Experts; i++)
        {
            for (var t = 0; t < a.GetLength(1); t++)
            {
                Row($"a{i + 1}[{Column(model.ExpertColumns, t)}]", a[i, t], errors.Regressors[i, t]);
            }

            if (errors.RegressorIntercepts.Length > 0)
            {
                Row($"b{i + 1}", model.RegressorIntercepts[i], errors.RegressorIntercepts[i]);
            }
        }

        for (var j = 0; j < model.Experts - 1; j++)
        {
            for (var t = 0; t < w.GetLength(1); t++)
            {
                Row($"w{j + 1}[{Column(model.GateColumns, t)}]", w[j, t], errors.Gating[j, t]);
            }

            if (errors.GatingIntercepts.Length > 0)
            {
                Row($"c{j + 1}", model.GatingIntercepts[j], errors.GatingIntercepts[j]);
            }
        }

        for (var i = 0; i < errors.Sigmas.Length; i++)
        {
            Row($"sigma{i + 1}", model.Sigmas[i], errors.Sigmas[i]);
        }

        if (model.DegreesOfFreedom.Length > 0)
        {
            // ν inside (1, 200) is a parameter of the information, so the errors above allow for its estimation; at a
            // bound it is held (docs/math.md §14.2).
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  degrees of freedom (their estimation allowed for above; one at 1 or 200 is held): {string.Join(", ", model.DegreesOfFreedom.Select((v, i) => $"nu{i + 1} = {v:G4}"))}"));
        }

        if (errors.Conditioning < 1e-8)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  note: the information is ill-conditioned ({errors.Conditioning:G2}); some intervals are unreliable."));
        }
    }

    /// <summary>The exit condition as the CLI prints it.</summary>
    private static string Exit(ExitCondition exit) => exit switch
    {
        ExitCondition.Converged => "converged",
        ExitCondition.MaxIterations => "max-iterations",
        ExitCondition.NoProgress => "no-progress",
        ExitCondition.HandedOver => "handed-over",
        _ => "completed",
    };

    public static Command CreateEval(TextWriter output)
    {
        var model = new Argument<FileInfo>("model") { Description = "the fitted model file" };
        var truth = new Argument<FileInfo>("truth") { Description = "the ground-truth model file" };
        var data = new Option<FileInfo?>("--data") { Description = "a CSV or Parquet file (by its extension) for the average log-likelihood" };
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
            if (parse.GetValue(data) is { } file)
            {
                var d = fitted.ReadData(file.FullName);
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
                output.WriteLine(JsonText.Write(doc, indented: true));
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
