using System.CommandLine;
using System.Globalization;
using System.Text;
using MoE.Api;

namespace MoE.Cli.Commands;

/// <summary><c>moe bootstrap</c>: the bootstrap with aligned labels of a fitted model (docs/inference.md §2.2).</summary>
internal static class BootstrapCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Create(TextWriter output, TextWriter error)
    {
        var defaults = new BootstrapOptions();
        var model = new Argument<FileInfo>("model") { Description = "the fitted model file (JSON)" };
        var data = new Argument<FileInfo>("data") { Description = "the data it was fitted to (by the model's column names when it records them)" };
        var replicates = new Option<int>("--replicates") { Description = $"B, the bootstrap replicates (default {defaults.Replicates}; 1000 or more for the ends of 95% intervals)", DefaultValueFactory = _ => defaults.Replicates };
        var parametric = new Option<bool>("--parametric") { Description = "draw the responses from the fitted model at the observed covariates instead of resampling the rows" };
        var level = new Option<double>("--level") { Description = "the intervals' probability", DefaultValueFactory = _ => defaults.Level };
        var seed = new Option<long>("--seed") { Description = "the seed (replicate b draws from its own stream: the same result on any number of cores)", DefaultValueFactory = _ => defaults.Seed };
        var freshStarts = new Option<bool>("--fresh-starts") { Description = "fit each replicate with the default initializers and a seed of its own instead of from the model (slower)" };
        var commonSigma = new Option<bool>("--common-sigma") { Description = "the model's fit had one noise level for every expert" };
        var weights = new Option<string?>("--weights") { Description = "the column of the rows' frequency weights, as the fit read them" };
        var outPath = new Option<FileInfo?>("--out") { Description = "write every replicate's aligned parameters to this CSV file (one row per replicate)" };
        var command = new Command("bootstrap", "bootstrap standard errors and intervals of a fitted model, each replicate's experts matched to the model's (label switching handled)")
        {
            model, data, replicates, parametric, level, seed, freshStarts, commonSigma, weights, outPath,
        };
        command.SetAction(parse =>
        {
            Shared.CheckPaths([parse.GetValue(model), parse.GetValue(data)], [parse.GetValue(outPath)]);
            Shared.Require(parse.GetValue(replicates) >= 2, "--replicates", "at least 2", parse.GetValue(replicates));
            Shared.Require(parse.GetValue(level) is > 0 and < 1, "--level", "in (0, 1)", parse.GetValue(level));
            var m = MixtureOfExperts.Load(parse.GetValue(model)!.FullName);
            var rows = Shared.ReadFitData(m, parse.GetValue(data)!, parse.GetValue(weights));
            var b = parse.GetValue(replicates);
            var step = Math.Max(1, b / 10);
            var gate = new object();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var options = new BootstrapOptions
            {
                Replicates = b,
                Kind = parse.GetValue(parametric) ? BootstrapKind.Parametric : BootstrapKind.Nonparametric,
                Level = parse.GetValue(level),
                Seed = parse.GetValue(seed),
                FromFit = !parse.GetValue(freshStarts),
                CommonSigma = parse.GetValue(commonSigma),
            };
            var result = MoeLearner.Bootstrap(m, rows, options, new SynchronousProgress<int>(done =>
            {
                if (done % step == 0)
                {
                    lock (gate)
                    {
                        error.WriteLine($"bootstrap: {done} of {b} replicates");
                    }
                }
            }));
            output.Write(Table(result, clock.Elapsed.TotalSeconds));
            if (parse.GetValue(outPath) is { } file)
            {
                AtomicFile.WriteAllText(Shared.PrepareOutput(file), ReplicatesCsv(result));
                output.WriteLine($"wrote {file.Name}");
            }

            return CliApp.Success;
        });
        return command;
    }

    /// <summary>The parameter table: estimate, bootstrap SE, percentile and basic intervals, and what was left out.</summary>
    internal static string Table(BootstrapResult r, double seconds)
    {
        var text = new StringBuilder();
        var kind = r.Kind == BootstrapKind.Parametric ? "parametric" : "nonparametric";
        text.Append(Inv, $"{kind} bootstrap, {r.Used} replicates ({seconds:F1} s), {r.Level:P0} intervals, replicates aligned to the model's labels:\n");
        var width = Math.Max(10, r.Names.Max(n => n.Length) + 2);
        text.Append(Inv, $"  {"parameter".PadRight(width)} {"estimate",12} {"boot SE",10}   {"percentile interval",-27} basic interval\n");
        for (var t = 0; t < r.Names.Count; t++)
        {
            text.Append(Inv, $"  {r.Names[t].PadRight(width)} {r.Estimates[t],12:G6} {r.StandardErrors[t],10:G4}   {$"[{r.PercentileLower[t]:G6}, {r.PercentileUpper[t]:G6}]",-27} [{r.BasicLower[t]:G6}, {r.BasicUpper[t]:G6}]\n");
        }

        text.Append(Inv, $"ambiguous alignments: {r.Ambiguous} of {r.Used} ({r.AmbiguousShare:P1}){(r.AmbiguousShare > 0.05 ? " - the experts are hard to tell apart in some replicates; read the intervals of the experts involved with care" : "")}\n");
        if (r.Failed > 0)
        {
            text.Append(Inv, $"{r.Failed} replicate(s) failed to fit and are left out; the first: {r.FirstFailure}\n");
        }

        return text.ToString();
    }

    private static string ReplicatesCsv(BootstrapResult r)
    {
        var text = new StringBuilder();
        text.Append("replicate,").AppendJoin(',', r.Names).Append('\n');
        for (var b = 0; b < r.Replicates.GetLength(0); b++)
        {
            text.Append(Inv, $"{b + 1}");
            for (var t = 0; t < r.Names.Count; t++)
            {
                var v = r.Replicates[b, t];
                text.Append(',').Append(double.IsNaN(v) ? "" : v.ToString("R", Inv));
            }

            text.Append('\n');
        }

        return text.ToString();
    }
}
