using Microsoft.FSharp.Core;
using Core = MoE.Core;

namespace MoE.Api;

/// <summary>Which estimator <see cref="MoeLearner.Fit"/> runs.</summary>
public enum FitMethod
{
    /// <summary>The paper's estimator: L4 for the regressors, L_log for the gating, then the EM polish.</summary>
    L4,
    /// <summary>Baseline: mini-batch SGD on the mean-square loss ℓ2 from a random start.</summary>
    L2,
    /// <summary>Baseline: EM on the likelihood from a random start.</summary>
    Em,
}

/// <summary>How the L4 stage is minimised.</summary>
public enum L4Solver
{
    /// <summary>Moment subspace + L-BFGS with restarts (fast; the default).</summary>
    Subspace,
    /// <summary>The paper's mini-batch SGD on the full-dimensional L4.</summary>
    Sgd,
}

/// <summary>Which output transforms the L4 stage uses.</summary>
public enum OutputTransformKind
{
    /// <summary>Variance-reduced bounded transforms (the default).</summary>
    Bounded,
    /// <summary>The paper's polynomial Q4 and Q2.</summary>
    Polynomial,
}

/// <summary>Options of <see cref="MoeLearner.Fit"/>. Every property has a sensible default except
/// <see cref="Experts"/>.</summary>
public sealed class FitOptions
{
    /// <summary>The number of experts k ≥ 2 (required).</summary>
    public int Experts { get; set; }

    /// <summary>The expert non-linearity g (default identity).</summary>
    public Activation Activation { get; set; } = Activation.Identity;

    /// <summary>The noise level σ if known; null (the default) to estimate it.</summary>
    public double? Sigma { get; set; }

    /// <summary>The estimator (default <see cref="FitMethod.L4"/>).</summary>
    public FitMethod Method { get; set; } = FitMethod.L4;

    /// <summary>The L4 solver (default <see cref="L4Solver.Subspace"/>).</summary>
    public L4Solver Solver { get; set; } = L4Solver.Subspace;

    /// <summary>The L4 output transforms (default <see cref="OutputTransformKind.Bounded"/>).</summary>
    public OutputTransformKind Transform { get; set; } = OutputTransformKind.Bounded;

    /// <summary>Whether the EM polish runs after the paper's stages (default true).</summary>
    public bool Polish { get; set; } = true;

    /// <summary>The seed of every random choice (default 1).</summary>
    public long Seed { get; set; } = 1;

    /// <summary>The EM iteration budget (default 200).</summary>
    public int EmIterations { get; set; } = 200;

    internal Core.FitConfig ToCore()
    {
        ArgumentNullException.ThrowIfNull(Activation, nameof(Activation));
        var defaults = Core.FitConfigModule.Defaults(Experts, Activation.Inner);
        return new Core.FitConfig(
            defaults.Experts, defaults.Activation,
            Sigma is { } s ? FSharpOption<double>.Some(s) : FSharpOption<double>.None,
            Method switch
            {
                FitMethod.L2 => Core.FitMethod.L2,
                FitMethod.Em => Core.FitMethod.Em,
                _ => Core.FitMethod.L4,
            },
            Solver == L4Solver.Sgd ? Core.L4SolverKind.Sgd : Core.L4SolverKind.Subspace,
            Transform == OutputTransformKind.Polynomial ? Core.TransformKind.Polynomial : Core.TransformKind.Bounded,
            Polish, Seed,
            Solver == L4Solver.Sgd ? Core.L4WeightsModule.Create(0.1, 10.0, 4.0, true) : defaults.Weights,
            defaults.Restarts, defaults.SignSubsample, defaults.Gating, defaults.GatingIterations, EmIterations, defaults.EmTolerance,
            defaults.L4Sgd, defaults.L2Sgd);
    }
}

/// <summary>A progress report: the stage, its iteration and its loss.</summary>
/// <param name="Stage">l4, l4-sgd, signs, gating, em or l2.</param>
/// <param name="Iteration">Iteration, evaluation or epoch within the stage.</param>
/// <param name="Loss">The stage's loss at that point.</param>
public readonly record struct FitProgress(string Stage, int Iteration, double Loss);

/// <summary>Wall time of one stage.</summary>
/// <param name="Stage">The stage.</param>
/// <param name="Seconds">Seconds.</param>
public readonly record struct StageTime(string Stage, double Seconds);

/// <summary>The result of <see cref="MoeLearner.Fit"/>.</summary>
public sealed class FitResult
{
    internal FitResult(Core.FitResult inner)
    {
        Model = new MixtureOfExperts(inner.Model);
        Trace = inner.Trace.Select(e => new FitProgress(e.Stage, e.Iteration, e.Loss)).ToArray();
        Timings = inner.Timings.Select(t => new StageTime(t.Stage, t.Seconds)).ToArray();
        StopReason = inner.StopReason.IsConverged ? "converged" : inner.StopReason.IsMaxIterations ? "max-iterations" : "no-progress";
    }

    /// <summary>The fitted model.</summary>
    public MixtureOfExperts Model { get; }

    /// <summary>Every stage's losses, in order.</summary>
    public IReadOnlyList<FitProgress> Trace { get; }

    /// <summary>Stage wall times.</summary>
    public IReadOnlyList<StageTime> Timings { get; }

    /// <summary>Why the last iterative stage stopped: converged, max-iterations or no-progress.</summary>
    public string StopReason { get; }
}

/// <summary>Raised when a fit's loss or gradient becomes NaN or infinite; no parameters are returned.</summary>
public sealed class FitDivergedException : ArithmeticException
{
    internal FitDivergedException(Core.NonFiniteException inner)
        : base(inner.Message, inner)
    {
        Stage = inner.Stage;
        Iteration = inner.Iteration;
        Value = inner.Value;
    }

    /// <summary>The stage that diverged.</summary>
    public string Stage { get; }

    /// <summary>The iteration (or epoch) at which it diverged.</summary>
    public int Iteration { get; }

    /// <summary>The offending loss or gradient value.</summary>
    public double Value { get; }
}

/// <summary>Fits mixtures of experts.</summary>
public static class MoeLearner
{
    /// <summary>Fits a mixture of experts to the data.</summary>
    /// <param name="data">The samples.</param>
    /// <param name="options">The options (<see cref="FitOptions.Experts"/> is required).</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the fit within one iteration.</param>
    /// <returns>The fitted model, its trace and stage timings.</returns>
    /// <exception cref="ArgumentException">Invalid options or too few samples; the message names the option.</exception>
    /// <exception cref="FitDivergedException">A loss or gradient became NaN or infinite.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static FitResult Fit(Dataset data, FitOptions options, IProgress<FitProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        var context = new Core.RunContext(
            FuncConvert.FromAction<Core.TraceEntry>(e => progress?.Report(new FitProgress(e.Stage, e.Iteration, e.Loss))),
            cancellationToken);
        return Run(() => Core.Learner.Fit(options.ToCore(), data.Inner, context));
    }

    /// <summary>
    /// Fits a mixture of experts to a CSV file (<c>x1,…,xd,y</c>) that need not fit in memory: the file is read in
    /// chunks, the L4 stage uses every row through mergeable moment sums, and the likelihood stages (σ, signs,
    /// gating, EM polish) use a seeded uniform sample of at most <paramref name="maxRowsInMemory"/> rows. The file is
    /// read three times. With no more rows than that, this is <see cref="Fit"/> on the whole file.
    /// </summary>
    /// <param name="path">The CSV file.</param>
    /// <param name="options">The options; <see cref="FitOptions.Method"/> must be <see cref="FitMethod.L4"/> with the
    /// subspace solver.</param>
    /// <param name="maxRowsInMemory">Rows held in memory for the likelihood stages (and the chunk size).</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the fit within one iteration.</param>
    /// <returns>The fitted model, its trace and stage timings.</returns>
    /// <exception cref="ArgumentException">Invalid options, or a method other than L4 with the subspace solver.</exception>
    /// <exception cref="InvalidDataException">A malformed row (with its line and column).</exception>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="FitDivergedException">A loss or gradient became NaN or infinite.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static FitResult FitCsv(string path, FitOptions options, int maxRowsInMemory = 200_000,
        IProgress<FitProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRowsInMemory, 1);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The data file '{path}' does not exist.", path);
        }

        var context = new Core.RunContext(
            FuncConvert.FromAction<Core.TraceEntry>(e => progress?.Report(new FitProgress(e.Stage, e.Iteration, e.Loss))),
            cancellationToken);
        var chunks = Core.DataCsv.LoadChunks(path, maxRowsInMemory);
        return Run(() => Core.Learner.FitChunks(options.ToCore(), chunks, maxRowsInMemory, context));
    }

    private static FitResult Run(Func<Core.FitResult> fit)
    {
        try
        {
            return new FitResult(fit());
        }
        catch (Core.NonFiniteException e)
        {
            throw new FitDivergedException(e);
        }
    }
}

/// <summary>Recovery errors of a fitted model against a ground truth (paper §4, aligned as MATH.md §6 defines).</summary>
public sealed class RecoveryErrors
{
    internal RecoveryErrors(Core.RecoveryErrors e)
    {
        RegressorError = e.RegressorError;
        GatingError = e.GatingError;
        GatingDistance = e.GatingDistance;
        LiteralGatingError = e.LiteralGatingError;
        Permutation = e.Permutation.ToArray();
    }

    /// <summary>E_reg = 1 − max_π min_i |cos(â_i, a*_π(i))|.</summary>
    public double RegressorError { get; }

    /// <summary>E_gating after aligning experts by the regressors' matching and rebasing the reference expert.</summary>
    public double GatingError { get; }

    /// <summary>max_j ‖ŵ'_j − w*_j‖ after the same alignment.</summary>
    public double GatingDistance { get; }

    /// <summary>The paper's literal E_gating (no alignment; blind to label swaps).</summary>
    public double LiteralGatingError { get; }

    /// <summary>Fitted expert i matches true expert Permutation[i].</summary>
    public IReadOnlyList<int> Permutation { get; }
}

/// <summary>Parameter-recovery metrics.</summary>
public static class Metrics
{
    /// <summary>Compares a fitted model with the ground truth (same k and d).</summary>
    /// <exception cref="ArgumentException">k or d differ.</exception>
    public static RecoveryErrors Compare(MixtureOfExperts fitted, MixtureOfExperts truth)
    {
        ArgumentNullException.ThrowIfNull(fitted);
        ArgumentNullException.ThrowIfNull(truth);
        return new RecoveryErrors(Core.Metrics.Compare(fitted.Inner, truth.Inner));
    }
}
