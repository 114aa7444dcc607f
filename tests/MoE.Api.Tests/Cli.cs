using System.Diagnostics;
using System.Text;
using MoE.Cli;

namespace MoE.Api.Tests;

/// <summary>
/// Runs the <c>moe</c> command line for the tests: in-process through <see cref="CliApp.Run"/>, or, when the environment
/// variable <c>MOE_CLI</c> names a <c>moe</c> executable (the published, natively compiled <c>dist/moe</c>), as that
/// process in the current directory — so CI runs every command-line test against the program users run as well.
/// </summary>
internal static class Cli
{
    /// <summary>The executable under test, or null for in-process runs.</summary>
    public static string? Binary =>
        Environment.GetEnvironmentVariable("MOE_CLI") is { Length: > 0 } path ? Path.GetFullPath(path) : null;

    /// <summary>Runs <c>moe</c> with the arguments; its standard output and error go to the writers.</summary>
    /// <returns>The exit code.</returns>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        if (Binary is not { } binary)
        {
            return CliApp.Run(args, output, error);
        }

        var start = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Directory.GetCurrentDirectory(),
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{binary} did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"moe {string.Join(' ', args)} did not finish within 10 minutes.");
        }

        output.Write(stdout.Result);
        error.Write(stderr.Result);
        return process.ExitCode;
    }
}
