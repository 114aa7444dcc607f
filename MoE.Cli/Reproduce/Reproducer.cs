using System.Diagnostics;
using System.Globalization;
using System.Text;
using MoE.Api;

namespace MoE.Cli.Reproduce;

/// <summary>Re-runs the paper's experiments (Figs 2, 3, 4) and a recovery-vs-n study, writing a CSV and PNGs
/// per figure and a report.md that embeds them.</summary>
internal sealed class Reproducer(string outDir, bool quick, long seed, TextWriter log, bool interactive = false)
{
    private const double Sigma = 0.05;
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private readonly int runs = quick ? 3 : 5;
    private readonly int n = 50_000;
    private readonly SgdOptions l4Sgd = new(60, 1024, 0.003, 0.0003, 5.0);
    private readonly SgdOptions l2Sgd = new(60, 1024, 0.05, 0.005, 5.0);
    private readonly SgdOptions gatingSgd = new(30, 1024, 1.0, 0.1, 5.0);
    private readonly SgdOptions fig4Sgd = new(60, 128, 0.001, 0.001, 5.0);
    private readonly StringBuilder report = new();
    private readonly List<string> timings = [];

    private int done;
    private int total = 1;

    /// <summary>A step starts: a progress bar on a terminal, a plain line otherwise.</summary>
    private void Log(string message)
    {
        done++;
        if (interactive)
        {
            var filled = (int)Math.Round(30.0 * (done - 1) / total);
            log.Write($"\r[{new string('#', filled)}{new string('.', 30 - filled)}] {100 * (done - 1) / total,3}% {message,-40}");
        }
        else
        {
            log.WriteLine($"reproduce: [{done}/{total}] {message}");
        }
    }

    private string PathOf(string file) => Path.Combine(outDir, file);

    private static double RegressorError(double[,] a, MixtureOfExperts truth) =>
        Metrics.Compare(MixtureOfExperts.Create(a, truth.Gating, truth.Activation, truth.Sigma), truth).RegressorError;

    private static double GatingError(double[,] a, double[,] w, MixtureOfExperts truth) =>
        Metrics.Compare(MixtureOfExperts.Create(a, w, truth.Activation, truth.Sigma), truth).GatingError;

    private static (double[] Mean, double[] Low, double[] High) Band(IReadOnlyList<double[]> curves) =>
        (Enumerable.Range(0, curves[0].Length).Select(e => curves.Average(c => c[e])).ToArray(),
         Enumerable.Range(0, curves[0].Length).Select(e => curves.Min(c => c[e])).ToArray(),
         Enumerable.Range(0, curves[0].Length).Select(e => curves.Max(c => c[e])).ToArray());

    private static double[] Epochs(int count) => Enumerable.Range(0, count).Select(e => (double)e).ToArray();

    private T Timed<T>(string what, Func<T> f)
    {
        var clock = Stopwatch.StartNew();
        var result = f();
        timings.Add(string.Create(Inv, $"| {what} | {clock.Elapsed.TotalSeconds:F2} |"));
        return result;
    }

    /// <summary>Figs 2 and 3: ℓ2 vs L4 by SGD (panel a), then L_log by SGD with A fixed at A*, Â(L4), Â(ℓ2) (panel b).</summary>
    private void RegressorsAndGating(string name, bool randomGating)
    {
        var csv = new StringBuilder("panel,series,run,epoch,value\n");
        var l4Curves = new List<double[]>();
        var l2Curves = new List<double[]>();
        var gating = new Dictionary<string, List<double[]>> { ["A = A*"] = [], ["A = Â from L4"] = [], ["A = Â from ℓ2"] = [] };
        for (var run = 0; run < runs; run++)
        {
            Log($"{name} run {run + 1}/{runs}");
            var truth = randomGating
                ? GroundTruth.Create(GroundTruthPreset.RandomGating, 2, 10, Activation.Identity, Sigma, 1.0, seed + run)
                : GroundTruth.Create(GroundTruthPreset.Orthogonal, 2, 10, Activation.Identity, Sigma);
            var data = truth.Sample(n, seed * 1000 + run);
            var l4 = Timed($"{name}: SGD on L4 (one run)", () => Experiments.SgdL4Path(data, 2, Activation.Identity, Sigma, l4Sgd, seed + run));
            var l2 = Timed($"{name}: SGD on ℓ2 (one run)", () => Experiments.SgdL2Path(data, 2, Activation.Identity, l2Sgd, seed + run));
            var l4Curve = l4.Select(a => RegressorError(a, truth)).ToArray();
            var l2Curve = l2.Select(m => Metrics.Compare(m, truth).RegressorError).ToArray();
            l4Curves.Add(l4Curve);
            l2Curves.Add(l2Curve);
            for (var e = 0; e < l4Curve.Length; e++)
            {
                csv.Append(Inv, $"a,L4,{run},{e},{l4Curve[e]:R}\n");
                csv.Append(Inv, $"a,l2,{run},{e},{l2Curve[e]:R}\n");
            }

            var fromL4 = Experiments.ResolveRegressors(l4[^1], Activation.Identity, Sigma, data, seed + run);
            var fixedA = new Dictionary<string, double[,]>
            {
                ["A = A*"] = truth.Regressors,
                ["A = Â from L4"] = fromL4.Regressors,
                ["A = Â from ℓ2"] = l2[^1].Regressors,
            };
            foreach (var (label, a) in fixedA)
            {
                var model = MixtureOfExperts.Create(a, new double[1, 10], Activation.Identity, Sigma);
                var path = Timed($"{name}: SGD on L_log, {label} (one run)", () => Experiments.SgdGatingPath(data, model, gatingSgd, seed + run));
                var curve = path.Select(w => GatingError(a, w, truth)).ToArray();
                gating[label].Add(curve);
                for (var e = 0; e < curve.Length; e++)
                {
                    csv.Append(Inv, $"b,{label},{run},{e},{curve[e]:R}\n");
                }
            }
        }

        File.WriteAllText(PathOf($"{name}.csv"), csv.ToString());
        List<Charts.Series> SeriesOf(string label, List<double[]> curves)
        {
            if (!randomGating)
            {
                var (mean, low, high) = Band(curves);
                return [new Charts.Series($"{label} (mean, min–max band)", Epochs(mean.Length), mean, low, high)];
            }

            return curves.Select((c, i) => new Charts.Series($"{label}, run {i + 1}", Epochs(c.Length), c)).ToList();
        }

        var setting = randomGating ? "w₁ uniform on the unit sphere" : "w₁ = e₃";
        Charts.Save(PathOf($"{name}a.png"), $"{Title(name)}a: regressor error, SGD on ℓ2 vs L4 ({setting})", "epoch", "E_reg",
            [.. SeriesOf("ℓ2", l2Curves), .. SeriesOf("L4", l4Curves)], logY: true);
        Charts.Save(PathOf($"{name}b.png"), $"{Title(name)}b: gating error, SGD on L_log with A fixed ({setting})", "epoch", "E_gating",
            gating.SelectMany(g => SeriesOf(g.Key, g.Value)).ToList(), logY: true);

        report.AppendLine(Inv, $"## {Title(name)}: {setting}");
        report.AppendLine();
        report.AppendLine(Inv, $"![{name}a]({name}a.png)");
        report.AppendLine();
        report.AppendLine(Inv, $"![{name}b]({name}b.png)");
        report.AppendLine();
        report.AppendLine("| method | final error: mean | min | max | runs with error ≤ 0.01 |");
        report.AppendLine("|---|---|---|---|---|");
        void Final(string label, List<double[]> curves)
        {
            var finals = curves.Select(c => c[^1]).ToArray();
            report.AppendLine(Inv, $"| {label} | {finals.Average():0.0e+0} | {finals.Min():0.0e+0} | {finals.Max():0.0e+0} | {finals.Count(f => f <= 0.01)}/{finals.Length} |");
        }

        Final("E_reg, SGD on L4", l4Curves);
        Final("E_reg, SGD on ℓ2", l2Curves);
        foreach (var (label, curves) in gating)
        {
            Final($"E_gating, SGD on L_log, {label}", curves);
        }

        report.AppendLine();
    }

    private static string Title(string name) => name switch
    {
        "fig2" => "Fig. 2",
        "fig3" => "Fig. 3",
        _ => name,
    };

    /// <summary>Fig 4: SGD on L4 with batch 128 and learning rate 0.001, d = 5, k = 2.</summary>
    private void Fig4()
    {
        var csv = new StringBuilder("panel,series,run,epoch,value\n");
        var curves = new List<double[]>();
        for (var run = 0; run < runs; run++)
        {
            Log($"fig4 run {run + 1}/{runs}");
            var truth = GroundTruth.Create(GroundTruthPreset.Orthogonal, 2, 5, Activation.Identity, Sigma);
            var data = truth.Sample(n, seed * 1000 + 500 + run);
            var path = Timed("fig4: SGD on L4, batch 128 (one run)", () => Experiments.SgdL4Path(data, 2, Activation.Identity, Sigma, fig4Sgd, seed + run));
            var curve = path.Select(a => RegressorError(a, truth)).ToArray();
            curves.Add(curve);
            for (var e = 0; e < curve.Length; e++)
            {
                csv.Append(Inv, $"a,L4,{run},{e},{curve[e]:R}\n");
            }
        }

        File.WriteAllText(PathOf("fig4.csv"), csv.ToString());
        Charts.Save(PathOf("fig4.png"), "Fig. 4: SGD on L4, d = 5, k = 2, batch 128, learning rate 0.001", "epoch", "E_reg",
            curves.Select((c, i) => new Charts.Series($"run {i + 1}", Epochs(c.Length), c)).ToList(), logY: true);
        var finals = curves.Select(c => c[^1]).ToArray();
        report.AppendLine("## Fig. 4: SGD on L4 with batch 128");
        report.AppendLine();
        report.AppendLine("![fig4](fig4.png)");
        report.AppendLine();
        report.AppendLine(Inv, $"Final E_reg: mean {finals.Average():0.0e+0}, min {finals.Min():0.0e+0}, max {finals.Max():0.0e+0}; {finals.Count(f => f <= 0.01)}/{finals.Length} runs ≤ 0.01.");
        report.AppendLine();
    }

    /// <summary>Beyond the paper: success rate and E_reg against n for L4, L4 + polish, ℓ2 and EM.</summary>
    private void Recovery()
    {
        var sizes = RecoverySizes;
        var seeds = RecoverySeeds;
        var methods = new (string Label, Func<long, FitOptions> Options)[]
        {
            ("L4 (paper's estimator)", s => new FitOptions { Experts = 2, Sigma = Sigma, Polish = false, Seed = s }),
            ("L4 + polish", s => new FitOptions { Experts = 2, Sigma = Sigma, Seed = s }),
            ("ℓ2 (random start)", s => new FitOptions { Experts = 2, Sigma = Sigma, Method = FitMethod.L2, Seed = s }),
            ("EM (random start)", s => new FitOptions { Experts = 2, Sigma = Sigma, Method = FitMethod.Em, Seed = s }),
        };
        var csv = new StringBuilder("method,n,seed,e_reg,e_gating,seconds,success\n");
        var results = methods.ToDictionary(m => m.Label, _ => new List<(int N, double Reg, double Gating, double Seconds)>());
        foreach (var size in sizes)
        {
            for (var s = 1; s <= seeds; s++)
            {
                Log($"recovery n = {size}, seed {s}/{seeds}");
                var truth = GroundTruth.Create(GroundTruthPreset.RandomGating, 2, 10, Activation.Identity, Sigma, 1.0, seed + s);
                var data = truth.Sample(size, seed * 7919 + s);
                foreach (var (label, options) in methods)
                {
                    var clock = Stopwatch.StartNew();
                    var fit = MoeLearner.Fit(data, options(seed + s));
                    var e = Metrics.Compare(fit.Model, truth);
                    var seconds = clock.Elapsed.TotalSeconds;
                    results[label].Add((size, e.RegressorError, e.GatingError, seconds));
                    var ok = e.RegressorError <= 0.01 && e.GatingError <= 0.01;
                    csv.Append(Inv, $"{label},{size},{s},{e.RegressorError:R},{e.GatingError:R},{seconds:R},{(ok ? 1 : 0)}\n");
                }
            }
        }

        File.WriteAllText(PathOf("recovery.csv"), csv.ToString());
        var xs = sizes.Select(v => (double)v).ToArray();
        Charts.Save(PathOf("recovery-success.png"), "Success rate (E_reg ≤ 0.01 and E_gating ≤ 0.01) against n; random gating, d = 10, k = 2",
            "n", "success rate",
            results.Select(r => new Charts.Series(r.Key, xs,
                sizes.Select(size => r.Value.Where(v => v.N == size).Average(v => v.Reg <= 0.01 && v.Gating <= 0.01 ? 1.0 : 0.0)).ToArray())).ToList(),
            logX: true);
        Charts.Save(PathOf("recovery-ereg.png"), "Median E_reg against n; random gating, d = 10, k = 2", "n", "median E_reg",
            results.Select(r => new Charts.Series(r.Key, xs,
                sizes.Select(size => Median(r.Value.Where(v => v.N == size).Select(v => v.Reg))).ToArray())).ToList(),
            logX: true, logY: true);

        report.AppendLine("## Beyond the paper: recovery against n (random gating, d = 10, k = 2, identity, σ = 0.05)");
        report.AppendLine();
        report.AppendLine("![success](recovery-success.png)");
        report.AppendLine();
        report.AppendLine("![ereg](recovery-ereg.png)");
        report.AppendLine();
        report.AppendLine("| method | " + string.Join(" | ", sizes.Select(v => v.ToString("N0", Inv))) + " | mean fit seconds |");
        report.AppendLine("|---|" + string.Concat(sizes.Select(_ => "---|")) + "---|");
        foreach (var (label, values) in results)
        {
            var cells = sizes.Select(size =>
            {
                var at = values.Where(v => v.N == size).ToList();
                return string.Create(Inv, $"{at.Count(v => v.Reg <= 0.01 && v.Gating <= 0.01)}/{at.Count} ({Median(at.Select(v => v.Reg)):0.0e+0})");
            });
            report.AppendLine(Inv, $"| {label} | {string.Join(" | ", cells)} | {values.Average(v => v.Seconds):F2} |");
        }

        report.AppendLine();
        report.AppendLine("Cells: successes/seeds (median E_reg).");
        report.AppendLine();
    }

    private int[] RecoverySizes => quick ? [1_000, 10_000, 100_000] : [1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000];

    private int RecoverySeeds => quick ? 2 : 5;

    private static double Median(IEnumerable<double> values)
    {
        var v = values.OrderBy(x => x).ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : 0.5 * (v[v.Length / 2 - 1] + v[v.Length / 2]);
    }

    public string Run(IReadOnlyCollection<string> figures)
    {
        Directory.CreateDirectory(outDir);
        var clock = Stopwatch.StartNew();
        total = figures.Count(f => f is "fig2" or "fig3" or "fig4") * runs
                + (figures.Contains("recovery") ? RecoverySizes.Length * RecoverySeeds : 0);
        report.AppendLine("# Reproduction of Makkuva et al., *Learning in Gated Neural Networks*");
        report.AppendLine();
        report.AppendLine(Inv, $"Mode: {(quick ? "quick" : "full")}; seed {seed}; {Environment.ProcessorCount} cores. Generated by `moe reproduce`.");
        report.AppendLine();
        report.AppendLine(Settings());
        if (figures.Contains("fig2"))
        {
            RegressorsAndGating("fig2", randomGating: false);
        }

        if (figures.Contains("fig3"))
        {
            RegressorsAndGating("fig3", randomGating: true);
        }

        if (figures.Contains("fig4"))
        {
            Fig4();
        }

        if (figures.Contains("recovery"))
        {
            Recovery();
        }

        report.AppendLine("## Wall times");
        report.AppendLine();
        report.AppendLine("| step | seconds |");
        report.AppendLine("|---|---|");
        foreach (var group in timings.GroupBy(t => t[..t.LastIndexOf('|', t.Length - 2)]))
        {
            var seconds = group.Select(t => double.Parse(t[(t.LastIndexOf('|', t.Length - 2) + 1)..^1], Inv)).ToArray();
            report.AppendLine(Inv, $"{group.Key}| {seconds.Average():F2} (mean of {seconds.Length}) |");
        }

        report.AppendLine();
        report.AppendLine(Inv, $"Total: {clock.Elapsed.TotalSeconds:F0} s.");
        File.WriteAllText(PathOf("report.md"), report.ToString());
        if (interactive)
        {
            log.WriteLine($"\r[{new string('#', 30)}] 100% done in {clock.Elapsed.TotalSeconds:F0} s{new string(' ', 30)}");
        }

        return PathOf("report.md");
    }

    private string Settings() => string.Create(Inv, $"""
        ## Settings (including those the paper leaves unstated, and why)

        | setting | value | why |
        |---|---|---|
        | ground truth | d = 10, k = 2, a_i = e_i, identity experts, σ = 0.05; w₁ = e₃ (Fig. 2) or uniform on the unit sphere (Fig. 3) | the paper's §4 |
        | samples per run | n = {n:N0} (fresh data per run) | unstated in the paper; 50k is where the paper's recipe was verified (MATH.md §5) |
        | runs | {runs} | the paper draws 5 |
        | SGD on L4 | batch {l4Sgd.BatchSize}, {l4Sgd.Epochs} epochs, learning rate {l4Sgd.LearningRate} for half the epochs then linear decay to {l4Sgd.FinalLearningRate}, gradient-norm clipping at {l4Sgd.Clip}, A₀ ~ N(0, 1/d) | batch 1024 is the paper's; the rest is MATH.md §5's verified recipe (unstated in the paper) |
        | L4 regularisers | μ = 0.1, λ = 10, ridge = 4; Q4, Q2 centred | the empirical L4 is unbounded below off span(A*) with a small ridge; a ridge ≈ 4 < 4λ min E[p_m] only rescales rows (MATH.md §5) |
        | SGD on ℓ2 | batch {l2Sgd.BatchSize}, {l2Sgd.Epochs} epochs, learning rate {l2Sgd.LearningRate} then linear decay to {l2Sgd.FinalLearningRate}, clipping at {l2Sgd.Clip}, A₀, W₀ ~ N(0, 1/d) | same budget as L4; the rate is the largest that stays stable |
        | SGD on L_log (Figs 2b, 3b) | batch {gatingSgd.BatchSize}, {gatingSgd.Epochs} epochs, learning rate {gatingSgd.LearningRate} then linear decay to {gatingSgd.FinalLearningRate}, W₀ = 0 | L_log is smooth and well conditioned; unstated in the paper |
        | Â from L4 (Fig. 2b) | dual-basis directions of the final SGD iterate, signs by likelihood | L4 is even in each row; L_log is not |
        | Fig. 4 | d = 5, k = 2, batch {fig4Sgd.BatchSize}, constant learning rate {fig4Sgd.LearningRate}, {fig4Sgd.Epochs} epochs | the paper's batch and rate |
        | recovery study | random gating, σ known; L4 = subspace solver with bounded transforms (the toolkit's default) | beyond the paper |

        """);
}
