using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using MoE.Api;

namespace MoE.Cli.Commands;

/// <summary><c>moe acceptance</c>: the learner's acceptance table (seeded), as Markdown.</summary>
internal static class AcceptanceCommand
{
    private sealed record Case(string Name, GroundTruthPreset Preset, int K, int D, Activation G, double Sigma);

    private sealed record Outcome(double Reg, double Gating, double Seconds)
    {
        public bool Success => Reg <= 0.01 && Gating <= 0.01;
    }

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
            var q = parse.GetValue(quick);
            var report = Run(q, error);
            output.Write(report);
            if (parse.GetValue(outPath) is { } file)
            {
                File.WriteAllText(Shared.PrepareOutput(file), report);
            }

            return CliApp.Success;
        });
        return command;
    }

    /// <summary>One seeded fit; a fit that fails (diverges, collapses) is a failure of the table, not of the run.</summary>
    private static Outcome FitOnce(Case c, int n, long seed, FitOptions options, TextWriter log)
    {
        var truth = GroundTruth.Create(c.Preset, c.K, c.D, c.G, c.Sigma, 1.0, seed);
        var data = truth.Sample(n, 1000 + seed);
        var clock = Stopwatch.StartNew();
        try
        {
            var fit = MoeLearner.Fit(data, options);
            var e = Metrics.Compare(fit.Model, truth);
            return new Outcome(e.RegressorError, e.GatingError, clock.Elapsed.TotalSeconds);
        }
        catch (FitDivergedException e)
        {
            log.WriteLine($"acceptance:   seed {seed} failed: {e.Message}");
            return new Outcome(double.PositiveInfinity, double.PositiveInfinity, clock.Elapsed.TotalSeconds);
        }
    }

    private static string Median(IEnumerable<double> values)
    {
        var v = values.OrderBy(x => x).ToArray();
        var m = v.Length % 2 == 1 ? v[v.Length / 2] : 0.5 * (v[v.Length / 2 - 1] + v[v.Length / 2]);
        return m.ToString("0.0e+0", CultureInfo.InvariantCulture);
    }

    private static string Row(string name, string method, int n, IReadOnlyList<Outcome> r) =>
        string.Create(CultureInfo.InvariantCulture,
            $"| {name} | {method} | {n:N0} | {r.Count(o => o.Success)}/{r.Count} | {Median(r.Select(o => o.Reg))} | {Median(r.Select(o => o.Gating))} | {r.Average(o => o.Seconds):F2} |");

    public static string Run(bool quick, TextWriter log)
    {
        var sb = new StringBuilder();
        var seeds = quick ? 3 : 10;
        // Quick keeps the off-paper rows at the issue's n = 200 000 with one seed: below about 100 000 the L4
        // estimator collapses experts for d = 20, k = 3 (a clear error, counted as a failure), which says nothing
        // about the acceptance criterion.
        var offSeeds = quick ? 1 : 5;
        var nPaper = quick ? 20_000 : 50_000;
        const int nBig = 200_000;
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Acceptance table ({(quick ? "quick" : "full")}; {Environment.ProcessorCount} cores). Success = E_reg <= 0.01 and E_gating <= 0.01 (aligned); medians over seeds; time = mean fit seconds."));
        sb.AppendLine();
        sb.AppendLine("| setting | method | n | success | median E_reg | median E_gating | time (s) |");
        sb.AppendLine("|---|---|---|---|---|---|---|");

        void Block(Case c, int n, int count, params (string Method, Func<long, FitOptions> Options)[] methods)
        {
            foreach (var (method, options) in methods)
            {
                log.WriteLine($"acceptance: {c.Name}, {method}, n = {n}, {count} seeds");
                var outcomes = Enumerable.Range(1, count).Select(s => FitOnce(c, n, s, options(s), log)).ToList();
                sb.AppendLine(Row(c.Name, method, n, outcomes));
            }
        }

        FitOptions L4(Case c, long s, bool polish) => new() { Experts = c.K, Activation = c.G, Polish = polish, Seed = s };
        FitOptions Baseline(Case c, long s, FitMethod m) => new() { Experts = c.K, Activation = c.G, Method = m, Seed = s };

        var paper = new[]
        {
            new Case("paper, orthogonal gating (d=10, k=2, identity, σ=0.05)", GroundTruthPreset.Orthogonal, 2, 10, Activation.Identity, 0.05),
            new Case("paper, random gating (d=10, k=2, identity, σ=0.05)", GroundTruthPreset.RandomGating, 2, 10, Activation.Identity, 0.05),
        };
        foreach (var c in paper)
        {
            Block(c, nPaper, seeds,
                ("L4 + polish", s => L4(c, s, true)),
                ("L4, no polish", s => L4(c, s, false)),
                ("ℓ2 (random start)", s => Baseline(c, s, FitMethod.L2)),
                ("EM (random start)", s => Baseline(c, s, FitMethod.Em)));
        }

        Block(paper[0], nBig, seeds, ("L4 + polish", s => L4(paper[0], s, true)));
        var off = new[]
        {
            new Case("d=20, k=3, ReLU, σ=0.1, random regressors, free gating", GroundTruthPreset.RandomFreeGating, 3, 20, Activation.Relu, 0.1),
            new Case("d=15, k=4, identity, σ=0.05, random regressors, free gating", GroundTruthPreset.RandomFreeGating, 4, 15, Activation.Identity, 0.05),
            new Case("d=10, k=2, leaky ReLU 0.1, σ=0.1, random regressors, free gating", GroundTruthPreset.RandomFreeGating, 2, 10, Activation.LeakyRelu(0.1), 0.1),
        };
        foreach (var c in off)
        {
            Block(c, nBig, offSeeds, ("L4 + polish", s => L4(c, s, true)));
        }

        foreach (var g in new[] { Activation.Sigmoid, Activation.Tanh })
        {
            var c = new Case($"d=10, k=2, {g.Name}, σ=0.05, orthogonal gating", GroundTruthPreset.Orthogonal, 2, 10, g, 0.05);
            foreach (var n in quick ? new[] { 50_000 } : new[] { 50_000, 200_000, 1_000_000 })
            {
                Block(c, n, offSeeds, ("L4 + polish", s => L4(c, s, true)));
            }
        }

        return sb.ToString();
    }
}
