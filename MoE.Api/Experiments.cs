using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using Core = MoE.Core;

namespace MoE.Api;

/// <summary>Mini-batch SGD settings: a constant learning rate for the first half of the epochs, then linear decay.</summary>
/// <param name="Epochs">Passes over the data.</param>
/// <param name="BatchSize">Mini-batch size.</param>
/// <param name="LearningRate">Rate for the first half of the epochs.</param>
/// <param name="FinalLearningRate">Rate reached at the last epoch.</param>
/// <param name="Clip">Gradient-norm clipping threshold.</param>
public sealed record SgdOptions(int Epochs, int BatchSize, double LearningRate, double FinalLearningRate, double Clip)
{
    internal static SgdOptions From(Core.SgdSettings s) => new(s.Epochs, s.BatchSize, s.LearningRate, s.FinalLearningRate, s.Clip);
}

/// <summary>The L4 regularisers μ, λ and the ridge (docs/math.md §4).</summary>
/// <param name="Mu">μ.</param>
/// <param name="Lambda">λ.</param>
/// <param name="Ridge">The ridge.</param>
public sealed record L4Weights(double Mu, double Lambda, double Ridge);

/// <summary>Every setting of the reproduced figures (the paper's and those it leaves unstated).</summary>
/// <param name="Runs">Runs per figure.</param>
/// <param name="Samples">Samples per run.</param>
/// <param name="Sigma">The truth's noise level.</param>
/// <param name="L4Weights">The L4 regularisers of the SGD runs.</param>
/// <param name="L4Sgd">SGD on L4 (Figs 2a, 3a).</param>
/// <param name="L2Sgd">SGD on ℓ2 (Figs 2a, 3a).</param>
/// <param name="GatingSgd">SGD on L_log with A fixed (Figs 2b, 3b).</param>
/// <param name="Fig4Sgd">SGD on L4 for Fig. 4.</param>
public sealed record FigureSettings(int Runs, int Samples, double Sigma, L4Weights L4Weights, SgdOptions L4Sgd,
    SgdOptions L2Sgd, SgdOptions GatingSgd, SgdOptions Fig4Sgd);

/// <summary>One curve of a figure: an error per epoch of one run.</summary>
/// <param name="Panel">"a" (regressor error) or "b" (gating error).</param>
/// <param name="Series">L4, l2, or the fixed A of a gating run.</param>
/// <param name="Run">The run, 0-based.</param>
/// <param name="Values">The error after each epoch (index 0: the start).</param>
public sealed record FigureCurve(string Panel, string Series, int Run, IReadOnlyList<double> Values);

/// <summary>The wall time of one step of an experiment.</summary>
/// <param name="Step">What ran.</param>
/// <param name="Seconds">Seconds.</param>
public sealed record StepTime(string Step, double Seconds);

/// <summary>A reproduced figure.</summary>
/// <param name="Name">fig2, fig3 or fig4.</param>
/// <param name="Setting">The setting in words.</param>
/// <param name="Curves">Every run's curves.</param>
/// <param name="Timings">Every timed step.</param>
public sealed record FigureRun(string Name, string Setting, IReadOnlyList<FigureCurve> Curves, IReadOnlyList<StepTime> Timings);

/// <summary>One fit of the recovery-vs-n study.</summary>
/// <param name="Method">The method's label.</param>
/// <param name="Samples">n.</param>
/// <param name="Seed">The seed index (1-based).</param>
/// <param name="RegressorError">E_reg.</param>
/// <param name="GatingError">Aligned E_gating.</param>
/// <param name="Seconds">Fit seconds.</param>
/// <param name="Success">Whether the fit meets <see cref="Metrics.IsRecovered"/>.</param>
public sealed record RecoveryFit(string Method, int Samples, int Seed, double RegressorError, double GatingError, double Seconds, bool Success);

/// <summary>The second recovery study's setting and sizes (d = 20, k = 3, ReLU, σ = 0.1, free gating).</summary>
public static class FrontierRecovery
{
    /// <summary>The sample sizes.</summary>
    /// <param name="quick">One size instead of four.</param>
    public static IReadOnlyList<int> Sizes(bool quick) => Core.Recovery.FrontierSizes(quick);

    /// <summary>Seeds per size.</summary>
    /// <param name="quick">One seed instead of three.</param>
    public static int Seeds(bool quick) => Core.Recovery.FrontierSeeds(quick);

    /// <summary>Runs the study: the paper's L4, spectral, EM from five random starts, ℓ2 and the combined fit.</summary>
    /// <param name="quick">Fewer sizes and seeds.</param>
    /// <param name="seed">The study's seed.</param>
    /// <param name="progress">One message per size and seed (optional).</param>
    /// <param name="cancellationToken">Cancels between sizes and seeds.</param>
    public static IReadOnlyList<RecoveryFit> Run(bool quick, long seed, IProgress<string>? progress = null,
        CancellationToken cancellationToken = default) =>
        Core.Recovery.RunFrontier(quick, seed, Experiments.Reporter(progress, cancellationToken))
            .Select(r => new RecoveryFit(r.Method, r.Samples, r.Seed, r.RegressorError, r.GatingError, r.Seconds, r.Success))
            .ToArray();
}

/// <summary>One seeded fit of an acceptance row.</summary>
/// <param name="Seed">The seed (1-based).</param>
/// <param name="RegressorError">E_reg (+∞ for a failed fit).</param>
/// <param name="GatingError">Aligned E_gating (+∞ for a failed fit).</param>
/// <param name="Seconds">Fit seconds.</param>
/// <param name="Failure">Why the fit failed, or null.</param>
/// <param name="Success">Whether the fit meets the success rule.</param>
/// <param name="LikelihoodGain">LL(fit) − LL(truth) on the fit's data in nats (−∞ for a failed fit): ≥ 0 means the
/// fit's maximum is at least the truth's, so a miss is sampling error rather than a local optimum.</param>
public sealed record AcceptanceFit(int Seed, double RegressorError, double GatingError, double Seconds, string? Failure, bool Success,
    double LikelihoodGain);

/// <summary>One row of the acceptance table.</summary>
/// <param name="Setting">The ground truth in words.</param>
/// <param name="Method">The method's label.</param>
/// <param name="Samples">n.</param>
/// <param name="Fits">One fit per seed.</param>
/// <param name="Successes">Fits that met the success rule.</param>
/// <param name="MedianRegressorError">Median E_reg.</param>
/// <param name="MedianGatingError">Median aligned E_gating.</param>
/// <param name="MeanSeconds">Mean fit seconds.</param>
public sealed record AcceptanceRow(string Setting, string Method, int Samples, IReadOnlyList<AcceptanceFit> Fits, int Successes,
    double MedianRegressorError, double MedianGatingError, double MeanSeconds);

/// <summary>The coverage of one group of parameters' Wald intervals (<see cref="Experiments.Coverage"/>).</summary>
/// <param name="Group">regressors, expert intercepts, gating, gate intercepts or sigmas.</param>
/// <param name="Coverage">The share of (replicate, parameter) intervals that contain the truth.</param>
/// <param name="Lowest">The lowest coverage of a single parameter of the group.</param>
/// <param name="Highest">The highest coverage of a single parameter of the group.</param>
/// <param name="Intervals">The intervals counted.</param>
/// <param name="Skipped">Replicates left out because their fit or standard errors failed (a degenerate sample); the
/// coverage is over the others.</param>
public sealed record CoverageRow(string Group, double Coverage, double Lowest, double Highest, int Intervals, int Skipped);

/// <summary>The coverage of one group of parameters in the bootstrap study (<see cref="Experiments.BootstrapCoverage"/>):
/// Wald's, the percentile and the basic intervals over the same data sets.</summary>
/// <param name="Group">regressors, expert intercepts, gating, gate intercepts or sigmas.</param>
/// <param name="Wald">The share of Wald intervals (observed information) that contain the truth.</param>
/// <param name="Percentile">The same for the bootstrap's percentile intervals.</param>
/// <param name="Basic">The same for the bootstrap's basic intervals.</param>
/// <param name="Intervals">The intervals counted per kind.</param>
public sealed record BootstrapCoverageRow(string Group, double Wald, double Percentile, double Basic, int Intervals);

/// <summary>The bootstrap coverage study's result.</summary>
/// <param name="Rows">Per group of parameters.</param>
/// <param name="DataSets">Data sets used.</param>
/// <param name="Skipped">Data sets left out (a degenerate or failed fit, no Wald errors, labels not clearly the
/// truth's).</param>
/// <param name="Ambiguous">Replicates whose alignment was ambiguous, of <paramref name="Replicates"/>.</param>
/// <param name="Replicates">Replicates run over the data sets used.</param>
/// <param name="Failed">Replicates whose fit failed.</param>
public sealed record BootstrapCoverage(IReadOnlyList<BootstrapCoverageRow> Rows, int DataSets, int Skipped, int Ambiguous,
    int Replicates, int Failed);

/// <summary>The paper's experiments and the learner's acceptance table, run by the core and returned as data: the
/// caller decides how to present them (<c>moe reproduce</c> and <c>moe acceptance</c> write CSV, PNG and Markdown).</summary>
public static class Experiments
{
    /// <summary>The figure names <see cref="Figure"/> accepts.</summary>
    public static IReadOnlyList<string> FigureNames { get; } = ["fig2", "fig3", "fig4"];

    internal static FSharpFunc<string, Unit> Reporter(IProgress<string>? progress, CancellationToken token) =>
        FuncConvert.FromAction<string>(message =>
        {
            token.ThrowIfCancellationRequested();
            progress?.Report(message);
        });

    /// <summary>The settings of the figures.</summary>
    /// <param name="quick">The quick design (fewer runs).</param>
    public static FigureSettings FigureSettings(bool quick)
    {
        var d = Core.FigureDesignModule.Standard(quick);
        var w = d.L4Sgd.Weights;
        return new FigureSettings(d.Runs, d.Samples, d.Sigma, new L4Weights(w.Mu, w.Lambda, w.Ridge), SgdOptions.From(d.L4Sgd.Schedule),
            SgdOptions.From(d.L2Sgd), SgdOptions.From(d.GatingSgd), SgdOptions.From(d.Fig4Sgd.Schedule));
    }

    /// <summary>Runs one of the paper's figures: fig2 (w₁ = e₃), fig3 (w₁ on the unit sphere) or fig4 (batch 128).</summary>
    /// <param name="name">fig2, fig3 or fig4.</param>
    /// <param name="quick">The quick design.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="progress">One message per run (optional).</param>
    /// <param name="cancellationToken">Cancels between runs.</param>
    /// <exception cref="ArgumentException">An unknown figure name.</exception>
    public static FigureRun Figure(string name, bool quick, long seed, IProgress<string>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        var design = Core.FigureDesignModule.Standard(quick);
        var report = Reporter(progress, cancellationToken);
        var result = name.ToLowerInvariant() switch
        {
            "fig2" => Core.Figures.RegressorsAndGating(design, seed, false, report),
            "fig3" => Core.Figures.RegressorsAndGating(design, seed, true, report),
            "fig4" => Core.Figures.Fig4(design, seed, report),
            _ => throw new ArgumentException($"Unknown figure '{name}'; expected fig2, fig3 or fig4.", nameof(name)),
        };
        return new FigureRun(result.Name, result.Setting,
            result.Curves.Select(c => new FigureCurve(c.Panel, c.Series, c.Run, c.Values)).ToArray(),
            result.Timings.Select(t => new StepTime(t.Step, t.Seconds)).ToArray());
    }

    /// <summary>The runs per figure of a design (for progress totals).</summary>
    /// <param name="quick">The quick design.</param>
    public static int FigureRuns(bool quick) => Core.FigureDesignModule.Standard(quick).Runs;

    /// <summary>The sample sizes of the recovery study.</summary>
    /// <param name="quick">The quick study.</param>
    public static IReadOnlyList<int> RecoverySizes(bool quick) => Core.Recovery.Sizes(quick);

    /// <summary>The seeds per size of the recovery study.</summary>
    /// <param name="quick">The quick study.</param>
    public static int RecoverySeeds(bool quick) => Core.Recovery.Seeds(quick);

    /// <summary>Beyond the paper: recovery against n for L4, L4 + polish, ℓ2 and EM (random gating, d = 10, k = 2).</summary>
    /// <param name="quick">Fewer sizes and seeds.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="progress">One message per size and seed (optional).</param>
    /// <param name="cancellationToken">Cancels between sizes and seeds.</param>
    public static IReadOnlyList<RecoveryFit> Recovery(bool quick, long seed, IProgress<string>? progress = null,
        CancellationToken cancellationToken = default) =>
        Core.Recovery.Run(quick, seed, Reporter(progress, cancellationToken))
            .Select(r => new RecoveryFit(r.Method, r.Samples, r.Seed, r.RegressorError, r.GatingError, r.Seconds, r.Success))
            .ToArray();

    /// <summary>The learner's seeded acceptance table (the paper's settings with every method; off-paper settings
    /// with the default estimator).</summary>
    /// <param name="quick">Fewer seeds and samples.</param>
    /// <param name="progress">One message per row and per failed fit (optional).</param>
    /// <param name="cancellationToken">Cancels between rows.</param>
    public static IReadOnlyList<AcceptanceRow> Acceptance(bool quick, IProgress<string>? progress = null,
        CancellationToken cancellationToken = default) =>
        Rows(Core.Acceptance.Run(quick, Reporter(progress, cancellationToken)));

    /// <summary>The frontier table (docs/acceptance.md): d ∈ {10, 20, 50} × k ∈ {2, 3, 4, 6} (2k − 1 ≤ d) × g ∈
    /// {identity, ReLU, leaky ReLU 0.1} × σ ∈ {0.05, 0.1, 0.5}, random unit regressors, free random gating,
    /// n = 200,000, fitted with a user's defaults.</summary>
    /// <param name="seeds">Seeds per cell.</param>
    /// <param name="methods">Any of "auto", "spectral" and "em".</param>
    /// <param name="cells">Keep only the cells whose setting contains one of these strings (empty: all).</param>
    /// <param name="progress">One message per row and per failed fit (optional).</param>
    /// <param name="cancellationToken">Cancels between rows.</param>
    public static IReadOnlyList<AcceptanceRow> Frontier(int seeds, IEnumerable<string> methods, IEnumerable<string> cells,
        IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(methods);
        ArgumentNullException.ThrowIfNull(cells);
        var cases = Core.Acceptance.FrontierCases(seeds, ListModule.OfSeq(methods), ListModule.OfSeq(cells));
        return Rows(Core.Acceptance.RunCases(cases, Reporter(progress, cancellationToken)));
    }

    /// <summary>The frontier of an expert family (docs/acceptance.md): d ∈ {5, 10, 20} × k ∈ {2, 3, 4}, random unit
    /// regressors, free random gating, intercepts, fitted with a user's defaults and the family.</summary>
    /// <param name="family">The experts' family.</param>
    /// <param name="seeds">Seeds per cell.</param>
    /// <param name="samples">Rows per fit (the table's n is 200,000).</param>
    /// <param name="cells">Keep only the cells whose setting contains one of these strings (empty: all).</param>
    /// <param name="progress">One message per row and per failed fit (optional).</param>
    /// <param name="cancellationToken">Cancels between rows.</param>
    public static IReadOnlyList<AcceptanceRow> FamilyFrontier(ExpertFamily family, int seeds, int samples,
        IEnumerable<string> cells, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cells);
        var cases = Core.Acceptance.FamilyFrontierCases(ExpertFamilies.ToCore(family), seeds, samples, ListModule.OfSeq(cells));
        return Rows(Core.Acceptance.RunCases(cases, Reporter(progress, cancellationToken)));
    }

    /// <summary>The simulation check of the standard errors (docs/inference.md): seeded replicates of a known k = 2
    /// model in d = 2 with intercepts and a noise level per expert, each fitted with the defaults, and the share of
    /// Wald intervals that contain the truth, per group of parameters.</summary>
    /// <param name="replicates">Replicates (≥ 1).</param>
    /// <param name="samples">Rows per replicate.</param>
    /// <param name="level">The intervals' probability, e.g. 0.95.</param>
    /// <param name="sandwich">Sandwich standard errors instead of the observed information's.</param>
    /// <param name="progress">Receives the number of replicates done (optional).</param>
    /// <param name="cancellationToken">Cancels between replicates.</param>
    /// <param name="family">The experts' family (default Gaussian; Poisson and Bernoulli have no noise levels, so no
    /// "sigmas" group, and a replicate whose fit separates is left out).</param>
    /// <param name="gateApart">The gate reads its own covariate x3 and the experts x1, x2 (a split design, as
    /// <see cref="ColumnRoles.Gate"/> gives), each replicate fitted with that design.</param>
    public static IReadOnlyList<CoverageRow> Coverage(int replicates, int samples, double level, bool sandwich,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default,
        ExpertFamily family = ExpertFamily.Gaussian, bool gateApart = false) =>
        Core.Coverage.RunDesign(ExpertFamilies.ToCore(family), gateApart, replicates, samples, level, sandwich, FuncConvert.FromAction<int>(r =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                progress?.Report(r);
            }))
            .Select(r => new CoverageRow(r.Group, r.Coverage, r.Lowest, r.Highest, r.Intervals, r.Skipped))
            .ToArray();

    /// <summary>The bootstrap coverage study (docs/inference.md §2.2): seeded data sets of a known k = 3 model
    /// (one covariate, intercepts, a noise level per expert), each fitted with the defaults and put in the truth's
    /// labels, and the share of Wald, percentile and basic intervals that contain the truth, per group of
    /// parameters.</summary>
    /// <param name="dataSets">Data sets (≥ 1).</param>
    /// <param name="samples">Rows per data set.</param>
    /// <param name="replicates">Bootstrap replicates per data set (≥ 2).</param>
    /// <param name="level">The intervals' probability.</param>
    /// <param name="kind">Nonparametric or parametric.</param>
    /// <param name="progress">Receives the number of data sets done (optional).</param>
    /// <param name="cancellationToken">Cancels within a fit.</param>
    public static BootstrapCoverage BootstrapCoverage(int dataSets, int samples, int replicates, double level,
        BootstrapKind kind, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        var r = Core.Coverage.RunBootstrap(dataSets, samples, replicates, level,
            kind == BootstrapKind.Parametric ? Core.BootstrapKind.Parametric : Core.BootstrapKind.Nonparametric,
            cancellationToken, FuncConvert.FromAction<int>(done => progress?.Report(done)));
        return new BootstrapCoverage(r.Rows.Select(row => new BootstrapCoverageRow(row.Group, row.Wald, row.Percentile,
            row.Basic, row.Intervals)).ToArray(), r.DataSets, r.Skipped, r.Ambiguous, r.Replicates, r.Failed);
    }

    /// <summary>The size or power of the test for the number of experts (docs/inference.md §1.1): seeded data sets of
    /// the k = 2 coverage model (size: testing 2 against 3 experts where 2 are true) or of the k = 3 bootstrap model
    /// (power), each tested with <paramref name="replicates"/> replicates; returns each data set's P (NaN where its
    /// fits failed).</summary>
    /// <param name="power">Draw from the k = 3 model (the test's power) instead of the k = 2 one (its size).</param>
    /// <param name="dataSets">Data sets (≥ 1).</param>
    /// <param name="samples">Rows per data set.</param>
    /// <param name="replicates">The test's replicates per data set.</param>
    /// <param name="progress">Receives the number of data sets done (optional).</param>
    /// <param name="cancellationToken">Cancels within a fit.</param>
    public static IReadOnlyList<double> ExpertsTestStudy(bool power, int dataSets, int samples, int replicates,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        Core.Coverage.RunExpertsTest(power ? Core.Coverage.BootstrapTruth : Core.Coverage.Truth, 2, dataSets, samples,
            replicates, cancellationToken, FuncConvert.FromAction<int>(done => progress?.Report(done)));

    private static AcceptanceRow[] Rows(IEnumerable<Core.AcceptanceRow> rows) =>
        rows.Select(r => new AcceptanceRow(r.Setting, r.Method, r.Samples,
                r.Outcomes.Select(o => new AcceptanceFit(o.Seed, o.RegressorError, o.GatingError, o.Seconds,
                    o.Failure is { } f ? f.Value : null, o.Success, o.LikelihoodGain)).ToArray(),
                r.Successes, r.MedianRegressorError, r.MedianGatingError, r.MeanSeconds))
            .ToArray();
}
