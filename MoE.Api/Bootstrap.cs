using Microsoft.FSharp.Core;
using Core = MoE.Core;

namespace MoE.Api;

/// <summary>How a bootstrap replicate's data are made (docs/inference.md §2.2).</summary>
public enum BootstrapKind
{
    /// <summary>The rows resampled with replacement (held as each row's count, a frequency weight).</summary>
    Nonparametric,

    /// <summary>The responses drawn from the fitted model at the observed covariates.</summary>
    Parametric,
}

/// <summary>What <see cref="MoeLearner.Bootstrap"/> runs. Every default is the core's <c>Bootstrap.defaults</c>.</summary>
public sealed class BootstrapOptions
{
    private static readonly Core.BootstrapSettings Defaults = Core.Bootstrap.Defaults;

    /// <summary>B, the replicates (≥ 2; default 200, enough for standard errors; 1000 or more for the ends of 95%
    /// intervals).</summary>
    public int Replicates { get; set; } = Defaults.Replicates;

    /// <summary>Nonparametric (default) or parametric.</summary>
    public BootstrapKind Kind { get; set; } = BootstrapKind.Nonparametric;

    /// <summary>The intervals' probability, in (0, 1) (default 0.95).</summary>
    public double Level { get; set; } = Defaults.Level;

    /// <summary>The seed (default 1): replicate b draws from its own stream, so the result does not depend on
    /// <see cref="MaxDegreeOfParallelism"/>.</summary>
    public long Seed { get; set; } = Defaults.Seed;

    /// <summary>Fit each replicate from the original fit (default true: its basin, as mixtools and mclust do), or
    /// from the fit's own initializers with a seed of its own (slower; also samples which optimum a fit finds).</summary>
    public bool FromFit { get; set; } = Defaults.FromFit;

    /// <summary>Replicates fitted at once (default: every core). The result is the same bits for any value.</summary>
    public int MaxDegreeOfParallelism { get; set; } = Defaults.Parallelism;

    /// <summary>Whether the model's fit had one noise level for every expert (a model file does not record it).</summary>
    public bool CommonSigma { get; set; }

    internal Core.BootstrapSettings ToCore() => new(Replicates,
        Kind == BootstrapKind.Parametric ? Core.BootstrapKind.Parametric : Core.BootstrapKind.Nonparametric,
        Level, Seed, FromFit, MaxDegreeOfParallelism);
}

/// <summary>A bootstrap's result (<see cref="MoeLearner.Bootstrap"/>): every parameter's estimate, bootstrap
/// standard error, percentile and basic intervals, and the replicates, aligned to the fit's labels.</summary>
public sealed class BootstrapResult
{
    internal BootstrapResult(Core.BootstrapResult r)
    {
        Names = r.Names;
        Estimates = r.Estimates;
        Replicates = r.Replicates;
        StandardErrors = r.StandardErrors;
        PercentileLower = r.PercentileLower;
        PercentileUpper = r.PercentileUpper;
        BasicLower = r.BasicLower;
        BasicUpper = r.BasicUpper;
        Level = r.Level;
        Kind = r.Kind.IsParametric ? BootstrapKind.Parametric : BootstrapKind.Nonparametric;
        Used = r.Used;
        Failed = r.Failed;
        FirstFailure = r.FirstFailure;
        Ambiguous = r.Ambiguous;
        Orders = r.Orders;
    }

    /// <summary>The parameters: a1[x1] … (expert coefficients), b1 … (expert intercepts), w1[x1] … and c1 … (the
    /// gate's rows 1..k−1 against expert k), sigma1 … (noise levels, when fitted). Every array here is in this
    /// order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The fit's values.</summary>
    public IReadOnlyList<double> Estimates { get; }

    /// <summary>B×p: each replicate's values after its alignment (a failed replicate's row is NaN).</summary>
    public double[,] Replicates { get; }

    /// <summary>The replicates' standard deviation per parameter.</summary>
    public IReadOnlyList<double> StandardErrors { get; }

    /// <summary>The percentile interval's lower ends (the replicates' (1 − level)/2 quantiles).</summary>
    public IReadOnlyList<double> PercentileLower { get; }

    /// <summary>The percentile interval's upper ends.</summary>
    public IReadOnlyList<double> PercentileUpper { get; }

    /// <summary>The basic interval's lower ends, 2θ̂ − q(1 − α/2).</summary>
    public IReadOnlyList<double> BasicLower { get; }

    /// <summary>The basic interval's upper ends, 2θ̂ − q(α/2).</summary>
    public IReadOnlyList<double> BasicUpper { get; }

    /// <summary>The intervals' probability.</summary>
    public double Level { get; }

    /// <summary>How the replicates were made.</summary>
    public BootstrapKind Kind { get; }

    /// <summary>Replicates whose fit gave a model; the intervals are over these.</summary>
    public int Used { get; }

    /// <summary>Replicates whose fit failed (a degenerate resample).</summary>
    public int Failed { get; }

    /// <summary>The first failure's reason ("" when none failed).</summary>
    public string FirstFailure { get; }

    /// <summary>Replicates whose experts did not clearly match the fit's: the best matching less than twice as close
    /// as the next (docs/inference.md §2.2).</summary>
    public int Ambiguous { get; }

    /// <summary><see cref="Ambiguous"/> over <see cref="Used"/>.</summary>
    public double AmbiguousShare => Used == 0 ? 0 : (double)Ambiguous / Used;

    /// <summary>Each replicate's matching: its expert matched to the fit's expert j is Orders[b][j] (empty for a
    /// failed replicate).</summary>
    public IReadOnlyList<int[]> Orders { get; }
}

public static partial class MoeLearner
{
    /// <summary>
    /// The bootstrap with aligned labels (docs/inference.md §2.2): B replicates of the data (rows resampled, or
    /// responses drawn from the fit), each refitted, each replicate's experts matched to the fit's by an optimal
    /// assignment on the rows' memberships (so that a replicate's expert 1 is the fit's expert 1, which a mixture's
    /// labels do not guarantee), and each parameter's bootstrap standard error, percentile and basic intervals.
    /// </summary>
    /// <param name="model">The fitted model (its k, family, activation, design and intercepts are refitted).</param>
    /// <param name="data">The rows it was fitted to (weighted rows as frequency weights).</param>
    /// <param name="options">B, the kind, the level, the seed, the starts, the parallelism (default: 200
    /// nonparametric replicates at 95%, seed 1).</param>
    /// <param name="progress">Receives the number of replicates done (optional; from worker threads).</param>
    /// <param name="cancellationToken">Cancels within a replicate's fit.</param>
    /// <exception cref="ArgumentException">Options out of range, or data that do not match the model.</exception>
    /// <exception cref="FitDivergedException">Fewer than 2 replicates could be fitted.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static BootstrapResult Bootstrap(MixtureOfExperts model, Dataset data, BootstrapOptions? options = null,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        options ??= new BootstrapOptions();
        var config = Core.FitConfigModule.ForModel(model.Inner, options.CommonSigma);
        return new BootstrapResult(RunCore(() => Core.Bootstrap.Run(config, model.Inner, data.Inner, options.ToCore(),
            cancellationToken, FuncConvert.FromAction<int>(done => progress?.Report(done)))));
    }
}
