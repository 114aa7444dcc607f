namespace MoE.Core

open System

/// <summary>The gate non-linearity of a gated layer.</summary>
[<RequireQualifiedAccess>]
type GateKind =
    /// σ(t) = 1/(1 + e^(−t)), as GRUs are trained.
    | Sigmoid
    /// 1{t ≥ 0}, the binary gate the paper's eq. (5) assumes.
    | Threshold

    /// <summary>The gate value for a pre-activation.</summary>
    /// <param name="t">The pre-activation.</param>
    /// <returns>σ(t) or 1{t ≥ 0}.</returns>
    member this.Apply(t: float) : float =
        match this with
        | Sigmoid -> DetMath.sigmoid t
        | Threshold -> if t >= 0.0 then 1.0 else 0.0

/// <summary>An expert of a vector-output mixture layer: either g(A·x) for an m×d matrix A, or a nested
/// mixture layer (which makes the mixture hierarchical).</summary>
type VectorExpert =
    /// g(A·x), A m×d.
    | Affine of weights: float[,] * activation: Activation
    /// A nested 2-MoE layer with the same output size.
    | Mixture of VectorMoeLayer

/// <summary>The vector 2-MoE layer of the paper's eq. (4): y(x) = (1 − z(x)) ⊙ first(x) + z(x) ⊙ second(x) with
/// z_i(x) = gate(&lt;w_i, x&gt;), w_i the rows of <c>Gate</c> (m×d).</summary>
and VectorMoeLayer =
    {
        /// m×d gating weights, one row per output coordinate.
        Gate: float[,]
        /// The gate non-linearity.
        GateKind: GateKind
        /// The expert weighted by 1 − z.
        First: VectorExpert
        /// The expert weighted by z.
        Second: VectorExpert
    }

/// Evaluation of vector mixture layers.
[<RequireQualifiedAccess>]
module VectorMoe =

    let private matVec (a: float[,]) (x: float[]) =
        Array.init (a.GetLength 0) (fun i ->
            let mutable s = 0.0

            for j in 0 .. a.GetLength 1 - 1 do
                s <- s + a.[i, j] * x.[j]

            s)

    let rec private outputSize (expert: VectorExpert) =
        match expert with
        | Affine(a, _) -> a.GetLength 0
        | Mixture layer -> layer.Gate.GetLength 0

    let rec private inputSize (expert: VectorExpert) =
        match expert with
        | Affine(a, _) -> a.GetLength 1
        | Mixture layer -> layer.Gate.GetLength 1

    /// <summary>Checks that every gate and expert maps R^d to R^m with one m and one d.</summary>
    /// <param name="layer">The layer.</param>
    /// <exception cref="T:System.ArgumentException">A gate or expert of another input or output size, or a non-finite weight.</exception>
    [<CompiledName("Validate")>]
    let rec validate (layer: VectorMoeLayer) : unit =
        Guard.notNull "layer" (box layer)
        Guard.finiteMatrix "gate" layer.Gate
        let m, d = layer.Gate.GetLength 0, layer.Gate.GetLength 1

        for expert, name in [ layer.First, "first"; layer.Second, "second" ] do
            if outputSize expert <> m || inputSize expert <> d then
                invalidArg
                    name
                    (Text.format
                        "The %s expert maps R^%d to R^%d but the gate (%s) needs R^%d to R^%d."
                        [|
                            box name
                            box (inputSize expert)
                            box (outputSize expert)
                            box (Guard.shape layer.Gate)
                            box d
                            box m
                        |])

            match expert with
            | Affine(a, g) ->
                Guard.finiteMatrix name a
                Activation.validate g
            | Mixture inner -> validate inner

    let rec private evalExpert (expert: VectorExpert) (x: float[]) =
        match expert with
        | Affine(a, g) -> matVec a x |> Array.map g.Value
        | Mixture layer -> evalLayer layer x

    and private evalLayer (layer: VectorMoeLayer) (x: float[]) =
        let z = matVec layer.Gate x |> Array.map layer.GateKind.Apply
        let first = evalExpert layer.First x
        let second = evalExpert layer.Second x
        Array.init z.Length (fun i -> (1.0 - z.[i]) * first.[i] + z.[i] * second.[i])

    /// <summary>y(x) = (1 − z(x)) ⊙ first(x) + z(x) ⊙ second(x), recursively.</summary>
    /// <param name="layer">The layer.</param>
    /// <param name="x">An input of length d.</param>
    /// <returns>The output of length m.</returns>
    [<CompiledName("Evaluate")>]
    let evaluate (layer: VectorMoeLayer) (x: float[]) : float[] =
        validate layer
        Guard.finiteVector "x" x

        if x.Length <> layer.Gate.GetLength 1 then
            invalidArg
                "x"
                (Text.format
                    "x has length %d but the layer takes inputs of length %d."
                    [| box x.Length; box (layer.Gate.GetLength 1) |])

        evalLayer layer x

/// <summary>Where the reset gate acts in a GRU's candidate state.</summary>
[<RequireQualifiedAccess>]
type ResetPlacement =
    /// Cho et al.'s original form: h̃ = g(U_h x + W_h (r ⊙ h)).
    | BeforeRecurrence
    /// The cuDNN / PyTorch form: h̃ = g(U_h x + r ⊙ (W_h h)).
    | AfterRecurrence

/// <summary>A GRU cell (no biases): z = gate(U_z x + W_z h), r = gate(U_r x + W_r h), h̃ as
/// <see cref="T:MoE.Core.ResetPlacement"/> says, h' = (1 − z) ⊙ h + z ⊙ h̃.</summary>
/// <remarks>U_* are m×n (hidden size m, input size n), W_* are m×m.</remarks>
type GruCell =
    {
        /// Update gate, input weights (m×n).
        Uz: float[,]
        /// Update gate, recurrent weights (m×m).
        Wz: float[,]
        /// Reset gate, input weights.
        Ur: float[,]
        /// Reset gate, recurrent weights.
        Wr: float[,]
        /// Candidate, input weights.
        Uh: float[,]
        /// Candidate, recurrent weights.
        Wh: float[,]
        /// The candidate's non-linearity g (tanh in common GRUs).
        Activation: Activation
        /// The update gate's non-linearity (sigmoid or threshold).
        UpdateGate: GateKind
        /// The reset gate's non-linearity (sigmoid or threshold).
        ResetGate: GateKind
        /// Where the reset gate acts.
        Reset: ResetPlacement
    }

    /// The hidden size m.
    member this.HiddenSize = this.Uz.GetLength 0
    /// The input size n.
    member this.InputSize = this.Uz.GetLength 1

/// <summary>GRU steps, sequences, and the hierarchical mixture of experts of the paper's eq. (5).</summary>
/// <remarks>
/// Eq. (5) reads h' = (1 − z) ⊙ h + z ⊙ ((1 − r) ⊙ g(U_h x) + r ⊙ g(U_h x + W_h h)): a 2-MoE on (x, h) whose
/// gate is the update gate, whose first expert is h itself and whose second expert is another 2-MoE, gated by
/// the reset gate, choosing per coordinate between g(U_h x) and g(U_h x + W_h h). With threshold gates this is
/// exactly the reset-after GRU whenever the reset gate is a threshold (the update gate may be soft: it enters
/// linearly, so a sigmoid update gate is the outer MoE's conditional mean); for the original reset-before GRU it
/// holds only when the reset gate is the same in every coordinate (docs/math.md §10).
/// </remarks>
[<RequireQualifiedAccess>]
module Gru =

    /// <summary>Checks shapes (U_* m×n, W_* m×m, m, n ≥ 1), finiteness and the activation.</summary>
    /// <param name="cell">The cell.</param>
    /// <exception cref="T:System.ArgumentException">A shape, value or activation that is not valid.</exception>
    [<CompiledName("Validate")>]
    let validate (cell: GruCell) : unit =
        Guard.notNull "cell" (box cell)
        let m, n = cell.Uz.GetLength 0, cell.Uz.GetLength 1

        if m < 1 || n < 1 then
            invalidArg "Uz" (Text.format "Uz must be m x n with m, n >= 1, but is %s." [| box (Guard.shape cell.Uz) |])

        for name, u in [ "Uz", cell.Uz; "Ur", cell.Ur; "Uh", cell.Uh ] do
            Guard.finiteMatrix name u

            if u.GetLength 0 <> m || u.GetLength 1 <> n then
                invalidArg
                    name
                    (Text.format
                        "%s must be %dx%d like Uz, but is %s."
                        [| box name; box m; box n; box (Guard.shape u) |])

        for name, w in [ "Wz", cell.Wz; "Wr", cell.Wr; "Wh", cell.Wh ] do
            Guard.finiteMatrix name w

            if w.GetLength 0 <> m || w.GetLength 1 <> m then
                invalidArg
                    name
                    (Text.format
                        "%s must be %dx%d (hidden x hidden), but is %s."
                        [| box name; box m; box m; box (Guard.shape w) |])

        Activation.validate cell.Activation

    let private matVec (a: float[,]) (x: float[]) =
        Array.init (a.GetLength 0) (fun i ->
            let mutable s = 0.0

            for j in 0 .. a.GetLength 1 - 1 do
                s <- s + a.[i, j] * x.[j]

            s)

    let private checkStep (cell: GruCell) (h: float[]) (x: float[]) =
        validate cell
        Guard.finiteVector "h" h
        Guard.finiteVector "x" x

        if h.Length <> cell.HiddenSize then
            invalidArg
                "h"
                (Text.format "h has length %d but the hidden size is %d." [| box h.Length; box cell.HiddenSize |])

        if x.Length <> cell.InputSize then
            invalidArg
                "x"
                (Text.format "x has length %d but the input size is %d." [| box x.Length; box cell.InputSize |])

    let private gates (kind: GateKind) (u: float[,]) (w: float[,]) (h: float[]) (x: float[]) =
        Array.map2 (fun a b -> kind.Apply(a + b)) (matVec u x) (matVec w h)

    /// <summary>The candidate state h̃ for the cell's reset placement.</summary>
    /// <param name="cell">The cell.</param>
    /// <param name="h">The previous hidden state h_{t−1} (length m).</param>
    /// <param name="x">The input x_t (length n).</param>
    /// <returns>h̃ (length m).</returns>
    [<CompiledName("Candidate")>]
    let candidate (cell: GruCell) (h: float[]) (x: float[]) : float[] =
        checkStep cell h x
        let r = gates cell.ResetGate cell.Ur cell.Wr h x
        let ux = matVec cell.Uh x

        let pre =
            match cell.Reset with
            | ResetPlacement.BeforeRecurrence -> Array.map2 (+) ux (matVec cell.Wh (Array.map2 (*) r h))
            | ResetPlacement.AfterRecurrence -> Array.map2 (+) ux (Array.map2 (*) r (matVec cell.Wh h))

        pre |> Array.map cell.Activation.Value

    /// <summary>The update gate z = gate(U_z x + W_z h).</summary>
    /// <param name="cell">The cell.</param>
    /// <param name="h">The previous hidden state h_{t−1} (length m).</param>
    /// <param name="x">The input x_t (length n).</param>
    /// <returns>z (length m).</returns>
    [<CompiledName("UpdateGate")>]
    let updateGate (cell: GruCell) (h: float[]) (x: float[]) : float[] =
        checkStep cell h x
        gates cell.UpdateGate cell.Uz cell.Wz h x

    /// <summary>A step with a given update-gate vector z (used to take expectations over gate states):
    /// (1 − z) ⊙ h + z ⊙ h̃.</summary>
    /// <param name="cell">The cell.</param>
    /// <param name="h">The previous hidden state h_{t−1} (length m).</param>
    /// <param name="x">The input x_t (length n).</param>
    /// <param name="z">The update-gate vector (length m).</param>
    /// <returns>h_t.</returns>
    [<CompiledName("StepWithUpdate")>]
    let stepWithUpdate (cell: GruCell) (h: float[]) (x: float[]) (z: float[]) : float[] =
        let hTilde = candidate cell h x

        if z.Length <> h.Length then
            invalidArg "z" (Text.format "z has length %d but the hidden size is %d." [| box z.Length; box h.Length |])

        Array.init h.Length (fun i -> (1.0 - z.[i]) * h.[i] + z.[i] * hTilde.[i])

    /// <summary>One GRU step h' from h and x.</summary>
    /// <param name="cell">The cell.</param>
    /// <param name="h">The previous hidden state h_{t−1} (length m).</param>
    /// <param name="x">The input x_t (length n).</param>
    /// <returns>h_t.</returns>
    [<CompiledName("Step")>]
    let step (cell: GruCell) (h: float[]) (x: float[]) : float[] =
        stepWithUpdate cell h x (updateGate cell h x)

    /// <summary>Unrolls the cell over x_1..x_T from h_0.</summary>
    /// <returns>h_1..h_T.</returns>
    /// <param name="cell">The cell.</param>
    /// <param name="h0">The initial state h_0 (length m).</param>
    /// <param name="xs">The inputs x_1..x_T (each of length n).</param>
    [<CompiledName("Run")>]
    let run (cell: GruCell) (h0: float[]) (xs: float[][]) : float[][] =
        Guard.notNull "xs" xs
        let states = Array.zeroCreate xs.Length
        let mutable h = h0

        for t in 0 .. xs.Length - 1 do
            h <- step cell h xs.[t]
            states.[t] <- h

        states

    /// <summary>The hierarchical 2-MoE of eq. (5) on the concatenated input (x, h) (length n + m): outer gate
    /// [U_z | W_z]; first expert h = [0 | I] with the identity; second expert an inner 2-MoE with gate [U_r | W_r],
    /// experts g([U_h | 0]·) and g([U_h | W_h]·).</summary>
    /// <param name="cell">The cell.</param>
    /// <returns>The layer; evaluated on (x, h) it gives the step of eq. (5).</returns>
    [<CompiledName("ToHierarchicalMoe")>]
    let toHierarchicalMoe (cell: GruCell) : VectorMoeLayer =
        validate cell
        let m, n = cell.HiddenSize, cell.InputSize

        let concat (u: float[,]) (w: float[,]) =
            Array2D.init m (n + m) (fun i j -> if j < n then u.[i, j] else w.[i, j - n])

        let zero = Array2D.zeroCreate m m
        let identity = Array2D.init m (n + m) (fun i j -> if j = n + i then 1.0 else 0.0)

        {
            Gate = concat cell.Uz cell.Wz
            GateKind = cell.UpdateGate
            First = Affine(identity, Activation.Identity)
            Second =
                Mixture
                    {
                        Gate = concat cell.Ur cell.Wr
                        GateKind = cell.ResetGate
                        First = Affine(concat cell.Uh zero, cell.Activation)
                        Second = Affine(concat cell.Uh cell.Wh, cell.Activation)
                    }
        }

    /// <summary>Unrolls a hierarchical MoE as a recurrence: h_t = layer((x_t, h_{t−1})).</summary>
    /// <param name="layer">A layer whose input is (x, h) and whose output size is h's.</param>
    /// <param name="h0">The initial state h_0.</param>
    /// <param name="xs">The inputs x_1..x_T.</param>
    /// <returns>h_1..h_T.</returns>
    [<CompiledName("RunMixture")>]
    let runMixture (layer: VectorMoeLayer) (h0: float[]) (xs: float[][]) : float[][] =
        Guard.notNull "xs" xs
        let states = Array.zeroCreate xs.Length
        let mutable h = h0

        for t in 0 .. xs.Length - 1 do
            h <- VectorMoe.evaluate layer (Array.append xs.[t] h)
            states.[t] <- h

        states
