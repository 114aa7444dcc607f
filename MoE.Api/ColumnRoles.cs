using Microsoft.FSharp.Core;
using Core = MoE.Core;

namespace MoE.Api;

/// <summary>
/// What each of a data file's columns is in a fit: the response, the experts' inputs and the gate's inputs (the gate
/// and the experts may read different columns, overlapping or disjoint). Any role left null takes its default: the
/// response is the column named <c>y</c> (in any case), the experts read every column but the response, the gate reads
/// the experts' columns. A model fitted on data read with roles records the column names and reads new data by name
/// (<see cref="MixtureOfExperts.ReadCovariates"/>). docs/data.md has the rules.
/// </summary>
/// <example>
/// <code>
/// var roles = ColumnRoles.Parse("patents ~ lgRD | RDs");   // or new ColumnRoles { Response = "patents", ... }
/// var data = Dataset.Load("patents.csv", roles);
/// var fit = MoeLearner.Fit(data, new FitOptions { Experts = 2, Family = ExpertFamily.Poisson });
/// </code>
/// </example>
public sealed class ColumnRoles
{
    /// <summary>The response column's name; null for the column named <c>y</c>.</summary>
    public string? Response { get; init; }

    /// <summary>The experts' columns by name, in the order of a row of the regressors; null for every column but the
    /// response, in the file's order.</summary>
    public IReadOnlyList<string>? Experts { get; init; }

    /// <summary>The gate's columns by name, in the order of a row of the gating; null for the experts' columns.</summary>
    public IReadOnlyList<string>? Gate { get; init; }

    /// <summary>What a row with a missing value in a column these roles read does: refused (the default) or dropped.</summary>
    public MissingValues Missing { get; init; } = MissingValues.Refuse;

    /// <summary>The reference level of categorical (text) columns, column → level; a column not listed takes its first
    /// level in ordinal order. A text column a role reads enters the fit as the indicators of its other levels, named
    /// <c>column=level</c>.</summary>
    public IReadOnlyDictionary<string, string>? References { get; init; }

    /// <summary>The column of the rows' frequency weights; null when every row weighs 1. A row of weight w counts w
    /// times in the fit, its standard errors and its criteria (n = Σw), so integer weights fit as the rows repeated; a
    /// weight of 0 leaves the row out. It is read with the rows, never an input, so a model predicts without it.
    /// Negative or non-finite weights are refused, naming the row.</summary>
    public string? Weights { get; init; }

    /// <summary>The column of the rows' exposures t &gt; 0 (time at risk, area, population); null for none. Each
    /// count's mean becomes t·e^η: the offset log t enters every expert's linear predictor with no coefficient (R's
    /// <c>offset(log(t))</c>), for <see cref="ExpertFamily.Poisson"/> experts. The model records the column, so
    /// predictions read it too. A non-positive exposure is refused, naming the row.</summary>
    public string? Offset { get; init; }

    /// <summary>The column of the rows' numbers of trials n (whole numbers ≥ 1); null for none. For
    /// <see cref="ExpertFamily.Binomial"/> experts, whose response is the successes y out of n (docs/math.md §12.5).
    /// The model records the column, so predictions read it too. Not with <see cref="Offset"/>: both name the row's
    /// column, an exposure for Poisson experts and the trials for binomial ones.</summary>
    public string? Trials { get; init; }

    /// <summary>Roles from a formula as R users write it: <c>y ~ a + b | z1 + z2</c> — the response left of <c>~</c>,
    /// the experts' columns right of it, the gate's after <c>|</c> (default: the experts'); <c>.</c> stands for every
    /// column but the response; a name with spaces or operators goes in backticks. (In flexmix, <c>|</c> names a
    /// grouping variable; here it introduces the gate's inputs.)</summary>
    /// <param name="formula">The formula.</param>
    /// <exception cref="ArgumentException">Not of that form; the message says which part.</exception>
    public static ColumnRoles Parse(string formula)
    {
        ArgumentNullException.ThrowIfNull(formula);
        var core = Core.ColumnRolesModule.ParseFormula(formula);
        return new ColumnRoles
        {
            Response = core.Response?.Value,
            Experts = core.Experts?.Value,
            Gate = core.Gate?.Value,
        };
    }

    internal Core.ColumnRoles ToCore()
    {
        static FSharpOption<string[]> Names(IReadOnlyList<string>? names, string role)
        {
            if (names is null)
            {
                return FSharpOption<string[]>.None;
            }

            if (names.Any(n => n is null))
            {
                throw new ArgumentException($"The {role} hold a null column name.", role);
            }

            return FSharpOption<string[]>.Some(names.ToArray());
        }

        return new Core.ColumnRoles(
            Response is null ? FSharpOption<string>.None : FSharpOption<string>.Some(Response),
            Names(Experts, nameof(Experts)),
            Names(Gate, nameof(Gate)),
            Missing switch
            {
                MissingValues.Refuse => Core.MissingValues.Refuse,
                MissingValues.Drop => Core.MissingValues.Drop,
                _ => throw new ArgumentOutOfRangeException(nameof(Missing), Missing, $"Missing = {(int)Missing} is not a defined MissingValues value."),
            },
            (References ?? new Dictionary<string, string>()).Select(r => Tuple.Create(r.Key, r.Value)).ToArray(),
            Weights is null ? FSharpOption<string>.None : FSharpOption<string>.Some(Weights),
            (Offset, Trials) switch
            {
                (not null, not null) => throw new ArgumentException(
                    "Offset and Trials both name the row's column (an exposure for Poisson experts, the trials for binomial ones); set one.", nameof(Trials)),
                (null, null) => FSharpOption<string>.None,
                _ => FSharpOption<string>.Some(Offset ?? Trials!),
            });
    }
}

/// <summary>What a reader does with a row that has a missing value (an empty field or <c>NA</c> in CSV, a null in
/// Parquet) in a column a fit reads. <c>NaN</c> and infinities are values, refused as not finite.</summary>
public enum MissingValues
{
    /// <summary>Stop at the first one, naming its line (or row) and column (the default).</summary>
    Refuse,

    /// <summary>Leave the row out and say how many were (the fit's warning <see cref="WarningCode.RowsDropped"/>;
    /// <see cref="Dataset.DroppedRows"/>).</summary>
    Drop,
}
