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
