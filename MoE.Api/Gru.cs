using Core = MoE.Core;

namespace MoE.Api;

/// <summary>The non-linearity of a gate.</summary>
public enum GateFunction
{
    /// <summary>σ(t) = 1/(1 + e^(−t)).</summary>
    Sigmoid,
    /// <summary>1{t ≥ 0} (binary gates, as the paper's eq. 5 assumes).</summary>
    Threshold,
}

/// <summary>Where a GRU's reset gate acts.</summary>
public enum ResetPlacement
{
    /// <summary>Cho et al.'s original form: h̃ = g(U_h x + W_h (r ⊙ h)).</summary>
    BeforeRecurrence,
    /// <summary>The cuDNN / PyTorch form: h̃ = g(U_h x + r ⊙ (W_h h)).</summary>
    AfterRecurrence,
}

/// <summary>
/// A GRU cell without biases: z = gate(U_z x + W_z h), r = gate(U_r x + W_r h), h' = (1 − z) ⊙ h + z ⊙ h̃.
/// With a threshold reset gate and <see cref="ResetPlacement.AfterRecurrence"/>, a step is exactly the
/// hierarchical mixture of experts of the paper's eq. (5) (<see cref="ToHierarchicalMoe"/>).
/// </summary>
public sealed class GruCell
{
    private readonly Core.GruCell inner;

    /// <summary>A cell from its weights (U_* are hidden×input, W_* are hidden×hidden; arrays are copied).</summary>
    /// <exception cref="ArgumentException">A shape or value is invalid; the message names the matrix.</exception>
    public GruCell(
        double[,] uz, double[,] wz, double[,] ur, double[,] wr, double[,] uh, double[,] wh,
        Activation activation, GateFunction updateGate, GateFunction resetGate, ResetPlacement reset)
    {
        ArgumentNullException.ThrowIfNull(activation);
        static double[,] Copy(double[,] m, string name) =>
            m is null ? throw new ArgumentNullException(name) : (double[,])m.Clone();
        inner = new Core.GruCell(
            Copy(uz, nameof(uz)), Copy(wz, nameof(wz)), Copy(ur, nameof(ur)), Copy(wr, nameof(wr)),
            Copy(uh, nameof(uh)), Copy(wh, nameof(wh)), activation.Inner, Gate(updateGate), Gate(resetGate),
            reset == ResetPlacement.AfterRecurrence ? Core.ResetPlacement.AfterRecurrence : Core.ResetPlacement.BeforeRecurrence);
        Core.Gru.Validate(inner);
    }

    private GruCell(Core.GruCell inner) => this.inner = inner;

    internal static Core.GateKind Gate(GateFunction f) =>
        f == GateFunction.Threshold ? Core.GateKind.Threshold : Core.GateKind.Sigmoid;

    /// <summary>The hidden size m.</summary>
    public int HiddenSize => inner.HiddenSize;

    /// <summary>The input size n.</summary>
    public int InputSize => inner.InputSize;

    /// <summary>The same weights with the reset gate placed differently.</summary>
    /// <param name="reset">The placement.</param>
    public GruCell WithReset(ResetPlacement reset) => new(new Core.GruCell(
        inner.Uz, inner.Wz, inner.Ur, inner.Wr, inner.Uh, inner.Wh, inner.Activation, inner.UpdateGate, inner.ResetGate,
        reset == ResetPlacement.AfterRecurrence ? Core.ResetPlacement.AfterRecurrence : Core.ResetPlacement.BeforeRecurrence));

    /// <summary>One step h' from h and x.</summary>
    /// <exception cref="ArgumentException">h or x has the wrong length or a non-finite value.</exception>
    public double[] Step(double[] h, double[] x) => Core.Gru.Step(inner, h, x);

    /// <summary>h_1..h_T from h_0 and x_1..x_T.</summary>
    public double[][] Run(double[] h0, double[][] xs) => Core.Gru.Run(inner, h0, xs);

    /// <summary>The depth-2 hierarchical 2-MoE of eq. (5) on the concatenated input (x, h).</summary>
    public HierarchicalMoe ToHierarchicalMoe() => new(Core.Gru.ToHierarchicalMoe(inner));
}

/// <summary>A hierarchical vector mixture of experts (paper eq. 4 with nested experts).</summary>
public sealed class HierarchicalMoe
{
    private readonly Core.VectorMoeLayer inner;

    internal HierarchicalMoe(Core.VectorMoeLayer inner) => this.inner = inner;

    /// <summary>y(x) = (1 − z(x)) ⊙ first(x) + z(x) ⊙ second(x), recursively.</summary>
    /// <param name="input">The input (for a GRU's form: x_t followed by h_{t−1}).</param>
    public double[] Evaluate(double[] input) => Core.VectorMoe.Evaluate(inner, input);

    /// <summary>Unrolls the layer as a recurrence h_t = layer((x_t, h_{t−1})).</summary>
    public double[][] Run(double[] h0, double[][] xs) => Core.Gru.RunMixture(inner, h0, xs);
}
