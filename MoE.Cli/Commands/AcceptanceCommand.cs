using System.CommandLine;
using System.Globalization;
using System.Text;
using MoE.Api;

namespace MoE.Cli.Commands;

/// <summary><c>moe acceptance</c>: the learner's acceptance table (seeded, run by the core), as Markdown.</summary>
internal static class AcceptanceCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var quick = new Option<bool>("--quick") { Description = "fewer seeds and samples (minutes become seconds)" };
        var outPath = new Option<FileInfo?>("--out") { Description = "also write the Markdown table to this file" };
        var frontier = new Option<bool>("--frontier") { Description = "the frontier table instead: d in {10,20,50} x k in {2,3,4,6} x g x sigma, n = 200,000, the defaults of a user" };
        var seeds = new Option<int>("--seeds") { Description = "seeds per frontier cell", DefaultValueFactory = _ => 2 };
        var methods = new Option<string>("--methods") { Description = "frontier methods, comma-separated: auto, spectral, em", DefaultValueFactory = _ => "auto" };
        var cells = new Option<string[]>("--cell") { Description = "only the frontier cells whose setting contains this text (repeatable), e.g. \"d=50, k=6\"", AllowMultipleArgumentsPerToken = false };
        var family = new Option<string?>("--family") { Description = "with --frontier: the frontier of an expert family instead (poisson, bernoulli, student-t): d in {5,10,20} x k in {2,3,4}, intercepts" };
        var samples = new Option<int>("--n") { Description = "with --frontier --family: rows per fit", DefaultValueFactory = _ => 200_000 };
        var command = new Command("acceptance", "run the learner's seeded acceptance table (success = E_reg <= 0.01 and E_gating <= 0.01)")
        {
            quick, outPath, frontier, seeds, methods, cells, family, samples,
        };
        command.SetAction(parse =>
        {
            Shared.CheckPaths([], [parse.GetValue(outPath)]);
            var q = parse.GetValue(quick);
            Shared.Require(parse.GetValue(seeds) >= 1, "--seeds", "at least 1", parse.GetValue(seeds));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            Shared.Require(parse.GetValue(family) is null || parse.GetValue(frontier), "--family", "used with --frontier", "without it");
            Shared.Require(parse.GetValue(samples) >= 1, "--n", "at least 1", parse.GetValue(samples));
            var rows = parse.GetValue(family) is { } familyName
                ? Experiments.FamilyFrontier(ExpertFamilies.Parse(familyName), parse.GetValue(seeds), parse.GetValue(samples),
                    parse.GetValue(cells) ?? [], new LineProgress(error))
                : parse.GetValue(frontier)
                ? Experiments.Frontier(parse.GetValue(seeds),
                    parse.GetValue(methods)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                    parse.GetValue(cells) ?? [], new LineProgress(error))
                : Experiments.Acceptance(q, new LineProgress(error));
            var report = parse.GetValue(family) is not null ? FamilyFrontierMarkdown(rows, clock.Elapsed)
                : parse.GetValue(frontier) ? FrontierMarkdown(rows, clock.Elapsed) : Markdown(q, rows);
            output.Write(report);
            if (parse.GetValue(outPath) is { } file)
            {
                AtomicFile.WriteAllText(Shared.PrepareOutput(file), report);
            }

            return CliApp.Success;
        });
        return command;
    }

    /// <summary>Each message as a line "acceptance: …" (on the calling thread).</summary>
    private sealed class LineProgress(TextWriter log) : IProgress<string>
    {
        public void Report(string value) => log.WriteLine($"acceptance: {value}");
    }

    /// <summary>An error in the tables' format; a fit that ended in an error (its errors are infinite) reads "failed".</summary>
    private static string Sci(double v) => double.IsFinite(v) ? v.ToString("0.0e+0", CultureInfo.InvariantCulture) : "failed";

    /// <summary>The frontier rows as a Markdown table, with each method's success rate and the run's time.</summary>
    public static string FrontierMarkdown(IReadOnlyList<AcceptanceRow> rows, TimeSpan elapsed)
    {
        var sb = new StringBuilder();
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Frontier table ({Environment.ProcessorCount} cores, {elapsed.TotalMinutes:F1} min). Random unit regressors, free random gating, n = 200,000; a user's defaults (intercepts, a noise level per expert). Success = E_reg <= 0.01 and E_gating <= 0.01 (aligned); medians over seeds; time = mean fit seconds."));
        sb.AppendLine();
        foreach (var method in rows.Select(r => r.Method).Distinct())
        {
            var fits = rows.Where(r => r.Method == method).SelectMany(r => r.Fits).ToArray();
            var ok = fits.Count(f => f.Success);
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"- **{method}**: {ok}/{fits.Length} fits recovered ({100.0 * ok / fits.Length:F1} %); mean {fits.Average(f => f.Seconds):F1} s, slowest {fits.Max(f => f.Seconds):F1} s."));
        }

        sb.AppendLine();
        sb.AppendLine("| setting | method | success | median E_reg | median E_gating | time (s) |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var r in rows)
        {
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Setting} | {r.Method} | {r.Successes}/{r.Fits.Count} | {Sci(r.MedianRegressorError)} | {Sci(r.MedianGatingError)} | {r.MeanSeconds:F2} |"));
        }

        return sb.ToString();
    }

    /// <summary>A family's frontier rows as a Markdown table: n, successes, median errors, time.</summary>
    public static string FamilyFrontierMarkdown(IReadOnlyList<AcceptanceRow> rows, TimeSpan elapsed)
    {
        var sb = new StringBuilder();
        var fits = rows.SelectMany(r => r.Fits).ToArray();
        var ok = fits.Count(f => f.Success);
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Family frontier ({Environment.ProcessorCount} cores, {elapsed.TotalMinutes:F1} min). Random unit regressors, free random gating, intercepts b_i, c_i ~ N(0, 1); a user's defaults with the family. Success = E_reg <= 0.01 and E_gating <= 0.01 (aligned); {ok}/{fits.Length} fits recovered; medians over seeds; time = mean fit seconds."));
        sb.AppendLine();
        sb.AppendLine("| setting | n | success | median E_reg | median E_gating | min LL(fit) − LL(truth) | time (s) |");
        sb.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var r in rows)
        {
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Setting} | {r.Samples:N0} | {r.Successes}/{r.Fits.Count} | {Sci(r.MedianRegressorError)} | {Sci(r.MedianGatingError)} | {r.Fits.Min(f => f.LikelihoodGain):F1} | {r.MeanSeconds:F2} |"));
        }

        return sb.ToString();
    }

    /// <summary>The rows as a Markdown table.</summary>
    public static string Markdown(bool quick, IReadOnlyList<AcceptanceRow> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Acceptance table ({(quick ? "quick" : "full")}; {Environment.ProcessorCount} cores). Success = E_reg <= 0.01 and E_gating <= 0.01 (aligned); medians over seeds; time = mean fit seconds."));
        sb.AppendLine();
        sb.AppendLine("| setting | method | n | success | median E_reg | median E_gating | time (s) |");
        sb.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var r in rows)
        {
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Setting} | {r.Method} | {r.Samples:N0} | {r.Successes}/{r.Fits.Count} | {Sci(r.MedianRegressorError)} | {Sci(r.MedianGatingError)} | {r.MeanSeconds:F2} |"));
        }

        return sb.ToString();
    }
}
