[<FsCheck.Xunit.Properties(Arbitrary = [| typeof<MoE.Core.Tests.Generators.Arbitraries> |], MaxTest = 100)>]
module MoE.Core.Tests.ShardWorkTests

open System
open System.Threading.Tasks
open FsCheck.Xunit
open Xunit
open MoE.Core

// Shard workers (docs/math.md §7.7): a pass over a remote shard is a request in bytes, computed by ShardWork where the
// rows live and sent back as a vector. These tests play the cluster's part in one process, every request and answer
// through bytes, so what they check is the protocol and the bits, not the network (tests/MoE.Api.Tests/ClusterTests.cs
// runs the same fits on Orleans silos).

/// A worker over rows in this process, its requests and answers copied as a network would copy them.
type private Loopback(shard: DataSource) =
    member val Calls = 0 with get, set

    interface IShardWorker with
        member this.Evaluate request =
            this.Calls <- this.Calls + 1
            Task.Run(fun () -> ShardWork.evaluate (Array.copy request) shard |> Array.copy)

        member this.Gather request =
            this.Calls <- this.Calls + 1
            Task.Run(fun () -> ShardWork.gather (Array.copy request) shard)

/// The rows lo .. lo + count − 1 as a shard in memory.
let private part (data: Dataset) (lo: int) (count: int) : DataSource =
    DataSource.ofDataset
        {
            X = Array2D.init count data.Dimension (fun r t -> data.X.[lo + r, t])
            Y = Array.sub data.Y lo count
            Weights = null
        }

/// Shards of the given sizes, local and behind loopback workers.
let private shards (data: Dataset) (sizes: int[]) =
    let starts = Array.scan (+) 0 sizes
    let local = Array.init sizes.Length (fun i -> part data starts.[i] sizes.[i])

    let workers = local |> Array.map Loopback

    let remote =
        {
            Dimension = data.Dimension
            Shards =
                Array.init sizes.Length (fun i ->
                    DataSource.remoteShard (Text.format "worker %d" [| box i |]) (int64 sizes.[i]) workers.[i])
        }

    DataSource.concat local, remote, workers

[<Property>]
let ``a request read back is the request: the same bytes, the same model`` (model: MoeModel) (intercepts: bool) =
    // Every double crosses as its 8 bytes, so "the same" is exact, not within a tolerance.
    let requests =
        [
            PassRequest.EmStatistics(model, intercepts, not intercepts)
            PassRequest.MStepObjectives(model, model)
            PassRequest.LikelihoodGradient(model, intercepts)
            PassRequest.LogLikelihood model
            PassRequest.Curvature(model, intercepts)
            PassRequest.ResponseCheck(ExpertFamily.Poisson, 2)
        ]

    let view = Some(Standardise.none model.Dimension)

    for request in requests do
        let bytes = ShardWork.encode view request
        let view', request' = Requests.decode bytes
        Assert.Equal<byte[]>(bytes, ShardWork.encode view' request')

        match request' with
        | PassRequest.EmStatistics(m, _, _)
        | PassRequest.LikelihoodGradient(m, _)
        | PassRequest.LogLikelihood m
        | PassRequest.Curvature(m, _) -> Assert.True((m = model))
        | PassRequest.MStepObjectives(a, b) -> Assert.True((a = model && b = model))
        | PassRequest.ResponseCheck(family, exposure) ->
            Assert.Equal(ExpertFamily.Poisson, family)
            Assert.Equal(2, exposure)
        | other -> failwithf "read back as %A" other

[<Fact>]
let ``a fit on shard workers is the fit of the same shards in one process, bit for bit`` () =
    // Shards of unequal sizes, none a whole number of chunks, with intercepts (so the standardisation centres and
    // whitens where the rows live). The default method, EM and the L4 subspace method: every kind of pass.
    let sample intercepts =
        Sampler.sample (GroundTruth.random 2 4 Identity 0.1 1.0 intercepts 21L) 30_000 21L

    let general, paper = sample true, sample false

    let workers =
        [
            FitConfig.defaults 2 Identity, general
            (FitConfig.defaults 2 Identity).WithMethod FitMethod.Em, general
            FitConfig.paper 2 Identity, paper
        ]
        |> List.collect (fun (config, data) ->
            let local, remote, workers = shards data [| 11_000; 9_500; 9_500 |]
            let here = Learner.fitSource config local 8_000 RunContext.silent
            let there = Learner.fitSource config remote 8_000 RunContext.silent
            Assert.Equal(ModelJson.serialize here.Model, ModelJson.serialize there.Model)
            Assert.Equal(here.Passes, there.Passes)
            List.ofArray workers)

    // Every shard answered requests: the fit ran where the rows are.
    for w in workers do
        Assert.True(w.Calls > 10, sprintf "%d calls" w.Calls)

/// The GLM families (docs/math.md §12) and Student-t's (§14, whose model carries ν on the wire) through every pass
/// they use: the data check of the responses, EM statistics, M-step objectives, the likelihood, its gradient and
/// curvature, the separation rule — in memory, read again for every pass (a memory bound of 8,000 of 30,000 rows) and
/// on shard workers: the same model, bit for bit.
[<Fact>]
let ``GLM and Student-t fits in memory, in passes and on shard workers are the same fit, bit for bit`` () =
    for family in [ ExpertFamily.Poisson; ExpertFamily.Bernoulli; ExpertFamily.StudentT ] do
        let truth =
            GroundTruth.random 2 4 Identity 0.1 1.0 true 21L |> MoeModel.withFamily family

        let data = Sampler.sample truth 30_000 21L

        let config =
            { FitConfig.defaults 2 Identity with
                Family = family
            }

        let local, remote, workers = shards data [| 11_000; 9_500; 9_500 |]
        // In memory and in passes over one source (the same chunks, so the same sums); sharded, in one process and on
        // workers (the shards' own chunks: the same as each other, not as the single source's).
        let memory = Learner.fit config data RunContext.silent

        let streamed =
            Learner.fitSource config (DataSource.ofDataset data) 8_000 RunContext.silent

        Assert.Equal(ModelJson.serialize memory.Model, ModelJson.serialize streamed.Model)
        Assert.True(streamed.Passes > memory.Passes, sprintf "%d passes" streamed.Passes)
        let here = Learner.fitSource config local 8_000 RunContext.silent
        let there = Learner.fitSource config remote 8_000 RunContext.silent
        Assert.Equal(ModelJson.serialize here.Model, ModelJson.serialize there.Model)
        Assert.Equal(here.Passes, there.Passes)

        for w in workers do
            Assert.True(w.Calls > 10, sprintf "%s: %d calls" family.Name w.Calls)

/// The response check counts rows across shards: a count of 2.5 at row 20,005 (in the second worker's shard) is named
/// as data row 20,006 of the whole source, with the number of such rows.
[<Fact>]
let ``a bad response on a worker's shard is named by its row in the whole data`` () =
    let truth =
        GroundTruth.random 2 3 Identity 0.1 1.0 true 5L
        |> MoeModel.withFamily ExpertFamily.Poisson

    let data = Sampler.sample truth 30_000 5L
    data.Y.[20_005] <- 2.5
    data.Y.[29_000] <- -1.0
    let _, remote, _ = shards data [| 11_000; 9_500; 9_500 |]

    let e =
        Assert.Throws<ArgumentException>(fun () ->
            Learner.fitSource
                { FitConfig.defaults 2 Identity with
                    Family = ExpertFamily.Poisson
                }
                remote
                8_000
                RunContext.silent
            |> ignore)

    Assert.Contains(
        "y in data row 20006 is 2.5, but poisson experts need counts, whole numbers >= 0 (2 of 30000 rows",
        e.Message
    )

[<Fact>]
let ``rows fetched from workers are the rows, in the order asked`` () =
    let data = Sampler.sample (GroundTruth.orthogonal 2 3 Identity 0.1) 10_000 4L
    let local, remote, _ = shards data [| 4_000; 6_000 |]
    let positions = [| 9_999L; 0L; 4_000L; 3_999L; 5_123L |]
    let a = DataSource.gather local positions
    let b = DataSource.gather remote positions
    Assert.Equal<float[]>(a.Y, b.Y)
    Assert.Equal<float[]>(Seq.toArray (Seq.cast<float> a.X), Seq.toArray (Seq.cast<float> b.X))
    Assert.Equal<float[]>(data.Y, (DataSource.load remote).Y)
    Assert.Equal<float[]>(Sampling.subsampleOf 500 3L local |> _.Y, Sampling.subsampleOf 500 3L remote |> _.Y)

/// A worker that takes its time.
type private Slow() =
    interface IShardWorker with
        member _.Evaluate _ =
            task {
                do! Task.Delay(TimeSpan.FromSeconds 30.0)
                return [| 0.0 |]
            }

        member _.Gather _ =
            Task.FromException<Dataset>(InvalidOperationException "not asked")

[<Fact>]
let ``a cancelled fit stops waiting for its workers`` () =
    // A worker that would answer in 30 s and a token cancelled after 0.2 s: the fit ends with the cancellation at
    // once (well within the 10 s the test allows), not when the worker answers.
    let source =
        {
            Dimension = 3
            Shards = [| DataSource.remoteShard "slow" 10_000L (Slow()) |]
        }

    use cancel = new Threading.CancellationTokenSource(TimeSpan.FromSeconds 0.2)

    let context =
        { RunContext.silent with
            Cancellation = cancel.Token
        }

    let clock = Diagnostics.Stopwatch.StartNew()

    Assert.ThrowsAny<OperationCanceledException>(fun () ->
        Learner.fitSource (FitConfig.defaults 2 Identity) source 1_000 context |> ignore)
    |> ignore

    Assert.True(clock.Elapsed < TimeSpan.FromSeconds 10.0, sprintf "%O" clock.Elapsed)

[<Fact>]
let ``a remote shard's rows come in requests of at most 2^20 values`` () =
    // 300,000 rows of d = 3: 262,144 rows a request, so two requests, the rows in order.
    let data = Sampler.sample (GroundTruth.orthogonal 2 3 Identity 0.1) 300_000 4L
    let _, remote, workers = shards data [| 300_000 |]
    let all = DataSource.load remote
    Assert.Equal<float[]>(data.Y, all.Y)
    Assert.Equal<float[]>(Seq.toArray (Seq.cast<float> data.X), Seq.toArray (Seq.cast<float> all.X))
    Assert.Equal(2, workers.[0].Calls)

[<Fact>]
let ``a worker refuses requests it would read wrongly, and says why`` () =
    let data = Sampler.sample (GroundTruth.orthogonal 2 3 Identity 0.1) 1_000 4L
    let shard = DataSource.ofDataset data

    let model =
        MoeModel.create (Array2D.zeroCreate 2 5) (Array2D.zeroCreate 1 5) Identity 1.0

    let wrong = ShardWork.encode None (PassRequest.LogLikelihood model)

    let e =
        Assert.Throws<ArgumentException>(fun () -> ShardWork.evaluate wrong shard |> ignore)

    Assert.Contains("model has 5 entries where this shard has 3 input columns", e.Message)

    let other = Array.copy wrong
    other.[0] <- 99uy

    let e =
        Assert.Throws<ArgumentException>(fun () -> ShardWork.evaluate other shard |> ignore)

    Assert.Contains("wire format 99", e.Message)

    let e =
        Assert.Throws<ArgumentException>(fun () -> ShardWork.evaluate (Array.sub wrong 0 20) shard |> ignore)

    Assert.Contains("cut short or malformed", e.Message)

    let custom =
        { model with
            Activation = Custom("cube", (fun z -> z * z * z), (fun z -> 3.0 * z * z))
        }

    let e =
        Assert.Throws<ArgumentException>(fun () -> ShardWork.encode None (PassRequest.LogLikelihood custom) |> ignore)

    Assert.Contains("a function cannot be sent", e.Message)
