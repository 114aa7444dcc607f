namespace MoE.Api.Tests;

/// <summary>The façade rows of docs/errors.md: each id runs the call it names and checks the exception.</summary>
internal static class FacadeRows
{
    private static readonly MixtureOfExperts Model =
        GroundTruth.Create(GroundTruthPreset.Orthogonal, experts: 2, dimension: 3, Activation.Identity, sigma: 0.05);

    public static readonly IReadOnlyDictionary<string, Action> Checks = new Dictionary<string, Action>
    {
        ["facade-onnx-custom"] = () =>
        {
            var custom = MixtureOfExperts.Create(new double[,] { { 1, 0 }, { 0, 1 } }, new double[,] { { 1, 1 } },
                Activation.Custom("softplus", z => Math.Log(1 + Math.Exp(z))), 0.5);
            var path = Path.Combine(Path.GetTempPath(), $"moe-{Guid.NewGuid():N}.onnx");
            var e = Assert.Throws<NotSupportedException>(() => custom.SaveOnnx(path));
            Assert.Contains("The custom activation 'softplus' cannot be exported to ONNX: it is .NET code, and an ONNX graph holds only standard operators", e.Message);
            Assert.False(File.Exists(path));
        },
        ["facade-predict-nan"] = () =>
        {
            var x = new double[2, 3];
            x[0, 1] = double.NaN;
            var e = Assert.Throws<ArgumentException>(() => Model.Predict(x));
            Assert.Equal("x", e.ParamName);
            Assert.Contains("x[0,1] must be finite, but was NaN", e.Message);
        },
        ["facade-responsibilities-nan"] = () =>
        {
            var e = Assert.Throws<ArgumentException>(() => Model.Responsibilities(new double[2, 3], [0.0, double.NaN]));
            Assert.Equal("y", e.ParamName);
            Assert.Contains("y[1] must be finite, but was NaN", e.Message);
        },
        ["facade-dataset-weight"] = () =>
        {
            var e = Assert.Throws<ArgumentException>(() => Dataset.FromArrays(new double[,] { { 1 }, { 2 } }, [1.0, 2.0], [1.0, -1.0]));
            Assert.Equal("weights", e.ParamName);
            Assert.Contains("Row 1 has the weight -1; a frequency weight is finite and at least 0", e.Message);
        },
        ["facade-roles-formula"] = () =>
        {
            var e = Assert.Throws<ArgumentException>(() => ColumnRoles.Parse("y ~ a:b"));
            Assert.Equal("formula", e.ParamName);
            Assert.Contains("In the formula 'y ~ a:b', the term 'a:b' is not a column name: only sums of columns are supported", e.Message);
        },
        ["facade-dataset-nan"] = () =>
        {
            var x = new double[2, 3];
            x[1, 2] = double.PositiveInfinity;
            var e = Assert.Throws<ArgumentException>(() => Dataset.FromArrays(x, [1.0, 2.0]));
            Assert.Equal("x", e.ParamName);
            Assert.Contains("x[1,2] must be finite, but was Infinity", e.Message);
        },
        ["facade-enum"] = () =>
        {
            var data = Model.Sample(500, seed: 1);
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => MoeLearner.Fit(data, new FitOptions { Experts = 2, Method = (FitMethod)7 }));
            Assert.Equal("Method", e.ParamName);
            Assert.Contains("Method = 7 is not a defined FitMethod value", e.Message);
        },
        ["facade-custom-save"] = () =>
        {
            using var dir = new TempDir();
            var custom = MixtureOfExperts.Create(Model.Regressors, Model.Gating, Activation.Custom("softplus", z => Math.Log(1 + Math.Exp(z))), 0.1);
            var e = Assert.Throws<ArgumentException>(() => custom.Save(dir.File("m.json")));
            Assert.Contains("cannot be written to a model file", e.Message);
            Assert.False(File.Exists(dir.File("m.json")));
        },
        ["facade-load-directory"] = () =>
        {
            using var dir = new TempDir();
            var e = Assert.Throws<FileNotFoundException>(() => MixtureOfExperts.Load(dir.Info.FullName));
            Assert.Contains("is a directory, not a model file", e.Message);
        },
        ["facade-fitcsv-max-rows"] = () =>
        {
            using var dir = new TempDir();
            Model.Sample(3_000, seed: 2).SaveCsv(dir.File("d.csv"));
            var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
                MoeLearner.FitCsv(dir.File("d.csv"), new FitOptions { Experts = 2 }, maxRowsInMemory: 10));
            Assert.Equal("maxRows", e.ParamName);
            Assert.Contains("holds too few rows in memory", e.Message);
        },
        ["facade-fitcsv-cancel"] = () =>
        {
            // The core test (LearnerTests) counts the chunks read after a cancellation; here the façade passes the
            // token through: a cancelled token stops the fit before its first pass is done.
            using var dir = new TempDir();
            Model.Sample(30_000, seed: 2).SaveCsv(dir.File("d.csv"));
            using var cts = new CancellationTokenSource();
            cts.Cancel();
            Assert.ThrowsAny<OperationCanceledException>(() =>
                MoeLearner.FitCsv(dir.File("d.csv"), new FitOptions { Experts = 2 }, 5_000, cancellationToken: cts.Token));
        },
        ["facade-atomic"] = () =>
        {
            using var dir = new TempDir();
            var path = dir.File("model.json");
            Model.Save(path);
            var before = File.ReadAllText(path);
            Assert.Throws<IOException>(() => AtomicFile.Write(path, stream =>
            {
                stream.Write(new byte[1000]);
                throw new IOException("No space left on device (simulated)");
            }));
            Assert.Equal(before, File.ReadAllText(path));
            Assert.Equal(["model.json"], dir.Info.GetFiles().Select(f => f.Name));
        },
    };
}
