/// Bad input in the core: the data diagnosis (errors that name the cause, warnings that travel with the result, no
/// false alarms on good data), the L4 failure's advice, fits from chunks (memory bound, cancellation), sizes
/// checked before allocation, atomic writes.
module MoE.Core.Tests.ReliabilityTests

open System
open System.IO
open System.Threading
open Xunit
open MoE.Core
open MoE.Core.Tests.Assertions

let private truth = GroundTruth.orthogonal 2 4 Identity 0.05

let private mapColumns (f: int -> float -> float) (data: Dataset) =
    Dataset.create (Array2D.mapi (fun _ j v -> f j v) data.X) data.Y

let private codes (findings: Finding[]) =
    findings |> Array.map _.Code.Name |> Array.sort

[<Theory>]
[<InlineData(300)>]
[<InlineData(20_000)>]
[<InlineData(200_000)>]
let ``standard Gaussian covariates raise no finding at any n`` (n: int) =
    // The thresholds are max(0.1 or 0.5, five standard errors): at n = 300 the sample kurtosis alone has a standard
    // error of 0.28, so a fixed threshold of 0.5 would cry wolf; at n = 200k the data are exactly what L4 assumes.
    let data = Sampler.sample truth n 11L

    for method in [ FitMethod.L4; FitMethod.Em ] do
        let config =
            { FitConfig.paper 2 Identity with
                Method = method
            }

        let findings =
            Diagnosis.check config data
            |> Array.filter (fun f -> f.Code <> FindingCode.FewRows)

        Assert.True(findings.Length = 0, sprintf "n = %d, %A: %A" n method findings)

[<Fact>]
let ``a constant covariate, a constant response and d below k are errors that name their cause`` () =
    let data = Sampler.sample truth 5_000 1L
    let config = FitConfig.paper 2 Identity

    let constantColumn = mapColumns (fun j v -> if j = 2 then 1.5 else v) data

    throwsArg<ArgumentException> "data" [ "column x3 is constant (every value is 1.5)"; "remove it" ] (fun () ->
        Learner.fit config constantColumn RunContext.silent |> ignore)

    let constantY = Dataset.create data.X (Array.create data.Count 2.0)

    throwsArg<ArgumentException> "data" [ "y is constant (every value is 2)" ] (fun () ->
        Learner.fit config constantY RunContext.silent |> ignore)

    throwsArg<ArgumentException> "data" [ "need d >= k, but the data have d = 4"; "--method em" ] (fun () ->
        Learner.fit (FitConfig.paper 5 Identity) data RunContext.silent |> ignore)

    // EM works for any d: the same data with k = 5 are not refused by it.
    Assert.Empty(
        Diagnosis.check
            { FitConfig.paper 5 Identity with
                Method = FitMethod.Em
            }
            data
        |> Array.filter (fun f -> f.Severity = Severity.Error)
    )

[<Fact>]
let ``an L4 failure on shifted covariates names the shift, not the sample size`` () =
    let data = Sampler.sample truth 20_000 2L |> mapColumns (fun _ v -> v + 5.0)

    let e =
        throws<NonFiniteException>(fun () -> Learner.fit (FitConfig.paper 2 Identity) data RunContext.silent |> ignore)

    Assert.Equal("l4", e.Stage.Name)
    Assert.Contains("The data break the estimator's assumptions: the covariates are not standardised", e.Message)
    Assert.Matches(@"x1 has mean (5|4\.99\d*|5\.00\d*) and sd", e.Message)
    Assert.DoesNotContain("Increase n", e.Message)

[<Fact>]
let ``a fit that succeeds on data off the assumptions carries the warnings in its result`` () =
    let data =
        Sampler.sample truth 20_000 3L
        |> mapColumns (fun j v -> if j = 0 then v + 0.3 * (v * v - 1.0) else v)

    let result = Learner.fit (FitConfig.paper 2 Identity) data RunContext.silent
    Assert.Contains("not-gaussian", codes result.Warnings)
    Assert.All(result.Warnings, fun w -> Assert.Equal(Severity.Warning, w.Severity))
    // And the EM baseline on shifted covariates is told that the model has no intercepts.
    let shifted = Sampler.sample truth 5_000 4L |> mapColumns (fun _ v -> v + 5.0)

    let em =
        Learner.fit
            { FitConfig.paper 2 Identity with
                Method = FitMethod.Em
            }
            shifted
            RunContext.silent

    Assert.Equal<string[]>([| "not-centred" |], codes em.Warnings)

[<Fact>]
let ``an EM that runs out of iterations says so`` () =
    let data = Sampler.sample truth 5_000 5L

    let result =
        Learner.fit
            { FitConfig.paper 2 Identity with
                Method = FitMethod.Em
                EmIterations = 2
            }
            data
            RunContext.silent

    Assert.Equal(StopReason.MaxIterations, result.Reason)
    Assert.Contains("em-not-converged", codes result.Warnings)

/// Chunks of a sample that count how many were read, and cancel a token when the given one is produced.
let private countingChunks (data: Dataset) (rows: int) (cancelAt: int) (cts: CancellationTokenSource) (read: int ref) =
    Seq.init ((data.Count + rows - 1) / rows) (fun c ->
        read.Value <- read.Value + 1

        if read.Value = cancelAt then
            cts.Cancel()

        let n = min rows (data.Count - c * rows)

        {
            X = Array2D.init n data.Dimension (fun r t -> data.X.[c * rows + r, t])
            Y = Array.sub data.Y (c * rows) n
            Weights = null
        })

/// A source of one shard whose passes are the given chunks.
let private counting (data: Dataset) (chunks: seq<Dataset>) : DataSource =
    {
        Dimension = data.Dimension
        Shards =
            [|
                {
                    Name = "counting"
                    Rows = int64 data.Count
                    Read = fun () -> chunks
                    Remote = None
                    Dropped = 0L, ""
                    Weight = None
                }
            |]
    }

[<Fact>]
let ``cancelling a fit read in passes stops before the next batch is read`` () =
    let data = Sampler.sample truth 40_000 6L
    use cts = new CancellationTokenSource()
    let read = ref 0
    let chunks = countingChunks data 4_096 5 cts read

    let context =
        { RunContext.silent with
            Cancellation = cts.Token
        }

    let source = counting data chunks

    Assert.ThrowsAny<OperationCanceledException>(fun () ->
        Learner.fitSource (FitConfig.paper 2 Identity) source 5_000 context |> ignore)
    |> ignore
    // The token was cancelled as chunk 5 was produced; the check before handing it on stops the pass there.
    Assert.Equal(5, read.Value)

[<Fact>]
let ``a fit read in passes refuses a memory bound below ten rows per parameter`` () =
    let data = Sampler.sample truth 20_000 7L
    let read = ref 0
    use cts = new CancellationTokenSource()
    let chunks = countingChunks data 1_000 -1 cts read
    // k = 2, d = 4: 8 + 4 + 1 = 13 parameters, so at least 130 rows.
    throwsArg<ArgumentOutOfRangeException>
        "maxRows"
        [
            "maxRows = 129 holds too few rows in memory"
            "13 parameters"
            "at least 10 rows each (130)"
        ]
        (fun () ->
            Learner.fitSource (FitConfig.paper 2 Identity) (counting data chunks) 129 RunContext.silent
            |> ignore)
    // It is refused before any pass over the data.
    Assert.Equal(0, read.Value)

[<Fact>]
let ``sizes are checked in 64-bit arithmetic before anything is allocated`` () =
    throwsArg<ArgumentOutOfRangeException> "count" [ "more than the largest .NET array holds" ] (fun () ->
        Sampler.sample truth Int32.MaxValue 1L |> ignore)

    throwsArg<ArgumentOutOfRangeException> "experts" [ "more than the largest .NET array holds" ] (fun () ->
        GroundTruth.orthogonal Int32.MaxValue 3 Identity 0.1 |> ignore)
    // 2k − 1 overflows a 32-bit int for k = 2^30 + 1; the check still says d is too small.
    throwsArg<ArgumentOutOfRangeException> "dimension" [ "needs d >= 2k-1 = 2147483649" ] (fun () ->
        GroundTruth.orthogonal ((1 <<< 30) + 1) 1 Identity 0.1 |> ignore)

[<Fact>]
let ``predictions and likelihoods refuse NaN inputs instead of returning NaN`` () =
    let x = Array2D.zeroCreate 3 4
    x.[2, 1] <- nan

    throwsArg<ArgumentException> "x" [ "x[2,1] must be finite, but was NaN" ] (fun () ->
        MoeModel.predict truth x |> ignore)

    throwsArg<ArgumentException> "y" [ "y[0] must be finite, but was Infinity" ] (fun () ->
        MoeModel.logLikelihoods truth (Array2D.zeroCreate 1 4) [| infinity |] |> ignore)

[<Fact>]
let ``a write that fails half way leaves the previous file and no temporary file`` () =
    let folder = Directory.CreateTempSubdirectory("moe-atomic-")

    try
        let path = Path.Combine(folder.FullName, "data.csv")
        DataCsv.save path (Sampler.sample truth 50 1L)
        let before = File.ReadAllBytes path

        throws<IOException>(fun () ->
            AtomicFile.write path (fun stream ->
                stream.Write(Array.zeroCreate 4096, 0, 4096)
                raise (IOException "No space left on device (simulated)")))
        |> ignore

        Assert.Equal<byte[]>(before, File.ReadAllBytes path)
        Assert.Equal<string[]>([| "data.csv" |], folder.GetFiles() |> Array.map _.Name)
        // A directory is not a file to write.
        throws<UnauthorizedAccessException>(fun () -> AtomicFile.writeAllText folder.FullName "x")
        |> ignore
    finally
        folder.Delete true
