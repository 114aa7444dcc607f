using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text;
using MoE.Api;
using MoE.Cli.Reproduce;

namespace MoE.Cli.Commands;

/// <summary><c>moe report</c>: one self-contained HTML page that reads a fit (docs/inference.md §5) — the model, every
/// parameter with its Wald and bootstrap intervals, the table of k, the data's diagnosis in words, the fit and
/// calibration pictures. No network: the pictures are PNG data embedded in the page, the style sheet is inline. Every
/// number comes from the façade; this class lays them out.</summary>
internal static class ReportCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new Argument<FileInfo>("model") { Description = "the fitted model file (JSON)" };
        var data = new Argument<FileInfo>("data") { Description = "the data it was fitted to (by the model's column names when it records them)" };
        var outPath = new Option<FileInfo>("--out") { Description = "the HTML file to write", Required = true };
        var bootstrap = new Option<int>("--bootstrap") { Description = "bootstrap replicates for the parameters' percentile intervals (default 200; 0: Wald intervals only)", DefaultValueFactory = _ => 200 };
        var k = new Option<string?>("--k") { Description = "the numbers of experts in the table of k (default 1 to the model's k + 1, at least 1..3)" };
        var commonSigma = new Option<bool>("--common-sigma") { Description = "the model's fit had one noise level for every expert" };
        var weights = new Option<string?>("--weights") { Description = "the column of the rows' frequency weights, as the fit read them" };
        var seed = new Option<long>("--seed") { Description = "the seed of the bootstrap, the table of k's fits and a discrete response's PIT", DefaultValueFactory = _ => 1 };
        var command = new Command("report", "write one self-contained HTML page about a fit: the model, parameters with intervals, the table of k, the diagnosis, the fit and calibration pictures")
        {
            model, data, outPath, bootstrap, k, commonSigma, weights, seed,
        };
        command.SetAction(parse =>
        {
            var file = parse.GetValue(outPath)!;
            Shared.CheckPaths([parse.GetValue(model), parse.GetValue(data)], [file]);
            if (!file.Extension.Equals(".html", StringComparison.OrdinalIgnoreCase) && !file.Extension.Equals(".htm", StringComparison.OrdinalIgnoreCase))
            {
                throw new ArgumentException($"--out must name an .html file, but is '{file.Name}'.", "out");
            }

            Shared.Require(parse.GetValue(bootstrap) is 0 or >= 2, "--bootstrap", "0 (none) or at least 2", parse.GetValue(bootstrap));
            var m = MixtureOfExperts.Load(parse.GetValue(model)!.FullName);
            var rows = Shared.ReadFitData(m, parse.GetValue(data)!, parse.GetValue(weights));
            var ks = parse.GetValue(k) is { } range
                ? AnalysisCommand.ParseRange(range)
                : Enumerable.Range(1, Math.Max(3, m.Experts + 1)).ToArray();
            var html = Build(m, rows, Path.GetFileName(parse.GetValue(data)!.Name), ks, parse.GetValue(bootstrap),
                parse.GetValue(commonSigma), parse.GetValue(seed), line => error.WriteLine($"report: {line}"));
            AtomicFile.WriteAllText(Shared.PrepareOutput(file), html);
            output.WriteLine(string.Create(Inv, $"wrote {file.Name} ({html.Length / 1024} KiB, self-contained: open it in any browser)"));
            return CliApp.Success;
        });
        return command;
    }

    /// <summary>The page. Each section that cannot be computed (no standard errors at a non-strict maximum, every
    /// bootstrap replicate failing) says why in its place instead of failing the report.</summary>
    internal static string Build(MixtureOfExperts m, Dataset rows, string dataName, int[] ks, int replicates,
        bool commonSigma, long seed, Action<string> log)
    {
        var family = m.Family.HasNoiseLevels() ? $"{m.Activation} experts with Gaussian noise" : $"{m.Family.Name()} experts";
        var title = $"{dataName}: a mixture of {m.Experts} {family}";
        var page = new StringBuilder();
        page.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        page.Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        page.Append("<title>").Append(E(title)).Append("</title>\n<style>\n").Append(Style).Append("</style>\n</head>\n<body>\n<main>\n");
        page.Append("<h1>").Append(E(title)).Append("</h1>\n");

        // The model in words.
        log("the model");
        var n = rows.Count;
        var ll = m.LogLikelihood(rows.X, rows.Y);
        var names = m.ParameterNames;
        var values = m.ParameterValues;
        page.Append("<section id=\"model\">\n<h2>The model</h2>\n<p>");
        page.Append(E(string.Create(Inv, $"{n} rows{(rows.Weights is { } w ? $" (weights summing to {w.Sum():G6})" : "")}; {m.Experts} experts, each y = g(a·x + b) ")));
        page.Append(E(m.Family.HasNoiseLevels() ? $"+ N(0, σ²) with g = {m.Activation}" : $"through the {m.Family.Name()} family's link"));
        page.Append(E(string.Create(Inv, $", chosen among them by a softmax gate. The experts read {Columns(m.ExpertColumns, m.ExpertInputs)}; the gate reads {Columns(m.GateColumns, m.GateInputs)}.")));
        page.Append("</p>\n");
        page.Append("<p>").Append(E(string.Create(Inv, $"Log-likelihood {ll:F4}{(rows.Weights is null ? "" : ", each row counted once (the weighted one is in the table of k)")}, with {names.Count} parameters."))).Append("</p>\n");
        page.Append("</section>\n");

        // Parameters.
        log("standard errors");
        page.Append("<section id=\"parameters\">\n<h2>Parameters</h2>\n");
        IReadOnlyList<double>? se = null;
        try
        {
            se = MoeLearner.StandardErrors(m, rows, StandardErrorKind.Observed, commonSigma).InOrderOf(m);
        }
        catch (InvalidOperationException e)
        {
            page.Append("<p class=\"note\">No Wald intervals: ").Append(E(e.Message)).Append("</p>\n");
        }

        BootstrapResult? boot = null;
        if (replicates >= 2)
        {
            log($"bootstrap of {replicates} replicates");
            try
            {
                boot = MoeLearner.Bootstrap(m, rows, new BootstrapOptions { Replicates = replicates, Seed = seed, CommonSigma = commonSigma });
            }
            catch (FitDivergedException e)
            {
                page.Append("<p class=\"note\">No bootstrap intervals: ").Append(E(e.Message)).Append("</p>\n");
            }
        }

        var z = ParameterErrors.Z(0.95);
        page.Append("<div class=\"scroll\"><table>\n<thead><tr><th>parameter</th><th>estimate</th>");
        if (se is not null)
        {
            page.Append("<th>SE</th><th>95% Wald interval</th>");
        }

        if (boot is not null)
        {
            page.Append("<th>bootstrap SE</th><th>95% percentile interval</th>");
        }

        page.Append("</tr></thead>\n<tbody>\n");
        for (var t = 0; t < names.Count; t++)
        {
            page.Append("<tr><td>").Append(E(names[t])).Append("</td><td>").Append(N(values[t])).Append("</td>");
            if (se is not null)
            {
                page.Append("<td>").Append(N(se[t])).Append("</td><td>[").Append(N(values[t] - z * se[t])).Append(", ").Append(N(values[t] + z * se[t])).Append("]</td>");
            }

            if (boot is not null)
            {
                page.Append("<td>").Append(N(boot.StandardErrors[t])).Append("</td><td>[").Append(N(boot.PercentileLower[t])).Append(", ").Append(N(boot.PercentileUpper[t])).Append("]</td>");
            }

            page.Append("</tr>\n");
        }

        page.Append("</tbody>\n</table></div>\n<p class=\"note\">a<i>i</i>[col], b<i>i</i>: expert <i>i</i>'s coefficient on a column and its intercept; w<i>j</i>[col], c<i>j</i>: the gate's row <i>j</i> against the last expert (whose row is 0); sigma<i>i</i>: expert <i>i</i>'s noise level.");
        if (boot is not null)
        {
            page.Append(E(string.Create(Inv, $" Bootstrap: {boot.Used} nonparametric replicates, each refitted from this model and its experts matched to this model's by the rows' memberships; {boot.Ambiguous} matching(s) ambiguous{(boot.Failed > 0 ? $", {boot.Failed} replicate(s) failed ({boot.FirstFailure})" : "")}. Where the Wald and percentile intervals disagree, the likelihood is not quadratic there and the percentile interval is the one to read.")));
        }

        page.Append("</p>\n</section>\n");

        // The number of experts.
        log($"the table of k ({string.Join(", ", ks)})");
        page.Append("<section id=\"k\">\n<h2>How many experts?</h2>\n");
        var options = FitOptions.ForModel(m, commonSigma);
        options.Seed = seed;
        var selection = MoeLearner.Select(rows, options, ks);
        page.Append("<div class=\"scroll\"><table>\n<thead><tr><th>k</th><th>log-likelihood</th><th>parameters</th><th>AIC</th><th>BIC</th><th>ICL</th><th></th></tr></thead>\n<tbody>\n");
        foreach (var r in selection.Results)
        {
            var marks = new List<string>();
            if (r.Experts == selection.Chosen)
            {
                marks.Add("BIC's choice");
            }

            if (r.Experts == selection.ChosenByIcl)
            {
                marks.Add("ICL's choice");
            }

            if (r.Experts == m.Experts)
            {
                marks.Add("this model's k");
            }

            if (r.Degenerate)
            {
                marks.Add("degenerate: not chosen");
            }

            page.Append(string.Create(Inv, $"<tr{(r.Experts == selection.Chosen ? " class=\"chosen\"" : "")}><td>{r.Experts}</td><td>{N(r.LogLikelihood)}</td><td>{r.Parameters}</td><td>{N(r.Aic)}</td><td>{N(r.Bic)}</td><td>{N(r.Icl)}</td><td>{E(string.Join("; ", marks))}</td></tr>\n"));
        }

        page.Append("</tbody>\n</table></div>\n<p>");
        page.Append(E(string.Create(Inv, $"BIC (−2 LL + p ln n) chooses k = {selection.Chosen}; ICL, which also penalises overlapping experts, chooses k = {selection.ChosenByIcl}. ")));
        page.Append(E(selection.Chosen == m.Experts
            ? "This model's k is BIC's choice."
            : string.Create(Inv, $"This model has k = {m.Experts}: refit with --k {selection.Chosen}, or test the two (moe select --test).")));
        page.Append("</p>\n</section>\n");

        // The data's diagnosis.
        log("the diagnosis");
        var diagnosis = MoeLearner.Diagnose(rows, m.Experts, m.Family);
        page.Append("<section id=\"diagnosis\">\n<h2>The data</h2>\n<p>");
        page.Append(E(string.Create(Inv, $"n = {diagnosis.Rows} rows and d = {diagnosis.Dimension} covariate{(diagnosis.Dimension == 1 ? "" : "s")}; k = {diagnosis.Experts} experts have {diagnosis.Parameters} parameters ({(double)diagnosis.Rows / diagnosis.Parameters:F1} rows each).")));
        page.Append("</p>\n<ul>\n");
        foreach (var v in diagnosis.Verdict)
        {
            page.Append("<li>").Append(E(v)).Append("</li>\n");
        }

        page.Append("</ul>\n</section>\n");

        // The pictures.
        log("the pictures");
        var fitPng = FitChart.Render(m, rows.X, rows.Y, title, out _);
        page.Append("<section id=\"fit\">\n<h2>The fit</h2>\n");
        Figure(page, fitPng, "the fit against its data",
            m.Dimension == 1
                ? "The rows coloured by their most likely expert, each expert's line and the mixture's mean (dashed); below, the gate's probabilities along the covariate."
                : "The most likely expert's mean against the observed response, coloured by expert (each expert explains its points if they hug the diagonal); beside it, the gate's probabilities along each expert's gating direction.");
        page.Append("</section>\n");

        var check = m.Check(rows, [0.5, 0.9], seed);
        var calibrationPng = FitChart.Calibration(check.Histogram, "calibration: the PIT of the rows");
        page.Append("<section id=\"calibration\">\n<h2>Calibration</h2>\n");
        Figure(page, calibrationPng, "the PIT histogram",
            string.Create(Inv, $"The predictive distribution's CDF at each row's response (its PIT) is uniform when the model's distributions are right. Kolmogorov–Smirnov against uniform: D = {check.KsStatistic:G3}, p = {check.KsP:G3}; log score {check.LogScore:G5}; CRPS {check.Crps:G5}; ") +
            string.Join("; ", check.Coverage.Select(c => string.Create(Inv, $"the {c.Level:P0} central intervals hold {c.Observed:P1} of the rows"))) +
            ". These are the rows the model was fitted to, so they flatter it; check held-out rows with moe check.");
        page.Append("</section>\n");

        page.Append("<footer><p>Written by <code>moe report</code> (MoE toolkit). The numbers are in docs/inference.md's terms: §1 the table of k, §2 the intervals, §2.2 the bootstrap, §3.1 the calibration, §4 the diagnosis.</p></footer>\n");
        page.Append("</main>\n<script>\n").Append(Script).Append("</script>\n</body>\n</html>\n");
        return page.ToString();
    }

    private static void Figure(StringBuilder page, byte[] png, string alt, string caption) =>
        page.Append("<figure><img src=\"data:image/png;base64,").Append(Convert.ToBase64String(png))
            .Append("\" alt=\"").Append(E(alt)).Append("\"><figcaption>").Append(E(caption)).Append("</figcaption></figure>\n");

    private static string Columns(IReadOnlyList<string>? names, IReadOnlyList<int> inputs) =>
        names is { } n ? string.Join(", ", n) : string.Join(", ", inputs.Select(i => string.Create(Inv, $"x{i + 1}")));

    private static string E(string text) => WebUtility.HtmlEncode(text);

    private static string N(double v) => double.IsNaN(v) ? "—" : v.ToString("G5", Inv);

    /// <summary>Readable on a phone (one column, tables scroll sideways, pictures shrink) and printable (no
    /// backgrounds, no breaks inside a figure or table).</summary>
    private const string Style = """
        body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.5; color: #1b1b1b; margin: 0; }
        main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
        h1 { font-size: 1.5rem; margin-top: 0.5rem; }
        h2 { font-size: 1.2rem; border-bottom: 1px solid #ccc; padding-bottom: 0.2rem; margin-top: 2rem; }
        .scroll { overflow-x: auto; }
        table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 0.9rem; }
        th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #e4e4e4; text-align: right; white-space: nowrap; }
        th:first-child, td:first-child, td:last-child { text-align: left; }
        tr.chosen { background: #eef5ff; }
        .note { color: #555; font-size: 0.9rem; }
        figure { margin: 1rem 0; }
        img { max-width: 100%; height: auto; display: block; }
        figcaption { color: #444; font-size: 0.9rem; margin-top: 0.4rem; }
        footer { color: #666; font-size: 0.8rem; margin-top: 2rem; }
        @media print { tr.chosen { background: none; font-weight: bold; } figure, table { break-inside: avoid; } main { max-width: none; } }

        """;

    /// <summary>Says in the console which picture did not load, and marks the page when every one did (what CI's
    /// headless browser reads).</summary>
    private const string Script = """
        window.addEventListener('load', function () {
          var missing = Array.prototype.filter.call(document.images, function (i) { return !(i.complete && i.naturalWidth > 0); });
          missing.forEach(function (i) { console.error('moe report: the picture "' + i.alt + '" did not load'); });
          document.documentElement.setAttribute('data-images', missing.length === 0 ? 'ok' : 'missing');
        });

        """;
}
