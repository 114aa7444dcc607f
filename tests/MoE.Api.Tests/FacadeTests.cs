using MoE.Api;

namespace MoE.Api.Tests;

/// <summary>The façade, exercised only through its public C# surface (no Microsoft.FSharp types).</summary>
public class FacadeTests
{
    private static readonly double[,] Regressors = { { 1, 0, 0, 0 }, { 0, 1, 0, 0 } };
    private static readonly double[,] Gating = { { 0, 0, 1, 0 } };

    [Fact]
    public void CreateSampleSaveAndLoadRoundTrip()
    {
        using var dir = new TempDir();
        var truth = MixtureOfExperts.Create(Regressors, Gating, Activation.Relu, sigma: 0.1);
        Dataset data = truth.Sample(n: 1000, seed: 7);
        Assert.Equal(1000, data.Count);
        Assert.Equal(4, data.Dimension);

        data.SaveCsv(dir.File("data.csv"));
        Dataset csv = Dataset.LoadCsv(dir.File("data.csv"));
        Assert.Equal(data.Y, csv.Y);
        Assert.Equal(data.X, csv.X);

        truth.Save(dir.File("model.json"));
        var again = MixtureOfExperts.Load(dir.File("model.json"));
        Assert.Equal(truth.Regressors, again.Regressors);
        Assert.Equal(truth.Gating, again.Gating);
        Assert.Equal(truth.Sigma, again.Sigma);
        Assert.Equal(Activation.Relu, again.Activation);
    }

    [Fact]
    public void SamplingIsReproducibleAndMatchesTheCore()
    {
        var truth = GroundTruth.Create(GroundTruthPreset.Orthogonal, experts: 2, dimension: 10, Activation.Identity, sigma: 0.05);
        var a = truth.Sample(5000, seed: 1);
        var b = truth.Sample(5000, seed: 1);
        Assert.Equal(a.Y, b.Y);
        // The same bits as `moe generate --seed 1` and the core's golden test.
        Assert.Equal(-1.1861143326012424, a.Y[0]);
    }

    [Fact]
    public void LikelihoodPredictionAndResponsibilitiesAreConsistent()
    {
        var truth = MixtureOfExperts.Create(Regressors, Gating, Activation.Identity, sigma: 0.2);
        var data = truth.Sample(200, seed: 3);
        double[] perSample = truth.LogLikelihoods(data.X, data.Y);
        Assert.Equal(perSample.Sum(), truth.LogLikelihood(data.X, data.Y), 9);

        double[,] post = truth.Responsibilities(data.X, data.Y);
        double[,] gate = truth.GateProbabilities(data.X);
        double[] yhat = truth.Predict(data.X);
        for (var i = 0; i < data.Count; i++)
        {
            Assert.Equal(1.0, post[i, 0] + post[i, 1], 12);
            Assert.Equal(1.0, gate[i, 0] + gate[i, 1], 12);
            // Identity experts a_1 = e1, a_2 = e2: ŷ = p_1 x_1 + p_2 x_2.
            Assert.Equal(gate[i, 0] * data.X[i, 0] + gate[i, 1] * data.X[i, 1], yhat[i], 12);
        }
    }

    [Fact]
    public void ParametersAreCopiedSoTheModelIsImmutable()
    {
        var a = (double[,])Regressors.Clone();
        var model = MixtureOfExperts.Create(a, Gating, Activation.Identity, 0.1);
        a[0, 0] = 99;
        model.Regressors[0, 1] = 42;
        Assert.Equal(1.0, model.Regressors[0, 0]);
        Assert.Equal(0.0, model.Regressors[0, 1]);
    }

    [Fact]
    public void ActivationsEvaluateAndCustomOnesGetANumericDerivative()
    {
        Assert.Equal(0.0, Activation.Relu.Evaluate(-2));
        Assert.Equal(-0.2, Activation.LeakyRelu(0.1).Evaluate(-2), 15);
        Assert.Equal("leaky-relu", Activation.LeakyRelu(0.1).Name);
        Assert.Equal(Math.Tanh(0.3), Activation.Tanh.Evaluate(0.3), 15);
        var cube = Activation.Custom("cube", z => z * z * z);
        // Central difference with h = ε^(1/3)·|z|: error ≈ h²·|g'''|/6 + ε|g|/h ≈ 1e-10·2 at z = 2.
        Assert.Equal(12.0, cube.Derivative(2.0), 8);
        Assert.False(cube.IsBuiltIn);
        Assert.Equal(Activation.Parse("LEAKY-RELU", 0.25), Activation.LeakyRelu(0.25));
    }

    [Fact]
    public void BadInputsThrowArgumentExceptionsNamingTheParameter()
    {
        Assert.Equal("regressors", Assert.Throws<ArgumentNullException>(() => MixtureOfExperts.Create(null!, Gating, Activation.Relu, 0.1)).ParamName);
        Assert.Equal("activation", Assert.Throws<ArgumentNullException>(() => MixtureOfExperts.Create(Regressors, Gating, null!, 0.1)).ParamName);
        var shape = Assert.Throws<ArgumentException>(() => MixtureOfExperts.Create(Regressors, new double[2, 4], Activation.Relu, 0.1));
        Assert.Equal("gating", shape.ParamName);
        Assert.Contains("2x4", shape.Message);
        Assert.Equal("sigma", Assert.Throws<ArgumentException>(() => MixtureOfExperts.Create(Regressors, Gating, Activation.Relu, -1)).ParamName);
        Assert.Equal("slope", Assert.Throws<ArgumentException>(() => Activation.LeakyRelu(double.NaN)).ParamName);
        var truth = MixtureOfExperts.Create(Regressors, Gating, Activation.Relu, 0.1);
        Assert.Equal("count", Assert.Throws<ArgumentOutOfRangeException>(() => truth.Sample(0, 1)).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => truth.Predict(new double[3, 5])).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => Dataset.FromArrays(new double[3, 2], new double[2])).ParamName);
        var custom = MixtureOfExperts.Create(Regressors, Gating, Activation.Custom("cube", z => z * z * z), 0.1);
        Assert.Contains("custom activation 'cube'", Assert.Throws<ArgumentException>(() => custom.ToJson()).Message);
        Assert.Equal("dimension", Assert.Throws<ArgumentOutOfRangeException>(
            () => GroundTruth.Create(GroundTruthPreset.Orthogonal, 3, 4, Activation.Relu, 0.1)).ParamName);
    }

    [Fact]
    public void BadFilesThrowInvalidDataExceptionsWithTheirLocation()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("bad.csv"), "x1,y\n1,2\n3,oops\n");
        var e = Assert.Throws<InvalidDataException>(() => Dataset.LoadCsv(dir.File("bad.csv")));
        Assert.Contains("bad.csv: line 3, column 2", e.Message);
        File.WriteAllText(dir.File("bad.json"), "{\"k\":2}");
        Assert.Contains("bad.json", Assert.Throws<InvalidDataException>(() => MixtureOfExperts.Load(dir.File("bad.json"))).Message);
        Assert.Throws<FileNotFoundException>(() => Dataset.LoadCsv(dir.File("missing.csv")));
    }

    [Fact]
    public void TransformCoefficientsForLeakyReluAreValid()
    {
        TransformCoefficients c = Transforms.Coefficients(Activation.LeakyRelu(0.1), sigma: 0.05);
        Assert.True(c.C != 0 && c.CPrime != 0);
        Assert.Equal(0.05, c.Sigma);
        Assert.Equal(Math.Pow(2, 4) + c.Alpha * 8 + c.Beta * 4 + c.Gamma * 2, c.Q4(2.0), 12);
        var invalid = Assert.Throws<ArgumentException>(() => Transforms.Coefficients(Activation.Custom("square", z => z * z, z => 2 * z), 0.1));
        Assert.Contains("Condition 2", invalid.Message);
    }

    [Fact]
    public void ThePublicSurfaceExposesNoFSharpTypes()
    {
        var leaks =
            from type in typeof(MixtureOfExperts).Assembly.GetExportedTypes()
            from member in type.GetMembers()
            let types = member switch
            {
                System.Reflection.MethodInfo m => m.GetParameters().Select(p => p.ParameterType).Append(m.ReturnType),
                System.Reflection.PropertyInfo p => new[] { p.PropertyType },
                System.Reflection.ConstructorInfo c => c.GetParameters().Select(p => p.ParameterType),
                _ => [],
            }
            from t in types
            where t.Assembly.GetName().Name is "FSharp.Core" or "MoE.Core"
            select $"{type.Name}.{member.Name}: {t}";
        Assert.Empty(leaks);
    }
}
