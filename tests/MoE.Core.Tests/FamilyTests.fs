/// The expert family (Model/Families/): its name in files, its parameters' count (the one count behind the
/// information criteria, the data check and the memory bound), and the model file's family field.
module MoE.Core.Tests.FamilyTests

open System
open System.IO
open Xunit
open MoE.Core

[<Fact>]
let ``family names parse in any case, and an unknown one is refused with the known ones`` () =
    Assert.Equal(ExpertFamily.Gaussian, ExpertFamily.parse " Gaussian ")
    Assert.Equal("gaussian", ExpertFamily.Gaussian.Name)

    let e =
        Assert.Throws<ArgumentException>(fun () -> ExpertFamily.parse "cauchy" |> ignore)

    Assert.Equal("name", e.ParamName)
    Assert.Contains("'cauchy'", e.Message)
    Assert.Contains("gaussian", e.Message)

[<Fact>]
let ``the parameter count is k expert widths, k - 1 gate widths and the family's levels`` () =
    // The paper's model, d = 10, k = 2: 2·10 + 10 + one σ.
    Assert.Equal(31L, FitConfig.parameterCount (FitConfig.paper 2 Identity) 10)
    // The defaults add intercepts and a σ per expert: 2·11 + 11 + 2.
    Assert.Equal(35L, FitConfig.parameterCount (FitConfig.defaults 2 Identity) 10)
    // tone with k = 4 (d = 1): 4·2 + 3·2 + 4 = 18 (the data check once counted the paper's 8).
    Assert.Equal(18L, FitConfig.parameterCount (FitConfig.defaults 4 Identity) 1)
    // Separate widths: 3 experts of width 4, gate rows of width 2, a common σ.
    Assert.Equal(3L * 4L + 2L * 2L + 1L, ExpertFamily.parameterCount ExpertFamily.Gaussian 3 4 2 true)
    // No int overflow at absurd k.
    Assert.True(ExpertFamily.parameterCount ExpertFamily.Gaussian Int32.MaxValue 2 2 false > int64 Int32.MaxValue)

let private json (family: string) =
    sprintf
        """{ "k": 2, "d": 1, %s"activation": { "name": "identity" }, "sigma": 0.5, "regressors": [[1], [2]], "gating": [[0.5]] }"""
        family

[<Fact>]
let ``a model file without a family holds Gaussian experts, and names its family only when it is another`` () =
    let plain = ModelJson.deserialize (json "")
    Assert.Equal(ExpertFamily.Gaussian, plain.Family)
    Assert.Equal(ExpertFamily.Gaussian, (ModelJson.deserialize (json "\"family\": \"gaussian\", ")).Family)
    Assert.DoesNotContain("family", ModelJson.serialize plain)

    let e =
        Assert.Throws<InvalidDataException>(fun () -> ModelJson.deserialize (json "\"family\": \"cauchy\", ") |> ignore)

    Assert.Contains("$.family", e.Message)
    Assert.Contains("'cauchy'", e.Message)

    let e =
        Assert.Throws<InvalidDataException>(fun () -> ModelJson.deserialize (json "\"family\": 3, ") |> ignore)

    Assert.Contains("$.family", e.Message)

/// The repository's root, found from the test's bin folder (not the source path: CI builds map source paths).
let private root () =
    let rec up (dir: DirectoryInfo) =
        if isNull dir then
            raise (DirectoryNotFoundException "the repository root (MoE.sln) is not above the test's folder")
        elif File.Exists(Path.Combine(dir.FullName, "MoE.sln")) then
            dir.FullName
        else
            up dir.Parent

    up (DirectoryInfo AppContext.BaseDirectory)

/// README.md's model file with every field is a valid model file, and says what its prose says: a split design
/// (experts on inputs 0 and 1, the gate on input 2), Gaussian experts, intercepts and a level per expert — and
/// written back it is the same text but for the defaults the writer leaves out (the family) and its layout.
[<Fact>]
let ``the README's model file with every field reads as it says`` () =
    let lines = File.ReadAllLines(Path.Combine(root (), "README.md"))
    let start = lines |> Array.findIndex (fun l -> l.Trim() = "```json")

    let stop =
        start
        + 1
        + (lines.[start + 1 ..] |> Array.findIndex (fun l -> l.Trim() = "```"))

    let json = String.Join("\n", lines.[start + 1 .. stop - 1])
    let model = ModelJson.deserialize json
    Assert.Equal<int[]>([| 0; 1 |], model.Design.ExpertColumns)
    Assert.Equal<int[]>([| 2 |], model.Design.GateColumns)
    Assert.Equal(3, model.Dimension)
    Assert.Equal(ExpertFamily.Gaussian, model.Family)
    Assert.Equal(LeakyRelu 0.1, model.Activation)
    Assert.Equal<float[]>([| 0.1; 0.3 |], model.Sigmas)
    Assert.Equal<float[]>([| 0.5; -1.0 |], model.RegressorIntercepts)
    Assert.Equal(ModelJson.serialize model, ModelJson.serialize (ModelJson.deserialize (ModelJson.serialize model)))
