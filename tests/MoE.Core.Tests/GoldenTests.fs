/// Golden models: seeded fits whose model files are committed (tests/MoE.Core.Tests/golden). A refactor that
/// claims "behaviour unchanged" must reproduce them byte for byte. Regenerate (only for a deliberate change of
/// behaviour, said so in the commit) with MOE_WRITE_GOLDEN=1 dotnet test --filter GoldenTests.
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
let private acrossWidths = 1e-6

let private silent = RunContext.silent

let private fitWith (config: FitConfig) (data: Dataset) = (Learner.fit config data silent).Model

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
            let data = Sampler.sample paper 30_000 110L

            // Three shards of 10,000 rows read again for every pass (8,000 rows in memory).
            let shard (c: int) : Shard =
                {
                    Name = Text.format "shard %d" [| box c |]
                    Rows = 10_000L
                    Read =
                        fun () ->
                            Seq.singleton
                                {
                                    X = Array2D.init 10_000 10 (fun r t -> data.X.[c * 10_000 + r, t])
                                    Y = Array.sub data.Y (c * 10_000) 10_000
                                }
                    Remote = None
                }

            let source =
                {
                    Dimension = 10
                    Shards = Array.init 3 shard
                }

            (Learner.fitSource (FitConfig.paper 2 Identity) source 8_000 silent).Model)
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
            [| model.Sigma |]
        ]

[<Theory>]
[<MemberData(nameof goldenCases)>]
let ``seeded fits reproduce their golden model files`` (name: string) =
    let model = (cases |> List.find (fun (n, _) -> n = name) |> snd) ()
    let json = ModelJson.serialize model

    if Environment.GetEnvironmentVariable "MOE_WRITE_GOLDEN" = "1" then
        Directory.CreateDirectory sourceFolder |> ignore
        File.WriteAllText(Path.Combine(sourceFolder, name + ".json"), json)
        File.WriteAllText(Path.Combine(sourceFolder, "machine.txt"), machine + "\n")
    else
        let expected = File.ReadAllText(Path.Combine(folder, name + ".json"))
        let recorded = File.ReadAllText(Path.Combine(folder, "machine.txt")).Trim()

        if
            recorded = machine
            && Environment.GetEnvironmentVariable "MOE_GOLDEN_TOLERANCE" <> "1"
        then
            Assert.Equal(expected, json)
        else
            let e = numbers (ModelJson.deserialize expected)
            let a = numbers model

            Array.iteri2
                (fun i u v ->
                    Tolerance.assertClose
                        acrossWidths
                        u
                        v
                        (sprintf "%s parameter %d (%s vs %s)" name i recorded machine))
                e
                a
