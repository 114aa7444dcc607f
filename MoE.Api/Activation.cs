using Core = MoE.Core;

namespace MoE.Api;

/// <summary>
/// The expert non-linearity g in y = g(&lt;a_z, x&gt;) + ξ: one of the built-ins (<see cref="Identity"/>,
/// <see cref="Relu"/>, <see cref="LeakyRelu(double)"/>, <see cref="Sigmoid"/>, <see cref="Tanh"/>) or a
/// <see cref="Custom(string, Func{double, double}, Func{double, double}?)"/> function.
/// </summary>
public sealed class Activation : IEquatable<Activation>
{
    internal Core.Activation Inner { get; }

    internal Activation(Core.Activation core) => Inner = core;

    /// <summary>g(z) = z.</summary>
    public static Activation Identity { get; } = new(MoE.Core.Activation.Identity);

    /// <summary>g(z) = max(z, 0).</summary>
    public static Activation Relu { get; } = new(MoE.Core.Activation.Relu);

    /// <summary>g(z) = 1 / (1 + e^(−z)).</summary>
    public static Activation Sigmoid { get; } = new(MoE.Core.Activation.Sigmoid);

    /// <summary>g(z) = tanh z.</summary>
    public static Activation Tanh { get; } = new(MoE.Core.Activation.Tanh);

    /// <summary>g(z) = z for z &gt; 0 and slope·z otherwise.</summary>
    /// <param name="slope">A finite negative-side slope, e.g. 0.1.</param>
    /// <exception cref="ArgumentException">The slope is NaN or infinite.</exception>
    public static Activation LeakyRelu(double slope) => new(MoE.Core.ActivationModule.LeakyRelu(slope));

    /// <summary>A user-supplied non-linearity.</summary>
    /// <param name="name">A name that is not one of the built-in names (used in messages).</param>
    /// <param name="value">g.</param>
    /// <param name="derivative">g'; when null, a central difference with step ε^(1/3)·max(1,|z|) is used.</param>
    /// <exception cref="ArgumentNullException"><paramref name="value"/> is null.</exception>
    /// <exception cref="ArgumentException">The name is empty or reserved.</exception>
    public static Activation Custom(string name, Func<double, double> value, Func<double, double>? derivative = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(value);
        var g = Microsoft.FSharp.Core.FuncConvert.FromFunc(value);
        return derivative is null
            ? new(MoE.Core.ActivationModule.CustomNumeric(name, g))
            : new(MoE.Core.ActivationModule.Custom(name, g, Microsoft.FSharp.Core.FuncConvert.FromFunc(derivative)));
    }

    /// <summary>A built-in activation from its name: identity, relu, leaky-relu, sigmoid or tanh.</summary>
    /// <param name="name">The name (case-insensitive).</param>
    /// <param name="slope">The leaky-ReLU slope (must be 0 or null for the others); null gives leaky-relu its default,
    /// <see cref="DefaultLeakySlope"/>.</param>
    /// <exception cref="ArgumentException">Unknown name, or a slope for an activation that has none.</exception>
    public static Activation Parse(string name, double? slope = null) =>
        new(MoE.Core.ActivationModule.ParseOrDefault(name,
            slope is { } s ? Microsoft.FSharp.Core.FSharpOption<double>.Some(s) : Microsoft.FSharp.Core.FSharpOption<double>.None));

    /// <summary>The leaky-ReLU slope when none is given (command line, model files, <see cref="Parse"/>): 0.1.</summary>
    public const double DefaultLeakySlope = MoE.Core.ActivationModule.DefaultLeakySlope;

    /// <summary>The file and command-line name (identity, relu, leaky-relu, sigmoid, tanh) or the custom name.</summary>
    public string Name => Inner.Name;

    /// <summary>The leaky-ReLU slope; 0 for the other activations.</summary>
    public double Slope => Inner.Slope;

    /// <summary>True for the five built-in activations, which can be saved in model files.</summary>
    public bool IsBuiltIn => Inner.IsBuiltIn;

    /// <summary>g(z).</summary>
    /// <param name="z">The pre-activation.</param>
    public double Evaluate(double z) => Inner.Value(z);

    /// <summary>g'(z), with the left-hand value at a kink (ReLU'(0) = 0).</summary>
    /// <param name="z">The pre-activation.</param>
    public double Derivative(double z) => Inner.Derivative(z);

    /// <inheritdoc/>
    public bool Equals(Activation? other) => other is not null && Inner.Equals(other.Inner);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as Activation);

    /// <inheritdoc/>
    public override int GetHashCode() => Inner.GetHashCode();

    /// <inheritdoc/>
    public override string ToString() => Inner.ToString();
}
