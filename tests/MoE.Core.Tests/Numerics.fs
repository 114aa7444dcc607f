/// Finite differences and shape generators shared by the gradient and population tests.
module MoE.Core.Tests.Numerics

open FsCheck.FSharp
open MoE.Core

/// Central differences with h = ε^(1/3)·max(1, |θ|) ≈ 6e-6·max(1, |θ|): truncation error h²|f'''|/6 and rounding
/// error ε|f|/h are then both ~1e-11 relative for the smooth losses here, far below the 1e-6 the checks allow.
/// The step actually taken, (θ + h) − (θ − h), is used as the denominator.
let fdGradient (f: float[,] -> float) (p: float[,]) : float[,] =
    Array2D.init (p.GetLength 0) (p.GetLength 1) (fun i j ->
        let h = 6.0554544523933395e-06 * max 1.0 (abs p.[i, j])
        let plus = Array2D.copy p
        let minus = Array2D.copy p
        plus.[i, j] <- p.[i, j] + h
        minus.[i, j] <- p.[i, j] - h
        (f plus - f minus) / (plus.[i, j] - minus.[i, j]))

/// max |analytic − numeric| ≤ 1e-6·max(1, max |analytic|): the "relative error ≤ 1e-6" of the gradient checks.
let gradientsAgree (analytic: float[,]) (numeric: float[,]) =
    let scale = max 1.0 (Seq.cast<float> analytic |> Seq.map abs |> Seq.max)

    let worst =
        Seq.map2 (fun a b -> abs (a - b)) (Seq.cast<float> analytic) (Seq.cast<float> numeric)
        |> Seq.max

    if worst > Tolerance.gradientCheck * scale then
        failwithf
            "gradient mismatch: max |analytic - numeric| = %.3g with scale %.3g (allowed 1e-6 relative)"
            worst
            scale

    true

/// Shapes of the issue: k ∈ 2..4, d ∈ 2k..12.
let shape: FsCheck.Gen<int * int> =
    gen {
        let! k = Gen.choose (2, 4)
        let! d = Gen.choose (2 * k, 12)
        return k, d
    }

/// The built-in activations (leaky ReLU at slope 0.1) and a noise level in [0, 1].
let activationAndSigma: FsCheck.Gen<Activation * float> =
    gen {
        let! g =
            Gen.elements
                [
                    Activation.Identity
                    Activation.Relu
                    Activation.LeakyRelu 0.1
                    Activation.Sigmoid
                    Activation.Tanh
                ]

        let! sigma = Generators.uniform 0.0 1.0
        return g, sigma
    }

/// Simpler (g, σ): the identity, then σ rounded.
let shrinkActivationAndSigma ((g: Activation, sigma: float)) : (Activation * float) seq =
    seq {
        if g <> Activation.Identity then
            yield Activation.Identity, sigma

        for s in Generators.shrinkFloat sigma do
            yield g, s
    }

/// activationAndSigma with its shrinker.
let activationAndSigmaArb =
    Arb.fromGenShrink (activationAndSigma, shrinkActivationAndSigma)

/// A ground truth of the given shape: orthogonal gating (random preset) or free gating.
let truth (k: int) (d: int) (g: Activation) (sigma: float) (free: bool) : FsCheck.Gen<MoeModel> =
    Gen.choose (0, 1_000_000)
    |> Gen.map (fun seed -> GroundTruth.random k d g sigma 1.0 free (int64 seed))

/// The vectorised kernels against the scalar reference for one model and data (every family's property): the
/// likelihood pass's and the EM statistics' log-likelihood within Tolerance.reorderedSum (the same terms summed in
/// another order), and the posterior to Tolerance.exact.
let kernelsEqualReference (model: MoE.Core.MoeModel) (x: float[,]) (y: float[]) =
    let reference = MoE.Core.MoeModel.logLikelihood model x y

    Tolerance.assertClose
        Tolerance.reorderedSum
        reference
        (MoE.Core.LikelihoodKernel.logLikelihood model x y)
        "kernel log-likelihood"

    let stats = MoE.Core.EmKernel.statistics model true true x y
    Tolerance.assertClose Tolerance.reorderedSum reference stats.LogLikelihood "EM statistics' log-likelihood"
    let post = MoE.Core.LikelihoodKernel.responsibilities model x y
    let scalar = MoE.Core.MoeModel.responsibilities model x y

    Seq.iter2
        (fun e a -> Tolerance.assertClose Tolerance.exact e a "posterior")
        (Seq.cast<float> scalar)
        (Seq.cast<float> post)
