using System.Text;
using FsCheck;
using FsCheck.Fluent;
using MoE.Cli;

namespace MoE.Api.Tests;

/// <summary>
/// The command line under damaged files, driven by FsCheck: byte flips, insertions, deletions, truncations and
/// splices of a valid CSV and a valid model file. Whatever the damage, <c>moe fit</c> and <c>moe eval</c> end with
/// exit 0, or exit 1 and exactly one "moe: error:" line — never an unhandled exception, a stack trace or an
/// "unexpected" error (the readers raise their own error type; FuzzTests in the core checks that directly).
/// </summary>
[Collection(SnippetCollection.Name)]
public class CliFuzzTests
{
    /// <summary>One damage: a kind (0 flip, 1 insert, 2 delete, 3 truncate, 4 splice), a position and a value.</summary>
    public sealed record Damage(int Kind, int At, int Value);

    private static readonly MixtureOfExperts Truth =
        GroundTruth.Create(GroundTruthPreset.Orthogonal, experts: 2, dimension: 3, Activation.Identity, sigma: 0.05);

    private static readonly Arbitrary<Damage[]> Damages =
        Gen.Choose(0, 4).SelectMany(kind => Gen.Choose(0, 1000), (kind, at) => (kind, at))
            .SelectMany(_ => Gen.Choose(0, 255), (ka, value) => new Damage(ka.kind, ka.at, value))
            .ArrayOf()
            .Select(a => a.Take(4).ToArray())
            .ToArbitrary();

    private static byte[] Apply(byte[] bytes, byte[] other, Damage d)
    {
        int Pos(byte[] b) => (int)((long)d.At * b.Length / 1000);
        var p = Pos(bytes);
        return d.Kind switch
        {
            0 when bytes.Length > 0 => bytes.Select((b, i) => i == Math.Min(p, bytes.Length - 1) ? (byte)d.Value : b).ToArray(),
            1 => [.. bytes[..p], (byte)d.Value, (byte)',', (byte)'\n', .. bytes[p..]],
            2 => [.. bytes[..p], .. bytes[Math.Min(bytes.Length, p + d.Value % 64)..]],
            3 => bytes[..p],
            4 => [.. bytes[..p], .. other[Pos(other)..]],
            _ => bytes,
        };
    }

    private static (int Code, string Error) Run(string dir, params string[] args)
    {
        var error = new StringWriter();
        var previous = Directory.GetCurrentDirectory();
        try
        {
            Directory.SetCurrentDirectory(dir);
            return (Cli.Run(args, new StringWriter(), error), error.ToString());
        }
        finally
        {
            Directory.SetCurrentDirectory(previous);
        }
    }

    private static bool Clean(int code, string error)
    {
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return code == 0
               || (code == 1
                   && lines.Count(l => l.StartsWith("moe: error: ", StringComparison.Ordinal)) == 1
                   && !error.Contains("unexpected", StringComparison.Ordinal)
                   && !error.Contains("   at ", StringComparison.Ordinal));
    }

    [Fact]
    public void DamagedDataFilesNeverCrashMoeFit()
    {
        using var dir = new TempDir();
        Truth.Sample(300, seed: 5).SaveCsv(dir.File("good.csv"));
        Truth.Save(dir.File("truth.json"));
        var csv = File.ReadAllBytes(dir.File("good.csv"));
        var json = File.ReadAllBytes(dir.File("truth.json"));
        Prop.ForAll(Damages, damages =>
        {
            File.WriteAllBytes(dir.File("data.csv"), damages.Aggregate(csv, (b, d) => Apply(b, json, d)));
            var (code, error) = Run(dir.Info.FullName, "fit", "data.csv", "--k", "2", "--sigma", "0.05", "--out", "m.json");
            return Clean(code, error).Label($"exit {code}: {error}");
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(60));
    }

    [Fact]
    public void DamagedModelFilesNeverCrashMoeEval()
    {
        using var dir = new TempDir();
        Truth.Save(dir.File("truth.json"));
        Truth.Sample(100, seed: 5).SaveCsv(dir.File("good.csv"));
        var json = File.ReadAllBytes(dir.File("truth.json"));
        var csv = File.ReadAllBytes(dir.File("good.csv"));
        Prop.ForAll(Damages, damages =>
        {
            File.WriteAllBytes(dir.File("model.json"), damages.Aggregate(json, (b, d) => Apply(b, csv, d)));
            var (code, error) = Run(dir.Info.FullName, "eval", "model.json", "truth.json", "--data", "good.csv", "--json");
            return Clean(code, error).Label($"exit {code}: {error}");
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(200));
    }
}
