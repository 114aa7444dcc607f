/// Golden models: seeded fits whose model files are committed (tests/MoE.Core.Tests/golden). A refactor that
/// claims "behaviour unchanged" must reproduce them byte for byte on a machine of the vector width they were recorded
/// with (golden/machine.txt, one line per case). Regenerate (only for a deliberate change of behaviour, said so in the
/// commit) with MOE_WRITE_GOLDEN=1 dotnet test --filter GoldenTests.
module MoE.Core.Tests.GoldenTests

open System
open System.IO
open System.Runtime.Intrinsics
open Xunit
open MoE.Core

let private folder = Path.Combine(AppContext.BaseDirectory, "golden")

let private sourceFolder =
    // bin/Release/net10.0 -> the project folder, for regeneration.
    Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "golden"))

/// The vector width the kernels ran with. TensorPrimitives sums a dot product in lanes of this width, so a machine
/// with another width rounds differently in the last bit; bit-identity is promised per width, not across widths.
let private machine =
    sprintf "Vector512=%b Vector256=%b" Vector512.IsHardwareAccelerated Vector256.IsHardwareAccelerated

/// Across vector widths: the fits converge to the same optimum, so parameters agree to the optimisers'
/// tolerances (EM stops at a relative likelihood gain of 1e-11, i.e. parameters settled to ~1e-6 relative of
/// their standard error); 1e-6 relative still catches any change of algorithm (those move parameters by 1e-3+).
/// The experts' order is not part of the optimum: a last-bit difference can break a tie between starts whose
/// optima are one mixture with the labels swapped (measured: paper-default on a machine without Vector512), so
/// the fit is relabelled to the recorded model's order first (MoeModel.relabel) and then compared entry by entry.
let private acrossWidths = 1e-6

let private silent = RunContext.silent

let private fitWith (config: FitConfig) (data: Dataset) = (Learner.fit config data silent).Model

/// A public data set of tests/data (copied beside the tests with its source, tests/data/README.md).
let private publicData (name: string) =
    DataCsv.load (Path.Combine(AppContext.BaseDirectory, "data", name))

/// The data as a source of equal shards, each read again for every pass (its rows copied out of the data).
let private shardsOf (data: Dataset) (count: int) : DataSource =
    let rows, d = data.Count / count, data.Dimension

    let shard (c: int) : Shard =
        {
            Name = Text.format "shard %d" [| box c |]
            Rows = int64 rows
            Read =
                fun () ->
                    Seq.singleton
                        {
                            X = Array2D.init rows d (fun r t -> data.X.[c * rows + r, t])
                            Y = Array.sub data.Y (c * rows) rows
                            Weights = null
                        }
            Remote = None
            Dropped = 0L, ""
            Weight = None
        }

    {
        Dimension = d
        Shards = Array.init count shard
    }

let private paper = GroundTruth.orthogonal 2 10 Identity 0.05
let private paperRandom = GroundTruth.randomGating 2 10 Identity 0.05 1.0 3L

/// Each case: a name and the model it produces (ModelJson is the byte-level record).
let private cases: (string * (unit -> MoeModel)) list =
    [
        "paper-default", (fun () -> fitWith (FitConfig.paper 2 Identity) (Sampler.sample paper 20_000 101L))
        "paper-sigma-no-polish",
        (fun () ->
            fitWith
                { FitConfig.paper 2 Identity with
                    Sigma = Some 0.05
                    Polish = false
                    Seed = 2L
                }
                (Sampler.sample paperRandom 20_000 102L))
        "paper-em",
        (fun () ->
            fitWith
                { FitConfig.paper 2 Identity with
                    Method = FitMethod.Em
                    Seed = 3L
                }
                (Sampler.sample paperRandom 20_000 103L))
        "paper-l2",
        (fun () ->
            fitWith
                { FitConfig.paper 2 Identity with
                    Method = FitMethod.L2
                    Seed = 4L
                }
                (Sampler.sample paper 10_000 104L))
        "paper-sgd-solver",
        (fun () ->
            fitWith
                { FitConfig.paper 2 Identity with
                    L4Solver = L4Solver.DefaultSgd
                    Sigma = Some 0.05
                    Seed = 5L
                }
                (Sampler.sample paper 10_000 105L))
        "relu-k3",
        (fun () ->
            let truth = GroundTruth.orthogonal 3 6 Relu 0.1
            fitWith (FitConfig.paper 3 Relu) (Sampler.sample truth 60_000 106L))
        "leaky-polynomial",
        (fun () ->
            let truth = GroundTruth.random 2 5 (LeakyRelu 0.1) 0.1 1.0 true 7L

            fitWith
                { FitConfig.paper 2 (LeakyRelu 0.1) with
                    Transform = TransformKind.Polynomial
                    Seed = 7L
                }
                (Sampler.sample truth 30_000 107L))
        "projected-gating",
        (fun () ->
            fitWith
                { FitConfig.paper 2 Identity with
                    Gating = GatingMethod.ProjectedGradient(3.0, 0.5, 100, true)
                    Polish = false
                    Sigma = Some 0.05
                }
                (Sampler.sample paperRandom 20_000 108L))
        "tanh",
        (fun () ->
            let truth = GroundTruth.orthogonal 2 4 Tanh 0.05
            fitWith (FitConfig.paper 2 Tanh) (Sampler.sample truth 20_000 109L))
        "chunks",
        (fun () ->
            // Three shards of 10,000 rows read again for every pass (8,000 rows in memory).
            let source = shardsOf (Sampler.sample paper 30_000 110L) 3
            (Learner.fitSource (FitConfig.paper 2 Identity) source 8_000 silent).Model)
        // The defaults (FitConfig.defaults: Auto, intercepts, a σ per expert, standardised covariates, the guarded
        // EM → L-BFGS → EM chain): in memory on shifted, scaled covariates, read in passes, by EM from several starts,
        // by the spectral method, and on the two public data sets (tone with k = 4 is the degenerate likelihood the
        // σ prior guards against; faithful has d = 1 < k, so random starts alone).
        "defaults-shifted",
        (fun () ->
            let mu, scale = [| 5.0; -3.0; 10.0 |], [| 2.0; 0.5; 3.0 |]

            let truth =
                GroundTruth.inCovariateUnits
                    (GroundTruth.random 2 3 Identity 0.2 1.0 true 3L)
                    [| 1.0; -1.0 |]
                    [| 0.5 |]
                    [| 0.15; 0.4 |]
                    mu
                    scale

            fitWith (FitConfig.defaults 2 Identity) (Sampler.sampleCovariates mu scale truth 20_000 112L))
        "defaults-relu-passes",
        (fun () ->
            let truth = GroundTruth.random 3 6 Relu 0.1 1.0 true 5L
            let source = shardsOf (Sampler.sample truth 40_000 113L) 2
            (Learner.fitSource (FitConfig.defaults 3 Relu) source 10_000 silent).Model)
        "defaults-em-starts",
        (fun () ->
            fitWith
                { FitConfig.defaults 2 Identity with
                    Method = FitMethod.Em
                    RandomStarts = 3
                    Seed = 6L
                }
                (Sampler.sample paperRandom 20_000 114L))
        "defaults-spectral",
        (fun () ->
            let truth = GroundTruth.random 3 5 Identity 0.1 1.0 true 8L

            fitWith
                { FitConfig.defaults 3 Identity with
                    Method = FitMethod.Spectral
                }
                (Sampler.sample truth 20_000 115L))
        "tone-k2", (fun () -> fitWith (FitConfig.defaults 2 Identity) (publicData "tone.csv"))
        "tone-k4", (fun () -> fitWith (FitConfig.defaults 4 Identity) (publicData "tone.csv"))
        "faithful-k2", (fun () -> fitWith (FitConfig.defaults 2 Identity) (publicData "faithful.csv"))
        "trajectories",
        (fun () ->
            // The figures' three SGD runs, short: their last iterates packed into one model file.
            let data = Sampler.sample paper 8_000 111L

            let sgd =
                {
                    Epochs = 4
                    BatchSize = 512
                    LearningRate = 0.003
                    FinalLearningRate = 0.0003
                    Clip = 5.0
                }

            let l4 =
                Trajectories.sgdL4Path
                    (Coefficients.solve Identity 0.05)
                    {
                        Weights = L4Weights.create 0.1 10.0 4.0 true
                        Schedule = sgd
                    }
                    2
                    11L
                    data.X
                    data.Y
                    silent

            let l2 =
                Trajectories.sgdL2Path
                    { sgd with
                        LearningRate = 0.05
                        FinalLearningRate = 0.005
                    }
                    2
                    Identity
                    11L
                    data.X
                    data.Y
                    silent

            let gating =
                Trajectories.sgdGatingPath
                    { sgd with
                        LearningRate = 1.0
                        FinalLearningRate = 0.1
                    }
                    paper
                    11L
                    data.X
                    data.Y
                    silent

            let a =
                Array2D.init 4 10 (fun i t ->
                    if i < 2 then
                        l4.[l4.Length - 1].[i, t]
                    else
                        (Array.last l2).Regressors.[i - 2, t])

            let w =
                Array2D.init 3 10 (fun i t ->
                    if i = 0 then (Array.last gating).[0, t]
                    elif i = 1 then (Array.last l2).Gating.[0, t]
                    else 0.0)

            MoeModel.create a w Identity 1.0)
    ]

let private names = cases |> List.map (fst >> Array.singleton) |> List.toArray

/// The golden cases (xunit member data).
let goldenCases: obj[] seq = names |> Seq.map (fun n -> [| box n.[0] |])

let private numbers (model: MoeModel) =
    Array.concat
        [
            Seq.toArray (Seq.cast<float> model.Regressors)
            Seq.toArray (Seq.cast<float> model.Gating)
            model.RegressorIntercepts
            model.GatingIntercepts
            model.Sigmas
        ]

/// The fit with its experts in the recorded model's order: fitted expert i is matched to recorded expert π(i) by the
/// regressors (Metrics.compare), so new expert π(i) is old expert i.
let private inOrderOf (recorded: MoeModel) (model: MoeModel) =
    let pi = (Metrics.compare model recorded).Permutation
    let order = Array.zeroCreate pi.Length

    pi |> Array.iteri (fun i j -> order.[j] <- i)
    MoeModel.relabel order model

/// golden/machine.txt: "name: Vector512=… Vector256=…" per case (a line without a name applies to every case not
/// named), so cases recorded on machines of different widths can live side by side.
let private machineFile = "machine.txt"

let private recordedMachines (folder: string) =
    let path = Path.Combine(folder, machineFile)

    if File.Exists path then
        File.ReadAllLines path
        |> Array.filter (fun l -> l.Trim() <> "")
        |> Array.map (fun l ->
            match l.IndexOf ": " with
            | -1 -> "", l.Trim()
            | i -> l.Substring(0, i).Trim(), l.Substring(i + 2).Trim())
        |> Map.ofArray
    else
        Map.empty

let private machineOf (records: Map<string, string>) (name: string) =
    match Map.tryFind name records with
    | Some m -> m
    | None -> Map.tryFind "" records |> Option.defaultValue "(not recorded)"

[<Theory>]
[<MemberData(nameof goldenCases)>]
let ``seeded fits reproduce their golden model files`` (name: string) =
    let model = (cases |> List.find (fun (n, _) -> n = name) |> snd) ()
    let json = ModelJson.serialize model

    if Environment.GetEnvironmentVariable "MOE_WRITE_GOLDEN" = "1" then
        Directory.CreateDirectory sourceFolder |> ignore
        File.WriteAllText(Path.Combine(sourceFolder, name + ".json"), json)
        let records = recordedMachines sourceFolder

        let lines =
            names
            |> Array.map (fun n -> n.[0])
            |> Array.choose (fun n ->
                if n = name then
                    Some(n + ": " + machine)
                elif File.Exists(Path.Combine(sourceFolder, n + ".json")) then
                    Some(n + ": " + machineOf records n)
                else
                    None)

        File.WriteAllLines(Path.Combine(sourceFolder, machineFile), lines)
    else
        let expected = File.ReadAllText(Path.Combine(folder, name + ".json"))
        let recorded = machineOf (recordedMachines folder) name

        if
            recorded = machine
            && Environment.GetEnvironmentVariable "MOE_GOLDEN_TOLERANCE" <> "1"
        then
            Assert.Equal(expected, json)
        else
            let reference = ModelJson.deserialize expected
            let e = numbers reference
            let a = numbers (inOrderOf reference model)
            Assert.Equal(e.Length, a.Length)

            Array.iteri2
                (fun i u v ->
                    Tolerance.assertClose
                        acrossWidths
                        u
                        v
                        (sprintf "%s parameter %d (%s vs %s)" name i recorded machine))
                e
                a
