// For a random GRU, the gap between the GRU and its hierarchical-MoE form (paper eq. 5) in both variants.
// Run after `dotnet build -c Release`:  dotnet fsi examples/gru-gap.fsx
#r "nuget: MathNet.Numerics, 5.0.0"
#r "../MoE.Core/bin/Release/net10.0/MoE.Core.dll"

open MoE.Core

let rng = Rng.create 2020L
let m, n, steps = 6, 4, 20
let matrix rows cols scale = Array2D.init rows cols (fun _ _ -> scale * rng.NextGaussian())

// One set of weights for every variant, so the gaps are comparable.
let weights =
    { Uz = matrix m n 0.5; Wz = matrix m m 0.4; Ur = matrix m n 0.5; Wr = matrix m m 0.4
      Uh = matrix m n 0.5; Wh = matrix m m 0.4
      Activation = Activation.Tanh; UpdateGate = GateKind.Sigmoid; ResetGate = GateKind.Threshold
      Reset = ResetPlacement.AfterRecurrence }

let cell reset resetGate = { weights with Reset = reset; ResetGate = resetGate }

let h0 = Array.init m (fun _ -> 0.5 * rng.NextGaussian())
let xs = Array.init steps (fun _ -> Array.init n (fun _ -> rng.NextGaussian()))

let gap (c: GruCell) =
    let gru = Gru.run c h0 xs
    let moe = Gru.runMixture (Gru.toHierarchicalMoe c) h0 xs
    Array.map2 (fun (a: float[]) (b: float[]) -> Array.map2 (fun u v -> abs (u - v)) a b |> Array.max) gru moe |> Array.max

printfn "max |GRU - MoE| over %d steps (hidden %d, input %d, tanh, sigmoid update gate):" steps m n
for reset, name in [ ResetPlacement.AfterRecurrence, "reset after W_h (cuDNN/PyTorch)"; ResetPlacement.BeforeRecurrence, "reset before W_h (Cho et al.)" ] do
    for kind, kindName in [ GateKind.Threshold, "threshold"; GateKind.Sigmoid, "sigmoid" ] do
        printfn "  %-32s %-9s reset gate: %.3e" name kindName (gap (cell reset kind))
