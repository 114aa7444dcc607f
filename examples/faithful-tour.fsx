// The real-data tour in F# (examples/MoE.Tour is the C# one): Old Faithful (tests/data/faithful.csv; x1 = eruption
// length, y = waiting time to the next eruption, both in minutes). Choose k by BIC, fit the mixture in an ML.NET
// pipeline, compare it with ML.NET's Sdca and FastTree on the same 10 held-out folds, and draw the experts and gate.
// Run after `dotnet build -c Release`:  dotnet fsi examples/faithful-tour.fsx [output folder]   (default out/tour-fsx)
#r "nuget: MathNet.Numerics, 5.0.0"
#r "nuget: System.Numerics.Tensors, 10.0.12"
#r "nuget: csFastFloat, 4.1.6"
#r "nuget: Microsoft.ML, 6.0.0"
#r "nuget: Microsoft.ML.FastTree, 6.0.0"
#r "nuget: Microsoft.Data.Analysis, 0.24.0"
#r "nuget: ScottPlot, 5.1.59"
#r "nuget: Google.Protobuf, 3.36.2"
#r "../MoE.Core/bin/Release/net10.0/MoE.Core.dll"
#r "../MoE.Onnx/bin/Release/net10.0/MoE.Onnx.dll"
#r "../MoE.Api/bin/Release/net10.0/MoE.Api.dll"
#r "../MoE.ML/bin/Release/net10.0/MoE.ML.dll"

open System
open System.IO
open Microsoft.ML
open Microsoft.ML.Data
open MoE.Api
open MoE.ML
open ScottPlot

let folder =
    match fsi.CommandLineArgs |> Array.tail with
    | [| dir |] -> dir
    | _ -> Path.Combine("out", "tour-fsx")

Directory.CreateDirectory folder |> ignore
let data = Dataset.LoadCsv(Path.Combine(__SOURCE_DIRECTORY__, "..", "tests", "data", "faithful.csv"))

// ---- 1. k = 1..4, chosen by BIC.
let selection = MoeLearner.Select(data, FitOptions(Experts = 2, Seed = 1L), [ 1; 2; 3; 4 ])

for c in selection.Results do
    printfn "k = %d: log-likelihood %.4f, BIC %.2f" c.Experts c.LogLikelihood c.Bic

let k = max selection.Chosen 2
printfn "BIC chooses k = %d" selection.Chosen

// ---- 2. ML.NET pipelines over a DataFrame (an IDataView): float label and features, then a trainer. An empty
// EstimatorChain starts each one, so F# needs no casts between estimator types.
[<CLIMutable>]
type Scored = { Score: float32 }

let ml = MLContext(seed = 1)

let prepare () =
    EstimatorChain<ITransformer>()
        .Append(ml.Transforms.Conversion.ConvertType([| InputOutputColumnPair("Label", "y"); InputOutputColumnPair("x1") |], DataKind.Single))
        .Append(ml.Transforms.Concatenate("Features", "x1"))

// IEstimator<out T> is covariant, which C# uses implicitly and F# cannot: a runtime cast does it.
let general (estimator: IEstimator<'T>) = box estimator :?> IEstimator<ITransformer>

let mixture () = prepare().Append(ml.Regression.Trainers.MixtureOfExperts(experts = k)) |> general

let sdca () =
    // One thread: Sdca's parallel updates make its result vary from run to run in the third digit.
    let options = Trainers.SdcaRegressionTrainer.Options(L2Regularization = 0.01f, NumberOfThreads = 1)

    prepare().Append(ml.Transforms.NormalizeMeanVariance("Features")).Append(ml.Regression.Trainers.Sdca(options))
    |> general

let fastTree () = prepare().Append(ml.Regression.Trainers.FastTree()) |> general

let subset (rows: int[]) =
    let x = Array2D.init rows.Length data.Dimension (fun i j -> data.X.[rows.[i], j])
    Dataset.FromArrays(x, rows |> Array.map (fun r -> data.Y.[r]))

let scores (model: ITransformer) (rows: Dataset) =
    ml.Data.CreateEnumerable<Scored>(model.Transform(rows.ToDataFrame()), reuseRowObject = false)
    |> Seq.map (fun s -> float s.Score)
    |> Array.ofSeq

let mixtureOf (model: ITransformer) =
    (model :?> seq<ITransformer>) |> Seq.tryPick (function :? MixtureOfExpertsTransformer as m -> Some m.Model | _ -> None)

// ---- 3. Ten folds, the same for every model: RMSE and the held-out log-likelihood per row (the mixture's density;
// for the regressors a normal around the prediction with the training residuals' variance).
let folds = 10
let order = Array.init data.Count id
Random(1).Shuffle(order)

let crossValidate (name: string) (pipeline: unit -> IEstimator<ITransformer>) =
    let mutable squares, logLik = 0.0, 0.0

    for f in 0 .. folds - 1 do
        let test = order |> Array.indexed |> Array.filter (fun (i, _) -> i % folds = f) |> Array.map snd |> subset
        let train = order |> Array.indexed |> Array.filter (fun (i, _) -> i % folds <> f) |> Array.map snd |> subset
        let model = pipeline().Fit(train.ToDataFrame())
        let s = scores model test
        squares <- squares + Array.fold2 (fun acc p y -> acc + (p - y) ** 2.0) 0.0 s test.Y

        logLik <-
            logLik
            + match mixtureOf model with
              | Some m ->
                  // The mixture saw the features as floats: score the held-out rows in the same precision.
                  let xf = Array2D.map (fun (v: float) -> float (float32 v)) test.X
                  m.LogLikelihood(xf, test.Y |> Array.map (fun y -> float (float32 y)))
              | None ->
                  let variance = Array.map2 (fun p y -> (p - y) ** 2.0) (scores model train) train.Y |> Array.average
                  Array.fold2 (fun acc p y -> acc - 0.5 * (log (2.0 * Math.PI * variance) + (y - p) ** 2.0 / variance)) 0.0 s test.Y

    printfn "| %s | %.3f | %.4f |" name (sqrt (squares / float data.Count)) (logLik / float data.Count)

printfn "| model | held-out RMSE (min) | log-likelihood per row |"
printfn "|---|---|---|"
crossValidate (sprintf "mixture of experts, k = %d" k) mixture
crossValidate "Sdca (linear), l2 = 0.01" sdca
crossValidate "FastTree (boosted trees)" fastTree

// ---- 4. The mixture on all rows, drawn: the data coloured by their most likely expert, each expert's line, the
// gate below.
let fitted = (mixture ()).Fit(data.ToDataFrame()) |> mixtureOf |> Option.get
let grid = Array.init 200 (fun t -> 1.5 + 3.7 * float t / 199.0)
let p = fitted.PredictDistribution(Array2D.init grid.Length 1 (fun t _ -> grid.[t]))
let post = fitted.Responsibilities(data.X, data.Y)
let top, bottom = new Plot(), new Plot()

for i in 0 .. fitted.Experts - 1 do
    let color = Colors.Category10.[i]
    let mine = [| for r in 0 .. data.Count - 1 do if Array.maxBy (fun j -> post.[r, j]) [| 0 .. fitted.Experts - 1 |] = i then r |]
    top.Add.ScatterPoints(mine |> Array.map (fun r -> data.X.[r, 0]), mine |> Array.map (fun r -> data.Y.[r]), color.WithAlpha(0.6)).LegendText <- sprintf "most likely expert %d" (i + 1)
    top.Add.ScatterLine(grid, Array.init grid.Length (fun t -> p.ExpertMeans.[t, i]), color).LegendText <- sprintf "expert %d" (i + 1)
    bottom.Add.ScatterLine(grid, Array.init grid.Length (fun t -> p.Gate.[t, i]), color).LegendText <- sprintf "p%d(x)" (i + 1)

top.Title("Old Faithful: the mixture of experts (F#)")
top.YLabel("waiting time (min)")
top.ShowLegend(Alignment.UpperLeft) |> ignore
bottom.XLabel("eruption length (min)")
bottom.YLabel("gate probability")
bottom.ShowLegend(Alignment.MiddleRight) |> ignore
let multiplot = Multiplot()
multiplot.Reset(top)
multiplot.AddPlot(bottom)
let png = Path.Combine(folder, "faithful-tour-fsx.png")
multiplot.SavePng(png, 900, 800) |> ignore
printfn "log-likelihood on all rows %.4f (R flexmix: -851.3191); figure %s" (fitted.LogLikelihood(data.X, data.Y)) png

// The fitted mixture for other runtimes: an ONNX graph (docs/deploying.md), scored by ONNX Runtime in Python, C++ or JS.
let onnx = Path.Combine(folder, "faithful.onnx")
fitted.SaveOnnx onnx
printfn "ONNX model %s (%d bytes)" onnx (FileInfo(onnx).Length)

// The same reference the C# tour checks (R flexmix: k = 2 by BIC, log-likelihood −851.3191).
if selection.Chosen <> 2 || abs (fitted.LogLikelihood(data.X, data.Y) + 851.3191) > 0.05 then
    eprintfn "faithful-tour: the fit misses the reference"
    exit 1
