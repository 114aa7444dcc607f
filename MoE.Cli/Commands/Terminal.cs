using System.Globalization;
using MoE.Api;
using Spectre.Console;

namespace MoE.Cli.Commands;

/// <summary>Rich output with Spectre.Console when a stream is a terminal — live progress, bars, tables — and the plain
/// lines scripts and tests read when it is redirected (unchanged). Spectre itself honours NO_COLOR and a dumb terminal.</summary>
internal static class Terminal
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Whether the writer is the process's own stdout or stderr and that stream is not redirected.</summary>
    public static bool IsTerminal(TextWriter writer) =>
        (ReferenceEquals(writer, Console.Out) && !Console.IsOutputRedirected)
        || (ReferenceEquals(writer, Console.Error) && !Console.IsErrorRedirected);

    /// <summary>A Spectre console writing to the writer (capabilities detected from the terminal).</summary>
    public static IAnsiConsole On(TextWriter writer) =>
        AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(writer) });

    /// <summary>Runs a fit, reporting its progress on <paramref name="error"/>: on a terminal a live line per stage (spinner,
    /// iteration, loss, time in the stage), otherwise throttled plain lines.</summary>
    public static T WithFitProgress<T>(TextWriter error, Func<IProgress<FitProgress>, T> work)
    {
        if (IsTerminal(error))
        {
            return WithFitProgress(On(error), work);
        }

        var reporter = new ProgressReporter(error);
        return work(reporter);
    }

    /// <summary>The live display of <see cref="WithFitProgress{T}(TextWriter, Func{IProgress{FitProgress}, T})"/> on a
    /// given console (tests pass a recording one).</summary>
    public static T WithFitProgress<T>(IAnsiConsole console, Func<IProgress<FitProgress>, T> work) =>
        console.Progress()
            .AutoClear(false)
            .Columns(new SpinnerColumn(), new TaskDescriptionColumn { Alignment = Justify.Left }, new ElapsedTimeColumn())
            .Start(context =>
            {
                var stages = new StageLines(context);
                var result = work(stages);
                stages.FinishAll();
                return result;
            });

    /// <summary>A progress bar for a job of known length; the job moves it with (steps done, steps in all, message).</summary>
    public static T WithBar<T>(IAnsiConsole console, string title, Func<Action<int, int, string>, T> work) =>
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask(Markup.Escape(title));
                var result = work((done, total, message) =>
                {
                    task.MaxValue = Math.Max(total, 1);
                    task.Value = Math.Min(done, total);
                    task.Description = Markup.Escape($"{title}: {message}");
                });
                task.Value = task.MaxValue;
                task.Description = Markup.Escape(title);
                return result;
            });

    /// <summary>One progress line per stage name (a stage seen again reuses its line), thread-safe: fits report from
    /// worker threads.</summary>
    private sealed class StageLines(ProgressContext context) : IProgress<FitProgress>
    {
        private readonly Dictionary<FitStage, ProgressTask> lines = [];
        private readonly Lock gate = new();
        private ProgressTask? current;

        public void Report(FitProgress value)
        {
            lock (gate)
            {
                if (!lines.TryGetValue(value.Stage, out var line))
                {
                    line = context.AddTask(Markup.Escape(value.Stage.Name())).IsIndeterminate();
                    lines.Add(value.Stage, line);
                }

                if (!ReferenceEquals(line, current))
                {
                    Finish(current);
                    current = line;
                }

                line.Description = Markup.Escape(string.Create(Inv, $"{value.Stage.Name(),-12} iteration {value.Iteration,5}  loss {value.Loss,14:G8}"));
            }
        }

        public void FinishAll()
        {
            lock (gate)
            {
                foreach (var line in lines.Values)
                {
                    Finish(line);
                }
            }
        }

        private static void Finish(ProgressTask? line)
        {
            if (line is { IsFinished: false })
            {
                line.IsIndeterminate = false;
                line.Value = line.MaxValue;
                line.StopTask();
            }
        }
    }
}
