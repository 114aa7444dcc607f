using System.CommandLine;
using MoE.Cli.Commands;

namespace MoE.Cli;

/// <summary>The <c>moe</c> command line: parsing, dispatch and the one-line error contract.</summary>
/// <remarks>
/// Every failure (a bad argument, a missing or malformed file, an invalid model) prints exactly one line
/// <c>moe: error: …</c> on the error writer and returns a non-zero exit code: 2 for command-line syntax,
/// 1 for everything else. Success returns 0.
/// </remarks>
public static class CliApp
{
    /// <summary>Exit code of a successful run.</summary>
    public const int Success = 0;

    /// <summary>Exit code of a run that failed on its inputs (files, values).</summary>
    public const int Failure = 1;

    /// <summary>Exit code of a command line that does not parse.</summary>
    public const int UsageError = 2;

    /// <summary>Runs the command line with the given writers (the tests pass string writers).</summary>
    /// <param name="args">The arguments after the program name.</param>
    /// <param name="output">Where results go (stdout).</param>
    /// <param name="error">Where errors and progress go (stderr).</param>
    /// <returns>The exit code.</returns>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (ClusterCommands.NeedsRuntime && ClusterCommands.Wanted(args))
        {
            try
            {
                return ClusterCommands.RunOnRuntime(args, output, error);
            }
            catch (Exception e)
            {
                error.WriteLine($"moe: error: {Describe(e)}");
                return Failure;
            }
        }

        var root = new RootCommand("moe: learn mixtures of experts with provably convergent losses (Makkuva et al.).");
        root.Subcommands.Add(GenerateCommand.Create(output));
        root.Subcommands.Add(CoefficientsCommand.Create(output));
        root.Subcommands.Add(FitCommand.Create(output, error));
        root.Subcommands.Add(FitCommand.CreateEval(output));
        root.Subcommands.Add(AnalysisCommand.CreateSelect(output, error));
        root.Subcommands.Add(AnalysisCommand.CreatePredict(output));
        root.Subcommands.Add(AnalysisCommand.CreatePlot(output));
        root.Subcommands.Add(AnalysisCommand.CreateCheck(output));
        root.Subcommands.Add(AnalysisCommand.CreateTest(output));
        root.Subcommands.Add(BootstrapCommand.Create(output, error));
        root.Subcommands.Add(ReportCommand.Create(output, error));
        root.Subcommands.Add(ExportCommand.Create(output));
        root.Subcommands.Add(AnalysisCommand.CreateDiagnose(output));
        root.Subcommands.Add(AnalysisCommand.CreateCoverage(output, error));
        root.Subcommands.Add(AcceptanceCommand.Create(output, error));
        root.Subcommands.Add(ReproduceCommand.Create(output, error));
        root.Subcommands.Add(ClusterCommands.CreateSilo(output, error));
        if (args.Length == 0)
        {
            args = ["--help"];
        }

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            // The most specific error first: an unknown word says more than "required command was not provided".
            var first = parse.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parse.Errors[0];
            error.WriteLine($"moe: error: {OneLine(first.Message)} (see 'moe --help')");
            return UsageError;
        }

        try
        {
            return parse.Invoke(new InvocationConfiguration
            {
                Output = output,
                Error = error,
                EnableDefaultExceptionHandler = false,
            });
        }
        catch (Exception e)
        {
            error.WriteLine($"moe: error: {Describe(e)}");
            return Failure;
        }
    }

    /// <summary>Longest error line printed; a longer message is cut (values inside messages are cut already).</summary>
    private const int MaxMessage = 1000;

    /// <summary>
    /// One line for a failure. Expected failures (bad values, files, data, a fit that cannot proceed) print their own
    /// message, without .NET's "(Parameter 'x')" and "Actual value was" suffixes; anything else is named as an
    /// unexpected error with its type, so it can be reported — never a stack trace.
    /// </summary>
    private static string Describe(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } or System.Reflection.TargetInvocationException && e.InnerException is not null)
        {
            e = e.InnerException!;
        }

        var message = e.Message;
        if (e is ArgumentException { ParamName: { } name })
        {
            message = message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal);
            var actual = message.IndexOf("Actual value was", StringComparison.Ordinal);
            if (actual >= 0)
            {
                message = message[..actual];
            }
        }

        var expected = e is ArgumentException or IOException or InvalidDataException or UnauthorizedAccessException or InvalidOperationException
            or FormatException or ArithmeticException or OperationCanceledException or NotSupportedException;
        var line = OneLine(expected ? message : $"unexpected {e.GetType().Name}: {message} (please report this)");
        return line.Length <= MaxMessage ? line : line[..(MaxMessage - 1)] + "…";
    }

    private static string OneLine(string message) =>
        string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
