using System.Diagnostics;
using System.Globalization;
using MoE.Api;

namespace MoE.Cli.Commands;

/// <summary>Progress as plain lines on stderr when it is not a terminal (a terminal gets <see cref="Terminal"/>'s live
/// display): one line per stage change, then at most one every two seconds.</summary>
internal sealed class ProgressReporter(TextWriter error) : IProgress<FitProgress>
{
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private readonly Lock gate = new();
    private FitStage? stage;
    private double lastPrint = double.NegativeInfinity;

    public void Report(FitProgress value)
    {
        lock (gate)
        {
            var now = clock.Elapsed.TotalSeconds;
            if (value.Stage != stage || now - lastPrint >= 2.0)
            {
                error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[{now,6:F1}s] {value.Stage.Name(),-7} iteration {value.Iteration,5}  loss {value.Loss,14:G8}"));
                lastPrint = now;
            }

            stage = value.Stage;
        }
    }
}
