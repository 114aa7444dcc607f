using System.Buffers.Binary;
using System.Globalization;
using MoE.Cli;

namespace MoE.Api.Tests;

/// <summary><c>moe reproduce --quick</c> for one figure, end to end.</summary>
public class ReproduceTests
{
    [Fact]
    public void QuickFig2WritesParsableCsvValidPngsAndEveryL4RunRecovers()
    {
        using var dir = new TempDir();
        var output = new StringWriter();
        var error = new StringWriter();
        var code = Cli.Run(["reproduce", "fig2", "--quick", "--out", dir.Info.FullName], output, error);
        Assert.True(code == 0, error.ToString());

        foreach (var file in new[] { "fig2.csv", "fig2a.png", "fig2b.png", "report.md" })
        {
            Assert.True(File.Exists(dir.File(file)), $"{file} is missing");
        }

        foreach (var png in new[] { "fig2a.png", "fig2b.png" })
        {
            var bytes = File.ReadAllBytes(dir.File(png));
            // PNG signature, then the IHDR chunk with big-endian width and height.
            Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
            Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
            Assert.Equal(900, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16, 4)));
            Assert.Equal(540, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20, 4)));
        }

        var lines = File.ReadAllLines(dir.File("fig2.csv"));
        Assert.Equal("panel,series,run,epoch,value", lines[0]);
        var rows = lines.Skip(1).Select(l => l.Split(',')).ToList();
        Assert.All(rows, r =>
        {
            Assert.Equal(5, r.Length);
            Assert.True(double.TryParse(r[4], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v));
        });

        var l4 = rows.Where(r => r[0] == "a" && r[1] == "L4").ToList();
        var finalEpoch = l4.Max(r => int.Parse(r[3], CultureInfo.InvariantCulture));
        var finals = l4.Where(r => int.Parse(r[3], CultureInfo.InvariantCulture) == finalEpoch)
            .Select(r => double.Parse(r[4], CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(3, finals.Count);
        Assert.All(finals, e => Assert.True(e <= 0.01, $"an L4 run ended at E_reg {e}"));
        Assert.Contains("![fig2a](fig2a.png)", File.ReadAllText(dir.File("report.md")));
    }

    [Fact]
    public void AnUnknownFigureIsAOneLineError()
    {
        var error = new StringWriter();
        Assert.Equal(1, Cli.Run(["reproduce", "fig9", "--quick", "--out", Path.GetTempPath()], new StringWriter(), error));
        Assert.StartsWith("moe: error: Unknown figure 'fig9'", error.ToString());
    }
}
