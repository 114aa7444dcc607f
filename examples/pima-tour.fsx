// The yes/no tour in F# (examples/MoE.BinaryTour is the C# one): Pima Indians diabetes (tests/data/pima.csv; seven
// clinical covariates, diabetes 0/1). Choose the number of logistic experts by BIC with the core's functions, then
// cross-validate a mixture of logistic experts and ML.NET's logistic regression with ML.NET's own CrossValidate.
// Run after `dotnet build -c Release`:  dotnet fsi examples/pima-tour.fsx [output folder]   (default out/pima-tour-fsx)
#r "nuget: MathNet.Numerics, 5.0.0"
#r "nuget: System.Numerics.Tensors, 10.0.12"
#r "nuget: csFastFloat, 4.1.6"
#r "nuget: Microsoft.ML, 6.0.0"
#r "nuget: Microsoft.Data.Analysis, 0.24.0"
#r "nuget: Google.Protobuf, 3.36.2"
#r "../MoE.Core/bin/Release/net10.0/MoE.Core.dll"
#r "../MoE.Onnx/bin/Release/net10.0/MoE.Onnx.dll"
#r "../MoE.Api/bin/Release/net10.0/MoE.Api.dll"
#r "../MoE.ML/bin/Release/net10.0/MoE.ML.dll"

open System
open System.IO
open Microsoft.ML
open Microsoft.ML.Data
open MoE.Core
open MoE.ML

let folder =
    match fsi.CommandLineArgs |> Array.tail with
    | [| dir |] -> dir
    | _ -> Path.Combine("out", "pima-tour-fsx")

Directory.CreateDirectory folder |> ignore
let data = DataCsv.load (Path.Combine(__SOURCE_DIRECTORY__, "..", "tests", "data", "pima.csv"))
let lines = ResizeArray<string>()

let say (line: string) =
    printfn "%s" line
    lines.Add line

// ---- 1. k by BIC: k = 1 is one logistic regression; a mixture whose expert separates its rows is guarded and flagged.
let config =
    { FitConfig.defaults 2 Identity with
        Family = ExpertFamily.Bernoulli
        Seed = 1L
    }

let choices = Inference.selectExperts config [| 1; 2; 3 |] data RunContext.silent
say "| k | log-likelihood | parameters | BIC | separated |"
say "|---|---|---|---|---|"

for c in choices do
    say (sprintf "| %d | %.4f | %d | %.2f | %b |" c.Experts c.LogLikelihood c.Parameters c.Bic (Inference.isDegenerate c))

let chosen, _ = Inference.choose choices
say (sprintf "\nBIC chooses k = %d (R flexmix: k = 1, log-likelihood -233.1611)." chosen)

// ---- 2. ML.NET's cross-validation (its own 5 folds, seeded) of the mixture and of its logistic regression.
type Row = { Features: float32[]; Label: bool }

let ml = MLContext(seed = 1)
let schema = SchemaDefinition.Create(typeof<Row>)
schema.["Features"].ColumnType <- VectorDataViewType(NumberDataViewType.Single, data.Dimension)

let view =
    ml.Data.LoadFromEnumerable(
        [ for r in 0 .. data.Count - 1 ->
              { Features = Array.init data.Dimension (fun j -> float32 data.X.[r, j]); Label = data.Y.[r] > 0.5 } ],
        schema
    )

// IEstimator<out T> is covariant, which C# uses implicitly and F# cannot: a runtime cast does it.
let general (estimator: IEstimator<'T>) = box estimator :?> IEstimator<ITransformer>

let crossValidate (name: string) (trainer: IEstimator<'T>) =
    let pipeline =
        EstimatorChain<ITransformer>()
            .Append(general (ml.Transforms.NormalizeMeanVariance("Features")))
            .Append(general trainer)
        |> general

    let folds = ml.BinaryClassification.CrossValidateNonCalibrated(view, pipeline, numberOfFolds = 5)
    let auc = folds |> Seq.averageBy (fun f -> f.Metrics.AreaUnderRocCurve)
    let accuracy = folds |> Seq.averageBy (fun f -> f.Metrics.Accuracy)
    say (sprintf "| %s | %.4f | %.4f |" name auc accuracy)

say "\n| model (5-fold CV) | mean AUC | mean accuracy |"
say "|---|---|---|"
crossValidate "mixture of 2 logistic experts" (ml.BinaryClassification.Trainers.MixtureOfExperts(experts = 2))
crossValidate "LbfgsLogisticRegression" (ml.BinaryClassification.Trainers.LbfgsLogisticRegression())
File.WriteAllLines(Path.Combine(folder, "pima-tour-fsx.md"), lines)

if chosen <> 1 || abs (choices.[0].LogLikelihood - -233.1611) > 1e-3 then
    eprintfn "pima-tour.fsx: k = 1 misses flexmix's logistic regression or BIC chose another k"
    exit 1
