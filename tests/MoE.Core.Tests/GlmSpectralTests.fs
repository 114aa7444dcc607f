/// The spectral start of the GLM families (Learning/Starts/GlmSpectral.fs; docs/math.md §12.6): Poisson's bounded
/// transform meets its conditions, its third-order moment is Σ_m E[p_m] a_m^{⊗3} under orthogonal gating (by
/// quadrature), the logit families' moment is c₃ Σ_m π_m a_m^{⊗3} under a constant gate and not under an orthogonal
/// one, the common predictor comes back from its own moments, seeded data give the truth's directions with their
/// signs, and a default fit of a GLM family runs the start.
module MoE.Core.Tests.GlmSpectralTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open MoE.Core
open MoE.Core.Tests.Tolerance

/// A common scale s ∈ [0.3, 3] and intercept b ∈ [−2, 2]: rates from e^−2 to e^2 at the centre, predictors from
/// nearly constant to widely spread.
let private scaleAndIntercept =
    Arb.fromGen (
        gen {
            let! s = Generators.uniform 0.3 3.0
            let! b = Generators.uniform -2.0 2.0
            return s, b
        }
    )

/// A rule independent of the derivation's (width 1/2, 30 points, on [−14, 14]).
let private check = Quadrature.panels 14.0 0.5 30 [||]

/// The transform's conditions, E[F(sZ + b) He_q(Z)] = 0 for q = 0, 1, 2 and 1 for q = 3, by the independent rule.
/// Tolerance: the KKT solution meets them to rounding, but F = Σ_j β_j F_j cancels terms of size |β_j| (Σ|β_j| reaches
/// 10^6 where the rates hardly vary), so the error is ≈ ε·Σ|β_j|·max|E[F_j He_q]| (≤ √6) per node sum; measured
/// ≤ 4e-16·Σ|β_j|, and 1e-12·(1 + Σ|β_j|) leaves three orders of headroom while a wrong condition is off by O(1).
[<Property(MaxTest = 25)>]
let ``Poisson's transform cancels the gate's terms and is normalised`` () =
    Prop.forAll scaleAndIntercept (fun (s, b) ->
        match GlmTransform.derive ExpertFamily.Poisson s b with
        | Error reason -> failwith reason
        | Ok t ->
            let tolerance = 1e-12 * (1.0 + Array.sumBy abs t.Coefficients)

            [ 0..3 ]
            |> List.forall (fun q ->
                let e =
                    Quadrature.expect check (fun z ->
                        GlmTransform.conditionalMean t (s * z + b) * Quadrature.hermite q z)

                abs (e - (if q = 3 then 1.0 else 0.0)) <= tolerance)
            |> Prop.label (sprintf "s = %g, b = %g, sum|beta| = %g" s b (Array.sumBy abs t.Coefficients)))

/// S(y) is the transform whose conditional mean is F: E[S(y) | η] summed over the Poisson probabilities equals F(η)
/// (the generating function's identity, to the truncation of the sum at 200 counts and rounding: 1e-10 of Σ|β|).
[<Fact>]
let ``Poisson's S has the conditional mean F`` () =
    let t =
        match GlmTransform.derive ExpertFamily.Poisson 1.0 0.3 with
        | Ok t -> t
        | Error reason -> failwith reason

    for eta in [ -2.0; 0.0; 1.0; 2.5 ] do
        let mu = exp eta

        let expected =
            Seq.sum (
                seq {
                    for y in 0..200 ->
                        MathNet.Numerics.Distributions.Poisson.PMF(mu, y)
                        * GlmTransform.value t (float y) 1.0
                }
            )

        assertClose (1e-10 * Array.sumBy abs t.Coefficients) expected (GlmTransform.conditionalMean t eta) "F(eta)"

/// T3 = Σ_m mass_m·c₃·a_m^{⊗3} entrywise (U coordinates), relative to c₃·max mass.
let private identityHolds (truth: MoeModel) (conditional: float -> float) (c3: float) (masses: float[]) =
    let u, t3 = PopulationThird.momentsOf truth conditional Population.defaultOptions
    let r, k, d = u.GetLength 1, truth.Experts, truth.Dimension

    let coords =
        Array.init k (fun i ->
            Array.init r (fun a -> Seq.sum (seq { for t in 0 .. d - 1 -> u.[t, a] * truth.Regressors.[i, t] })))

    let scale = abs c3 * Array.max masses

    [ 0 .. t3.Length - 1 ]
    |> List.forall (fun idx ->
        let a, b, c = idx / (r * r), (idx / r) % r, idx % r

        let expected =
            c3
            * Seq.sum (seq { for m in 0 .. k - 1 -> masses.[m] * coords.[m].[a] * coords.[m].[b] * coords.[m].[c] })

        abs (t3.[idx] - expected) <= quadratureIdentity * scale)

/// A truth with unit regressors and orthogonal (or free) gating, and a common intercept b ∈ [−1.5, 1.5].
let private truths (free: bool) =
    Arb.fromGen (
        gen {
            let! k, d = Numerics.shape
            let! truth = Numerics.truth k d Identity 0.0 free
            let! b = Generators.uniform -1.5 1.5
            return truth, b
        }
    )

[<Property(MaxTest = 10)>]
let ``Poisson's third-order moment is sum_m E[p_m] a_m^3 under orthogonal gating`` () =
    Prop.forAll (truths false) (fun (truth, b) ->
        match GlmTransform.derive ExpertFamily.Poisson 1.0 b with
        | Error reason -> failwith reason
        | Ok t ->
            let masses = Population.gateMasses truth Population.defaultOptions
            identityHolds truth (fun eta -> GlmTransform.conditionalMean t (eta + b)) t.C3 masses)

/// A property search (30 cases of <c>truths free</c>) finds a truth where the family's identity fails. Only a false
/// identity may fail the claim: a transform the derivation refuses, or a quadrature budget exceeded, counts as holding.
let private searchFindsGap (family: ExpertFamily) (free: bool) =
    let claim =
        Prop.forAll (truths free) (fun (truth, b) ->
            match GlmTransform.derive family 1.0 b with
            | Error _ -> true
            | Ok t ->
                try
                    let masses = Population.gateMasses truth Population.defaultOptions
                    identityHolds truth (fun eta -> GlmTransform.conditionalMean t (eta + b)) t.C3 masses
                with :? InvalidOperationException ->
                    true)

    Assert.ThrowsAny<exn>(fun () -> Check.One(Config.QuickThrowOnFailure.WithMaxTest(30), claim))
    |> ignore

[<Fact>]
let ``with free gating Poisson's third-order identity fails: a property search finds the gap`` () =
    searchFindsGap ExpertFamily.Poisson true

/// The logit families: under a gate that does not depend on x (Sedghi, Janzamin and Anandkumar's mixture of GLMs)
/// T3 = c₃ Σ_m π_m a_m^{⊗3}; under orthogonal gating the share y/n cannot cancel the gate's derivatives (a function of
/// a 0/1 outcome has two constants for three conditions), and a property search finds the gap.
[<Property(MaxTest = 10)>]
let ``the logit families' third-order moment is c3 sum_m pi_m a_m^3 under a constant gate`` () =
    Prop.forAll (truths false) (fun (truth, b) ->
        // The truth's regressors under a flat gate (W = 0): π_m = 1/k for every x.
        let flat =
            MoeModel.create truth.Regressors (Array2D.zeroCreate (truth.Experts - 1) truth.Dimension) Identity 0.0

        match GlmTransform.derive ExpertFamily.Bernoulli 1.0 b with
        | Error reason -> failwith reason
        | Ok t ->
            let masses = Array.create truth.Experts (1.0 / float truth.Experts)
            identityHolds flat (fun eta -> GlmTransform.conditionalMean t (eta + b)) t.C3 masses)

[<Fact>]
let ``under orthogonal gating the logit families' identity fails: a property search finds the gap`` () =
    searchFindsGap ExpertFamily.Bernoulli false

/// The common predictor inverts its own moments: Poisson's (s, b) from E[y] = e^{b+s²/2} and E[y(y−1)] = e^{2b+2s²}
/// (closed form: rounding only, 1e-12); the logit families' b from the share by bisection (100 halvings of [−30, 30]
/// leave 5e-29; the share's quadrature is exact to rounding, so 1e-9 is the bisection's tolerance on a flat map).
[<Property(MaxTest = 50)>]
let ``the common predictor comes back from its moments`` () =
    Prop.forAll scaleAndIntercept (fun (s, b) ->
        let m1 = exp (b + s * s / 2.0)
        let m2 = exp (2.0 * b + 2.0 * s * s)

        let poisson =
            match GlmTransform.commonPredictor ExpertFamily.Poisson m1 m2 with
            | Ok(s', b') -> abs (s' - s) <= 1e-12 * s && abs (b' - b) <= 1e-12 * (1.0 + abs b)
            | Error _ -> false

        let share =
            Quadrature.expect (Quadrature.accurate [||]) (fun z -> 1.0 / (1.0 + exp (-(z + b))))

        let logit =
            match GlmTransform.commonPredictor ExpertFamily.Bernoulli share 0.0 with
            | Ok(s', b') -> s' = 1.0 && abs (b' - b) <= 1e-9
            | Error _ -> false

        poisson && logit)

[<Fact>]
let ``responses without the information the start needs are refused with the reason`` () =
    let reason r =
        match r with
        | Error(e: string) -> e
        | Ok _ -> "accepted"

    Assert.Contains("every count is zero", reason (GlmTransform.commonPredictor ExpertFamily.Poisson 0.0 0.0))
    // Pure Poisson noise around one rate: E[y(y−1)] = E[y]².
    Assert.Contains("hardly beyond Poisson noise", reason (GlmTransform.commonPredictor ExpertFamily.Poisson 2.0 4.0))
    Assert.Contains("every outcome is the same", reason (GlmTransform.commonPredictor ExpertFamily.Bernoulli 1.0 0.0))

    let flat =
        MoeModel.create (array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ]) (Array2D.zeroCreate 1 2) Identity 1.0

    let data = Sampler.sample (MoeModel.withTrialsColumn flat) 500 1L
    let poisson = MoeModel.withFamily ExpertFamily.Poisson flat

    // Binomial without its trials column, Poisson with an exposure column (the columns' roles, not the data, decide).
    Assert.Contains(
        "no trials column",
        reason (GlmSpectral.propose ExpertFamily.Binomial poisson.Design Identity true 2 1L data)
    )

    Assert.Contains(
        "no exposure column",
        reason (
            GlmSpectral.propose ExpertFamily.Poisson (MoeModel.withTrialsColumn flat).Design Identity true 2 1L data
        )
    )

    Assert.Throws<ArgumentException>(fun () -> GlmTransform.derive ExpertFamily.Gaussian 1.0 0.0 |> ignore)
    |> ignore

/// The largest cosine between each truth regressor and the start's regressors (signed: a wrong sign scores −1).
let private bestCosines (truth: MoeModel) (start: MoeModel) =
    let d = truth.ExpertDimension
    let row (a: float[,]) i = Array.init d (fun t -> a.[i, t])

    Array.init truth.Experts (fun i ->
        Array.init start.Experts (fun j ->
            let u, v = row truth.Regressors i, row start.Regressors j
            Dense.dot u v / sqrt (Dense.dot u u * Dense.dot v v))
        |> Array.max)

/// Seeded recovery of the start itself (its directions and signs, before any likelihood step) where its assumptions
/// hold: Poisson with orthogonal gating, k = 3, d = 10, n = 100,000 (measured cosines 0.990–0.999 over five seeds:
/// ≥ 0.98 allows the sampling error of a third-order moment); Bernoulli with a constant gate, k = 2, d = 5,
/// n = 100,000 (a 0/1 row carries far less: measured 0.971–0.997 over five seeds; ≥ 0.95); binomial likewise, with
/// the sampler's 3–30 trials per row (measured 0.988–1.000; ≥ 0.98).
[<Theory>]
[<InlineData("poisson", 3, 10, 0.98)>]
[<InlineData("bernoulli", 2, 5, 0.95)>]
[<InlineData("binomial", 2, 5, 0.98)>]
let ``the start finds the truth's directions and signs on seeded data`` (family: string, k: int, d: int, floor: float) =
    let family = ExpertFamily.parse family
    let orthogonal = GroundTruth.orthogonal k d Identity 1.0

    let truth =
        if family = ExpertFamily.Poisson then
            orthogonal
        else
            MoeModel.create orthogonal.Regressors (Array2D.zeroCreate (k - 1) d) Identity 1.0
        |> fun m ->
            if family = ExpertFamily.Binomial then
                MoeModel.withTrialsColumn m
            else
                MoeModel.withFamily family m

    let data = Sampler.sample truth 100_000 21L

    match GlmSpectral.propose family truth.Design Identity true k 5L data with
    | Error reason -> failwith reason
    | Ok start ->
        Assert.Equal(family, start.Family)
        let cosines = bestCosines truth start
        Assert.True(cosines |> Array.forall (fun c -> c >= floor), sprintf "cosines %A" cosines)

/// The default fit of a GLM family proposes the spectral start (and records it as a working candidate); Poisson with an
/// exposure column is refused with the reason, and the fit goes on from the other starts.
[<Fact>]
let ``a default fit of a GLM family runs the spectral start`` () =
    let truth =
        GroundTruth.orthogonal 2 4 Identity 1.0
        |> MoeModel.withFamily ExpertFamily.Poisson

    let data = Sampler.sample truth 4000 3L

    let fit =
        Learner.fit
            { FitConfig.defaults 2 Identity with
                Family = ExpertFamily.Poisson
                Seed = 2L
            }
            data
            RunContext.silent

    let spectral = fit.Candidates |> Array.find (fun c -> c.Initializer = "spectral")

    Assert.True(Result.isOk spectral.Outcome, sprintf "%A" spectral.Outcome)

    let l4 = fit.Candidates |> Array.find (fun c -> c.Initializer = "l4")

    match l4.Outcome with
    | Error reason -> Assert.Contains("derived for Gaussian experts", reason)
    | Ok _ -> failwith "L4 ran for Poisson experts"
