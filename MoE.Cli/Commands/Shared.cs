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

    public static Option<double?> SlopeOption() => new("--slope")
    {
        Description = "negative-side slope of leaky-relu (default 0.1; only valid with leaky-relu)",
    };

    /// <summary>The activation named on the command line; leaky-relu takes --slope (default 0.1).</summary>
    public static Activation ParseActivation(string name, double? slope)
    {
        var isLeaky = string.Equals(name.Trim(), "leaky-relu", StringComparison.OrdinalIgnoreCase);
        return Activation.Parse(name, isLeaky ? slope ?? 0.1 : slope ?? 0.0);
    }

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

    /// <summary>Creates the output file's folder if needed and returns the file's full path.</summary>
    public static string PrepareOutput(FileInfo file)
    {
        file.Directory?.Create();
        return file.FullName;
    }
}
