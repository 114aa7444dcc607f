/// The fused multi-core kernels against their scalar references (Reference.fs, Losses), the mergeable moment sums,
/// and chunked CSV reading.
[<FsCheck.Xunit.Properties(MaxTest = 30)>]
module MoE.Core.Tests.KernelTests

open System
open System.IO
open FsCheck.FSharp
open FsCheck.Xunit
open Xunit
open MoE.Core
open MoE.Core.Tests.Tolerance

/// The kernels sum per-sample terms in chunks (≥ 2048 rows, up to 64 of them) where the references sum in sample
/// order, and the gating kernel scales densities by their per-sample maximum instead of working in log space: both
/// exact in real arithmetic, so they agree to `Tolerance.reorderedSum`.
let private summed = reorderedSum

/// A generated model with a sample from itself: n ∈ 1..50 or 2049..6000 so that runs span one and several chunks.
type private Case =
    {
        Model: MoeModel
        Seed: int
        Data: Dataset
    }

let private caseOf (m: MoeModel) (n: int) (seed: int) =
    {
        Model = m
        Seed = seed
        Data = Sampler.sample m n (int64 seed)
    }

let private sizes = Gen.oneof [ Gen.choose (1, 50); Gen.choose (2049, 6000) ]

let private case: FsCheck.Gen<Case> =
    gen {
        let! m = Generators.model
        let! n = sizes
        let! seed = Gen.choose (0, 1000)
        return caseOf m n seed
    }

/// A smaller model (its sample redrawn with the same n and seed), or fewer rows in the same chunking regime (one
/// chunk, or several).
let private shrinkCase (c: Case) : Case seq =
    let n = c.Data.Count

    seq {
        for m in Generators.shrinkModel c.Model do
            yield caseOf m n c.Seed

        if n > 1 && n <= 50 then
            yield caseOf c.Model (n / 2) c.Seed
        elif n > 2049 then
            yield caseOf c.Model (max 2049 (n / 2)) c.Seed
    }

let private cases = Arb.fromGenShrink (case, shrinkCase)

/// Cases for the M-step comparison: n ≥ 20·d·k, where the normal equations are well conditioned (see
/// `Tolerance.throughSolve`), in one chunk or several.
let private emCases =
    let gen =
        gen {
            let! m = Generators.model
            let floor = 20 * m.Dimension * m.Experts
            let! n = Gen.oneof [ Gen.choose (floor, 2048); Gen.choose (2049, 6000) ]
            let! seed = Gen.choose (0, 1000)
            return caseOf m n seed
        }

    Arb.fromGenShrink (
        gen,
        fun c ->
            shrinkCase c
            |> Seq.filter (fun s -> s.Data.Count >= 20 * s.Model.Dimension * s.Model.Experts)
    )

let private assertAllClose tol (expected: float seq) (actual: float seq) what =
    Seq.iteri2 (fun i e a -> assertClose tol e a (sprintf "%s[%d]" what i)) expected actual

[<Property>]
let ``the gating kernel equals the scalar L_log and its gradient`` () =
    Prop.forAll cases (fun c ->
        let reference = Losses.logLikelihoodLoss c.Model c.Data.X c.Data.Y
        let densities = GatingKernel.expertDensities c.Model c.Data.X c.Data.Y

        let value, gradient, _ =
            GatingKernel.loss densities c.Data.X c.Model.Gating c.Model.GatingIntercepts

        assertClose summed reference.Value value "L_log"
        assertAllClose summed (Seq.cast<float> reference.Gradient) (Seq.cast<float> gradient) "gradient")

[<Fact>]
let ``the gating kernel falls back to log space where the scaled densities underflow`` () =
    // σ = 0.01 and residuals of order 10: log-densities near −5e5, and an expert the gate all but excludes
    // (logit −800) holding the best density: Σ e_i E_i underflows and only the log-space path is finite.
    let a = array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ]
    let w = array2D [ [ -400.0; 0.0 ] ]
    let model = MoeModel.create a w Identity 0.01
    let x = array2D [ [ 2.0; 0.0 ]; [ 0.5; -0.3 ]; [ 1.0; 1.0 ] ]
    let y = [| 2.0; 9.0; -7.0 |]
    let reference = Losses.logLikelihoodLoss model x y

    let value, gradient, _ =
        GatingKernel.loss (GatingKernel.expertDensities model x y) x w model.GatingIntercepts

    Assert.True(Double.IsFinite value)
    assertClose summed reference.Value value "L_log"
    assertAllClose summed (Seq.cast<float> reference.Gradient) (Seq.cast<float> gradient) "gradient"

[<Property>]
let ``one fused EM step equals the scalar reference step`` () =
    Prop.forAll emCases (fun c ->
        let m = c.Model
        let fast = Em.step m c.Data.X c.Data.Y true
        let slow = Reference.emStep m c.Data.X c.Data.Y true
        assertAllClose throughSolve (Seq.cast<float> slow.Regressors) (Seq.cast<float> fast.Regressors) "A"
        assertAllClose throughSolve (Seq.cast<float> slow.Gating) (Seq.cast<float> fast.Gating) "W"
        assertClose throughSolve slow.Sigma fast.Sigma "sigma")

[<Property>]
let ``the EM statistics pass gives the likelihood and the responsibilities of the scalar code`` () =
    Prop.forAll cases (fun c ->
        let post = LikelihoodKernel.responsibilities c.Model c.Data.X c.Data.Y
        let stats = EmKernel.statistics c.Model false true c.Data.X c.Data.Y
        let ll = MoeModel.logLikelihood c.Model c.Data.X c.Data.Y
        assertClose summed ll stats.LogLikelihood "log-likelihood"

        let reference = MoeModel.responsibilities c.Model c.Data.X c.Data.Y
        assertAllClose exact (Seq.cast<float> reference) (Seq.cast<float> post) "posterior"
        // The per-expert weighted residual sums the M-step's line search starts from.
        let m = c.Model

        let sse =
            Array.init m.Experts (fun i ->
                Seq.sum (
                    seq {
                        for r in 0 .. c.Data.Count - 1 ->
                            let s =
                                Seq.sum (
                                    seq { for t in 0 .. m.Dimension - 1 -> m.Regressors.[i, t] * c.Data.X.[r, t] }
                                )

                            let e = c.Data.Y.[r] - m.Activation.Value s
                            reference.[r, i] * e * e
                    }
                ))

        assertAllClose summed sse (stats.Sums |> Array.map (fun s -> s.[0])) "Sse")

[<Property>]
let ``the column moments equal a per-column two-pass reference`` () =
    Prop.forAll cases (fun c ->
        let n, d = c.Data.Count, c.Data.Dimension
        let actual = Diagnosis.columns c.Data

        for j in 0 .. d - 1 do
            let column = Array.init n (fun r -> c.Data.X.[r, j])
            let mean = Array.average column

            let central p =
                column |> Array.averageBy (fun v -> pown (v - mean) p)

            let var = central 2
            // Moments of an N(0, 1)-like sample are O(1); chunked sums and fused products only reorder and round
            // them: reorderedSum relative, or absolute near 0.
            let near e a what =
                assertClose summed e a (sprintf "x%d %s" (j + 1) what)

            near mean actual.[j].Mean "mean"
            near (sqrt var) actual.[j].Sd "sd"

            if var > 0.0 then
                near (central 3 / (var * sqrt var)) actual.[j].Skewness "skewness"
                near (central 4 / (var * var) - 3.0) actual.[j].ExcessKurtosis "kurtosis")

/// The weighted Grams Σ_n r_ni h_ni² x̃_n x̃_nᵀ (h = g'(s), 1 for the identity) of the EM pass against a sum in sample order: p = d + 1 ∈ 2..9 covers
/// no 4×4 tile, one tile with remainder rows and columns, and two tiles; n ∈ 1..50 leaves 0–3 rows outside the
/// four-wide lanes of the register-blocked kernel.
[<Property>]
let ``the EM pass's weighted Grams equal plain sums over the rows`` () =
    Prop.forAll cases (fun c ->
        let m, x = c.Model, c.Data.X
        let n, d = x.GetLength 0, x.GetLength 1
        let p = d + 1
        let post = LikelihoodKernel.responsibilities m x c.Data.Y
        let stats = EmKernel.statistics m true false x c.Data.Y
        let design r t = if t < d then x.[r, t] else 1.0

        let weight r i =
            if m.Activation = Identity then
                post.[r, i]
            else
                let s =
                    Seq.sum (seq { for t in 0 .. d - 1 -> m.Regressors.[i, t] * x.[r, t] })
                    + m.RegressorIntercepts.[i]

                let h = m.Activation.Derivative s
                post.[r, i] * h * h

        for i in 0 .. m.Experts - 1 do
            for t in 0 .. p - 1 do
                for u in t .. p - 1 do
                    let plain =
                        Seq.sum (seq { for r in 0 .. n - 1 -> weight r i * design r t * design r u })

                    assertClose summed plain stats.Gram.[i].[t * p + u] (sprintf "Gram %d (%d, %d)" i t u))

[<Fact>]
let ``kernel results are bit-identical from run to run`` () =
    // The chunking depends on n only and partial sums are added in chunk order, so thread scheduling cannot
    // change a bit (CI also compares fits made with 1 and 2 processors).
    let truth = GroundTruth.random 3 6 Activation.Relu 0.1 1.0 true 5L
    let data = Sampler.sample truth 50_000 2L
    let densities = GatingKernel.expertDensities truth data.X data.Y

    let runs =
        Array.init 4 (fun _ ->
            let value, gradient, _ =
                GatingKernel.loss densities data.X truth.Gating truth.GatingIntercepts

            let step = Em.step truth data.X data.Y true
            value, Seq.toArray (Seq.cast<float> gradient), Seq.toArray (Seq.cast<float> step.Regressors))

    for r in runs do
        Assert.Equal(runs.[0], r)

[<Property>]
let ``the multi-core empirical L4 equals the scalar reference`` () =
    Prop.forAll cases (fun c ->
        let m = c.Model
        let coefficients = Coefficients.solve m.Activation m.Sigma
        let weights = L4Weights.create 0.1 10.0 0.01 true
        let fast = Losses.l4 coefficients weights m.Regressors c.Data.X c.Data.Y
        let slow = Reference.l4 coefficients weights m.Regressors c.Data.X c.Data.Y
        assertClose summed slow.Value fast.Value "L4"
        assertAllClose summed (Seq.cast<float> slow.Gradient) (Seq.cast<float> fast.Gradient) "gradient")

// ---- Moment sums ----

let private transformFor (m: MoeModel) =
    OutputTransforms.bounded m.Activation m.Sigma

[<Property>]
let ``the multi-core subspace moments equal the scalar reference`` () =
    Prop.forAll cases (fun c ->
        let k = min c.Model.Experts c.Model.Dimension
        let tf = transformFor c.Model

        if c.Data.Count >= 2 then
            let fast = SubspaceL4.moments tf k c.Data.X c.Data.Y
            let slow = Reference.moments tf k c.Data.X c.Data.Y

            assertAllClose summed (Seq.cast<float> slow.SecondMoment) (Seq.cast<float> fast.SecondMoment) "M2"
            // The eigenbases of two M2s equal up to rounding differ in the last bits (and possibly in sign), so the
            // projected moments are checked against plain sums in the fast result's own basis U.
            let u = fast.Projected.Basis
            let n, d, r = c.Data.Count, c.Data.Dimension, k
            let qs = SymmetricTensor.quads r
            let f4 = Array.zeroCreate qs.Length
            let f4z2 = Array2D.zeroCreate r r
            let f2 = Array2D.zeroCreate r r
            let f3 = Array.zeroCreate (r * r * r)
            let f3z = Array.zeroCreate r
            let q3 = tf.Third |> Result.map _.Q3 |> Result.defaultWith failwith
            let mutable f4s, f2s = 0.0, 0.0

            for row in 0 .. n - 1 do
                let z =
                    Array.init r (fun a -> Seq.sum (seq { for t in 0 .. d - 1 -> u.[t, a] * c.Data.X.[row, t] }))

                let q4, q2 = tf.Q4 c.Data.Y.[row], tf.Q2 c.Data.Y.[row]
                f4s <- f4s + q4
                f2s <- f2s + q2

                for i in 0 .. r - 1 do
                    for j in i .. r - 1 do
                        f4z2.[i, j] <- f4z2.[i, j] + q4 * z.[i] * z.[j]
                        f2.[i, j] <- f2.[i, j] + q2 * z.[i] * z.[j]

                qs
                |> Array.iteri (fun q (struct (i, j, k, l)) -> f4.[q] <- f4.[q] + q4 * z.[i] * z.[j] * z.[k] * z.[l])

                let q3y = q3 c.Data.Y.[row]

                for i in 0 .. r - 1 do
                    f3z.[i] <- f3z.[i] + q3y * z.[i]

                    for j in 0 .. r - 1 do
                        for l in 0 .. r - 1 do
                            f3.[(i * r + j) * r + l] <- f3.[(i * r + j) * r + l] + q3y * z.[i] * z.[j] * z.[l]

            let inv = 1.0 / float n

            let t4 =
                SymmetricTensor.assembleS4 r qs (Array.map ((*) inv) f4) (Array2D.map ((*) inv) f4z2) (f4s * inv)

            let t2 =
                Array.init (r * r) (fun idx ->
                    let a, b = idx / r, idx % r

                    (if a <= b then f2.[a, b] else f2.[b, a]) * inv
                    - (if a = b then f2s * inv else 0.0))

            // E[Q3 S3(z)]_{ijl} = E[Q3 z_iz_jz_l] − (δ_ij E[Q3 z_l] + δ_il E[Q3 z_j] + δ_jl E[Q3 z_i]), over c₃ = 1.
            let delta i j = if i = j then 1.0 else 0.0

            let t3 =
                Array.init (r * r * r) (fun idx ->
                    let a, b, e = idx / (r * r), (idx / r) % r, idx % r

                    (f3.[idx] - (delta a b * f3z.[e] + delta a e * f3z.[b] + delta b e * f3z.[a]))
                    * inv)

            assertAllClose summed t4 fast.Projected.T4 "T4"
            assertAllClose summed t2 fast.Projected.T2 "T2"
            assertAllClose summed t3 (fast.Third |> Result.defaultWith failwith) "T3")

[<Property>]
let ``merging moment sums equals one pass over both parts`` () =
    Prop.forAll cases (fun c ->
        let n, d = c.Data.Count, c.Data.Dimension
        let tf = transformFor c.Model
        let cut = n / 3

        let part lo hi =
            Array2D.init (hi - lo) d (fun r t -> c.Data.X.[lo + r, t]), c.Data.Y.[lo .. hi - 1]

        let xa, ya = part 0 cut
        let xb, yb = part cut n
        let whole = MomentSums.second tf c.Data.X c.Data.Y

        let merged =
            MomentSums.mergeSecond (MomentSums.second tf xa ya) (MomentSums.second tf xb yb)

        Assert.Equal(whole.Count, merged.Count)
        assertClose summed whole.SumQ2 merged.SumQ2 "ΣQ2"
        assertAllClose summed whole.Sums merged.Sums "ΣQ2xxᵀ"
        let r = min c.Model.Experts d
        let u = Array2D.init d r (fun t a -> if t = a then 1.0 else 0.0)
        let wholeP = MomentSums.projected tf u c.Data.X c.Data.Y

        let mergedP =
            MomentSums.mergeProjected (MomentSums.projected tf u xa ya) (MomentSums.projected tf u xb yb)

        Assert.Equal(wholeP.Count, mergedP.Count)
        assertAllClose summed wholeP.F4 mergedP.F4 "ΣQ4 zzzz"
        assertAllClose summed wholeP.F4z2 mergedP.F4z2 "ΣQ4 zz"
        assertAllClose summed wholeP.F2 mergedP.F2 "ΣQ2 zz"
        assertAllClose summed wholeP.F3 mergedP.F3 "ΣQ3 zzz"
        assertAllClose summed wholeP.F3z mergedP.F3z "ΣQ3 z"
        // The empty sums are the identity of the merge.
        Assert.Equal<float[]>(whole.Sums, (MomentSums.mergeSecond (MomentSums.emptySecond d) whole).Sums))

[<Fact>]
let ``moments read from a CSV in passes have the bits of the in-memory moments`` () =
    // The file is read in batches of whole chunks, so its chunks are the in-memory data's and every sum is added in
    // the same order: not close, identical.
    let truth = GroundTruth.random 3 8 Activation.Relu 0.1 1.0 true 9L
    let data = Sampler.sample truth 150_000 4L
    let path = Path.GetTempFileName()

    try
        DataCsv.save path data
        let tf = OutputTransforms.bounded Activation.Relu 0.1
        let source = DataCsv.source path
        Assert.Equal(150_000L, source.Rows)

        Assert.Equal<int[]>(
            [| 65536; 65536; 18928 |],
            source.Shards.[0].Read() |> Seq.map (fun c -> c.Count) |> Seq.toArray
        )

        let streamed = SubspaceL4.momentsOf tf 3 source
        let inMemory = SubspaceL4.moments tf 3 data.X data.Y

        Assert.Equal<float[]>(
            Seq.toArray (Seq.cast<float> inMemory.SecondMoment),
            Seq.toArray (Seq.cast<float> streamed.SecondMoment)
        )

        Assert.Equal<float[]>(inMemory.Projected.T4, streamed.Projected.T4)
        Assert.Equal<float[]>(inMemory.Projected.T2, streamed.Projected.T2)
    finally
        File.Delete path

[<Fact>]
let ``chunked CSV reading reports bad rows with their line like the whole-file reader`` () =
    let text = "x1,y\n1,2\n3,4\n5,oops\n"
    let chunks = DataCsv.readChunks (new StringReader(text)) "t.csv" 2
    let e = Assert.Throws<InvalidDataException>(fun () -> chunks |> Seq.iter ignore)
    Assert.Equal("t.csv: line 4, column 2: 'oops' is not a number.", e.Message)

    Assert.Throws<InvalidDataException>(fun () ->
        DataCsv.readChunks (new StringReader("x1,y\n")) "e.csv" 5 |> Seq.iter ignore)
    |> ignore

// ---- Streaming fits ----

[<Property(MaxTest = 100)>]
let ``Floyd's sample draws distinct positions uniformly, the same in memory and in passes`` () =
    let arb =
        gen {
            let! n = Gen.choose (1, 50_000)
            let! m = Gen.choose (0, min n 3000)
            let! seed = Gen.choose (0, 1000)
            return n, m, seed
        }
        |> Arb.fromGen

    Prop.forAll arb (fun (n, m, seed) ->
        let p = Sampling.positions (int64 n) m (int64 seed) Streams.Subsample
        Assert.Equal(m, p.Length)
        Assert.Equal(m, p |> Array.distinct |> Array.length)
        Assert.True(p |> Array.forall (fun v -> v >= 0L && v < int64 n))
        // The mean position is within 5 standard errors of (n − 1)/2 (sd of a uniform position ≈ n/√12).
        if m >= 30 then
            let mean = p |> Array.averageBy float

            Assert.True(
                abs (mean - float (n - 1) / 2.0) < 5.0 * float n / sqrt 12.0 / sqrt (float m),
                sprintf "mean %g" mean
            ))

[<Fact>]
let ``a subsample is the same rows whether the data are in memory or in shards read in passes`` () =
    let data = Sampler.sample (GroundTruth.orthogonal 2 3 Identity 0.1) 20_000 3L
    let xs, ys = Sampling.subsample 1_000 5L data.X data.Y
    // The same rows cut into two shards (one of them batched): positions count over the shards in order.
    let shard (lo: int) (count: int) (batch: int) : Shard =
        {
            Name = "part"
            Rows = int64 count
            Read =
                fun () ->
                    seq {
                        for start in lo..batch .. lo + count - 1 do
                            let c = min batch (lo + count - start)

                            yield
                                {
                                    X = Array2D.init c 3 (fun r t -> data.X.[start + r, t])
                                    Y = Array.sub data.Y start c
                                    Weights = null
                                }
                    }
            Remote = None
            Dropped = 0L, ""
            Weight = None
        }

    let source =
        {
            Dimension = 3
            Shards = [| shard 0 12_288 4096; shard 12_288 7_712 8192 |]
        }

    let fromSource = Sampling.subsampleOf 1_000 5L source
    Assert.Equal<float[]>(ys, fromSource.Y)
    Assert.Equal<float[]>(Seq.toArray (Seq.cast<float> xs), Seq.toArray (Seq.cast<float> fromSource.X))

[<Fact>]
let ``a fit read from a CSV in passes is the in-memory fit, bit for bit`` () =
    // The default method and the paper's: --max-rows 15000 reads 60,000 rows again for every pass; the memory bound
    // changes where the rows are, not the model.
    let truth = GroundTruth.random 2 6 Identity 0.05 1.0 true 8L
    let data = Sampler.sample truth 60_000 8L
    let path = Path.GetTempFileName()

    try
        DataCsv.save path data
        let source = DataCsv.source path

        let recovered (fit: FitResult) =
            let e = Metrics.compare fit.Model truth

            Assert.True(
                e.RegressorError <= 0.01 && e.GatingError <= 0.01,
                sprintf "E_reg %g, E_gating %g" e.RegressorError e.GatingError
            )

        let defaults = FitConfig.defaults 2 Identity
        let inMemory = Learner.fit defaults data RunContext.silent
        let streamed = Learner.fitSource defaults source 15_000 RunContext.silent
        Assert.Equal(ModelJson.serialize inMemory.Model, ModelJson.serialize streamed.Model)
        // In memory the data are read once; in passes, once per pass of every stage (at least the summary's two, the
        // moments' and the likelihood's).
        Assert.Equal(1, inMemory.Passes)
        Assert.True(streamed.Passes >= 4, sprintf "%d passes" streamed.Passes)
        recovered streamed
        // The paper's method runs its σ, sign, gating and scale stages on arrays: with the rows in passes, on a sample of
        // 15,000 of them. Its EM polish then takes every row to the same maximum, to EM's tolerance (1e-11 relative
        // gain per map: parameters settled to ~1e-6 of their standard errors, ~1e-8 relative here).
        let paper = FitConfig.paper 2 Identity
        let a = (Learner.fit paper data RunContext.silent).Model
        let b = Learner.fitSource paper source 15_000 RunContext.silent
        recovered b

        Seq.zip (Seq.cast<float> a.Regressors) (Seq.cast<float> b.Model.Regressors)
        |> Seq.iter (fun (u, v) -> assertClose 1e-7 u v "a regressor")

        assertClose 1e-7 a.Sigma b.Model.Sigma "sigma"

        // The l2 baseline needs every row in memory.
        let l2 =
            { FitConfig.paper 2 Identity with
                Method = FitMethod.L2
            }

        let error =
            Assert.Throws<ArgumentException>(fun () -> Learner.fitSource l2 source 15_000 RunContext.silent |> ignore)

        Assert.Contains("needs every row in memory", error.Message)
    finally
        File.Delete path
