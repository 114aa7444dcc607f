using BenchmarkDotNet.Attributes;
using MoE.Core;

namespace MoE.Bench;

/// <summary>
/// Reading a CSV of 2,000,000 rows, d = 10 (the paper setting's shape, 432 MB as <c>moe generate</c> writes it),
/// against the least any reader pays: <c>ReadFloor</c> reads the file's bytes into a buffer (from the page cache
/// after the first run). The file is written once per run to the temp folder and deleted after.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 5)]
public class CsvReading
{
    private string path = "";
    private readonly byte[] buffer = new byte[1 << 20];

    [GlobalSetup]
    public void Setup()
    {
        path = Path.Combine(Path.GetTempPath(), $"moe-bench-{Environment.ProcessId}.csv");
        var truth = GroundTruth.Orthogonal(2, 10, MoE.Core.Activation.Identity, 0.05);
        DataCsv.Save(path, Sampler.Sample(truth, 2_000_000, 5));
    }

    [GlobalCleanup]
    public void Cleanup() => File.Delete(path);

    /// <summary>The file's bytes read once, 1 MiB at a time: the floor.</summary>
    [Benchmark(Baseline = true)]
    public long ReadFloor()
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        long total = 0;
        int got;
        while ((got = stream.Read(buffer, 0, buffer.Length)) > 0)
            total += got;
        return total;
    }

    /// <summary><c>cat file &gt; /dev/null</c> as a process: the issue's yardstick for "the speed of reading the file's
    /// bytes" (from the page cache, like the readers after the first iteration).</summary>
    [Benchmark]
    public int Cat()
    {
        using var cat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("/bin/sh")
        {
            ArgumentList = { "-c", $"cat '{path}' > /dev/null" },
            UseShellExecute = false,
        })!;
        cat.WaitForExit();
        return cat.ExitCode;
    }

    /// <summary>The whole file parsed into a dataset (<c>moe fit</c>'s read).</summary>
    [Benchmark]
    public int Load() => DataCsv.Load(path).Count;

    /// <summary>The file streamed in chunks of 50,000 rows (<c>moe fit --max-rows 50000</c>'s passes).</summary>
    [Benchmark]
    public int LoadChunks()
    {
        var rows = 0;
        foreach (var chunk in DataCsv.LoadChunks(path, 50_000))
            rows += chunk.Count;
        return rows;
    }
}
