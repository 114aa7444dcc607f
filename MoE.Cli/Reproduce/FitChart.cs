using MoE.Api;
using ScottPlot;

namespace MoE.Cli.Reproduce;

/// <summary>A picture of a fitted mixture against its data (<c>moe plot</c>).
/// <para>d = 1: the data coloured by their most likely expert (the posterior given y), each expert's mean line
/// g(a_i x + b_i), the mixture mean dashed; below it, the gate probabilities p_i(x) on the same x axis.</para>
/// <para>d &gt; 1: the most likely expert's mean against the observed y, coloured the same way, with the diagonal
/// (each expert explains its points if they hug it); beside it, each expert's gate probability against the
/// covariates along that expert's centred gating direction (where the gate hands the expert its share).</para>
/// Every value drawn comes from the façade (<see cref="MixtureOfExperts.PredictDistribution"/>,
/// <see cref="MixtureOfExperts.Responsibilities"/>); this class only lays it out.</summary>
internal static class FitChart
{
    /// <summary>At most this many points are drawn (an even stride through the rows): a scatter of 200,000 points
    /// is a blot, and the picture's message does not change.</summary>
    public const int MaxPoints = 5000;

    /// <summary>Renders the picture and writes it atomically as PNG.</summary>
    /// <returns>The number of points drawn.</returns>
    public static int Save(string path, MixtureOfExperts model, double[,] x, double[] y, string title)
    {
        var png = Render(model, x, y, title, out var drawn);
        AtomicFile.Write(path, stream => stream.Write(png));
        return drawn;
    }

    /// <summary>Renders the picture as PNG bytes (<c>moe plot</c> writes them, <c>moe report</c> embeds them).</summary>
    public static byte[] Render(MixtureOfExperts model, double[,] x, double[] y, string title, out int drawn)
    {
        var n = y.Length;
        var rows = Stride(n);
        var owner = MostLikely(model.Responsibilities(x, y));
        var multiplot = new Multiplot();
        int width, height;
        if (model.Dimension == 1)
        {
            (width, height) = (900, 800);
            OneCovariate(multiplot, model, x, y, rows, owner, title);
        }
        else
        {
            (width, height) = (1400, 600);
            ManyCovariates(multiplot, model, x, y, rows, owner, title);
        }

        using var image = multiplot.Render(width, height);
        drawn = rows.Length;
        return image.GetImageBytes(ImageFormat.Png, 100);
    }

    /// <summary>The calibration picture: the PIT's histogram in ten bins against the uniform's count (a calibrated
    /// model's bars scatter around the line; a U says too narrow, a hump too wide, a slope a biased mean).</summary>
    public static byte[] Calibration(IReadOnlyList<int> histogram, string title)
    {
        var plot = new Plot();
        var bins = histogram.Count;
        var total = histogram.Sum();
        var bars = Enumerable.Range(0, bins).Select(i => new Bar
        {
            Position = (i + 0.5) / bins,
            Value = histogram[i],
            Size = 0.9 / bins,
            FillColor = Colors.SteelBlue,
        }).ToArray();
        plot.Add.Bars(bars);
        var uniform = plot.Add.HorizontalLine((double)total / bins);
        uniform.LineColor = Colors.Black;
        uniform.LinePattern = LinePattern.Dashed;
        uniform.LegendText = "uniform (a calibrated model)";
        plot.Title(title);
        plot.XLabel("PIT: the predictive CDF at the observed response");
        plot.YLabel("rows");
        plot.Axes.SetLimitsX(0, 1);
        plot.Axes.Margins(bottom: 0);
        plot.ShowLegend(Alignment.UpperRight);
        using var image = plot.GetImage(800, 400);
        return image.GetImageBytes(ImageFormat.Png, 100);
    }

    private static void OneCovariate(Multiplot multiplot, MixtureOfExperts model, double[,] x, double[] y, int[] rows,
        int[] owner, string title)
    {
        var k = model.Experts;
        var top = new Plot();
        var bottom = new Plot();
        multiplot.Reset(top);
        multiplot.AddPlot(bottom);
        var grid = new ScottPlot.MultiplotLayouts.CustomGrid();
        grid.Set(top, new GridCell(0, 0, 3, 1, 2, 1));
        grid.Set(bottom, new GridCell(2, 0, 3, 1, 1, 1));
        multiplot.Layout = grid;

        var (lo, hi) = Range(x, 0);
        const int points = 200;
        var xs = new double[points];
        var gridX = new double[points, 1];
        for (var t = 0; t < points; t++)
        {
            xs[t] = lo + ((hi - lo) * t / (points - 1));
            gridX[t, 0] = xs[t];
        }

        var p = model.PredictDistribution(gridX);
        for (var i = 0; i < k; i++)
        {
            var color = Palette(i);
            var mine = rows.Where(r => owner[r] == i).ToArray();
            var dots = top.Add.ScatterPoints(mine.Select(r => x[r, 0]).ToArray(), mine.Select(r => y[r]).ToArray(), color.WithAlpha(0.55));
            dots.MarkerSize = 5;
            dots.LegendText = $"data, most likely expert {i + 1}";
            var line = top.Add.ScatterLine(xs, Column(p.ExpertMeans, i), color);
            line.LineWidth = 2.5f;
            line.LegendText = $"expert {i + 1} mean";
            var gate = bottom.Add.ScatterLine(xs, Column(p.Gate, i), color);
            gate.LineWidth = 2.5f;
            gate.LegendText = $"p{i + 1}(x)";
        }

        var mean = top.Add.ScatterLine(xs, p.Mean, Colors.Black);
        mean.LinePattern = LinePattern.Dashed;
        mean.LineWidth = 1.5f;
        mean.LegendText = "mixture mean";
        top.Title(title);
        top.YLabel("y");
        top.ShowLegend(Alignment.UpperLeft);
        bottom.XLabel("x1");
        bottom.YLabel("gate probability");
        bottom.Axes.SetLimitsY(-0.02, 1.02);
        bottom.ShowLegend(Alignment.UpperRight);
        multiplot.SharedAxes.ShareX([top, bottom]);
    }

    private static void ManyCovariates(Multiplot multiplot, MixtureOfExperts model, double[,] x, double[] y, int[] rows,
        int[] owner, string title)
    {
        var k = model.Experts;
        var d = model.Dimension;
        var left = new Plot();
        var right = new Plot();
        multiplot.Reset(left);
        multiplot.AddPlot(right);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();

        var subset = new double[rows.Length, d];
        for (var s = 0; s < rows.Length; s++)
        {
            for (var t = 0; t < d; t++)
            {
                subset[s, t] = x[rows[s], t];
            }
        }

        var p = model.PredictDistribution(subset);
        // A binomial model's means are probabilities of a success: set them against each row's share y/n.
        var trials = model.TrialsInput;
        double Observed(int row) => trials is { } c ? y[row] / x[row, c] : y[row];
        var direction = CentredGating(model);
        var gateInputs = model.GateInputs;
        for (var i = 0; i < k; i++)
        {
            var color = Palette(i);
            var mine = Enumerable.Range(0, rows.Length).Where(s => owner[rows[s]] == i).ToArray();
            var dots = left.Add.ScatterPoints(mine.Select(s => Observed(rows[s])).ToArray(), mine.Select(s => p.ExpertMeans[s, i]).ToArray(), color.WithAlpha(0.5));
            dots.MarkerSize = 4;
            dots.LegendText = $"most likely expert {i + 1}";

            // The gate's own covariates (a split design's gate reads its columns only).
            var along = new double[rows.Length];
            for (var s = 0; s < rows.Length; s++)
            {
                for (var t = 0; t < gateInputs.Count; t++)
                {
                    along[s] += subset[s, gateInputs[t]] * direction[i, t];
                }
            }

            var gate = right.Add.ScatterPoints(along, Column(p.Gate, i), color.WithAlpha(0.45));
            gate.MarkerSize = 3;
            gate.LegendText = $"p{i + 1}(x)";
        }

        var (ylo, yhi) = trials is null ? (y.Min(), y.Max()) : (0.0, 1.0);
        var diagonal = left.Add.Line(ylo, ylo, yhi, yhi);
        diagonal.Color = Colors.Black;
        diagonal.LinePattern = LinePattern.Dashed;
        diagonal.LegendText = "fitted = observed";
        left.Title(title);
        left.XLabel(trials is null ? "observed y" : "observed share of successes y/n");
        left.YLabel(trials is null ? "fitted: the most likely expert's mean" : "fitted: the most likely expert's probability of a success");
        left.ShowLegend(Alignment.UpperLeft);
        right.Title("gate probability along each expert's gating direction");
        right.XLabel(gateInputs.Count == d
            ? "x along the expert's gating direction (w_i - mean of w) / |.|"
            : $"the gate's covariates ({string.Join(", ", model.GateColumns ?? gateInputs.Select(t => $"x{t + 1}").ToArray())}) along the expert's gating direction");
        right.YLabel("gate probability");
        right.Axes.SetLimitsY(-0.02, 1.02);
        right.ShowLegend(Alignment.UpperRight);
    }

    /// <summary>Unit rows (w_i − w̄)/|w_i − w̄|: the softmax is unchanged by a common shift of the gating rows, so the
    /// centred rows are the identifiable directions in which the gate moves probability towards each expert (the
    /// last expert, whose row is fixed at zero, gets a direction too). A zero row stays zero.</summary>
    private static double[,] CentredGating(MixtureOfExperts model)
    {
        var given = model.Gating; // (k−1)×d_G; w_k = 0
        var (k, d) = (model.Experts, given.GetLength(1));
        var w = new double[k, d];
        for (var i = 0; i < k - 1; i++)
        {
            for (var t = 0; t < d; t++)
            {
                w[i, t] = given[i, t];
            }
        }

        var u = new double[k, d];
        for (var t = 0; t < d; t++)
        {
            var mean = 0.0;
            for (var i = 0; i < k; i++)
            {
                mean += w[i, t] / k;
            }

            for (var i = 0; i < k; i++)
            {
                u[i, t] = w[i, t] - mean;
            }
        }

        for (var i = 0; i < k; i++)
        {
            var norm = 0.0;
            for (var t = 0; t < d; t++)
            {
                norm += u[i, t] * u[i, t];
            }

            norm = Math.Sqrt(norm);
            for (var t = 0; t < d && norm > 0; t++)
            {
                u[i, t] /= norm;
            }
        }

        return u;
    }

    /// <summary>Up to <see cref="MaxPoints"/> row indices at an even stride, always including the first row.</summary>
    private static int[] Stride(int n)
    {
        if (n <= MaxPoints)
        {
            return Enumerable.Range(0, n).ToArray();
        }

        var rows = new int[MaxPoints];
        for (var s = 0; s < MaxPoints; s++)
        {
            rows[s] = (int)((long)s * n / MaxPoints);
        }

        return rows;
    }

    private static int[] MostLikely(double[,] r)
    {
        var owner = new int[r.GetLength(0)];
        for (var s = 0; s < owner.Length; s++)
        {
            var best = 0;
            for (var i = 1; i < r.GetLength(1); i++)
            {
                if (r[s, i] > r[s, best])
                {
                    best = i;
                }
            }

            owner[s] = best;
        }

        return owner;
    }

    private static (double Low, double High) Range(double[,] x, int column)
    {
        var (lo, hi) = (double.PositiveInfinity, double.NegativeInfinity);
        for (var r = 0; r < x.GetLength(0); r++)
        {
            lo = Math.Min(lo, x[r, column]);
            hi = Math.Max(hi, x[r, column]);
        }

        var pad = hi > lo ? 0.03 * (hi - lo) : 0.5;
        return (lo - pad, hi + pad);
    }

    private static double[] Column(double[,] m, int i)
    {
        var c = new double[m.GetLength(0)];
        for (var r = 0; r < c.Length; r++)
        {
            c[r] = m[r, i];
        }

        return c;
    }

    private static Color Palette(int i) => new ScottPlot.Palettes.Category10().GetColor(i);
}
