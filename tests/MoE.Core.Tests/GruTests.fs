[<FsCheck.Xunit.Properties(MaxTest = 200)>]
module MoE.Core.Tests.GruTests

open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open MoE.Core

/// A random GRU and sequence: hidden size m ∈ 1..8, input size n ∈ 1..8, weights uniform with scale 1/√(fan-in)
/// (so a step amplifies a perturbation by ~1 and a 10-step run keeps rounding differences near 1e-15),
/// h_0 ∈ [−1, 1]^m, 1..10 inputs in [−2, 2]^n.
type GruCase =
    {
        Cell: GruCell
        H0: float[]
        Xs: float[][]
    }

let private gruCase (reset: ResetPlacement) (updateGate: GateKind) (resetGate: GateKind) (constantReset: bool) =
    gen {
        let! m = Gen.choose (1, 8)
        let! n = Gen.choose (1, 8)

        let u () =
            Generators.matrix m n (-1.0 / sqrt (float n)) (1.0 / sqrt (float n))

        let w () =
            Generators.matrix m m (-1.0 / sqrt (float m)) (1.0 / sqrt (float m))

        let! uz, wz, ur, wr =
            Gen.zip (Gen.zip (u ()) (w ())) (Gen.zip (u ()) (w ()))
            |> Gen.map (fun ((a, b), (c, e)) -> a, b, c, e)

        let! uh, wh = Gen.zip (u ()) (w ())

        let! g =
            Gen.elements [ Activation.Tanh; Activation.Sigmoid; Activation.Relu; Activation.Identity ]

        let! t = Gen.choose (1, 10)
        let! h0 = Generators.vector m -1.0 1.0
        let! xs = Gen.arrayOfLength t (Generators.vector n -2.0 2.0)
        // A constant reset gate: every row of U_r (and of W_r) equal, so every coordinate sees the same pre-activation.
        let ur, wr =
            if constantReset then
                Array2D.init m n (fun _ j -> ur.[0, j]), Array2D.init m m (fun _ j -> wr.[0, j])
            else
                ur, wr

        let cell =
            {
                Uz = uz
                Wz = wz
                Ur = ur
                Wr = wr
                Uh = uh
                Wh = wh
                Activation = g
                UpdateGate = updateGate
                ResetGate = resetGate
                Reset = reset
            }

        return { Cell = cell; H0 = h0; Xs = xs }
    }

/// Fewer steps, one input fewer, or one hidden unit fewer (every matrix cut consistently, so a constant reset
/// gate stays constant).
let private shrinkCase (c: GruCase) : GruCase seq =
    let cell = c.Cell
    let m, n = cell.Uz.GetLength 0, cell.Uz.GetLength 1

    let cut rows cols (a: float[,]) =
        Array2D.init rows cols (fun i j -> a.[i, j])

    seq {
        if c.Xs.Length > 1 then
            yield
                { c with
                    Xs = Array.sub c.Xs 0 (c.Xs.Length - 1)
                }

        if n > 1 then
            let u = cut m (n - 1)

            yield
                { c with
                    Cell =
                        { cell with
                            Uz = u cell.Uz
                            Ur = u cell.Ur
                            Uh = u cell.Uh
                        }
                    Xs = c.Xs |> Array.map (fun x -> Array.sub x 0 (n - 1))
                }

        if m > 1 then
            let u = cut (m - 1) n
            let w = cut (m - 1) (m - 1)

            yield
                { c with
                    Cell =
                        { cell with
                            Uz = u cell.Uz
                            Ur = u cell.Ur
                            Uh = u cell.Uh
                            Wz = w cell.Wz
                            Wr = w cell.Wr
                            Wh = w cell.Wh
                        }
                    H0 = Array.sub c.H0 0 (m - 1)
                }
    }

let private cases reset updateGate resetGate constantReset =
    Arb.fromGenShrink (gruCase reset updateGate resetGate constantReset, shrinkCase)

let private maxDiff (a: float[]) (b: float[]) =
    Array.fold2 (fun acc u v -> max acc (abs (u - v))) 0.0 a b

/// Steps along the GRU's own trajectory: the GRU step and the MoE form from the same (x_t, h_{t−1}).
let private stepGaps (c: GruCase) =
    let moe = Gru.toHierarchicalMoe c.Cell
    let hs = Array.append [| c.H0 |] (Gru.run c.Cell c.H0 c.Xs)

    Array.init c.Xs.Length (fun t ->
        maxDiff (Gru.step c.Cell hs.[t] c.Xs.[t]) (VectorMoe.evaluate moe (Array.append c.Xs.[t] hs.[t])))

/// Values are O(1); a step rounds in a different order (U x + W h summed apart or fused), ~1e-16 each, so
/// `Tolerance.exact` (per step and for whole runs of ≤ 10 steps with ~non-expanding weights) has wide headroom.
let private tolerance = Tolerance.exact

[<Property>]
let ``reset-after GRU with threshold gates is exactly the hierarchical MoE, step by step and unrolled`` () =
    Prop.forAll (cases ResetPlacement.AfterRecurrence GateKind.Threshold GateKind.Threshold false) (fun c ->
        let moe = Gru.toHierarchicalMoe c.Cell
        let gru = Gru.run c.Cell c.H0 c.Xs
        let mix = Gru.runMixture moe c.H0 c.Xs

        Array.forall (fun g -> g <= tolerance) (stepGaps c)
        && Array.forall2 (fun a b -> maxDiff a b <= tolerance) gru mix)

[<Property>]
let ``with a soft update gate the reset-after GRU is still the MoE's conditional mean`` () =
    Prop.forAll (cases ResetPlacement.AfterRecurrence GateKind.Sigmoid GateKind.Threshold false) (fun c ->
        Array.forall (fun g -> g <= tolerance) (stepGaps c))

[<Property>]
let ``reset-before GRU equals the MoE form when the reset gate is constant across coordinates`` () =
    Prop.forAll (cases ResetPlacement.BeforeRecurrence GateKind.Threshold GateKind.Threshold true) (fun c ->
        Array.forall (fun g -> g <= tolerance) (stepGaps c))

[<Fact>]
let ``reset-before GRU is not the MoE form in general: a property search finds a counterexample`` () =
    let claim =
        Prop.forAll (cases ResetPlacement.BeforeRecurrence GateKind.Threshold GateKind.Threshold false) (fun c ->
            Array.forall (fun g -> g <= tolerance) (stepGaps c))

    let e =
        Assert.ThrowsAny<exn>(fun () -> Check.One(Config.QuickThrowOnFailure.WithMaxTest(200), claim))

    Assert.Contains("Falsifiable", e.Message)

[<Fact>]
let ``a soft reset gate breaks eq. 5 even after the recurrence: a property search finds a counterexample`` () =
    let claim =
        Prop.forAll (cases ResetPlacement.AfterRecurrence GateKind.Threshold GateKind.Sigmoid false) (fun c ->
            Array.forall (fun g -> g <= tolerance) (stepGaps c))

    let e =
        Assert.ThrowsAny<exn>(fun () -> Check.One(Config.QuickThrowOnFailure.WithMaxTest(200), claim))

    Assert.Contains("Falsifiable", e.Message)

[<Property(MaxTest = 100)>]
let ``a soft update gate is the expectation of the step over Bernoulli gates (exact enumeration)`` () =
    // Σ over the 2^m gate states of Π p_i^{z_i}(1 − p_i)^{1−z_i} · step(z): at most 256 terms of size O(1), so
    // rounding stays below 1e-13; 1e-12 is the bound.
    Prop.forAll (cases ResetPlacement.BeforeRecurrence GateKind.Sigmoid GateKind.Sigmoid false) (fun c ->
        let h, x = c.H0, c.Xs.[0]
        let m = h.Length
        let p = Gru.updateGate c.Cell h x
        let expectation = Array.zeroCreate m

        for state in 0 .. (1 <<< m) - 1 do
            let z = Array.init m (fun i -> if (state >>> i) &&& 1 = 1 then 1.0 else 0.0)

            let prob =
                Array.fold2 (fun acc zi pi -> acc * (if zi = 1.0 then pi else 1.0 - pi)) 1.0 z p

            let s = Gru.stepWithUpdate c.Cell h x z

            for i in 0 .. m - 1 do
                expectation.[i] <- expectation.[i] + prob * s.[i]

        maxDiff expectation (Gru.step c.Cell h x) <= tolerance)

[<Property(MaxTest = 100)>]
let ``both variants agree when the hidden size is 1`` () =
    let oneHidden =
        gen {
            let! kinds = Gen.elements [ GateKind.Sigmoid; GateKind.Threshold ]
            let! c = gruCase ResetPlacement.BeforeRecurrence kinds kinds false
            let! n = Gen.choose (1, 8)
            let! u = Generators.matrix 1 n -1.0 1.0
            let! w = Generators.matrix 1 1 -1.0 1.0
            let! xs = Gen.arrayOfLength c.Xs.Length (Generators.vector n -2.0 2.0)

            let cell =
                { c.Cell with
                    Uz = u
                    Ur = u
                    Uh = u
                    Wz = w
                    Wr = w
                    Wh = w
                }

            return
                { c with
                    Cell = cell
                    H0 = [| 0.3 |]
                    Xs = xs
                }
        }

    // Only fewer steps: the cell's shape is the point of this property.
    let fewerSteps (c: GruCase) =
        if c.Xs.Length > 1 then
            Seq.singleton
                { c with
                    Xs = Array.sub c.Xs 0 (c.Xs.Length - 1)
                }
        else
            Seq.empty

    Prop.forAll (Arb.fromGenShrink (oneHidden, fewerSteps)) (fun c ->
        // w·(r·h) and r·(w·h) differ by rounding only (2 ulp of O(1) values per step).
        let before = Gru.run c.Cell c.H0 c.Xs

        let after =
            Gru.run
                { c.Cell with
                    Reset = ResetPlacement.AfterRecurrence
                }
                c.H0
                c.Xs

        Array.forall2 (fun a b -> maxDiff a b <= tolerance) before after)

[<Fact>]
let ``bad GRU shapes are rejected with their names`` () =
    let cell =
        {
            Uz = Array2D.zeroCreate 2 3
            Wz = Array2D.zeroCreate 2 2
            Ur = Array2D.zeroCreate 2 3
            Wr = Array2D.zeroCreate 2 2
            Uh = Array2D.zeroCreate 2 3
            Wh = Array2D.zeroCreate 2 3
            Activation = Activation.Tanh
            UpdateGate = GateKind.Sigmoid
            ResetGate = GateKind.Sigmoid
            Reset = ResetPlacement.AfterRecurrence
        }

    Assertions.throwsArg<System.ArgumentException> "Wh" [ "2x2"; "2x3" ] (fun () -> Gru.validate cell)

    let ok =
        { cell with
            Wh = Array2D.zeroCreate 2 2
        }

    Assertions.throwsArg<System.ArgumentException> "x" [ "length 2"; "input size is 3" ] (fun () ->
        Gru.step ok [| 0.0; 0.0 |] [| 1.0; 2.0 |] |> ignore)
