using FsCheck;
using FsCheck.Fluent;
using Microsoft.ML.OnnxRuntime;
using MoE.Api;

namespace MoE.Onnx.Tests;

public class ExportTests
{
    static readonly string[] Activations = ["identity", "relu", "leaky-relu", "sigmoid", "tanh"];

    public static TheoryData<string, bool, bool> EveryLayout()
    {
        var data = new TheoryData<string, bool, bool>();
        foreach (var activation in Activations)
            foreach (var split in new[] { false, true })
                foreach (var intercepts in new[] { false, true })
                    data.Add(activation, split, intercepts);
        return data;
    }

    /// The acceptance check: every activation × covariate layout × with or without intercepts, 10,000 rows
    /// (every 50th far out), scored by ONNX Runtime in double and in float32 against the façade.
    [Theory]
    [MemberData(nameof(EveryLayout))]
    public void OnnxRuntimeAgreesWithTheFacade(string activation, bool split, bool intercepts)
    {
        var spec = new ModelSpec(4, 9, activation, 0.07, split, intercepts, 11);
        var model = spec.Build();
        var x = spec.Inputs(10_000, 12);
        var facade = Scores.OfFacade(model, x);
        foreach (var (float32, bound) in new[] { (false, 1e-12), (true, 1e-5) })
        {
            var onnx = Scores.OfOnnx(model.ToOnnx(float32), x, float32);
            var (worst, where) = Agreement.Compare(spec, model, x, facade, onnx, float32);
            Assert.True(worst <= bound, $"{spec}, {(float32 ? "float32" : "double")}: {worst:E3} > {bound:E0} at {where}");
        }
    }

    /// The GLM families' outputs: a Poisson mixture's expected count (its rates e^η, capped at η = 700 as the core
    /// caps them) and a Bernoulli mixture's probability of a 1, in both layouts, with and without intercepts; and a
    /// Student-t mixture's mean, whose experts' means are their linear predictors.
    [Theory]
    [InlineData("student-t", true, true)]
    [InlineData("poisson", false, true)]
    [InlineData("poisson", true, false)]
    [InlineData("bernoulli", false, false)]
    [InlineData("bernoulli", true, true)]
    public void GlmFamiliesAgreeWithTheFacade(string family, bool split, bool intercepts)
    {
        var spec = new ModelSpec(3, 7, "identity", 0, split, intercepts, 17, family);
        var model = spec.Build();
        Assert.Equal(family, model.Family.Name());
        var x = spec.Inputs(10_000, 3);
        var facade = Scores.OfFacade(model, x);
        foreach (var (float32, bound) in new[] { (false, 1e-12), (true, 1e-5) })
        {
            var onnx = Scores.OfOnnx(model.ToOnnx(float32), x, float32);
            var (worst, where) = Agreement.Compare(spec, model, x, facade, onnx, float32);
            Assert.True(worst <= bound, $"{spec}, {(float32 ? "float32" : "double")}: {worst:E3} > {bound:E0} at {where}");
        }

        using var session = new InferenceSession(model.ToOnnx());
        Assert.Equal(family, session.ModelMetadata.CustomMetadataMap["moe.family"]);
    }

    /// A Poisson mixture with an exposure column (input 2): the graph adds log t to every expert's η, so its rates are
    /// the façade's. In double both compute e^(η + log t) from the same η up to the summation order of ⟨a, x⟩ (a few
    /// ulps of η, |η| ≤ ~6 here): 1e-12 relative to each value keeps a wide margin over that, and a graph that left
    /// log t out would miss by a factor t (log t ~ N(0, 1)).
    [Fact]
    public void AnExposureColumnEntersTheGraphAsLogT()
    {
        const string json = """
            { "k": 2, "d": 3, "expertInputs": [0, 1], "gateInputs": [0, 1], "offsetInput": 2,
              "activation": { "name": "identity", "slope": 0 }, "family": "poisson",
              "regressors": [[0.8, -0.4], [-0.5, 0.7]], "gating": [[1.5, 0.0]],
              "regressorIntercepts": [0.5, -0.3], "gatingIntercepts": [0.0] }
            """;
        var model = MixtureOfExperts.FromJson(json);
        var rng = new Random(4);
        var x = new double[500, 3];
        for (var r = 0; r < 500; r++)
        {
            x[r, 0] = 2 * rng.NextDouble() - 1;
            x[r, 1] = 2 * rng.NextDouble() - 1;
            x[r, 2] = Math.Exp(2 * rng.NextDouble() - 1);
        }

        var facade = Scores.OfFacade(model, x);
        var onnx = Scores.OfOnnx(model.ToOnnx(), x, false);
        for (var r = 0; r < 500; r++)
        {
            Assert.True(Math.Abs(onnx.Mean[r] - facade.Mean[r]) <= 1e-12 * Math.Abs(facade.Mean[r]),
                $"row {r}: ONNX {onnx.Mean[r]:R}, façade {facade.Mean[r]:R}");
        }

        using var session = new InferenceSession(model.ToOnnx());
        Assert.Equal("2", session.ModelMetadata.CustomMetadataMap["moe.exposureInput"]);
    }

    /// Random shapes and parameters: k in 2..6, d in 1..12, any activation, layout and slope.
    [Fact]
    public void AnyShapeAgreesInDouble()
    {
        var specs =
            from k in Gen.Choose(2, 6)
            from d in Gen.Choose(1, 12)
            from activation in Gen.Elements(Activations)
            from slope in Gen.Choose(-300, 300).Select(v => v / 100.0)
            from split in ArbMap.Default.GeneratorFor<bool>()
            from intercepts in ArbMap.Default.GeneratorFor<bool>()
            from seed in Gen.Choose(0, 1_000_000)
            select new ModelSpec(k, d, activation, slope, split && d > 1, intercepts, seed);
        Prop.ForAll(specs.ToArbitrary(), spec =>
            {
                var model = spec.Build();
                var x = spec.Inputs(200, spec.Seed + 1);
                var (worst, where) = Agreement.Compare(spec, model, x, Scores.OfFacade(model, x),
                    Scores.OfOnnx(model.ToOnnx(), x, false), false);
                return (worst <= 1e-12).Label($"{spec}: {worst:E3} at {where}");
            })
            .QuickCheckThrowOnFailure();
    }

    /// The comparison can fail: a graph of a slightly different model (one regressor moved by 1e-9 of its
    /// size, or the gate's columns swapped) is caught.
    [Fact]
    public void TheComparisonCatchesAWrongGraph()
    {
        var spec = new ModelSpec(3, 6, "tanh", 0, true, true, 5);
        var model = spec.Build();
        var x = spec.Inputs(2_000, 6);
        var facade = Scores.OfFacade(model, x);

        var a = model.Regressors;
        a[0, 0] *= 1 + 1e-9;
        var moved = MixtureOfExperts.FromJson(ReplaceRegressors(model, a));
        var (worst, _) = Agreement.Compare(spec, model, x, facade, Scores.OfOnnx(moved.ToOnnx(), x, false), false);
        Assert.True(worst > 1e-12, $"a regressor moved by 1e-9 of itself went unseen ({worst:E3})");

        var swapped = model.ToJson().Replace("\"gateInputs\": [5, 4, 3]", "\"gateInputs\": [4, 5, 3]");
        Assert.NotEqual(model.ToJson(), swapped);
        (worst, _) = Agreement.Compare(spec, model, x, facade,
            Scores.OfOnnx(MixtureOfExperts.FromJson(swapped).ToOnnx(), x, false), false);
        Assert.True(worst > 1e-3, $"the gate reading swapped columns went unseen ({worst:E3})");
    }

    static string ReplaceRegressors(MixtureOfExperts model, double[,] a)
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(model.ToJson())!.AsObject();
        var rows = new System.Text.Json.Nodes.JsonArray();
        for (var i = 0; i < a.GetLength(0); i++)
        {
            var row = new System.Text.Json.Nodes.JsonArray();
            for (var j = 0; j < a.GetLength(1); j++) row.Add(a[i, j]);
            rows.Add(row);
        }

        json["regressors"] = rows;
        return json.ToJsonString();
    }

    [Fact]
    public void TheFileSaysWhatItHolds()
    {
        var spec = new ModelSpec(3, 5, "leaky-relu", 0.1, true, true, 8);
        var model = spec.Build();
        using var session = new InferenceSession(model.ToOnnx());
        var meta = session.ModelMetadata;
        Assert.Equal("MoE toolkit", meta.ProducerName);
        var props = meta.CustomMetadataMap;
        Assert.Equal("gaussian", props["moe.family"]);
        Assert.Equal("3", props["moe.k"]);
        Assert.Equal("5", props["moe.d"]);
        Assert.Equal("leaky-relu(slope=0.1)", props["moe.activation"]);
        Assert.Equal("[0,2,4]", props["moe.expertInputs"]);
        Assert.Equal("[4,3,2]", props["moe.gateInputs"]);
        Assert.Equal("double", props["moe.precision"]);
        Assert.Equal(OnnxExport.ToolkitVersion, props["moe.version"]);
        Assert.Equal(model.ToJson(), MixtureOfExperts.FromJson(props["moe.model"]).ToJson());

        Assert.Equal([OnnxExport.InputName], session.InputMetadata.Keys);
        Assert.Equal(typeof(double), session.InputMetadata["x"].ElementType);
        Assert.Equal([-1, 5], session.InputMetadata["x"].Dimensions);
        Assert.Equal([OnnxExport.MeanName, OnnxExport.ExpertMeansName, OnnxExport.GateName],
            session.OutputMetadata.Keys.ToArray());
        Assert.Equal([-1, 3], session.OutputMetadata["gate"].Dimensions);

        using var single = new InferenceSession(model.ToOnnx(float32: true));
        Assert.Equal(typeof(float), single.InputMetadata["x"].ElementType);
        Assert.Equal("float32", single.ModelMetadata.CustomMetadataMap["moe.precision"]);
    }

    [Fact]
    public void TheSameModelGivesTheSameBytes()
    {
        var model = new ModelSpec(3, 4, "relu", 0, false, true, 2).Build();
        Assert.Equal(model.ToOnnx(), MixtureOfExperts.FromJson(model.ToJson()).ToOnnx());
        // The core's model, as F# code holds it, through the extension methods: the same bytes.
        var core = MoE.Core.ModelJson.Deserialize(model.ToJson());
        Assert.Equal(model.ToOnnx(), core.ToOnnx());
        Assert.Equal(model.ToOnnx(float32: true), core.ToOnnx(float32: true));
    }

    [Fact]
    public void ACustomActivationIsRefusedWithTheReason()
    {
        var model = MixtureOfExperts.Create(new double[,] { { 1, 2 }, { 3, 4 } }, new double[,] { { 1, 0 } },
            Activation.Custom("softplus", z => Math.Log(1 + Math.Exp(z))), 0.5);
        var e = Assert.Throws<NotSupportedException>(() => model.ToOnnx());
        Assert.Contains("custom activation 'softplus' cannot be exported to ONNX", e.Message);
        Assert.Contains("identity, relu, leaky-relu, sigmoid, tanh", e.Message);
    }

    [Fact]
    public void SaveOnnxWritesTheFileAtomically()
    {
        var dir = Directory.CreateTempSubdirectory("moe-onnx-");
        try
        {
            var model = new ModelSpec(2, 3, "identity", 0, false, false, 1).Build();
            var path = Path.Combine(dir.FullName, "m.onnx");
            model.SaveOnnx(path);
            Assert.Equal(model.ToOnnx(), File.ReadAllBytes(path));
            Assert.Single(dir.GetFiles());
            Assert.Throws<DirectoryNotFoundException>(() => model.SaveOnnx(Path.Combine(dir.FullName, "no", "m.onnx")));
            Assert.Throws<UnauthorizedAccessException>(() => model.SaveOnnx(dir.FullName));
        }
        finally
        {
            dir.Delete(true);
        }
    }
}
