using System.Globalization;
using MoE.Cli;

namespace MoE.Api.Tests;

/// <summary>
/// Columns in roles through the façade and the CLI (docs/data.md): a file whose columns are renamed, shuffled and
/// mixed with a text column, read with roles, gives the positional fit bit for bit and a model that records the names;
/// new rows are read by name in any order; the gate may read its own columns.
/// </summary>
public class ColumnRolesFacadeTests
{
    private static readonly MixtureOfExperts Truth =
        GroundTruth.Create(GroundTruthPreset.Orthogonal, experts: 2, dimension: 3, Activation.Identity, sigma: 0.1);

    private static string R(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>The data under the header <c>site,b,resp,a,c</c> (a = x1, b = x2, c = x3, resp = y, site text), or
    /// <c>c,a,b</c> without the response.</summary>
    private static void WriteNamed(string path, Dataset data, bool response = true)
    {
        using var w = new StreamWriter(path);
        w.WriteLine(response ? "site,b,resp,a,c" : "c,a,b");
        for (var i = 0; i < data.Count; i++)
        {
            w.WriteLine(response
                ? $"{(i % 2 == 0 ? "north" : "south")},{R(data.X[i, 1])},{R(data.Y[i])},{R(data.X[i, 0])},{R(data.X[i, 2])}"
                : $"{R(data.X[i, 2])},{R(data.X[i, 0])},{R(data.X[i, 1])}");
        }
    }

    [Fact]
    public void RolesReadAnyHeaderGiveThePositionalFitAndTheModelRecordsTheNames()
    {
        using var dir = new TempDir();
        var data = Truth.Sample(20_000, 3);
        WriteNamed(dir.File("named.csv"), data);
        var options = new FitOptions { Experts = 2, Seed = 1 };

        var roles = ColumnRoles.Parse("resp ~ a + b + c");
        var named = Dataset.Load(dir.File("named.csv"), roles);
        Assert.Equal(["a", "b", "c"], named.ExpertColumns);
        Assert.Equal(["a", "b", "c"], named.GateColumns);
        Assert.Equal("resp", named.Response);
        var fit = MoeLearner.Fit(named, options);
        var positional = MoeLearner.Fit(data, options);
        // The names are labels: the same columns in the same order give the same bits.
        Assert.Equal(positional.Model.Regressors, fit.Model.Regressors);
        Assert.Equal(positional.Model.Gating, fit.Model.Gating);
        Assert.Equal(["a", "b", "c"], fit.Model.ExpertColumns);
        Assert.Equal("resp", fit.Model.Response);
        Assert.Null(positional.Model.ExpertColumns);
        Assert.Contains("\"expertColumns\": [\"a\", \"b\", \"c\"]", fit.Model.ToJson());

        // In passes, and with the roles as properties rather than a formula: the same model.
        var streamed = MoeLearner.FitSource(
            DataSources.Files(dir.File("named.csv"), new ColumnRoles { Response = "resp", Experts = ["a", "b", "c"] }),
            options, maxRowsInMemory: 7_000);
        Assert.Equal(fit.Model.ToJson(), streamed.Model.ToJson());

        // New rows in another order without the response, read by the saved model's names.
        fit.Model.Save(dir.File("m.json"));
        var loaded = MixtureOfExperts.Load(dir.File("m.json"));
        var fresh = Truth.Sample(500, 4);
        WriteNamed(dir.File("new.csv"), fresh, response: false);
        Assert.Equal(fit.Model.Predict(fresh.X), loaded.Predict(loaded.ReadCovariates(dir.File("new.csv"))));
        Assert.Equal(data.Y, loaded.ReadData(dir.File("named.csv")).Y);

        var missing = Assert.Throws<FileNotFoundException>(() => loaded.ReadCovariates(dir.File("nope.csv")));
        Assert.Contains("nope.csv", missing.Message);
        File.WriteAllLines(dir.File("short.csv"), ["a,b,resp", "1,2,3"]);
        var lacking = Assert.Throws<InvalidDataException>(() => loaded.ReadCovariates(dir.File("short.csv")));
        Assert.Contains("there is no column 'c' (an input); the header has a, b, resp.", lacking.Message);
    }

    [Fact]
    public void TheCommandLineFitsWithAFormulaAndPredictsByName()
    {
        using var dir = new TempDir();
        var data = Truth.Sample(5_000, 5);
        WriteNamed(dir.File("named.csv"), data);
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.True(Cli.Run(["fit", dir.File("named.csv"), "--k", "2", "--formula", "resp ~ a + b | c", "--out", dir.File("m.json")], output, error) == 0, error.ToString());
        var model = MixtureOfExperts.Load(dir.File("m.json"));
        Assert.Equal(["a", "b"], model.ExpertColumns);
        Assert.Equal(["c"], model.GateColumns);
        Assert.Equal(3, model.Dimension);

        // --x/--gate-x/--y say the same roles as the formula: the same model file.
        Assert.True(Cli.Run(["fit", dir.File("named.csv"), "--k", "2", "--x", "a,b", "--gate-x", "c", "--y", "resp", "--out", dir.File("m2.json")], new StringWriter(), error) == 0, error.ToString());
        Assert.Equal(File.ReadAllText(dir.File("m.json")), File.ReadAllText(dir.File("m2.json")));

        WriteNamed(dir.File("new.csv"), data, response: false);
        Assert.True(Cli.Run(["predict", dir.File("m.json"), dir.File("new.csv"), "--out", dir.File("p.csv")], new StringWriter(), error) == 0, error.ToString());
        var predicted = File.ReadAllLines(dir.File("p.csv")).Skip(1).Select(l => double.Parse(l.Split(',')[0], CultureInfo.InvariantCulture)).ToArray();
        var x = model.ReadCovariates(dir.File("named.csv"));
        // moe predict writes the predictive distribution's mean.
        Assert.Equal(model.PredictDistribution(x).Mean, predicted);
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(data.X[i, 2], x[i, 2]);
        }
    }

    [Fact]
    public void AFormulaThatIsNotOneSaysWhy()
    {
        var e = Assert.Throws<ArgumentException>(() => ColumnRoles.Parse("y ~ a:b"));
        Assert.Contains("the term 'a:b' is not a column name", e.Message);
        using var dir = new TempDir();
        Truth.Sample(100, 1).SaveCsv(dir.File("d.csv"));
        var clash = Assert.Throws<ArgumentException>(() => Dataset.Load(dir.File("d.csv"), new ColumnRoles { Experts = ["x1", "y"] }));
        Assert.Contains("the column 'y' is the response; it cannot also be one of the experts' columns", clash.Message);
    }

    [Fact]
    public void RowsWithAMissingValueAreDroppedAsAskedAndCounted()
    {
        using var dir = new TempDir();
        var data = Truth.Sample(3_000, 6);
        var lines = File.ReadAllLines(WriteAndRead(dir, data));
        // An empty x2 in every 50th row, NA in one response.
        File.WriteAllLines(dir.File("gapped.csv"), lines.Select((l, i) =>
        {
            var cells = l.Split(',');
            if (i > 0 && i % 50 == 0)
            {
                cells[1] = "";
            }

            if (i == 7)
            {
                cells[^1] = "NA";
            }

            return string.Join(',', cells);
        }));
        var refused = Assert.Throws<InvalidDataException>(() => Dataset.Load(dir.File("gapped.csv"), new ColumnRoles()));
        Assert.Contains("line 8, column 4: 'NA': a missing value", refused.Message);

        var kept = Dataset.Load(dir.File("gapped.csv"), new ColumnRoles { Missing = MissingValues.Drop });
        Assert.Equal(61, kept.DroppedRows);
        Assert.Equal(3_000 - 61, kept.Count);
        var fit = MoeLearner.Fit(kept, new FitOptions { Experts = 2, Seed = 1 });
        var warning = Assert.Single(fit.Warnings, w => w.Code == WarningCode.RowsDropped);
        Assert.Contains("61 of 3000 rows were left out for a missing value in a column read (the first at gapped.csv, line 8, column 4 ('y'))", warning.Message);

        // Predictions keep every row: the 60 with a gap in an input are NaN, the one without a response is predicted.
        var x = fit.Model.ReadCovariates(dir.File("gapped.csv"), MissingValues.Drop);
        var p = fit.Model.PredictDistribution(x, 0.9, MissingValues.Drop);
        Assert.Equal(3_000, p.Mean.Length);
        Assert.Equal(60, p.Mean.Count(double.IsNaN));
        Assert.True(double.IsNaN(p.Mean[49]) && !double.IsNaN(p.Mean[6]));
        Assert.Throws<ArgumentException>(() => fit.Model.PredictDistribution(x));
    }

    [Fact]
    public async Task AParquetTextColumnIsCategoricalAsInACsv()
    {
        using var dir = new TempDir();
        var data = Truth.Sample(2_000, 9);
        string[] sites = ["west", "north", "south"];
        var site = Enumerable.Range(0, data.Count).Select(r => sites[r % 3]).ToArray();
        var fields = new Parquet.Schema.DataField[]
        {
            new Parquet.Schema.DataField<double>("x1"), new Parquet.Schema.DataField<double>("x2"),
            new Parquet.Schema.DataField<string>("site"), new Parquet.Schema.DataField<double>("y"),
        };
        using (var stream = File.Create(dir.File("d.parquet")))
        {
            await using var writer = await Parquet.ParquetWriter.CreateAsync(new Parquet.Schema.ParquetSchema(fields), stream);
            using var group = writer.CreateRowGroup();
            await group.WriteAsync<double>(fields[0], Enumerable.Range(0, data.Count).Select(r => data.X[r, 0]).ToArray());
            await group.WriteAsync<double>(fields[1], Enumerable.Range(0, data.Count).Select(r => data.X[r, 1]).ToArray());
            await group.WriteAsync(fields[2], site);
            await group.WriteAsync<double>(fields[3], data.Y);
        }

        File.WriteAllLines(dir.File("d.csv"), new[] { "x1,x2,site,y" }.Concat(Enumerable.Range(0, data.Count)
            .Select(r => $"{R(data.X[r, 0])},{R(data.X[r, 1])},{site[r]},{R(data.Y[r])}")));
        var roles = ColumnRoles.Parse("y ~ x1 + x2 + site");
        var fromParquet = Dataset.Load(dir.File("d.parquet"), roles);
        var fromCsv = Dataset.Load(dir.File("d.csv"), roles);
        Assert.Equal(["x1", "x2", "site=south", "site=west"], fromParquet.Columns);
        Assert.Equal(fromCsv.X, fromParquet.X);
        Assert.Equal(fromCsv.Y, fromParquet.Y);

        // Fitted on Parquet, the model codes new CSV rows by its levels.
        var fit = MoeLearner.Fit(fromParquet, new FitOptions { Experts = 2, Seed = 1 });
        Assert.Equal(["north", "south", "west"], fit.Model.Levels!["site"]);
        Assert.Equal(fromCsv.X, fit.Model.ReadCovariates(dir.File("d.csv")));
    }

    private static string WriteAndRead(TempDir dir, Dataset data)
    {
        data.SaveCsv(dir.File("full.csv"));
        return dir.File("full.csv");
    }
}
