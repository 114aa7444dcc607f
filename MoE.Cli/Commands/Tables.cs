using System.Globalization;
using MoE.Api;
using Spectre.Console;

namespace MoE.Cli.Commands;

/// <summary>The commands' results as Spectre tables, for a terminal (the plain renderings stay in the commands).</summary>
internal static class Tables
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary><c>moe fit</c>'s candidates by log-likelihood per row (held out, or on every row for small data); the
    /// winner marked.</summary>
    public static Table Candidates(FitResult result)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"initializer: [bold]{Markup.Escape(result.Initializer)}[/]")
            .AddColumn("candidate")
            .AddColumn(new TableColumn(result.Candidates.Count > 0 && result.Candidates[0].AllRows ? "log-lik. / row (all rows)" : "held-out log-lik. / row").RightAligned())
            .AddColumn("");
        foreach (var c in result.Candidates)
        {
            var name = Markup.Escape(c.Initializer);
            if (c.Model is null)
            {
                table.AddRow(new Markup(name), new Markup("[red]failed[/]"), new Markup(Markup.Escape(c.Failure ?? "")));
            }
            else if (c.Initializer == result.Initializer)
            {
                var value = c.LogLikelihood.ToString("F6", Inv);
                table.AddRow(new Markup($"[green bold]{name}[/]"), new Markup($"[green bold]{value}[/]"), new Markup("[green]← chosen[/]"));
            }
            else
            {
                table.AddRow(name, c.LogLikelihood.ToString("F6", Inv), "");
            }
        }

        return table;
    }

    /// <summary>A statistic of diagnose's tables: "overflow" where the column's powers overflowed a double, "n/a" where
    /// it is undefined (the skewness of a constant column: callers pass NaN for it), never Infinity or NaN.</summary>
    internal static string Stat(double value, string format) =>
        double.IsFinite(value) ? value.ToString(format, Inv) : double.IsNaN(value) ? "n/a" : "overflow";

    /// <summary>diagnose's line on Mardia's tests and the conditioning, or why they are not defined.</summary>
    internal static string Mardia(DataDiagnosis r) =>
        double.IsNaN(r.MardiaSkewness) || double.IsNaN(r.MardiaKurtosisRatio)
            ? string.Create(Inv, $"Mardia: not defined (a covariate is constant, too large or too small, or the covariates are collinear); correlation condition number {(double.IsFinite(r.Conditioning) && r.Conditioning >= 1 ? (r.Conditioning >= 1e12 ? "singular" : r.Conditioning.ToString("G3", Inv)) : "n/a")}")
            : string.Create(Inv, $"Mardia: skewness {r.MardiaSkewness:G3} (p = {r.MardiaSkewnessP:G2}), kurtosis {r.MardiaKurtosisRatio:F3} x Gaussian (p = {r.MardiaKurtosisP:G2}); correlation condition number {r.Conditioning:G3}");

    /// <summary><c>moe fit</c>'s stage times (a stage that ran several times summed) and their total.</summary>
    public static Table Stages(FitResult result)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("stage")
            .AddColumn(new TableColumn("runs").RightAligned())
            .AddColumn(new TableColumn("seconds").RightAligned());
        foreach (var group in result.Stages.GroupBy(s => s.Stage))
        {
            table.AddRow(Markup.Escape(group.Key.Name()), group.Count().ToString(Inv), group.Sum(s => s.Seconds).ToString("F2", Inv));
        }

        table.AddRow("[bold]total[/]", "", $"[bold]{result.Stages.Sum(s => s.Seconds).ToString("F2", Inv)}[/]");
        return table;
    }

    /// <summary><c>moe select</c>: the criteria per k, BIC's choice in green, degenerate fits in yellow.</summary>
    public static Table Selection(ExpertsSelection selection)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn(new TableColumn("k").RightAligned())
            .AddColumn(new TableColumn("log-likelihood").RightAligned())
            .AddColumn(new TableColumn("params").RightAligned())
            .AddColumn(new TableColumn("AIC").RightAligned())
            .AddColumn(new TableColumn("BIC").RightAligned())
            .AddColumn(new TableColumn("ICL").RightAligned())
            .AddColumn("");
        foreach (var r in selection.Results)
        {
            var style = r.Experts == selection.Chosen ? "green bold" : r.Degenerate ? "yellow" : "default";
            var note = r.Experts == selection.Chosen ? "← BIC" : r.Degenerate ? "degenerate, skipped" : "";
            if (r.Experts == selection.ChosenByIcl)
            {
                note = note.Length == 0 ? "← ICL" : note + ", ICL";
            }

            table.AddRow(
                [r.Experts.ToString(Inv), r.LogLikelihood.ToString("F4", Inv), r.Parameters.ToString(Inv), r.Aic.ToString("F3", Inv),
                    r.Bic.ToString("F3", Inv), r.Icl.ToString("F3", Inv), note],
                style);
        }

        return table;
    }

    /// <summary><c>moe diagnose</c>: each column's moments, strong departures from a Gaussian in yellow.</summary>
    public static Table Columns(DataDiagnosis report, IReadOnlyList<string>? names = null)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("column")
            .AddColumn(new TableColumn("mean").RightAligned())
            .AddColumn(new TableColumn("sd").RightAligned())
            .AddColumn(new TableColumn("skewness").RightAligned())
            .AddColumn(new TableColumn("ex. kurtosis").RightAligned());
        for (var t = 0; t < report.Columns.Count; t++)
        {
            var c = report.Columns[t];
            // |skewness| > 1 or |excess kurtosis| > 2: far enough from a Gaussian that the moment methods' guarantees lapse.
            var style = Math.Abs(c.Skewness) > 1 || Math.Abs(c.ExcessKurtosis) > 2 ? "yellow" : "default";
            table.AddRow(
                [Markup.Escape(names?[t] ?? "x" + (t + 1).ToString(Inv)), Stat(c.Mean, "G5"), Stat(c.Sd, "G5"), Stat(c.Sd > 0 ? c.Skewness : double.NaN, "F3"),
                    Stat(c.Sd > 0 ? c.ExcessKurtosis : double.NaN, "F3")],
                style);
        }

        return table;
    }

    private static Table AddRow(this Table table, string[] cells, string style) =>
        table.AddRow(cells.Select(cell => new Markup($"[{style}]{Markup.Escape(cell)}[/]")).ToArray());
}
