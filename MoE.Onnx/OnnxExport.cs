using System.Globalization;
using System.Reflection;
using Google.Protobuf;
using MoE.Core;
using P = global::Onnx;

namespace MoE.Onnx;

/// <summary>
/// Writes a fitted mixture of experts as an ONNX model (docs/deploying.md): a graph of standard ONNX operators
/// that computes, from the raw inputs, exactly what the toolkit's <c>predict</c> computes —
/// the gate probabilities p_i(x) = softmax(⟨w_i, x_G⟩ + c_i), the experts' means g(⟨a_i, x_E⟩ + b_i) and the
/// mixture mean Σ_i p_i(x) g(⟨a_i, x_E⟩ + b_i).
/// </summary>
/// <remarks>
/// <para>The graph (opset <see cref="Opset"/>, IR version <see cref="IrVersion"/>):
/// input <c>x</c> [rows, d] — the model's d input columns in the order of the training data;
/// outputs <c>mean</c> [rows], <c>expert_means</c> [rows, k], <c>gate</c> [rows, k]. When the gate and the
/// experts read different columns, two <c>Gather</c> nodes select them inside the graph. The activation is the
/// operator of the same name (<c>Relu</c>, <c>Sigmoid</c>, <c>Tanh</c>); leaky-relu is <c>Where(z &gt; 0, z, s·z)</c>
/// so that its slope keeps every bit of its double (ONNX's <c>LeakyRelu</c> takes a float32 slope).</para>
/// <para>The model's facts are in the file's metadata: <c>moe.family</c>, <c>moe.k</c>, <c>moe.d</c>,
/// <c>moe.activation</c>, <c>moe.expertInputs</c>, <c>moe.gateInputs</c>, <c>moe.version</c> (the toolkit's), and
/// <c>moe.model</c>, the model file's JSON itself, so an exported file can be turned back into the model.</para>
/// <para>Double graphs agree with the toolkit's own prediction to rounding (the tests bound the difference at
/// 1e-12 of the terms' magnitude); <c>float32</c> graphs hold the parameters and compute in single precision.</para>
/// </remarks>
public static class OnnxExport
{
    /// <summary>The ONNX operator set the graph is written against (the default domain's).</summary>
    public const long Opset = 17;

    /// <summary>The ONNX IR version of the file (IR 8 is the one of opset 17, ONNX 1.12).</summary>
    public const long IrVersion = 8;

    /// <summary>The graph's input: the model's d columns, one row per sample.</summary>
    public const string InputName = "x";

    /// <summary>The mixture mean Σ_i p_i(x) μ_i(x), one value per row.</summary>
    public const string MeanName = "mean";

    /// <summary>Each expert's mean μ_i(x) = g(⟨a_i, x⟩ + b_i), [rows, k].</summary>
    public const string ExpertMeansName = "expert_means";

    /// <summary>The gate probabilities p_i(x), [rows, k].</summary>
    public const string GateName = "gate";

    /// <summary>The toolkit's version, written to every file's metadata and as the producer's version.</summary>
    public static string ToolkitVersion { get; } =
        typeof(MoeModel).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            .Split('+')[0]
        ?? typeof(MoeModel).Assembly.GetName().Version?.ToString() ?? "0";

    /// <summary>The ONNX model of <paramref name="model"/>, serialized.</summary>
    /// <param name="model">A model with a built-in activation.</param>
    /// <param name="float32">Write single-precision input, parameters and outputs (for runtimes or devices
    /// without double kernels); the default is double.</param>
    /// <exception cref="ArgumentNullException">The model is null.</exception>
    /// <exception cref="NotSupportedException">The activation is custom: it is .NET code, which an ONNX graph
    /// cannot hold; or the model's expert family has no ONNX form.</exception>
    public static byte[] ToBytes(MoeModel model, bool float32 = false) => Build(model, float32).ToByteArray();

    /// <summary>Writes the ONNX model of <paramref name="model"/> to a file, atomically (a failed write leaves the
    /// previous file).</summary>
    /// <param name="model">A model with a built-in activation.</param>
    /// <param name="path">The file (created or replaced); its folder must exist.</param>
    /// <param name="float32">See <see cref="ToBytes"/>.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="NotSupportedException">See <see cref="ToBytes"/>.</exception>
    /// <exception cref="IOException">The write failed.</exception>
    /// <exception cref="UnauthorizedAccessException">The folder is not writable, or the path is a directory.</exception>
    public static void Save(MoeModel model, string path, bool float32 = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        var bytes = ToBytes(model, float32);
        AtomicFile.Write(path, Microsoft.FSharp.Core.FuncConvert.FromAction<Stream>(stream => stream.Write(bytes)));
    }

    /// <summary>Appends the mixture's graph to an existing ONNX model whose output <paramref name="featureOutput"/>
    /// holds the mixture's d inputs as [rows, d] — e.g. the graph ML.NET's <c>ConvertToOnnx</c> writes for the
    /// transforms before the trainer, so the whole pipeline becomes one ONNX model (docs/deploying.md). The result's
    /// inputs are those of <paramref name="onnxModel"/> that the mixture's outputs depend on; its outputs are
    /// <c>mean</c>, <c>expert_means</c> and <c>gate</c>; a float feature output is widened to double by a
    /// <c>Cast</c> (or a double one narrowed, with <paramref name="float32"/>). The mixture's own nodes and
    /// initializers are named <c>moe.*</c>; the existing model's opset imports are kept (the mixture's operators mean
    /// the same from opset 9 on), and its metadata gets the mixture's.</summary>
    /// <param name="onnxModel">The serialized model to extend.</param>
    /// <param name="featureOutput">The name of its output (or input) that holds the mixture's inputs.</param>
    /// <param name="model">A model with a built-in activation.</param>
    /// <param name="float32">Compute the mixture in single precision.</param>
    /// <exception cref="ArgumentException">No such output, a feature width other than d, a type other than float or
    /// double, or a name of the existing graph that the mixture's outputs would take.</exception>
    /// <exception cref="NotSupportedException">See <see cref="ToBytes"/>.</exception>
    /// <exception cref="InvalidProtocolBufferException">The bytes are not an ONNX model.</exception>
    public static byte[] Append(byte[] onnxModel, string featureOutput, MoeModel model, bool float32 = false)
    {
        ArgumentNullException.ThrowIfNull(onnxModel);
        ArgumentNullException.ThrowIfNull(featureOutput);
        CheckExportable(model);
        var file = P.ModelProto.Parser.ParseFrom(onnxModel);
        var graph = file.Graph ?? throw new ArgumentException("The ONNX model has no graph.", nameof(onnxModel));
        var feature = graph.Output.Concat(graph.Input).FirstOrDefault(v => v.Name == featureOutput)
            ?? throw new ArgumentException(
                $"The ONNX model has no output '{featureOutput}'; its outputs are "
                + string.Join(", ", graph.Output.Select(v => v.Name)) + ".", nameof(featureOutput));
        var tensor = feature.Type?.TensorType;
        var type = (P.TensorProto.Types.DataType)(tensor?.ElemType ?? 0);
        if (type is not (P.TensorProto.Types.DataType.Float or P.TensorProto.Types.DataType.Double))
        {
            throw new ArgumentException(
                $"The ONNX model's '{featureOutput}' holds {type} values; the mixture reads float or double.",
                nameof(featureOutput));
        }

        if (tensor!.Shape is { Dim.Count: 2 } shape && shape.Dim[1].HasDimValue
            && shape.Dim[1].DimValue != model.Dimension)
        {
            throw new ArgumentException(
                $"The ONNX model's '{featureOutput}' has {shape.Dim[1].DimValue} columns, but the mixture reads "
                + $"d = {model.Dimension}.", nameof(featureOutput));
        }

        var g = new GraphWriter(float32, "moe.");
        var real = g.Real;
        var x = type == real ? featureOutput : g.Node("Cast", [featureOutput], "x", ("to", (long)real));
        AddMixture(g, model, x);

        var taken = graph.Node.SelectMany(n => n.Output).Concat(graph.Input.Select(v => v.Name))
            .Concat(graph.Initializer.Select(t => t.Name)).ToHashSet();
        if (g.Graph.Node.SelectMany(n => n.Output).Concat(g.Graph.Initializer.Select(t => t.Name))
                .FirstOrDefault(taken.Contains) is { } clash)
        {
            throw new ArgumentException(
                $"The ONNX model already has a value named '{clash}', which the mixture's graph writes.",
                nameof(onnxModel));
        }

        graph.Node.Add(g.Graph.Node);
        graph.Initializer.Add(g.Graph.Initializer);
        graph.Output.Clear();
        AddOutputs(graph, model, real);
        Prune(graph);

        var imports = file.OpsetImport.FirstOrDefault(o => o.Domain == "");
        if (imports is null)
        {
            file.OpsetImport.Add(new P.OperatorSetIdProto { Domain = "", Version = Opset });
        }
        else if (imports.Version < 9)
        {
            imports.Version = 9;
        }

        file.IrVersion = Math.Max(file.IrVersion, 4);
        AddMetadata(file, model, float32);
        return file.ToByteArray();
    }

    static void CheckExportable(MoeModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!model.Activation.IsBuiltIn)
        {
            throw new NotSupportedException(
                $"The custom activation '{model.Activation.Name}' cannot be exported to ONNX: it is .NET code, and an "
                + "ONNX graph holds only standard operators. Only the built-in activations can be: "
                + string.Join(", ", ActivationModule.builtInNames) + ".");
        }

    }

    static P.ModelProto Build(MoeModel model, bool float32)
    {
        CheckExportable(model);
        var g = new GraphWriter(float32, "");
        AddMixture(g, model, InputName);
        var real = g.Real;
        var graph = g.Graph;
        graph.Name = "mixture_of_experts";
        graph.DocString =
            $"Mixture of {model.Experts} {model.Family.Name} experts ({model.Activation.Name}) on {model.Dimension} "
            + "inputs, written by the MoE toolkit. Input x: the model's columns in the training data's order.";
        graph.Input.Add(Value(InputName, real, "rows", model.Dimension,
            "The model's d input columns, in the order of the training data."));
        AddOutputs(graph, model, real);

        var file = new P.ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "MoE toolkit",
            ProducerVersion = ToolkitVersion,
            Domain = "moe",
            ModelVersion = 1,
            DocString = graph.DocString,
            Graph = graph,
        };
        file.OpsetImport.Add(new P.OperatorSetIdProto { Domain = "", Version = Opset });
        AddMetadata(file, model, float32);
        return file;
    }

    /// The mixture's nodes, reading x [rows, d]: the one description of the graph, for a file of its own or
    /// appended to another model. Only operators whose meaning is the same from opset 9 to 17 are used.
    static void AddMixture(GraphWriter g, MoeModel model, string x)
    {
        int k = model.Experts, dE = model.ExpertDimension, dG = model.GateDimension;
        var design = model.Design;
        var xE = x;
        var xG = x;
        if (!design.IsShared)
        {
            xE = g.Node("Gather", [x, g.Int64s("expert_columns", design.ExpertColumns)], "x_experts",
                ("axis", 1L));
            xG = g.Node("Gather", [x, g.Int64s("gate_columns", design.GateColumns)], "x_gate", ("axis", 1L));
        }

        // Experts: η = x_E Aᵀ + b, μ = g(η).
        var aT = new double[dE * k];
        for (var i = 0; i < k; i++)
            for (var j = 0; j < dE; j++)
                aT[j * k + i] = model.Regressors[i, j];
        var eta = g.Node("Add",
            [g.Node("MatMul", [xE, g.Reals("regressors_t", [dE, k], aT)], "expert_dot"),
             g.Reals("regressor_intercepts", [k], model.RegressorIntercepts)], "expert_eta");
        if (design.HasOffset && !model.Family.Equals(ExpertFamily.Binomial))
        {
            // An exposure column: η += log t, a [rows, 1] column broadcast over the k experts. (A binomial model's row
            // column is its trials, which its means — probabilities of a success — do not read.)
            var t = g.Node("Gather", [x, g.Int64s("exposure_column", [design.OffsetColumn])], "exposure", ("axis", 1L));
            eta = g.Node("Add", [eta, g.Node("Log", [t], "log_exposure")], "expert_eta_offset");
        }

        var means = Respond(g, model, eta);

        // Gate: logits x_G Wᵀ + c with the k-th row and intercept fixed at 0, softmax over the experts (axis 1 of a
        // [rows, k] tensor: the same in every opset).
        var wT = new double[dG * k];
        for (var i = 0; i < k - 1; i++)
            for (var j = 0; j < dG; j++)
                wT[j * k + i] = model.Gating[i, j];
        var c = new double[k];
        Array.Copy(model.GatingIntercepts, c, k - 1);
        var logits = g.Node("Add",
            [g.Node("MatMul", [xG, g.Reals("gating_t", [dG, k], wT)], "gate_dot"),
             g.Reals("gating_intercepts", [k], c)], "gate_logits");
        var gate = g.Node("Softmax", [logits], GateName, ("axis", 1L));

        // The mean Σ_i p_i μ_i as a product with a vector of ones ([rows, k] · [k] = [rows]): ReduceSum took its axes
        // as an attribute before opset 13 and as an input after, MatMul means the same in both.
        g.Node("MatMul", [g.Node("Mul", [gate, means], "weighted_means"), g.Reals("ones", [k], Enumerable.Repeat(1.0, k).ToArray())],
            MeanName);
    }

    static void AddOutputs(P.GraphProto graph, MoeModel model, P.TensorProto.Types.DataType real)
    {
        graph.Output.Add(Value(MeanName, real, "rows", null, "The mixture mean, sum_i p_i(x) mu_i(x)."));
        graph.Output.Add(Value(ExpertMeansName, real, "rows", model.Experts, "Each expert's mean g(<a_i, x> + b_i)."));
        graph.Output.Add(Value(GateName, real, "rows", model.Experts, "The gate probabilities p_i(x)."));
    }

    static void AddMetadata(P.ModelProto file, MoeModel model, bool float32)
    {
        static string Indices(int[] v) => "[" + string.Join(",", v) + "]";
        foreach (var (key, value) in new[]
                 {
                     ("moe.family", model.Family.Name),
                     ("moe.k", model.Experts.ToString(CultureInfo.InvariantCulture)),
                     ("moe.d", model.Dimension.ToString(CultureInfo.InvariantCulture)),
                     ("moe.activation", model.Activation.ToString()),
                     ("moe.expertInputs", Indices(model.Design.ExpertColumns)),
                     ("moe.gateInputs", Indices(model.Design.GateColumns)),
                     ("moe.precision", float32 ? "float32" : "double"),
                     ("moe.version", ToolkitVersion),
                     ("moe.model", ModelJson.Serialize(model)),
                 })
        {
            file.MetadataProps.Add(new P.StringStringEntryProto { Key = key, Value = value });
        }

        if (model.Design.HasOffset)
        {
            file.MetadataProps.Add(new P.StringStringEntryProto
            {
                Key = model.Family.Equals(ExpertFamily.Binomial) ? "moe.trialsInput" : "moe.exposureInput",
                Value = model.Design.OffsetColumn.ToString(CultureInfo.InvariantCulture),
            });
        }
    }

    /// Keeps what the graph's outputs depend on: the nodes (in their order, which is topological), the inputs and
    /// the initializers they read. The rest of an appended-to model (its other outputs, a label input) goes.
    static void Prune(P.GraphProto graph)
    {
        var needed = graph.Output.Select(v => v.Name).ToHashSet();
        var kept = new List<P.NodeProto>();
        foreach (var node in graph.Node.Reverse())
        {
            if (node.Output.Any(needed.Contains))
            {
                kept.Add(node);
                needed.UnionWith(node.Input.Where(i => i.Length > 0));
            }
        }

        kept.Reverse();
        graph.Node.Clear();
        graph.Node.Add(kept);
        var inputs = graph.Input.Where(v => needed.Contains(v.Name)).ToList();
        graph.Input.Clear();
        graph.Input.Add(inputs);
        var initializers = graph.Initializer.Where(t => needed.Contains(t.Name)).ToList();
        graph.Initializer.Clear();
        graph.Initializer.Add(initializers);
    }

    /// <summary>The linear predictor past which a float32 graph caps a Poisson expert's rate: e^88 ≈ 1.65e38, below
    /// float32's largest value 3.4e38 (a double graph caps at the core's 700).</summary>
    public const double PoissonFloat32EtaCap = 88.0;

    /// The experts' mean responses as operators: the one place a family's outputs are decided. Gaussian experts are
    /// scored by g(η); Poisson experts by their expected count e^min(η, cap) (the core's cap of 700 in double, so a
    /// far row gives the façade's number, not ∞; 88 in float32); Bernoulli experts by their probability of a 1,
    /// σ(η). The mixture's mean is then the expected count, or P(y = 1).
    static string Respond(GraphWriter g, MoeModel model, string eta)
    {
        // A Student-t expert's mean is its linear predictor (ν > 1), as a Gaussian identity expert's.
        if (model.Family.Equals(ExpertFamily.Gaussian) || model.Family.Equals(ExpertFamily.StudentT))
            return Activate(g, model.Activation, eta);
        if (model.Family.Equals(ExpertFamily.Poisson))
        {
            var capped = g.Node("Min", [eta, g.Reals("eta_cap", [], [g.EtaCap])], "expert_eta_capped");
            return g.Node("Exp", [capped], ExpertMeansName);
        }

        if (model.Family.Equals(ExpertFamily.Bernoulli) || model.Family.Equals(ExpertFamily.Binomial))
            return g.Node("Sigmoid", [eta], ExpertMeansName);
        throw new NotSupportedException($"A model of the '{model.Family.Name}' family has no ONNX form in this version of the toolkit.");
    }

    /// The activation as operators: the one place that maps the toolkit's activations to ONNX.
    static string Activate(GraphWriter g, Activation activation, string eta)
    {
        if (activation.IsIdentity) return g.Node("Identity", [eta], ExpertMeansName);
        if (activation.IsRelu) return g.Node("Relu", [eta], ExpertMeansName);
        if (activation.IsSigmoid) return g.Node("Sigmoid", [eta], ExpertMeansName);
        if (activation.IsTanh) return g.Node("Tanh", [eta], ExpertMeansName);
        if (activation.IsLeakyRelu)
        {
            var positive = g.Node("Greater", [eta, g.Reals("zero", [], [0.0])], "expert_eta_positive");
            var scaled = g.Node("Mul", [eta, g.Reals("leaky_slope", [], [activation.Slope])], "expert_eta_scaled");
            return g.Node("Where", [positive, eta, scaled], ExpertMeansName);
        }

        throw new NotSupportedException($"The activation '{activation.Name}' has no ONNX form.");
    }

    static P.ValueInfoProto Value(string name, P.TensorProto.Types.DataType type, string rows, int? columns,
        string doc)
    {
        var shape = new P.TensorShapeProto();
        shape.Dim.Add(new P.TensorShapeProto.Types.Dimension { DimParam = rows });
        if (columns is { } c) shape.Dim.Add(new P.TensorShapeProto.Types.Dimension { DimValue = c });
        return new P.ValueInfoProto
        {
            Name = name,
            DocString = doc,
            Type = new P.TypeProto { TensorType = new P.TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    /// Nodes and initializers, named uniquely, in the order they are added (a topological order).
    /// The graph's outputs keep their names; every other value and node is named with the prefix.
    sealed class GraphWriter(bool float32, string prefix)
    {
        public P.GraphProto Graph { get; } = new();

        /// The element type of the graph's real tensors: its input, parameters and outputs.
        public P.TensorProto.Types.DataType Real =>
            float32 ? P.TensorProto.Types.DataType.Float : P.TensorProto.Types.DataType.Double;

        /// The largest η whose exponential the graph takes: the core's 700 in double; 88 in float32, where e^88.7
        /// overflows (and an overflowed rate times a gate probability of 0 would make the mean NaN).
        public double EtaCap => float32 ? PoissonFloat32EtaCap : 700.0;

        public string Node(string op, string[] inputs, string output, params (string Name, long Value)[] attributes)
        {
            if (output is not (MeanName or ExpertMeansName or GateName)) output = prefix + output;
            var node = new P.NodeProto { OpType = op, Name = output + "_" + op };
            node.Input.Add(inputs);
            node.Output.Add(output);
            foreach (var (name, value) in attributes)
                node.Attribute.Add(new P.AttributeProto
                    { Name = name, Type = P.AttributeProto.Types.AttributeType.Int, I = value });
            Graph.Node.Add(node);
            return output;
        }

        /// A real tensor, little-endian raw data, in the graph's precision.
        public string Reals(string name, int[] dims, double[] values)
        {
            name = prefix + name;
            var tensor = new P.TensorProto { Name = name, DataType = (int)Real };
            tensor.Dims.Add(dims.Select(d => (long)d));
            var bytes = new byte[values.Length * (float32 ? 4 : 8)];
            for (var i = 0; i < values.Length; i++)
            {
                if (float32)
                    System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), (float)values[i]);
                else
                    System.Buffers.Binary.BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(8 * i), values[i]);
            }

            tensor.RawData = ByteString.CopyFrom(bytes);
            Graph.Initializer.Add(tensor);
            return name;
        }

        public string Int64s(string name, int[] values)
        {
            name = prefix + name;
            var tensor = new P.TensorProto { Name = name, DataType = (int)P.TensorProto.Types.DataType.Int64 };
            tensor.Dims.Add(values.Length);
            tensor.Int64Data.Add(values.Select(v => (long)v));
            Graph.Initializer.Add(tensor);
            return name;
        }
    }
}

/// <summary><c>model.SaveOnnx(path)</c> and <c>model.ToOnnx()</c> on the core's <see cref="MoeModel"/>, for F# and C#
/// code that works with the core directly (the façade's <c>MixtureOfExperts</c> has the same two methods).</summary>
public static class MoeModelOnnxExtensions
{
    /// <summary>Writes the model as an ONNX file; see <see cref="OnnxExport.Save"/>.</summary>
    /// <param name="model">A model with a built-in activation.</param>
    /// <param name="path">The file (created or replaced atomically).</param>
    /// <param name="float32">Single-precision input, parameters and outputs.</param>
    public static void SaveOnnx(this MoeModel model, string path, bool float32 = false) =>
        OnnxExport.Save(model, path, float32);

    /// <summary>The model as a serialized ONNX model; see <see cref="OnnxExport.ToBytes"/>.</summary>
    /// <param name="model">A model with a built-in activation.</param>
    /// <param name="float32">Single-precision input, parameters and outputs.</param>
    public static byte[] ToOnnx(this MoeModel model, bool float32 = false) => OnnxExport.ToBytes(model, float32);
}
