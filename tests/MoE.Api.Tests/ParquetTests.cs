namespace MoE.Api.Tests;

/// <summary>
/// Parquet in and out and directories of shards, through the command line (so CI runs them against dist/moe too):
/// the same rows give the same model, bit for bit, whatever the file format, whether the rows are held in memory or
/// read again for every pass; the same shards give the same bits however they are read.
/// </summary>
[Collection(SnippetCollection.Name)]
public class ParquetTests
{
    private static void Moe(params string[] args)
    {
        var error = new StringWriter();
        var code = Cli.Run(args, new StringWriter(), error);
        Assert.True(code == 0, $"moe {string.Join(' ', args)}: exit {code}; {error}");
    }

    private static string Fit(TempDir dir, string data, string name, params string[] extra)
    {
        Moe(["fit", data, "--k", "2", "--seed", "3", "--out", dir.File(name), .. extra]);
        return File.ReadAllText(dir.File(name));
    }

    [Fact]
    public void ParquetAndCsvOfTheSameRowsGiveTheSameModelInMemoryOrReadInPasses()
    {
        using var dir = new TempDir();
        // Random gating in d = 4 with 20,000 rows: not a multiple of the 4,096-row chunk, so the last chunk is short.
        Moe("generate", "--d", "4", "--k", "2", "--preset", "random-gating", "--n", "20000", "--seed", "9", "--out", dir.File("s.csv"));
        Moe("generate", "--d", "4", "--k", "2", "--preset", "random-gating", "--n", "20000", "--seed", "9", "--out", dir.File("s.parquet"));

        // The CSV is written in shortest round-trip text, so both files hold the same doubles.
        var csv = Dataset.LoadCsv(dir.File("s.csv"));
        var parquet = Dataset.LoadParquet(dir.File("s.parquet"));
        Assert.Equal(csv.Count, parquet.Count);
        Assert.Equal(csv.Y, parquet.Y);
        Assert.Equal(csv.X.Cast<double>().ToArray(), parquet.X.Cast<double>().ToArray());

        var reference = Fit(dir, dir.File("s.csv"), "csv.json");
        Assert.Equal(reference, Fit(dir, dir.File("s.parquet"), "parquet.json"));
        // Read in passes with at most 5,000 rows in memory: every stage is a pass over all rows in the same order.
        Assert.Equal(reference, Fit(dir, dir.File("s.parquet"), "passes.json", "--max-rows", "5000"));
        Assert.Equal(reference, Fit(dir, dir.File("s.csv"), "csv-passes.json", "--max-rows", "5000"));
    }

    [Fact]
    public void ADirectoryOfShardsIsOneDataSet()
    {
        using var dir = new TempDir();
        Moe("generate", "--d", "3", "--k", "2", "--n", "18000", "--seed", "4", "--out", dir.File("all.parquet"));
        var all = Dataset.LoadParquet(dir.File("all.parquet"));
        Directory.CreateDirectory(dir.File("shards"));
        // Shards of 8,192, 4,096 and 5,712 rows, named so that their sorted order is the data's order.
        int[] starts = [0, 8192, 12288, 18000];
        for (var s = 0; s < 3; s++)
        {
            var count = starts[s + 1] - starts[s];
            var x = new double[count, all.Dimension];
            var y = new double[count];
            for (var r = 0; r < count; r++)
            {
                y[r] = all.Y[starts[s] + r];
                for (var t = 0; t < all.Dimension; t++)
                {
                    x[r, t] = all.X[starts[s] + r, t];
                }
            }

            Dataset.FromArrays(x, y).SaveParquet(dir.File($"shards/part-{s:D2}.parquet"));
        }

        var source = DataSources.Files(dir.File("shards"));
        Assert.Equal(3, source.Shards.Count);
        Assert.Equal(18000, source.Shards.Sum(s => s.Rows));

        // The same shards give the same bits in memory and read in passes (a shard's chunks are merged in order,
        // then the shards' sums in order: the order a cluster of shard workers follows too).
        var shards = Fit(dir, dir.File("shards"), "shards.json");
        Assert.Equal(shards, Fit(dir, dir.File("shards"), "shards-passes.json", "--max-rows", "3000"));
        // Cut into shards, the sums are added in another order than the whole file's, so the bits differ: by
        // rounding (~1e-16 relative in each sum) carried through the optimiser's last steps, far below 1e-9.
        var whole = Numbers(Fit(dir, dir.File("all.parquet"), "whole.json"));
        var cut = Numbers(shards);
        Assert.Equal(whole.Length, cut.Length);
        var worst = whole.Zip(cut, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(worst <= 1e-9, $"max |delta| = {worst}");
    }

    private static double[] Numbers(string json) =>
        System.Text.RegularExpressions.Regex.Matches(json, @"-?\d+(\.\d+)?([eE][-+]?\d+)?")
            .Select(m => double.Parse(m.Value, System.Globalization.CultureInfo.InvariantCulture))
            .ToArray();

    [Fact]
    public void ColumnsAreChosenByName()
    {
        using var dir = new TempDir();
        Moe("generate", "--d", "3", "--k", "2", "--n", "6000", "--seed", "2", "--out", dir.File("s.parquet"));
        // The inputs named in another order give the model with its columns permuted.
        var byName = Dataset.LoadParquet(dir.File("s.parquet"), ["x3", "x1"], "y");
        var all = Dataset.LoadParquet(dir.File("s.parquet"));
        Assert.Equal(2, byName.Dimension);
        for (var r = 0; r < all.Count; r += 997)
        {
            Assert.Equal(all.X[r, 2], byName.X[r, 0]);
            Assert.Equal(all.X[r, 0], byName.X[r, 1]);
            Assert.Equal(all.Y[r], byName.Y[r]);
        }

        // x2 taken as the response: y becomes an input by the convention (every other numeric column).
        var swapped = Dataset.LoadParquet(dir.File("s.parquet"), null, "x2");
        Assert.Equal(3, swapped.Dimension);
        Assert.Equal(all.X[5, 1], swapped.Y[5]);
        Assert.Equal(all.Y[5], swapped.X[5, 2]);
    }
}
