using System.CommandLine;
using MoE.Api;

namespace MoE.Cli.Commands;

/// <summary>Options that several commands share, and their conversion to façade types.</summary>
internal static class Shared
{
    public static Option<string> ActivationOption() => new("--activation")
    {
        Description = "expert non-linearity: identity, relu, leaky-relu, sigmoid or tanh",
        DefaultValueFactory = _ => "identity",
    };

    public static Option<string?> FamilyOption() => new("--family")
    {
        Description = "the experts' family: gaussian (default), poisson (counts; log link), bernoulli (0/1 outcomes; logit link), binomial (successes out of --trials; logit link) or student-t (heavy-tailed errors; robust lines)",
    };

    public static Option<double?> DegreesOfFreedomOption() => new("--df")
    {
        Description = "student-t experts' degrees of freedom: fixed at this value (default: estimated per expert; generate: 4)",
    };

    /// <summary>The --df typed on the command line, checked: a finite number &gt; 0, and only with --family student-t.</summary>
    public static double? DegreesOfFreedom(double? df, ExpertFamily family)
    {
        if (df is not { } nu) return null;
        Require(family == ExpertFamily.StudentT, "--df", "used with --family student-t", $"given with {family.Name()} experts");
        Require(double.IsFinite(nu) && nu > 0, "--df", "a number > 0", nu);
        return nu;
    }

    public static Option<double?> SlopeOption() => new("--slope")
    {
        Description = "negative-side slope of leaky-relu (default 0.1; only valid with leaky-relu)",
    };

    /// <summary>The activation named on the command line; leaky-relu takes --slope (default 0.1).</summary>
    public static Activation ParseActivation(string name, double? slope) => Activation.Parse(name, slope);

    public static GroundTruthPreset ParsePreset(string name, bool freeGating) => name.Trim().ToLowerInvariant() switch
    {
        "orthogonal" when !freeGating => GroundTruthPreset.Orthogonal,
        "random-gating" when !freeGating => GroundTruthPreset.RandomGating,
        "random" => freeGating ? GroundTruthPreset.RandomFreeGating : GroundTruthPreset.Random,
        "orthogonal" or "random-gating" => throw new ArgumentException(
            $"--free-gating only applies to the 'random' preset, not '{name}'.", "preset"),
        _ => throw new ArgumentException(
            $"Unknown preset '{name}'; expected orthogonal, random-gating or random.", "preset"),
    };

    /// <summary>
    /// Checks a command's files before any work is done: every input exists and is a file, no output is a directory,
    /// and no output is also an input or another output (writing it would destroy data). Null entries are absent
    /// optional files.
    /// </summary>
    /// <exception cref="FileNotFoundException">An input is missing or is a directory.</exception>
    /// <exception cref="ArgumentException">An output is a directory, an input, or named twice.</exception>
    public static void CheckPaths(IReadOnlyList<FileInfo?> inputs, IReadOnlyList<FileInfo?> outputs)
    {
        var comparison = OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;
        foreach (var input in inputs.OfType<FileInfo>())
        {
            if (Directory.Exists(input.FullName))
            {
                throw new FileNotFoundException($"'{input}' is a directory, not a file.", input.FullName);
            }

            if (!input.Exists)
            {
                throw new FileNotFoundException($"The file '{input}' does not exist.", input.FullName);
            }
        }

        var seen = new List<FileInfo>();
        foreach (var output in outputs.OfType<FileInfo>())
        {
            if (Directory.Exists(output.FullName))
            {
                throw new ArgumentException($"The output '{output}' is a directory; name a file.", "out");
            }

            if (inputs.OfType<FileInfo>().FirstOrDefault(i => string.Equals(Resolve(i), Resolve(output), comparison)) is { } clash)
            {
                throw new ArgumentException($"The output '{output}' is also the input '{clash}'; writing it would destroy the input. Name another output file.", "out");
            }

            if (seen.FirstOrDefault(o => string.Equals(Resolve(o), Resolve(output), comparison)) is { } twice)
            {
                throw new ArgumentException($"The outputs '{twice}' and '{output}' are the same file; name two different files.", "out");
            }

            seen.Add(output);
            ProbeWritable(output);
        }
    }

    /// <summary>No output of a fit over a shard directory is written inside that directory: every file there is a
    /// shard, so an output there would replace a shard (data lost) or become one (the next fit of the directory
    /// reads the model as data).</summary>
    /// <param name="shards">The shard directory.</param>
    /// <param name="outputs">The outputs (null entries are absent).</param>
    public static void CheckOutsideShards(DirectoryInfo shards, IReadOnlyList<FileInfo?> outputs)
    {
        var comparison = OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;
        var folder = Path.TrimEndingDirectorySeparator(Path.GetFullPath(shards.FullName)) + Path.DirectorySeparatorChar;
        foreach (var output in outputs.OfType<FileInfo>())
        {
            if (Path.GetFullPath(output.FullName).StartsWith(folder, comparison))
            {
                throw new ArgumentException(
                    $"The output '{output}' is inside the shard directory '{shards}': every file there is a shard, so writing it would replace a shard or add one to the data. Write it outside the directory.",
                    "out");
            }
        }
    }

    /// <summary>The output's folder exists (it is created) and takes a new file: found out before the work, not after.</summary>
    private static void ProbeWritable(FileInfo output)
    {
        var folder = output.Directory ?? new DirectoryInfo(Directory.GetCurrentDirectory());
        var probe = Path.Combine(folder.FullName, $".moe-probe-{Guid.NewGuid():N}");
        try
        {
            folder.Create();
            using (File.Create(probe, 1, FileOptions.DeleteOnClose))
            {
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Cannot write '{output}': {e.Message}", e);
        }
    }

    /// <summary>A command-line value in range, or an error that names the option (exit code 1).</summary>
    /// <exception cref="ArgumentException">The value is out of range.</exception>
    public static void Require(bool inRange, string option, string rule, object? value)
    {
        if (!inRange)
        {
            throw new ArgumentException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{option} must be {rule}, but was {value}."), option.TrimStart('-'));
        }
    }

    /// <summary>The full path with symbolic links resolved (so two names of one file compare equal).</summary>
    private static string Resolve(FileInfo file)
    {
        var info = new FileInfo(file.FullName);
        return info.Exists && info.ResolveLinkTarget(returnFinalTarget: true) is { } target ? target.FullName : info.FullName;
    }

    /// <summary>Creates the output file's folder if needed and returns the file's full path.</summary>
    public static string PrepareOutput(FileInfo file)
    {
        file.Directory?.Create();
        return file.FullName;
    }

    /// <summary>The columns' roles typed: a formula, or --x, --gate-x and --y; null when none was typed (the file's
    /// convention: x1..xd, y).</summary>
    /// <summary>The rows a model was fitted to, read from a file by the model's columns; with
    /// <paramref name="weightColumn"/> also the rows' frequency weights (the model's names, its levels' references and
    /// the weights beside them), for the commands that redo a weighted fit's inference (test, bootstrap).</summary>
    public static Dataset ReadFitData(MixtureOfExperts model, FileInfo data, string? weightColumn)
    {
        if (weightColumn is null)
        {
            return model.ReadData(data.FullName);
        }

        Require(model.ExpertColumns is not null, "--weights", "used with a model that records its columns (fitted with --x, --formula or --weights)", "with a positional model");
        string Source(string c) => model.Levels?.Keys.FirstOrDefault(l => c.StartsWith(l + "=", StringComparison.Ordinal)) ?? c;
        return Dataset.Load(data.FullName, new ColumnRoles
        {
            Response = model.Response,
            Experts = model.ExpertColumns!.Select(Source).Distinct().ToArray(),
            Gate = model.GateColumns!.Select(Source).Distinct().ToArray(),
            References = model.Levels?.ToDictionary(l => l.Key, l => l.Value[0]),
            Weights = weightColumn,
        });
    }

    public static ColumnRoles? Roles(string? formula, string? experts, string? gate, string? response)
    {
        static string[]? Names(string? list, string option)
        {
            if (list is null)
            {
                return null;
            }

            var names = list.Split(',', StringSplitOptions.TrimEntries);
            if (names.Any(n => n.Length == 0))
            {
                throw new ArgumentException($"{option} '{list}' has an empty column name; separate names by single commas.", option.TrimStart('-'));
            }

            return names;
        }

        if (formula is not null)
        {
            if (experts is not null || gate is not null || response is not null)
            {
                throw new ArgumentException("--formula says every column's role; leave out --x, --gate-x and --y, or the formula.", "formula");
            }

            return ColumnRoles.Parse(formula);
        }

        if (experts is null && gate is null && response is null)
        {
            return null;
        }

        return new ColumnRoles { Experts = Names(experts, "--x"), Gate = Names(gate, "--gate-x"), Response = response?.Trim() };
    }

    /// <summary>--missing: refuse (the default) or drop rows with a missing value.</summary>
    public static Option<string?> MissingOption() => new("--missing")
    {
        Description = "a row with a missing value (an empty field or NA; a null in Parquet) in a column read: refuse (default: an error naming it) or drop (left out of a fit and counted; NaN predictions)",
    };

    /// <summary>The policy typed with --missing.</summary>
    public static MissingValues ParseMissing(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        null or "refuse" => MissingValues.Refuse,
        "drop" => MissingValues.Drop,
        _ => throw new ArgumentException($"Unknown --missing '{name}'; expected refuse or drop.", "missing"),
    };

    /// <summary>--reference col=level[,col=level] as a map (null when not typed).</summary>
    public static IReadOnlyDictionary<string, string>? ParseReferences(string? text)
    {
        if (text is null)
        {
            return null;
        }

        var map = new Dictionary<string, string>();
        foreach (var pair in text.Split(',', StringSplitOptions.TrimEntries))
        {
            var at = pair.IndexOf('=');
            if (at <= 0 || at == pair.Length - 1)
            {
                throw new ArgumentException($"--reference takes column=level pairs separated by commas, but has '{pair}'.", "reference");
            }

            if (!map.TryAdd(pair[..at].Trim(), pair[(at + 1)..].Trim()))
            {
                throw new ArgumentException($"--reference names the column '{pair[..at].Trim()}' twice.", "reference");
            }
        }

        return map;
    }

    /// <summary>The roles with a missing-value policy, reference levels and a weights column: each reads the columns by
    /// the header's names, so they make roles (y the response) when none were typed.</summary>
    public static ColumnRoles? WithPolicies(ColumnRoles? roles, MissingValues missing, IReadOnlyDictionary<string, string>? references,
        string? weights = null, string? offset = null)
    {
        if (missing == MissingValues.Refuse && references is null && weights is null && offset is null)
        {
            return roles;
        }

        if (weights is not null && weights.Trim().Length == 0)
        {
            throw new ArgumentException("--weights names no column; give the weights column's name.", "weights");
        }

        if (offset is not null && offset.Trim().Length == 0)
        {
            throw new ArgumentException("--offset names no column; give the exposure column's name.", "offset");
        }

        return new ColumnRoles
        {
            Response = roles?.Response,
            Experts = roles?.Experts,
            Gate = roles?.Gate,
            Missing = missing,
            References = references,
            Weights = weights?.Trim(),
            Offset = offset?.Trim(),
        };
    }

    /// <summary>The options that say the data's columns' roles, shared by fit, select and diagnose.</summary>
    public sealed class RoleOptions
    {
        private readonly Option<string?> experts = new("--x") { Description = "the experts' columns by name, comma-separated (default: every column but the response)" };
        private readonly Option<string?> gate = new("--gate-x") { Description = "the gate's columns by name, comma-separated (default: the experts' columns)" };
        private readonly Option<string?> response = new("--y") { Description = "the response column by name (default: y)" };
        private readonly Option<string?> formula = new("--formula") { Description = "the columns' roles as a formula: \"y ~ a + b | z1 + z2\" (experts left of |, gate right; . for every other column), instead of --x, --gate-x and --y" };
        private readonly Option<string?> missing = MissingOption();
        private readonly Option<string?> reference = new("--reference") { Description = "the reference level of text (categorical) columns: col=level[,col=level] (default: each column's first level in ordinal order)" };
        private readonly Option<string?> weights = new("--weights") { Description = "the column of each row's frequency weight (a row of weight w counts w times; 0 leaves it out; default: every row weighs 1)" };
        private readonly Option<string?> offset = new("--offset") { Description = "the column of each row's exposure t > 0 (poisson experts: a count's mean is t·exp(η), log t an offset with no coefficient; the model records the column and predictions read it)" };
        private readonly Option<string?> trials = new("--trials") { Description = "the column of each row's number of trials n (binomial experts: y successes out of n; the model records the column and predictions read it)" };

        /// <summary>Adds the options to a command.</summary>
        public void AddTo(Command command)
        {
            foreach (var option in new[] { experts, gate, response, formula, missing, reference, weights, offset, trials })
            {
                command.Options.Add(option);
            }
        }

        /// <summary>The roles typed, or null for the file's convention (x1..xd, y). The row column is an exposure
        /// (--offset, poisson experts) or the trials (--trials, binomial experts): each only with its family.</summary>
        public ColumnRoles? Read(ParseResult parse, ExpertFamily family)
        {
            var exposure = parse.GetValue(offset);
            var n = parse.GetValue(trials);
            Require(n is null || family == ExpertFamily.Binomial, "--trials", "used with --family binomial (y successes out of n trials)", $"given with {family.Name()} experts");
            Require(family != ExpertFamily.Binomial || exposure is null, "--offset", "an exposure of poisson experts; binomial experts take --trials", "given with binomial experts");
            Require(family != ExpertFamily.Binomial || n is not null, "--trials", "given with --family binomial (the column of each row's number of trials)", "missing");
            if (n is not null && n.Trim().Length == 0)
            {
                throw new ArgumentException("--trials names no column; give the trials column's name.", "trials");
            }

            return WithPolicies(Roles(parse.GetValue(formula), parse.GetValue(experts), parse.GetValue(gate), parse.GetValue(response)),
                ParseMissing(parse.GetValue(missing)), ParseReferences(parse.GetValue(reference)), parse.GetValue(weights),
                exposure ?? n);
        }
    }
}

/// <summary>Reports on the calling thread: Progress&lt;T&gt; posts to the thread pool, so its reports can arrive after
/// the run has printed its result.</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
