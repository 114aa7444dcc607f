using System.Text.RegularExpressions;
using MoE.Cli;

namespace MoE.Api.Tests;

/// <summary>
/// docs/errors.md, row by row: every CLI row runs its command in a folder with the standard files and the row's own
/// bad file, and must end with the row's exit code and a message containing the row's excerpt (on stderr; for exit 0
/// on stdout or stderr), in exactly one "moe: error:" line when it fails. The façade rows run the call they name.
/// </summary>
[Collection(SnippetCollection.Name)]
public class BadInputTests
{
    /// <summary>One row of a CLI table: id, command, exit code, message excerpt.</summary>
    public sealed record Row(string Id, string Command, int Exit, string Message);

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MoE.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("MoE.sln not found above the test's folder.");
    }

    private static string Cell(string text) => text.Trim().Trim('`');

    /// <summary>The rows of docs/errors.md's tables whose header is "| id | input | command | exit | message…".</summary>
    private static IReadOnlyList<Row> CliRows { get; } = ReadCliRows();

    private static IReadOnlyList<Row> ReadCliRows()
    {
        var rows = new List<Row>();
        var inTable = false;
        foreach (var line in File.ReadAllLines(Path.Combine(RepositoryRoot(), "docs", "errors.md")))
        {
            if (line.StartsWith("| id | input | command | exit |", StringComparison.Ordinal))
            {
                inTable = true;
                continue;
            }

            if (!line.StartsWith('|'))
            {
                inTable = false;
                continue;
            }

            if (!inTable || line.StartsWith("|---", StringComparison.Ordinal))
            {
                continue;
            }

            // Cells are separated by " | "; a '|' inside a cell is written "\|", as Markdown tables need.
            var cells = line.Trim().Trim('|').Replace("\\|", "\u0001").Split(" | ").Select(c => c.Replace('\u0001', '|')).ToArray();
            rows.Add(new Row(Cell(cells[0]), Cell(cells[2]), int.Parse(Cell(cells[3])), Cell(cells[4])));
        }

        return rows;
    }

    /// <summary>xunit member data: the CLI row ids.</summary>
    public static IEnumerable<object[]> CliIds() => ReadCliRows().Select(r => new object[] { r.Id });

    private static readonly Regex Words = new("\"[^\"]*\"|\\S+");

    [Theory]
    [MemberData(nameof(CliIds))]
    public void EveryDocumentedBadInputGetsItsExitCodeAndMessage(string id)
    {
        var row = CliRows.Single(r => r.Id == id);
        using var dir = new TempDir();
        BadInputFixtures.Standard(dir);
        if (BadInputFixtures.Specific.TryGetValue(id, out var write))
        {
            write(dir);
        }

        var previous = Directory.GetCurrentDirectory();
        var output = new StringWriter();
        var error = new StringWriter();
        int code;
        try
        {
            Directory.SetCurrentDirectory(dir.Info.FullName);
            code = Cli.Run(Words.Matches(row.Command).Select(m => m.Value.Trim('"')).ToArray(), output, error);
        }
        finally
        {
            Directory.SetCurrentDirectory(previous);
        }

        var stderr = error.ToString();
        var both = output + stderr;
        Assert.True(code == row.Exit, $"{id}: exit {code}, expected {row.Exit}; stderr: {stderr}");
        Assert.True((row.Exit == 0 ? both : stderr).Contains(row.Message, StringComparison.Ordinal),
            $"{id}: the message does not contain «{row.Message}»; stderr: {stderr}");
        Assert.DoesNotContain("unexpected", stderr);
        Assert.DoesNotContain("   at ", stderr);
        if (row.Exit != 0)
        {
            var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Single(lines, l => l.StartsWith("moe: error: ", StringComparison.Ordinal));
            Assert.True(lines[^1].Length <= 1000, $"{id}: a {lines[^1].Length}-character error line");
        }
    }

    [Fact]
    public void EveryFixtureHasADocumentedRowAndEnoughRowsAreDocumented()
    {
        var ids = CliRows.Select(r => r.Id).ToHashSet();
        Assert.Equal(CliRows.Count, ids.Count);
        Assert.DoesNotContain(BadInputFixtures.Specific.Keys, k => !ids.Contains(k));
        Assert.True(CliRows.Count + FacadeChecks.Count >= 60, $"{CliRows.Count} CLI rows and {FacadeChecks.Count} façade rows");
    }

    /// <summary>The façade rows of docs/errors.md, by id.</summary>
    private static readonly IReadOnlyDictionary<string, Action> FacadeChecks = FacadeRows.Checks;

    /// <summary>xunit member data: the façade row ids, read from the doc.</summary>
    public static IEnumerable<object[]> FacadeIds() =>
        File.ReadAllLines(Path.Combine(RepositoryRoot(), "docs", "errors.md"))
            .Where(l => l.StartsWith("| facade-", StringComparison.Ordinal))
            .Select(l => new object[] { Cell(l.Trim().Trim('|').Split(" | ")[0]) });

    [Theory]
    [MemberData(nameof(FacadeIds))]
    public void EveryDocumentedFacadeCallThrowsWhatTheDocSays(string id)
    {
        Assert.True(FacadeChecks.TryGetValue(id, out var check), $"no check for the documented row {id}");
        check!();
    }
}
