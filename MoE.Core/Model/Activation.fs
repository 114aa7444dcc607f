namespace MoE.Core

open System
open System.Runtime.CompilerServices
open System.Runtime.InteropServices
open System.Runtime.Intrinsics

/// <summary>The expert non-linearity g of the model y = g(&lt;a_z, x&gt;) + ξ.</summary>
/// <remarks>
/// Built-in activations are deterministic across machines (sigmoid and tanh use <see cref="T:MoE.Core.DetMath"/>).
/// Derivatives at a kink use the right-hand value for z &gt; 0 and the left-hand value for z &lt;= 0:
/// ReLU'(0) = 0, LeakyReLU'(0) = slope.
/// <para>Equality: built-ins compare by name and slope; custom activations by name and the identity of their
/// functions.</para>
/// </remarks>
[<CustomEquality; NoComparison>]
type Activation =
    /// g(z) = z.
    | Identity
    /// g(z) = max(z, 0).
    | Relu
    /// g(z) = z for z &gt; 0, slope·z otherwise.
    | LeakyRelu of slope: float
    /// g(z) = 1 / (1 + e^(−z)).
    | Sigmoid
    /// g(z) = tanh z.
    | Tanh
    /// A user function with its derivative.
    | Custom of name: string * value: (float -> float) * derivative: (float -> float)

    /// <summary>The file and command-line name: identity, relu, leaky-relu, sigmoid, tanh, or the custom name.</summary>
    member this.Name =
        match this with
        | Identity -> "identity"
        | Relu -> "relu"
        | LeakyRelu _ -> "leaky-relu"
        | Sigmoid -> "sigmoid"
        | Tanh -> "tanh"
        | Custom(name, _, _) -> name

    /// <summary>The negative-side slope of leaky ReLU; 0 for every other activation.</summary>
    member this.Slope =
        match this with
        | LeakyRelu s -> s
        | _ -> 0.0

    /// <summary>True for the five built-in activations (those that can be written to a model file).</summary>
    member this.IsBuiltIn =
        match this with
        | Custom _ -> false
        | _ -> true

    /// <summary>g(z).</summary>
    /// <param name="z">The pre-activation.</param>
    member this.Value(z: float) : float =
        match this with
        | Identity -> z
        | Relu -> if z > 0.0 then z else 0.0
        | LeakyRelu s -> if z > 0.0 then z else s * z
        | Sigmoid -> DetMath.sigmoid z
        | Tanh -> DetMath.tanh z
        | Custom(_, g, _) -> g z

    /// <summary>g'(z) (left-hand value at a kink).</summary>
    /// <param name="z">The pre-activation.</param>
    member this.Derivative(z: float) : float =
        match this with
        | Identity -> 1.0
        | Relu -> if z > 0.0 then 1.0 else 0.0
        | LeakyRelu s -> if z > 0.0 then 1.0 else s
        | Sigmoid ->
            let p = DetMath.sigmoid z
            p * (1.0 - p)
        | Tanh ->
            let t = DetMath.tanh z
            1.0 - t * t
        | Custom(_, _, dg) -> dg z

    override this.Equals(other: obj) =
        match other with
        | :? Activation as o ->
            match this, o with
            | Custom(n1, g1, d1), Custom(n2, g2, d2) ->
                n1 = n2 && obj.ReferenceEquals(g1, g2) && obj.ReferenceEquals(d1, d2)
            | Custom _, _
            | _, Custom _ -> false
            | _ -> this.Name = o.Name && this.Slope.Equals(o.Slope)
        | _ -> false

    override this.GetHashCode() = HashCode.Combine(this.Name, this.Slope)

    override this.ToString() =
        match this with
        | LeakyRelu s ->
            Text.format "leaky-relu(slope=%s)" [| box (s.ToString("R", Globalization.CultureInfo.InvariantCulture)) |]
        | a -> a.Name

/// Construction, validation and parsing of activations.
[<RequireQualifiedAccess>]
module Activation =

    /// The names accepted by <see cref="M:MoE.Core.ActivationModule.Parse(System.String,System.Double)"/>.
    let builtInNames = [| "identity"; "relu"; "leaky-relu"; "sigmoid"; "tanh" |]

    /// <summary>Checks an activation's own parameters.</summary>
    /// <param name="activation">The activation.</param>
    /// <exception cref="T:System.ArgumentException">A leaky-ReLU slope that is not finite; a custom activation
    /// with an empty name, a built-in name, or null functions.</exception>
    [<CompiledName("Validate")>]
    let validate (activation: Activation) : unit =
        Guard.notNull "activation" activation

        match activation with
        | LeakyRelu s when not (Double.IsFinite s) ->
            invalidArg "slope" (Text.format "The leaky-ReLU slope must be finite, but was %s." [| box (string s) |])
        | Custom(name, g, dg) ->
            if String.IsNullOrWhiteSpace name then
                invalidArg "name" "A custom activation needs a non-empty name."

            if Array.contains (name.Trim().ToLowerInvariant()) builtInNames then
                invalidArg
                    "name"
                    (Text.format "The custom activation name '%s' is reserved for a built-in activation." [| box name |])

            Guard.notNull "value" g
            Guard.notNull "derivative" dg
        | _ -> ()

    /// <summary>Leaky ReLU with the given negative-side slope.</summary>
    /// <param name="slope">A finite slope (0 gives ReLU's values).</param>
    /// <returns>The activation.</returns>
    /// <exception cref="T:System.ArgumentException">The slope is NaN or infinite.</exception>
    [<CompiledName("LeakyRelu")>]
    let leakyRelu (slope: float) : Activation =
        let a = LeakyRelu slope
        validate a
        a

    /// <summary>A user activation with an analytic derivative.</summary>
    /// <param name="name">A name that is not one of the built-in names.</param>
    /// <param name="value">g.</param>
    /// <param name="derivative">g'.</param>
    /// <returns>The activation.</returns>
    [<CompiledName("Custom")>]
    let custom (name: string) (value: float -> float) (derivative: float -> float) : Activation =
        let a = Custom(name, value, derivative)
        validate a
        a

    /// <summary>A user activation whose derivative is a central difference with step
    /// h = ε^(1/3)·max(1, |z|) (relative error about ε^(2/3) ≈ 4e-11 for smooth g).</summary>
    /// <param name="name">A name that is not one of the built-in names.</param>
    /// <param name="value">g.</param>
    /// <returns>The activation.</returns>
    [<CompiledName("CustomNumeric")>]
    let customNumeric (name: string) (value: float -> float) : Activation =
        Guard.notNull "value" value

        let derivative z =
            let h = 6.0554544523933395e-06 * max 1.0 (abs z)
            (value (z + h) - value (z - h)) / (2.0 * h)

        custom name value derivative

    /// <summary>A built-in activation from its file or command-line name.</summary>
    /// <param name="name">identity, relu, leaky-relu, sigmoid or tanh (case-insensitive).</param>
    /// <param name="slope">The leaky-ReLU slope; must be 0 for the others.</param>
    /// <returns>The activation.</returns>
    /// <exception cref="T:System.ArgumentException">An unknown name, or a non-zero slope for an activation
    /// other than leaky-relu.</exception>
    [<CompiledName("Parse")>]
    let parse (name: string) (slope: float) : Activation =
        Guard.notNull "name" name

        let a =
            match name.Trim().ToLowerInvariant() with
            | "identity" -> Identity
            | "relu" -> Relu
            | "leaky-relu" -> LeakyRelu slope
            | "sigmoid" -> Sigmoid
            | "tanh" -> Tanh
            | other ->
                invalidArg
                    "name"
                    (Text.format
                        "Unknown activation '%s'; expected one of %s."
                        [| box other; box (String.Join(", ", builtInNames)) |])

        match a with
        | LeakyRelu _ -> ()
        | _ when slope <> 0.0 ->
            invalidArg
                "slope"
                (Text.format
                    "A slope (%s) is only meaningful for leaky-relu, not %s."
                    [| box (string slope); box a.Name |])
        | _ -> ()

        validate a
        a

    /// <summary>The leaky-ReLU slope when none is given (the command line's --slope, a model file's
    /// <c>activation.slope</c>): 0.1.</summary>
    [<Literal>]
    let DefaultLeakySlope = 0.1

    /// <summary>A built-in activation from its name and an optional slope: leaky-relu without a slope takes
    /// <c>DefaultLeakySlope</c>, the others 0.</summary>
    /// <param name="name">identity, relu, leaky-relu, sigmoid or tanh (case-insensitive).</param>
    /// <param name="slope">The slope, when given.</param>
    /// <returns>The activation.</returns>
    /// <exception cref="T:System.ArgumentException">As <c>parse</c>.</exception>
    [<CompiledName("ParseOrDefault")>]
    let parseOrDefault (name: string) (slope: float option) : Activation =
        Guard.notNull "name" name

        let leaky =
            String.Equals(name.Trim(), "leaky-relu", StringComparison.OrdinalIgnoreCase)

        parse name (slope |> Option.defaultValue (if leaky then DefaultLeakySlope else 0.0))

    /// <summary>v[o + b] ← (v[o + b] &gt; 0 ? v[o + b] : slope·v[o + b]) and, when <paramref name="slopes"/> is not
    /// empty, slopes[o + b] ← (v &gt; 0 ? 1 : slope), for b &lt; rows: (leaky) ReLU and its derivative in place, with
    /// ReLU's left-hand derivative at 0 (slope 0).</summary>
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    let internal rectify (slope: float) (v: float[]) (slopes: float[]) (o: int) (rows: int) =
        let vr = &MemoryMarshal.GetArrayDataReference v
        let full = rows - rows % 4

        let one, zero, leak =
            Vector256.Create 1.0, Vector256<float>.Zero, Vector256.Create slope

        let withSlopes = slopes.Length > 0
        let mutable b = 0

        while b < full do
            let s = Vector256.LoadUnsafe(&vr, unativeint (o + b))
            let positive = Vector256.GreaterThan(s, zero)
            Vector256.StoreUnsafe(Vector256.ConditionalSelect(positive, s, s * leak), &vr, unativeint (o + b))

            if withSlopes then
                let sr = &MemoryMarshal.GetArrayDataReference slopes
                Vector256.StoreUnsafe(Vector256.ConditionalSelect(positive, one, leak), &sr, unativeint (o + b))

            b <- b + 4

        for r in full .. rows - 1 do
            let s = v.[o + r]
            v.[o + r] <- (if s > 0.0 then s else slope * s)

            if withSlopes then
                slopes.[o + r] <- (if s > 0.0 then 1.0 else slope)

    /// <summary>v[o + b] ← g(v[o + b]) and, when <paramref name="slopes"/> is not empty, slopes[o + b] ← g'(v[o + b]),
    /// for b &lt; rows: the activation in place, vectorised for the identity and (leaky) ReLU.</summary>
    let internal activateLanes (g: Activation) (v: float[]) (slopes: float[]) (o: int) (rows: int) =
        match g with
        | Identity ->
            if slopes.Length > 0 then
                Span<float>(slopes, o, rows).Fill 1.0
        | Relu -> rectify 0.0 v slopes o rows
        | LeakyRelu s -> rectify s v slopes o rows
        | _ ->
            for r in o .. o + rows - 1 do
                let s = v.[r]
                v.[r] <- g.Value s

                if slopes.Length > 0 then
                    slopes.[r] <- g.Derivative s
