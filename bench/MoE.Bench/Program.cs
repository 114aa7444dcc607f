using BenchmarkDotNet.Running;

namespace MoE.Bench;

/// <summary>Runs the benchmarks: <c>dotnet run --project bench/MoE.Bench -c Release -- --filter '*'</c>.</summary>
internal static class Program
{
    private static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
