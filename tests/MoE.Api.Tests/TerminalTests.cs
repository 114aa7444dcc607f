using MoE.Cli.Commands;
using Spectre.Console.Testing;

namespace MoE.Api.Tests;

/// <summary>The CLI's terminal renderings (Spectre tables, live progress), drawn on a recording console. The plain
/// renderings for redirected streams are what every other command-line test reads.</summary>
public class TerminalTests
{
    private static readonly Dataset Data = Dataset.FromArrays(Columns(out var y), y);

    // Two regimes on one covariate (the faithful shape): y = 50 + 2x for x < 0, 80 + 2x above, noise 1.
    private static double[,] Columns(out double[] y)
    {
        var truth = MixtureOfExperts.Create(new double[,] { { 2.0 }, { 2.0 } }, [50.0, 80.0], new double[,] { { -6.0 } }, [0.0],
            Activation.Identity, [1.0, 1.0]);
        var data = truth.Sample(400, seed: 3);
        y = data.Y;
        return data.X;
    }

    private static TestConsole Console() => new TestConsole().Width(120).Interactive();

    [Fact]
    public void The_selection_table_marks_the_chosen_k()
    {
        var selection = MoeLearner.Select(Data, new FitOptions { Experts = 2, Seed = 1 }, [1, 2]);
        var console = Console();
        console.Write(Tables.Selection(selection));
        var lines = console.Output.Split('\n');
        Assert.Equal(2, selection.Chosen);
        var chosen = Assert.Single(lines, l => l.Contains("← BIC"));
        Assert.StartsWith("│ 2 │", chosen.TrimStart());
        Assert.Contains(lines, l => l.TrimStart().StartsWith("│ 1 │", StringComparison.Ordinal));
    }

    [Fact]
    public void The_fit_tables_list_every_candidate_and_stage()
    {
        var fit = MoeLearner.Fit(Data, new FitOptions { Experts = 2, Seed = 1 });
        var console = Console();
        console.Write(Tables.Candidates(fit));
        console.Write(Tables.Stages(fit));
        string text = console.Output;
        Assert.Contains($"initializer: {fit.Initializer}", text);
        foreach (var c in fit.Candidates)
        {
            Assert.Contains(c.Initializer, text);
        }

        // d = 1 < k: the moment initializers fail, and the table says why.
        Assert.Contains("failed", text);
        Assert.Contains("needs d >= k", text);
        Assert.Single(text.Split('\n'), l => l.Contains("← chosen") && l.Contains(fit.Initializer));
        Assert.Contains("total", text);
    }

    [Fact]
    public void Live_progress_shows_a_line_per_stage_and_returns_the_result()
    {
        var console = Console();
        int result = Terminal.WithFitProgress(console, progress =>
        {
            progress.Report(new FitProgress(FitStage.Moments, 1, 0.5));
            progress.Report(new FitProgress(FitStage.Em, 3, 0.25));
            progress.Report(new FitProgress(FitStage.Moments, 2, 0.125));
            return 42;
        });
        Assert.Equal(42, result);
        string text = console.Output;
        Assert.Contains("em           iteration     3", text);
        Assert.Contains("moments      iteration     2", text);
    }

    [Fact]
    public void A_failing_fit_under_live_progress_throws_its_own_exception()
    {
        var ex = Assert.Throws<ArgumentException>(() => Terminal.WithFitProgress<int>(Console(), _ => throw new ArgumentException("bad k")));
        Assert.Equal("bad k", ex.Message);
    }

    [Fact]
    public void The_bar_reaches_the_end()
    {
        var console = Console();
        var seen = Terminal.WithBar(console, "reproduce", step =>
        {
            for (int i = 0; i < 4; i++)
            {
                step(i, 4, $"step {i + 1}");
            }

            return "done";
        });
        Assert.Equal("done", seen);
        Assert.Contains("100%", console.Output);
    }
}
