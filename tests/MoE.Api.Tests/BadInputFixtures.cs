using System.Globalization;
using System.Text;

namespace MoE.Api.Tests;

/// <summary>
/// The files each row of docs/errors.md runs against. Every row starts from the same good files in a fresh folder
/// (good.csv: 2,000 rows from k = 2 identity experts in d = 3; truth.json and model.json: that truth; a folder
/// named dir) and then writes the row's own bad file, if any.
/// </summary>
internal static class BadInputFixtures
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private static readonly MixtureOfExperts Truth =
        GroundTruth.Create(GroundTruthPreset.Orthogonal, experts: 2, dimension: 3, Activation.Identity, sigma: 0.05);

    private static readonly Lazy<string> GoodCsv = new(() =>
    {
        using var dir = new TempDir();
        Truth.Sample(2_000, seed: 3).SaveCsv(dir.File("g.csv"));
        return File.ReadAllText(dir.File("g.csv"));
    });

    private static string[] GoodRows => GoodCsv.Value.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The good CSV with every row transformed (the header is kept).</summary>
    private static string MapRows(Func<double[], double[]> f)
    {
        var sb = new StringBuilder(GoodRows[0]).Append('\n');
        foreach (var row in GoodRows.Skip(1))
        {
            var values = f(row.Split(',').Select(v => double.Parse(v, Inv)).ToArray());
            sb.Append(string.Join(',', values.Select(v => v.ToString("R", Inv)))).Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>The good CSV's covariates with y replaced by a count |round(y)| (Poisson) or by y &gt; 0 (Bernoulli), and
    /// data row <paramref name="row"/> (from 1) given the response <paramref name="bad"/>.</summary>
    private static string Outcomes(bool counts, int row, double bad)
    {
        var n = 0;
        return MapRows(v =>
        {
            n++;
            var y = n == row ? bad : counts ? Math.Abs(Math.Round(v[3])) : v[3] > 0 ? 1 : 0;
            return [v[0], v[1], v[2], y];
        });
    }

    private static string Json(string k = "2", string d = "3", string activation = "\"identity\"", string sigma = "0.05",
        string regressors = "[[1,0,0],[0,1,0]]", string gating = "[[0,0,1]]") =>
        $$"""{"k": {{k}}, "d": {{d}}, "activation": {"name": {{activation}}, "slope": 0}, "sigma": {{sigma}}, "regressors": {{regressors}}, "gating": {{gating}}}""";

    /// <summary>Writes the good files every row starts from.</summary>
    public static void Standard(TempDir dir)
    {
        File.WriteAllText(dir.File("good.csv"), GoodCsv.Value);
        Truth.Save(dir.File("truth.json"));
        Truth.Save(dir.File("model.json"));
        Directory.CreateDirectory(dir.File("dir"));
    }

    /// <summary>The row's own files, by row id (rows without an entry use only the standard files).</summary>
    public static readonly IReadOnlyDictionary<string, Action<TempDir>> Specific = new Dictionary<string, Action<TempDir>>
    {
        ["csv-empty"] = d => File.WriteAllText(d.File("data.csv"), ""),
        ["csv-blank"] = d => File.WriteAllText(d.File("data.csv"), "\n  \n\n"),
        ["csv-header-only"] = d => File.WriteAllText(d.File("data.csv"), "x1,x2,x3,y\n"),
        ["csv-one-column"] = d => File.WriteAllText(d.File("data.csv"), "y\n1\n2\n"),
        ["csv-semicolons"] = d => File.WriteAllText(d.File("data.csv"), GoodCsv.Value.Replace(',', ';')),
        ["csv-tabs"] = d => File.WriteAllText(d.File("data.csv"), GoodCsv.Value.Replace(',', '\t')),
        ["csv-no-header"] = d => File.WriteAllText(d.File("data.csv"), string.Join('\n', GoodRows.Skip(1)) + "\n"),
        ["csv-last-not-y"] = d => File.WriteAllText(d.File("data.csv"), "x1,x2,x3,z\n" + string.Join('\n', GoodRows.Skip(1))),
        ["csv-y-twice"] = d => File.WriteAllText(d.File("data.csv"), "y,x2,x3,y\n" + string.Join('\n', GoodRows.Skip(1))),
        ["csv-empty-name"] = d => File.WriteAllText(d.File("data.csv"), "x1,,x3,y\n" + string.Join('\n', GoodRows.Skip(1))),
        ["csv-nan"] = d => File.WriteAllText(d.File("data.csv"), "x1,x2,x3,y\n0.5,NaN,1,2\n"),
        ["csv-infinity"] = d => File.WriteAllText(d.File("data.csv"), "x1,x2,x3,y\n0.5,1,-Infinity,2\n"),
        ["csv-overflow"] = d => File.WriteAllText(d.File("data.csv"), "x1,x2,x3,y\n0.5,1e400,1,2\n"),
        ["csv-text"] = d => File.WriteAllText(d.File("data.csv"), "x1,x2,x3,y\n0.5,abc,1,2\n"),
        ["csv-empty-field"] = d => File.WriteAllText(d.File("data.csv"), "x1,x2,x3,y\n0.5,,1,2\n"),
        ["csv-na"] = d => File.WriteAllText(d.File("data.csv"), "x1,x2,x3,y\n0.5,NA,1,2\n"),
        ["fit-missing-drop"] = d => WithMissing(d, "data.csv"),
        ["fit-missing-all"] = d => File.WriteAllText(d.File("data.csv"), "x1,x2,x3,y\n0.5,NA,1,2\n1,2,,4\n"),
        ["predict-missing-drop"] = d => WithMissing(d, "new.csv"),
        ["fit-text-levels"] = d => WithText(d),
        ["fit-text-id"] = d => WithText(d),
        ["fit-reference-unknown"] = d => WithText(d),
        ["select-roles"] = d => WithText(d),
        ["fit-se-roles"] = d => WithText(d),
        ["fit-weights"] = d => WithWeights(d, i => 1 + i % 3),
        ["fit-weights-negative"] = d => WithWeights(d, i => i == 5 ? -2 : 1),
        ["fit-weights-zero"] = d => WithWeights(d, _ => 0),
        ["fit-weights-text"] = d => WithText(d),
        ["fit-weights-input"] = d => WithWeights(d, i => 1 + i % 3),
        ["fit-weights-l4"] = d => WithWeights(d, i => 1 + i % 3),
        ["select-weights"] = d => WithWeights(d, i => 1 + i % 3),
        ["fit-offset"] = d => WithExposures(d, i => 0.5 + i % 5 * 0.5),
        ["fit-offset-nonpositive"] = d => WithExposures(d, i => i == 5 ? 0 : 1.5),
        ["fit-binomial"] = d => WithTrials(d, i => 4 + i % 7, i => i * 7 % 5),
        ["fit-binomial-excess"] = d => WithTrials(d, i => 4, i => i == 6 ? 5 : i % 4),
        ["fit-binomial-trials-fraction"] = d => WithTrials(d, i => i == 9 ? 2.5 : 6, i => i % 3),
        ["fit-binomial-no-trials"] = d => WithTrials(d, i => 6, i => i % 3),
        ["fit-trials-family"] = d => WithTrials(d, i => 6, i => i % 3),
        ["fit-offset-gaussian"] = d => WithExposures(d, i => 0.5 + i % 5 * 0.5),
        ["fit-offset-covariate"] = d => WithExposures(d, i => 0.5 + i % 5 * 0.5),
        ["fit-named-constant"] = d => File.WriteAllLines(d.File("named.csv"), new[] { "age,dose,y" }
            .Concat(Enumerable.Range(0, 200).Select(i => $"{i % 17},2.5,{(i * 7) % 11}"))),
        ["fit-text-response"] = d => WithText(d),
        ["diagnose-roles"] = d => WithText(d),
        ["plot-roles"] = d =>
        {
            WithText(d);
            MoeLearner.Fit(Dataset.Load(d.File("text.csv"), ColumnRoles.Parse("y ~ x1 + x2 | x3 + site")), new FitOptions { Experts = 2 })
                .Model.Save(d.File("sm.json"));
        },
        ["predict-unseen-level"] = d =>
        {
            WithText(d);
            var roles = ColumnRoles.Parse("y ~ x1 + x2 + x3 + site");
            MoeLearner.Fit(Dataset.Load(d.File("text.csv"), roles), new FitOptions { Experts = 2 }).Model.Save(d.File("tm.json"));
            File.WriteAllText(d.File("new.csv"), "site,x1,x2,x3\nnorth,0.1,0.2,0.3\neast,0.1,0.2,0.3\n");
        },
        ["parquet-missing-drop"] = d =>
        {
            var good = Good(d);
            double?[] Column(int c) => Enumerable.Range(0, good.Count)
                .Select(r => r % 100 == 7 && c == 1 ? null : (double?)(c < 3 ? good.X[r, c] : good.Y[r])).ToArray();
            Columns(d.File("data.parquet"), ("x1", Column(0)), ("x2", Column(1)), ("x3", Column(2)), ("y", Column(3)));
        },
        ["csv-short-row"] = d => File.WriteAllText(d.File("data.csv"), "x1,x2,x3,y\n0.5,1,2\n"),
        ["csv-long-row"] = d => File.WriteAllText(d.File("data.csv"), "x1,x2,x3,y\n0.5,1,2,3,4\n"),
        ["csv-semicolon-row"] = d => File.WriteAllText(d.File("data.csv"), "x1,x2,x3,y\n0.5;1;2;3\n"),
        ["csv-huge-field"] = d => File.WriteAllText(d.File("data.csv"), "x1,x2,x3,y\n0.5," + new string('9', 5_000_000) + "x,1,2\n"),
        ["csv-binary"] = d => File.WriteAllBytes(d.File("data.csv"),
            Enumerable.Range(0, 4096).Select(i => (byte)((i * 7919 + 13) % 256)).ToArray()),
        ["csv-quoted"] = d => File.WriteAllText(d.File("data.csv"),
            "\"x1\",\"x2\",\"x3\",\"y\"\n" + string.Join('\n', GoodRows.Skip(1).Select(r => string.Join(',', r.Split(',').Select(v => $"\"{v}\""))))),
        ["csv-bom-crlf"] = d => File.WriteAllText(d.File("data.csv"), GoodCsv.Value.Replace("\n", "\r\n"), new UTF8Encoding(true)),
        ["csv-utf16"] = d => File.WriteAllText(d.File("data.csv"), GoodCsv.Value, new UnicodeEncoding(false, true)),
        ["csv-cr-only"] = d => File.WriteAllText(d.File("data.csv"), GoodCsv.Value.Replace("\n", "\r")),
        ["csv-constant-column"] = d => File.WriteAllText(d.File("data.csv"), MapRows(v => [v[0], 2.5, v[2], v[3]])),
        ["csv-constant-y"] = d => File.WriteAllText(d.File("data.csv"), MapRows(v => [v[0], v[1], v[2], 3.0])),
        ["csv-too-few-rows"] = d => File.WriteAllText(d.File("data.csv"), string.Join('\n', GoodRows.Take(6)) + "\n"),
        ["csv-shifted"] = d => File.WriteAllText(d.File("data.csv"), MapRows(v => [v[0] + 5, v[1] + 5, v[2] + 5, v[3]])),
        ["csv-shifted-auto"] = d => File.WriteAllText(d.File("data.csv"), MapRows(v => [v[0] + 5, v[1] + 5, v[2] + 5, v[3]])),
        ["csv-shifted-em"] = d => File.WriteAllText(d.File("data.csv"), MapRows(v => [v[0] + 5, v[1] + 5, v[2] + 5, v[3]])),
        ["csv-heavy-tails"] = d => File.WriteAllText(d.File("data.csv"), MapRows(v => [v[0] * v[0] * v[0] / 3, v[1], v[2], v[3]])),
        ["csv-skewed"] = d => File.WriteAllText(d.File("data.csv"), MapRows(v => [v[0] + 0.3 * (v[0] * v[0] - 1), v[1], v[2], v[3]])),
        ["predict-columns"] = d => File.WriteAllText(d.File("narrow.csv"), "x1,y\n1,2\n3,4\n5,6\n"),
        ["predict-response-as-covariate"] = d => File.WriteAllText(d.File("xy.csv"), "x1,x2,y\n1,2,3\n4,5,6\n7,8,9\n"),
        ["predict-covariates-only"] = d => File.WriteAllText(d.File("new.csv"), "x1,x2,x3\n1,2,3\n4,5,6\n\n7,8,9\n"),
        ["predict-covariates-wrong"] = d => File.WriteAllText(d.File("new2.csv"), "x1,x2\n1,2\n4,5\n"),
        ["predict-headerless"] = d => File.WriteAllText(d.File("raw.csv"), "1,2,3\n4,5,6\n"),
        ["fit-poisson-fraction"] = d => File.WriteAllText(d.File("counts.csv"), Outcomes(true, 3, 2.5)),
        ["fit-poisson-negative"] = d => File.WriteAllText(d.File("counts.csv"), Outcomes(true, 1, -1)),
        ["fit-bernoulli-two"] = d => File.WriteAllText(d.File("outcomes.csv"), Outcomes(false, 5, 2)),
        ["fit-huge-covariate"] = d => File.WriteAllText(d.File("huge.csv"), MapRows(v => [v[0] * 1e300, v[1], v[2], v[3]])),
        ["fit-tiny-covariate"] = d => File.WriteAllText(d.File("tiny.csv"), MapRows(v => [v[0], v[1] * 1e-310, v[2], v[3]])),
        ["fit-huge-covariate-em"] = d => File.WriteAllText(d.File("huge.csv"), MapRows(v => [v[0] * 1e300, v[1], v[2], v[3]])),
        ["fit-huge-response"] = d => File.WriteAllText(d.File("hugey.csv"), MapRows(v => [v[0], v[1], v[2], v[3] * 1e300])),
        ["diagnose-constant"] = d => File.WriteAllText(d.File("const.csv"), MapRows(v => [v[0], 5, v[2], v[3]])),
        ["diagnose-huge"] = d => File.WriteAllText(d.File("huge.csv"), MapRows(v => [v[0] * 1e300, v[1], v[2], v[3]])),
        ["diagnose-constant-mardia"] = d => File.WriteAllText(d.File("const.csv"), MapRows(v => [v[0], 5, v[2], v[3]])),
        ["diagnose-huge-guarantees"] = d => File.WriteAllText(d.File("huge.csv"), MapRows(v => [v[0] * 1e300, v[1], v[2], v[3]])),
        ["diagnose-parquet"] = d => Good(d).SaveParquet(d.File("data.parquet")),
        ["eval-parquet"] = d => Good(d).SaveParquet(d.File("data.parquet")),
        ["select-parquet"] = d => Good(d).SaveParquet(d.File("data.parquet")),
        ["plot-columns"] = d => File.WriteAllText(d.File("narrow.csv"), "x1,y\n1,2\n3,4\n5,6\n"),
        ["export-unknown-family"] = d => File.WriteAllText(d.File("model.json"),
            Json().Replace("\"regressors\"", "\"family\": \"weibull\", \"regressors\"")),
        ["json-empty"] = d => File.WriteAllText(d.File("model.json"), ""),
        ["json-truncated"] = d => File.WriteAllText(d.File("model.json"), Json()[..60]),
        ["json-array"] = d => File.WriteAllText(d.File("model.json"), "[1, 2, 3]"),
        ["json-no-sigma"] = d => File.WriteAllText(d.File("model.json"), Json().Replace("\"sigma\": 0.05, ", "")),
        ["json-k-string"] = d => File.WriteAllText(d.File("model.json"), Json(k: "\"two\"")),
        ["json-k-fraction"] = d => File.WriteAllText(d.File("model.json"), Json(k: "2.5")),
        ["json-k-one"] = d => File.WriteAllText(d.File("model.json"), Json(k: "1", regressors: "[[1,0,0]]", gating: "[]")),
        ["json-row-length"] = d => File.WriteAllText(d.File("model.json"), Json(regressors: "[[1,0,0],[0,1]]")),
        ["json-row-count"] = d => File.WriteAllText(d.File("model.json"), Json(regressors: "[[1,0,0]]")),
        ["json-huge-number"] = d => File.WriteAllText(d.File("model.json"), Json(regressors: "[[1e999,0,0],[0,1,0]]")),
        ["json-negative-sigma"] = d => File.WriteAllText(d.File("model.json"), Json(sigma: "-1")),
        ["json-bad-activation"] = d => File.WriteAllText(d.File("model.json"), Json(activation: "\"softplus\"")),
        ["json-deep"] = d => File.WriteAllText(d.File("model.json"), new string('[', 200) + new string(']', 200)),
        ["json-binary"] = d => File.WriteAllBytes(d.File("model.json"),
            Enumerable.Range(0, 2048).Select(i => (byte)((i * 131 + 7) % 256)).ToArray()),
        ["eval-k-mismatch"] = d => File.WriteAllText(d.File("model.json"),
            Json(k: "3", regressors: "[[1,0,0],[0,1,0],[0,0,1]]", gating: "[[0,0,1],[1,0,0]]")),
        ["eval-data-d"] = d => File.WriteAllText(d.File("data.csv"), "x1,x2,x3,x4,y\n1,2,3,4,5\n"),
        ["eval-not-finite"] = d => File.WriteAllText(d.File("model.json"), Json(sigma: "1e-300")),
        ["eval-not-finite-json"] = d => File.WriteAllText(d.File("model.json"), Json(sigma: "1e-300")),
        ["parquet-not-parquet"] = d => File.WriteAllText(d.File("data.parquet"), "x1,x2,x3,y\n1,2,3,4\n"),
        ["parquet-no-column"] = d => Good(d).SaveParquet(d.File("data.parquet")),
        ["parquet-text-column"] = d => Columns(d.File("data.parquet"), ("x1", [1.0, 2.0, 3.0]), ("label", null), ("y", [3.0, 4.0, 5.0])),
        ["parquet-missing-value"] = d => Columns(d.File("data.parquet"), ("x1", [1.0, null]), ("y", [3.0, 4.0])),
        ["parquet-nan"] = d => Columns(d.File("data.parquet"), ("x1", [1.0, double.NaN]), ("y", [3.0, 4.0])),
        ["parquet-no-rows"] = d => Columns(d.File("data.parquet"), ("x1", []), ("y", [])),
        ["parquet-repeated-column"] = d => Good(d).SaveParquet(d.File("data.parquet")),
        ["parquet-columns"] = d => Good(d).SaveParquet(d.File("data.parquet")),
        ["dir-mixed"] = d =>
        {
            File.Copy(d.File("good.csv"), d.File("dir/a.csv"));
            Good(d).SaveParquet(d.File("dir/b.parquet"));
        },
        ["dir-shards-differ"] = d =>
        {
            File.Copy(d.File("good.csv"), d.File("dir/a.csv"));
            File.WriteAllText(d.File("dir/b.csv"), "x1,x2,y\n1,2,3\n4,5,6\n");
        },
        ["dir-out-shard"] = d => TwoShards(d),
        ["dir-out-new"] = d => TwoShards(d),
        ["dir-report-inside"] = d => TwoShards(d),
        ["silo-port-in-use"] = d => Listen(12011),
        ["silo-gateway-in-use"] = d => Listen(12014),
        ["dir-shards"] = d =>
        {
            var rows = File.ReadAllLines(d.File("good.csv"));
            File.WriteAllLines(d.File("dir/part-0.csv"), rows.Take(1001));
            File.WriteAllLines(d.File("dir/part-1.csv"), rows.Take(1).Concat(rows.Skip(1001)));
        },
    };

    /// <summary>good.csv split into dir/part-0.csv and dir/part-1.csv.</summary>
    private static void TwoShards(TempDir d)
    {
        var rows = File.ReadAllLines(d.File("good.csv"));
        File.WriteAllLines(d.File("dir/part-0.csv"), rows.Take(1001));
        File.WriteAllLines(d.File("dir/part-1.csv"), rows.Take(1).Concat(rows.Skip(1001)));
    }

    /// <summary>Listens on a loopback port for the rest of the test process (the row's silo must find it taken).</summary>
    private static void Listen(int port)
    {
        lock (Listeners)
        {
            if (!Listeners.ContainsKey(port))
            {
                var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
                listener.Start();
                Listeners[port] = listener;
            }
        }
    }

    private static readonly Dictionary<int, System.Net.Sockets.TcpListener> Listeners = [];

    private static Dataset Good(TempDir dir) => Dataset.LoadCsv(dir.File("good.csv"));

    /// <summary>A Parquet file of nullable double columns; a column given as null is a text column.</summary>
    /// <summary>good.csv as text.csv with a categorical column site (north, south, west) and an identifier id.</summary>
    private static void WithText(TempDir d)
    {
        string[] sites = ["north", "south", "west"];
        File.WriteAllLines(d.File("text.csv"), File.ReadAllLines(d.File("good.csv"))
            .Select((line, i) => i == 0 ? $"site,{line},id" : $"{sites[i % 3]},{line},row{i}"));
    }

    /// <summary>good.csv as weighted.csv with a last column w, the weight of data row i (1-based).</summary>
    /// <summary>successes.csv: 300 rows of a covariate x1, the trials n and the successes y.</summary>
    private static void WithTrials(TempDir d, Func<int, double> trials, Func<int, double> successes) =>
        File.WriteAllLines(d.File("successes.csv"), new[] { "x1,n,y" }.Concat(Enumerable.Range(1, 300).Select(i =>
            string.Create(CultureInfo.InvariantCulture, $"{(i * 37 % 100) / 50.0 - 1},{trials(i)},{successes(i)}"))));

    /// <summary>counts.csv: 300 rows of a covariate x1, an exposure t and a count y.</summary>
    private static void WithExposures(TempDir d, Func<int, double> exposure) =>
        File.WriteAllLines(d.File("counts.csv"), new[] { "x1,t,y" }.Concat(Enumerable.Range(1, 300).Select(i =>
            string.Create(CultureInfo.InvariantCulture, $"{(i * 37 % 100) / 50.0 - 1},{exposure(i)},{i * 7 % 5}"))));

    private static void WithWeights(TempDir d, Func<int, int> weight) =>
        File.WriteAllLines(d.File("weighted.csv"), File.ReadAllLines(d.File("good.csv"))
            .Select((line, i) => i == 0 ? $"{line},w" : $"{line},{weight(i)}"));

    /// <summary>good.csv with an empty cell in every 100th row and NA in the response of row 50, as <paramref name="name"/>.</summary>
    private static void WithMissing(TempDir d, string name)
    {
        var rows = File.ReadAllLines(d.File("good.csv"));
        File.WriteAllLines(d.File(name), rows.Select((line, i) =>
        {
            if (i == 0)
            {
                return line;
            }

            var cells = line.Split(',');
            if (i % 100 == 7)
            {
                cells[1] = "";
            }

            if (i == 50)
            {
                cells[^1] = "NA";
            }

            return string.Join(',', cells);
        }));
    }

    private static void Columns(string path, params (string Name, double?[]? Values)[] columns)
    {
        var rows = columns.Max(c => c.Values?.Length ?? 2);
        var fields = columns
            .Select(c => c.Values is null ? new Parquet.Schema.DataField(c.Name, typeof(string)) : new Parquet.Schema.DataField(c.Name, typeof(double?)))
            .ToArray();
        using var stream = File.Create(path);
        var writer = Parquet.ParquetWriter.CreateAsync(new Parquet.Schema.ParquetSchema(fields), stream).GetAwaiter().GetResult();
        using (var group = writer.CreateRowGroup())
        {
            for (var c = 0; c < columns.Length; c++)
            {
                if (columns[c].Values is { } values)
                {
                    group.WriteAsync<double>(fields[c], new ReadOnlyMemory<double?>(values)).GetAwaiter().GetResult();
                }
                else
                {
                    group.WriteAsync(fields[c], Enumerable.Range(0, rows).Select(r => $"row {r}").ToArray()).GetAwaiter().GetResult();
                }
            }
        }

        writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
