using System.CommandLine;
using System.Globalization;
using MoE.Api;

namespace MoE.Cli.Commands;

/// <summary><c>moe generate</c>: a ground truth from a preset, samples from it, a CSV and a model file.</summary>
internal static class GenerateCommand
{
    public static Command Create(TextWriter output)
    {
        var d = new Option<int>("--d") { Description = "input dimension d", Required = true };
        var k = new Option<int>("--k") { Description = "number of experts k >= 2", Required = true };
        var activation = Shared.ActivationOption();
        var slope = Shared.SlopeOption();
        var sigma = new Option<double>("--sigma") { Description = "noise standard deviation", DefaultValueFactory = _ => 0.05 };
        var family = Shared.FamilyOption();
        var df = Shared.DegreesOfFreedomOption();
        var n = new Option<long>("--n") { Description = "number of samples (written in batches: any number the disk holds)", DefaultValueFactory = _ => 100_000 };
        var seed = new Option<long>("--seed") { Description = "random seed (same seed, same bits, any machine)", DefaultValueFactory = _ => 1 };
        var preset = new Option<string>("--preset")
        {
            Description = "ground truth: orthogonal (a_i = e_i, w_i = e_{k+i}), random-gating (a_i = e_i, w_i on the sphere), random (random unit regressors, gating orthogonal to them)",
            DefaultValueFactory = _ => "orthogonal",
        };
        var radius = new Option<double>("--radius") { Description = "norm of each gating row for the random presets", DefaultValueFactory = _ => 1.0 };
        var free = new Option<bool>("--free-gating") { Description = "random preset: gating not restricted to the regressors' orthogonal complement" };
        var outPath = new Option<FileInfo>("--out") { Description = "the data file to write: x1,...,xd,y as CSV, or as Parquet for a .parquet name (written a batch at a time, in bounded memory)", Required = true };
        var truthPath = new Option<FileInfo?>("--truth") { Description = "the model file (JSON) of the ground truth to write" };
        var intercepts = new Option<bool>("--intercepts") { Description = "give the experts and the gate intercepts drawn from N(0, 1) (for standard covariates)" };
        var sigmas = new Option<string?>("--sigmas") { Description = "a noise level per expert, comma-separated (k values; replaces --sigma)" };
        var covariateMean = new Option<string?>("--covariate-mean") { Description = "shift the covariates: x = mean + scale * u; one value for every column or d comma-separated" };
        var covariateScale = new Option<string?>("--covariate-scale") { Description = "scale the covariates (> 0): one value for every column or d comma-separated" };

        var command = new Command("generate", "sample a dataset from a ground-truth mixture of experts")
        {
            d, k, activation, slope, family, df, sigma, n, seed, preset, radius, free, outPath, truthPath, intercepts, sigmas,
            covariateMean, covariateScale,
        };
        command.SetAction(parse =>
        {
            Shared.CheckPaths([], [parse.GetValue(outPath), parse.GetValue(truthPath)]);
            Shared.Require(parse.GetValue(k) >= 2, "--k", "at least 2 (a mixture has k >= 2 experts)", parse.GetValue(k));
            Shared.Require(parse.GetValue(d) >= 1, "--d", "at least 1", parse.GetValue(d));
            Shared.Require(parse.GetValue(n) >= 1, "--n", "at least 1", parse.GetValue(n));
            var truth = GroundTruth.Create(
                Shared.ParsePreset(parse.GetValue(preset)!, parse.GetValue(free)),
                parse.GetValue(k),
                parse.GetValue(d),
                Shared.ParseActivation(parse.GetValue(activation)!, parse.GetValue(slope)),
                parse.GetValue(sigma),
                parse.GetValue(radius),
                parse.GetValue(seed));
            var experts = parse.GetValue(k);
            var dim = parse.GetValue(d);
            var general = parse.GetValue(intercepts) || parse.GetValue(sigmas) is not null
                || parse.GetValue(covariateMean) is not null || parse.GetValue(covariateScale) is not null;
            var mean = Values(parse.GetValue(covariateMean), dim, 0.0, "--covariate-mean");
            var scale = Values(parse.GetValue(covariateScale), dim, 1.0, "--covariate-scale");
            if (general)
            {
                var (b, c) = parse.GetValue(intercepts)
                    ? GroundTruth.RandomIntercepts(experts, parse.GetValue(seed))
                    : (new double[experts], new double[experts - 1]);
                var levels = Values(parse.GetValue(sigmas), experts, parse.GetValue(sigma), "--sigmas", sameCount: true);
                truth = GroundTruth.InCovariateUnits(truth, b, c, levels, mean, scale);
            }

            if (parse.GetValue(family) is { } familyName)
            {
                var chosen = ExpertFamilies.Parse(familyName);
                // Binomial experts need each row's trials: one more input column, the last (x{d+1}).
                truth = chosen == ExpertFamily.Binomial ? truth.WithTrialsColumn() : truth.WithFamily(chosen);
            }

            // The trials column is drawn in its own units (the sampler's rule), not the covariates'.
            if (truth.Dimension > mean.Length)
            {
                mean = [.. mean, 0.0];
                scale = [.. scale, 1.0];
            }

            if (Shared.DegreesOfFreedom(parse.GetValue(df), truth.Family) is { } nu)
            {
                truth = truth.WithDegreesOfFreedom(Enumerable.Repeat(nu, truth.Experts).ToArray());
            }

            var file = parse.GetValue(outPath)!;
            var rows = general
                ? truth.SaveSample(Shared.PrepareOutput(file), parse.GetValue(n), parse.GetValue(seed), mean, scale)
                : truth.SaveSample(Shared.PrepareOutput(file), parse.GetValue(n), parse.GetValue(seed));
            var truthFile = parse.GetValue(truthPath);
            if (truthFile is not null)
            {
                truth.Save(Shared.PrepareOutput(truthFile));
            }

            var truthNote = truthFile is null ? "" : $"; ground truth to {truthFile.Name}";
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {rows} samples (d={truth.Dimension}, k={truth.Experts}, {(truth.Family.HasNoiseLevels() ? $"{truth.Activation}, sigma={truth.Sigma}" : $"{truth.Family.Name()} experts")}) to {file.Name}{truthNote}"));
            return CliApp.Success;
        });
        return command;
    }

    /// <summary>A comma-separated list of numbers: one value repeated, or exactly <paramref name="count"/> values
    /// (exactly that many when <paramref name="sameCount"/>); the default when absent.</summary>
    private static double[] Values(string? text, int count, double fallback, string option, bool sameCount = false)
    {
        if (text is null)
        {
            return Enumerable.Repeat(fallback, count).ToArray();
        }

        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var values = new double[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) || !double.IsFinite(values[i]))
            {
                throw new ArgumentException($"{option}: '{parts[i]}' is not a finite number.", option.TrimStart('-'));
            }
        }

        if (values.Length == count)
        {
            return values;
        }

        if (values.Length == 1 && !sameCount)
        {
            return Enumerable.Repeat(values[0], count).ToArray();
        }

        throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
            $"{option} needs {(sameCount ? "" : "one value or ")}{count} comma-separated values, but has {values.Length}."), option.TrimStart('-'));
    }
}
