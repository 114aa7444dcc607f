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
        var command = new Command("acceptance", "run the learner's seeded acceptance table (success = E_reg <= 0.01 and E_gating <= 0.01)")
        {
            quick, outPath,
        };
        command.SetAction(parse =>
        {
            Shared.CheckPaths([], [parse.GetValue(outPath)]);
            var q = parse.GetValue(quick);
            var report = Markdown(q, Experiments.Acceptance(q, new LineProgress(error)));
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

    private static string Sci(double v) => v.ToString("0.0e+0", CultureInfo.InvariantCulture);

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
