using System.CommandLine;
using MoE.Cli.Reproduce;

namespace MoE.Cli.Commands;

/// <summary><c>moe reproduce</c>: the paper's experiments as CSVs, PNGs and a report.</summary>
internal static class ReproduceCommand
{
    private static readonly string[] All = ["fig2", "fig3", "fig4", "recovery"];

    public static Command Create(TextWriter output, TextWriter error)
    {
        var which = new Argument<string>("figure") { Description = "fig2, fig3, fig4, recovery or all", DefaultValueFactory = _ => "all" };
        var outDir = new Option<DirectoryInfo>("--out") { Description = "output folder", DefaultValueFactory = _ => new DirectoryInfo("out") };
        var quick = new Option<bool>("--quick") { Description = "fewer runs and sizes (under 2 minutes)" };
        var seed = new Option<long>("--seed") { Description = "random seed", DefaultValueFactory = _ => 1 };
        var command = new Command("reproduce", "reproduce the paper's experiments (Figs 2, 3, 4) and a recovery-vs-n study into an output folder")
        {
            which, outDir, quick, seed,
        };
        command.SetAction(parse =>
        {
            var figure = parse.GetValue(which)!.ToLowerInvariant();
            var figures = figure == "all" ? All
                : All.Contains(figure) ? [figure]
                : throw new ArgumentException($"Unknown figure '{figure}'; expected fig2, fig3, fig4, recovery or all.", "figure");
            var folder = parse.GetValue(outDir)!.FullName;
            if (File.Exists(folder))
            {
                throw new ArgumentException($"--out '{parse.GetValue(outDir)}' is a file; it names the folder the figures go to.", "out");
            }

            var report = Terminal.IsTerminal(error)
                ? Terminal.WithBar(Terminal.On(error), "reproduce",
                    step => new Reproducer(folder, parse.GetValue(quick), parse.GetValue(seed), error, step).Run(figures))
                : new Reproducer(folder, parse.GetValue(quick), parse.GetValue(seed), error).Run(figures);
            output.WriteLine($"wrote {string.Join(", ", figures)} to {folder}; report: {report}");
            return CliApp.Success;
        });
        return command;
    }
}
