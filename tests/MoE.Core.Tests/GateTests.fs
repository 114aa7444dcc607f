[<FsCheck.Xunit.Properties(Arbitrary = [| typeof<MoE.Core.Tests.Generators.Arbitraries> |], MaxTest = 200)>]
module MoE.Core.Tests.GateTests

open FsCheck.Xunit
open Xunit
open MoE.Core
open MoE.Core.Tests.Generators
open MoE.Core.Tests.Tolerance

[<Property>]
let ``softmax is non-negative and sums to one`` (Logits logits) =
    let p = Gate.softmax logits
    Array.forall (fun v -> v >= 0.0) p && close exact 1.0 (Array.sum p)

[<Property>]
let ``softmax is invariant to adding a constant to every logit`` (Logits logits) (shift: int) =
    // Shift in [−100, 100]: the shifted logits round differently by at most ulp(150) ≈ 3e-14, which moves
    // each probability by a relative 3e-14 — well inside `exact`.
    let c = float (shift % 101)
    let p = Gate.softmax logits
    let q = Gate.softmax (logits |> Array.map (fun l -> l + c))
    Array.forall2 (close exact) p q

[<Fact>]
let ``softmax does not overflow at logits of plus or minus 1000`` () =
    let p = Gate.softmax [| 1000.0; -1000.0; 0.0; 999.0 |]
    Assert.All(p, fun v -> Assert.True(System.Double.IsFinite v))
    assertClose exact (1.0 / (1.0 + exp -1.0)) p.[0] "p(1000)"
    assertClose exact (exp -1.0 / (1.0 + exp -1.0)) p.[3] "p(999)"
    Assert.Equal(0.0, p.[1])
    Assert.Equal(0.0, p.[2])
    let q = Gate.softmax [| -1000.0; -1000.0 |]
    Assert.Equal<float[]>([| 0.5; 0.5 |], q)

[<Fact>]
let ``the model's gate does not overflow when the logits are huge`` () =
    let m =
        MoeModel.create (array2D [ [ 1.0 ]; [ -1.0 ]; [ 0.5 ] ]) (array2D [ [ 1000.0 ]; [ -1000.0 ] ]) Identity 1.0

    let p = MoeModel.gateProbabilities m (array2D [ [ 1.0 ]; [ -1.0 ] ])
    Assert.Equal<float>(1.0, p.[0, 0])
    Assert.Equal<float>(0.0, p.[0, 1])
    Assert.Equal<float>(1.0, p.[1, 1])
    let ll = MoeModel.logLikelihoods m (array2D [ [ 1.0 ]; [ -1.0 ] ]) [| 0.3; 7.0 |]
    Assert.All(ll, fun v -> Assert.True(System.Double.IsFinite v))

[<Fact>]
let ``softmax rejects empty and non-finite logits`` () =
    Assertions.throwsArg<System.ArgumentException> "logits" [ "at least one" ] (fun () -> Gate.softmax [||] |> ignore)

    Assertions.throwsArg<System.ArgumentException> "logits" [ "logits[1]"; "NaN" ] (fun () ->
        Gate.softmax [| 0.0; nan |] |> ignore)
