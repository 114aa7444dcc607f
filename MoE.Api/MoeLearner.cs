using Microsoft.FSharp.Core;
using Core = MoE.Core;

namespace MoE.Api;

/// <summary>Fits mixtures of experts.</summary>
public static partial class MoeLearner
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
        var context = Context(progress, cancellationToken);
        var config = data.Design is { } design ? options.ToCore().WithDesign(design) : options.ToCore();
        // A dataset read with rows left out for a missing value is fitted as the same one shard, told of them.
        var result = data.DroppedRows == 0
            ? Run(() => Core.Learner.Fit(config, data.Inner, context))
            : Run(() => Core.Learner.FitSource(config, Core.DataSourceModule.OfDatasetDropping(data.Dropped.Item1, data.Dropped.Item2, data.Inner), int.MaxValue, context));
        if (options.StandardErrors != StandardErrorKind.None)
        {
            result.StandardErrors = StandardErrors(result.Model, data, options.StandardErrors, options.CommonSigma,
                options.Sigma is null, options.DegreesOfFreedom is null);
        }

        return result;
    }

    private static Core.RunContext Context(IProgress<FitProgress>? progress, CancellationToken cancellationToken) =>
        new(FuncConvert.FromAction<Core.TraceEntry>(e => progress?.Report(FitProgress.From(e))),
            cancellationToken);

    private static T RunCore<T>(Func<T> f)
    {
        try
        {
            return f();
        }
        catch (Core.NonFiniteException e)
        {
            throw new FitDivergedException(e);
        }
    }

    /// <summary>
    /// Fits a mixture of experts to data read in passes (files larger than memory, directories of shards, your own
    /// storage): every statistic over all the rows — the data's moments, the standardisation, the moment initializers,
    /// every EM map and likelihood evaluation — is a pass over the source, and the samples the estimator draws by design
    /// are chosen by row position, so the same shards give the same model whether they are held in memory or read again
    /// for each pass (docs/math.md §7.6).
    /// </summary>
    /// <param name="source">The data (<see cref="DataSources"/>).</param>
    /// <param name="options">The options (<see cref="FitOptions.Experts"/> is required). The ℓ2 baseline and the paper's
    /// SGD solver need every row in memory.</param>
    /// <param name="maxRowsInMemory">A memory bound: a source of at most this many rows is read once and held in memory;
    /// a larger one is read again for every pass, and the stages that work on a sample of rows use at most this many.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the fit (checked between batches and iterations).</param>
    /// <returns>The fitted model, its trace and stage timings.</returns>
    /// <exception cref="ArgumentException">Invalid options, a method that needs the rows in memory on a larger source,
    /// or fewer than 10 rows in memory per model parameter.</exception>
    /// <exception cref="InvalidDataException">A malformed file (with its line and column, or its column and row).</exception>
    /// <exception cref="FitDivergedException">A loss or gradient became NaN or infinite.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static FitResult FitSource(IDataSource source, FitOptions options, int maxRowsInMemory = int.MaxValue,
        IProgress<FitProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRowsInMemory, 1);
        if (options.StandardErrors != StandardErrorKind.None)
        {
            throw new ArgumentException("Standard errors need the data in memory: load it (Dataset.LoadCsv, Dataset.LoadParquet) and call Fit, or call MoeLearner.StandardErrors on a sample.", nameof(options));
        }

        var core = DataSources.ToCore(source);
        var context = Context(progress, cancellationToken);
        var config = DataSources.DesignOf(source) is { } design ? options.ToCore().WithDesign(design) : options.ToCore();
        return Run(() => Core.Learner.FitSource(config, core, maxRowsInMemory, context));
    }

    /// <summary>
    /// Fits a mixture of experts to a CSV file (<c>x1,…,xd,y</c>) that need not fit in memory:
    /// <see cref="FitSource"/> on <see cref="DataSources.Csv"/>.
    /// </summary>
    /// <param name="path">The CSV file.</param>
    /// <param name="options">The options.</param>
    /// <param name="maxRowsInMemory">The memory bound of <see cref="FitSource"/>.</param>
    /// <param name="progress">Receives each stage's progress (optional).</param>
    /// <param name="cancellationToken">Cancels the fit.</param>
    /// <returns>The fitted model, its trace and stage timings.</returns>
    /// <exception cref="ArgumentException">As <see cref="FitSource"/>.</exception>
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
        return FitSource(DataSources.Csv(path), options, maxRowsInMemory, progress, cancellationToken);
    }

    private static FitResult Run(Func<Core.FitResult> fit) => new(RunCore(fit));
}
