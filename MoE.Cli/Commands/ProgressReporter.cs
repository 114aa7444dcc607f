using System.Diagnostics;
using System.Globalization;
using MoE.Api;

namespace MoE.Cli.Commands;

/// <summary>Progress on stderr: a single updating status line on a terminal, throttled plain lines otherwise
/// (one per stage change, then at most one every two seconds).</summary>
internal sealed class ProgressReporter(TextWriter error, bool interactive) : IProgress<FitProgress>
{
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private string stage = "";
    private double lastPrint = double.NegativeInfinity;

    public static ProgressReporter For(TextWriter error) =>
        new(error, ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected);

    public void Report(FitProgress value)
    {
        var now = clock.Elapsed.TotalSeconds;
        var line = string.Create(CultureInfo.InvariantCulture,
            $"[{now,6:F1}s] {value.Stage,-7} iteration {value.Iteration,5}  loss {value.Loss,14:G8}");
        if (interactive)
        {
            error.Write("\r" + line + "   ");
        }
        else if (value.Stage != stage || now - lastPrint >= 2.0)
        {
            error.WriteLine(line);
            lastPrint = now;
        }

        stage = value.Stage;
    }

    public void Finish()
    {
        if (interactive)
        {
            error.WriteLine();
        }
    }
}
