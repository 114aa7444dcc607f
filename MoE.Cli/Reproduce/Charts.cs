using System.Globalization;
using ScottPlot;

namespace MoE.Cli.Reproduce;

/// <summary>PNG line charts with ScottPlot (headless). Values that span decades are drawn on log10 axes with
/// labels at powers of ten.</summary>
internal static class Charts
{
    public const int Width = 900;
    public const int Height = 540;

    /// <summary>One curve: a label, x values, and y values (mean), with an optional min–max band.</summary>
    public sealed record Series(string Label, double[] X, double[] Y, double[]? Low = null, double[]? High = null);

    private static double Log(double v) => Math.Log10(Math.Max(v, 1e-16));

    /// <summary>The bundled fonts lack "ℓ" (U+2113): chart text spells it "l".</summary>
    private static string Text(string s) => s.Replace("ℓ", "l", StringComparison.Ordinal);

    public static void Save(string path, string title, string xLabel, string yLabel, IReadOnlyList<Series> series,
        bool logX = false, bool logY = false)
    {
        var plot = new Plot();
        foreach (var s in series)
        {
            var xs = logX ? s.X.Select(Log).ToArray() : s.X;
            var ys = logY ? s.Y.Select(Log).ToArray() : s.Y;
            if (s.Low is not null && s.High is not null)
            {
                var lo = logY ? s.Low.Select(Log).ToArray() : s.Low;
                var hi = logY ? s.High.Select(Log).ToArray() : s.High;
                var band = plot.Add.FillY(xs, lo, hi);
                band.FillStyle.Color = band.FillStyle.Color.WithAlpha(0.25);
                band.LineStyle.Width = 0;
            }

            var line = plot.Add.ScatterLine(xs, ys);
            line.LegendText = Text(s.Label);
            line.LineWidth = 2;
        }

        if (logX)
        {
            plot.Axes.Bottom.TickGenerator = DecadeTicks();
        }

        if (logY)
        {
            plot.Axes.Left.TickGenerator = DecadeTicks();
        }

        plot.Title(Text(title));
        plot.XLabel(xLabel + (logX ? " (log scale)" : ""));
        plot.YLabel(yLabel + (logY ? " (log scale)" : ""));
        plot.ShowLegend(Alignment.UpperRight);
        // Rendered in memory and written atomically, so an interrupted run leaves no half-written PNG.
        var png = plot.GetImageBytes(Width, Height, ImageFormat.Png);
        MoE.Api.AtomicFile.Write(path, stream => stream.Write(png));
    }

    private static ScottPlot.TickGenerators.NumericAutomatic DecadeTicks() => new()
    {
        MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
        IntegerTicksOnly = true,
        LabelFormatter = v => "1e" + v.ToString("0", CultureInfo.InvariantCulture),
    };
}
