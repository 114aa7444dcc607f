using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using MoE.Api;

namespace MoE.ML.Mapping;

// How a fitted mixture lives in an ML.NET model file. A transformer outside ML.NET's own assemblies cannot write
// itself into a model file (ModelSaveContext's writer is internal), so the mixture's transformer is a chain of
// ML.NET's public, savable transforms:
//   1. CopyColumns: the user's feature column -> MoE.Features (the mapping below reads fixed column names);
//   2. CustomMapping "MoE.ML.Key" (no inputs): a constant key column MoE.Key;
//   3. MapValue: MoE.Key -> MoE.Model, the model's JSON (the lookup table is saved with the pipeline);
//   4. CustomMapping "MoE.ML.Score": MoE.Features + MoE.Model -> MoE.Score, MoE.Gate, MoE.Experts;
//   5. CopyColumns to the user's output names, DropColumns of the MoE.* columns.
// ML.NET saves a CustomMapping by its contract name and, on load, finds the factory below by that name in the
// assemblies registered with MLContext.ComponentCatalog — hence the public factories and row types.

/// <summary>Fixed column names of the mixture's mapping (internal columns, dropped before the output).</summary>
internal static class MappingColumns
{
    public const string Features = "MoE.Features";
    public const string Key = "MoE.Key";
    public const string Model = "MoE.Model";
    public const string Score = "MoE.Score";
    public const string Gate = "MoE.Gate";
    public const string Experts = "MoE.Experts";
    public const string Probability = "MoE.Probability";
    public const string Logit = "MoE.Logit";
    public const string PredictedLabel = "MoE.PredictedLabel";
    public const int KeyValue = 1;
}

/// <summary>Infrastructure of the saved model (the input of the constant key mapping: no columns). Not for direct use.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class KeyInput
{
}

/// <summary>Infrastructure of the saved model (the constant key the model's JSON is looked up by). Not for direct use.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class KeyOutput
{
    /// <summary>The constant key.</summary>
    [ColumnName(MappingColumns.Key)]
    public int Key;
}

/// <summary>Infrastructure of the saved model: the constant key mapping, found by its contract name when a model is
/// loaded. Not for direct use.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
[CustomMappingFactoryAttribute(ContractName)]
public sealed class KeyMappingFactory : CustomMappingFactory<KeyInput, KeyOutput>
{
    /// <summary>The contract name saved in model files.</summary>
    public const string ContractName = "MoE.ML.Key";

    /// <summary>Writes the constant key.</summary>
    /// <returns>The mapping.</returns>
    public override Action<KeyInput, KeyOutput> GetMapping() => static (_, output) => output.Key = MappingColumns.KeyValue;
}

/// <summary>Infrastructure of the saved model (a row's features and the model's JSON). Not for direct use.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class ScoreInput
{
    /// <summary>The row's features.</summary>
    [ColumnName(MappingColumns.Features)]
    [VectorType]
    public float[] Features = [];

    /// <summary>The model's JSON.</summary>
    [ColumnName(MappingColumns.Model)]
    public ReadOnlyMemory<char> Model;
}

/// <summary>Infrastructure of the saved model (a row's predictions). Not for direct use.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class ScoreOutput
{
    /// <summary>The mixture mean.</summary>
    [ColumnName(MappingColumns.Score)]
    public float Score;

    /// <summary>The k gate probabilities.</summary>
    [ColumnName(MappingColumns.Gate)]
    [VectorType]
    public float[] Gate = [];

    /// <summary>The k expert means.</summary>
    [ColumnName(MappingColumns.Experts)]
    [VectorType]
    public float[] Experts = [];
}

/// <summary>Infrastructure of the saved model: the mapping from features to predictions, found by its contract name
/// when a model is loaded. Not for direct use.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
[CustomMappingFactoryAttribute(ContractName)]
public sealed class ScoreMappingFactory : CustomMappingFactory<ScoreInput, ScoreOutput>
{
    /// <summary>The contract name saved in model files.</summary>
    public const string ContractName = "MoE.ML.Score";

    /// <summary>Predicts one row.</summary>
    /// <returns>The mapping.</returns>
    public override Action<ScoreInput, ScoreOutput> GetMapping() => static (input, output) => RowScorer.Score(input, output);
}

/// <summary>Infrastructure of the saved model (a Bernoulli mixture's P(y = 1)). Not for direct use.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class BinaryInput
{
    /// <summary>The mixture's probability of a 1.</summary>
    [ColumnName(MappingColumns.Score)]
    public float Probability;
}

/// <summary>Infrastructure of the saved model (a binary classifier's outputs). Not for direct use.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class BinaryOutput
{
    /// <summary>P(y = 1).</summary>
    [ColumnName(MappingColumns.Probability)]
    public float Probability;

    /// <summary>The score ML.NET's binary evaluators rank by: log(p/(1 − p)).</summary>
    [ColumnName(MappingColumns.Logit)]
    public float Logit;

    /// <summary>p &gt; ½.</summary>
    [ColumnName(MappingColumns.PredictedLabel)]
    public bool PredictedLabel;
}

/// <summary>Infrastructure of the saved model: a Bernoulli mixture's probability as a binary classifier's Score,
/// Probability and PredictedLabel, found by its contract name when a model is loaded. Not for direct use.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
[CustomMappingFactoryAttribute(ContractName)]
public sealed class BinaryMappingFactory : CustomMappingFactory<BinaryInput, BinaryOutput>
{
    /// <summary>The contract name saved in model files.</summary>
    public const string ContractName = "MoE.ML.Binary";

    /// <summary>The classifier's outputs of one row; a missing probability gives missing outputs and the label false.</summary>
    /// <returns>The mapping.</returns>
    public override Action<BinaryInput, BinaryOutput> GetMapping() => static (input, output) =>
    {
        var p = input.Probability;
        output.Probability = p;
        output.Logit = MathF.Log(p) - MathF.Log(1 - p);
        output.PredictedLabel = p > 0.5f;
    };
}

/// <summary>Scores one row: the model parsed once per distinct JSON (a few cached), the prediction in double precision
/// (<see cref="MixtureOfExperts.PredictRow"/>, the bits of the façade's Predict) and rounded to float at the end.</summary>
internal static class RowScorer
{
    private sealed record Entry(string Json, MixtureOfExperts Model);

    // A handful of models at most are alive in one process; a copy-on-write array keeps lookups lock-free.
    private static Entry[] _cache = [];
    private const int CacheSize = 8;

    internal static MixtureOfExperts ModelOf(ReadOnlyMemory<char> json)
    {
        var cache = Volatile.Read(ref _cache);
        // The value map hands every row the same string: a reference check finds it without reading the JSON.
        if (MemoryMarshal.TryGetString(json, out var text, out int start, out int length) && start == 0 && length == text.Length)
        {
            foreach (var entry in cache)
            {
                if (ReferenceEquals(entry.Json, text))
                {
                    return entry.Model;
                }
            }
        }
        else
        {
            text = json.ToString();
        }

        foreach (var entry in cache)
        {
            if (text.AsSpan().SequenceEqual(entry.Json))
            {
                return entry.Model;
            }
        }

        var model = MixtureOfExperts.FromJson(text);
        Volatile.Write(ref _cache, [new Entry(text, model), .. cache.Take(CacheSize - 1)]);
        return model;
    }

    // Per thread, the row's input and the k outputs in double precision (a cursor scores on one thread; parallel
    // cursors each get their own), so scoring a row allocates nothing.
    [ThreadStatic]
    private static double[,]? _x;

    [ThreadStatic]
    private static double[]? _gate;

    [ThreadStatic]
    private static double[]? _means;

    internal static void Score(ScoreInput input, ScoreOutput output)
    {
        var model = ModelOf(input.Model);
        int d = model.Dimension, k = model.Experts;
        if (input.Features.Length != d)
        {
            throw new InvalidOperationException(
                $"Schema mismatch for feature column: the mixture of experts was fitted on vectors of size {d}, got a vector of size {input.Features.Length}.");
        }

        if (output.Gate.Length != k)
        {
            output.Gate = new float[k];
        }

        if (output.Experts.Length != k)
        {
            output.Experts = new float[k];
        }

        var x = _x is { } bx && bx.GetLength(1) == d ? bx : _x = new double[1, d];
        var gate = _gate is { } bg && bg.Length >= k ? bg : _gate = new double[k];
        var means = _means is { } bm && bm.Length >= k ? bm : _means = new double[k];
        for (int j = 0; j < d; j++)
        {
            float v = input.Features[j];
            if (!float.IsFinite(v))
            {
                // ML.NET's convention: a missing input gives a missing prediction, not an exception mid-cursor.
                output.Score = float.NaN;
                output.Gate.AsSpan().Fill(float.NaN);
                output.Experts.AsSpan().Fill(float.NaN);
                return;
            }

            x[0, j] = v;
        }

        output.Score = (float)model.PredictRow(x, 0, gate, means);
        for (int i = 0; i < k; i++)
        {
            output.Gate[i] = (float)gate[i];
            output.Experts[i] = (float)means[i];
        }
    }
}
