/// Columns in roles (IO/ColumnRoles.fs, docs/data.md): formulas parse into the roles they say; a CSV read by name gives
/// the bits a positional read gives whatever the column order, skipping columns nobody asked for; the roles resolve
/// into a design that names its columns; the model file carries the names and reads new rows by them; and a gate that
/// reads its own columns is recovered where a gate confined to the experts' columns is measurably worse.
[<FsCheck.Xunit.Properties(MaxTest = 40)>]
module MoE.Core.Tests.ColumnRolesTests

open System
open System.Globalization
open System.IO
open FsCheck.FSharp
open FsCheck.Xunit
open Xunit
open MoE.Core

let private withDir (f: string -> unit) =
    let dir = Directory.CreateTempSubdirectory("moe-roles-")

    try
        f dir.FullName
    finally
        dir.Delete true

let private r (v: float) =
    v.ToString("R", CultureInfo.InvariantCulture)

/// Writes columns (name, text of each row) as a CSV.
let private writeColumns (path: string) (columns: (string * string[])[]) =
    let n = (snd columns.[0]).Length

    let lines =
        [|
            String.Join(",", columns |> Array.map fst)
            for i in 0 .. n - 1 do
                String.Join(",", columns |> Array.map (fun (_, v) -> v.[i]))
        |]

    File.WriteAllLines(path, lines)

[<Fact>]
let ``a formula says the response, the experts' columns and the gate's`` () =
    let roles = ColumnRoles.parseFormula " count ~ a + `b c` | z1+z2 "
    Assert.Equal(Some "count", roles.Response)
    Assert.Equal<string[]>([| "a"; "b c" |], roles.Experts.Value)
    Assert.Equal<string[]>([| "z1"; "z2" |], roles.Gate.Value)

    let dot = ColumnRoles.parseFormula "y ~ ."
    Assert.Equal(Some "y", dot.Response)
    Assert.True(dot.Experts.IsNone && dot.Gate.IsNone)

    let gateOnly = ColumnRoles.parseFormula "y ~ . | z"
    Assert.True(gateOnly.Experts.IsNone)
    Assert.Equal<string[]>([| "z" |], gateOnly.Gate.Value)

    for formula, fragment in
        [
            "y x1", "there is no '~'"
            "y ~ x1 ~ x2", "'~' may appear once"
            " ~ x1", "the response (left of '~') is missing"
            "y + z ~ x1", "must be the one response column"
            "y ~ x1 | z | w", "'|' may appear once"
            "y ~ x1 * x2", "the term 'x1 * x2' is not a column name"
            "y ~ log(x1)", "the term 'log(x1)' is not a column name"
            "y ~ x1 + 1", "intercepts are not written in the formula"
            "y ~ x1 + ", "has an empty term"
            "y ~ | z", "is empty"
            "y ~ x1 + .", "'.' must stand alone"
        ] do
        let e =
            Assert.Throws<ArgumentException>(fun () -> ColumnRoles.parseFormula formula |> ignore)

        Assert.Contains(fragment, e.Message)
        Assert.Contains(formula, e.Message)

/// Random roles over a random header: written as a formula, they parse back to themselves.
[<Property>]
let ``roles written as a formula parse back to themselves`` () =
    let name = Gen.elements [ "a"; "b"; "x1"; "x_2"; "rate.per"; "Z"; "w3" ]

    let names =
        gen {
            let! count = Gen.choose (1, 4)
            let! picked = Gen.shuffle [| "a"; "b"; "x1"; "x_2"; "rate.per"; "Z"; "w3" |]
            return Array.sub picked 0 count
        }

    let roles =
        gen {
            let! response = name
            let! experts = Gen.optionOf names
            let! gate = Gen.optionOf names
            return response, experts, gate
        }

    Prop.forAll (Arb.fromGen roles) (fun (response, experts, gate) ->
        let side (names: string[] option) =
            match names with
            | Some n -> String.Join(" + ", n)
            | None -> "."

        let formula =
            match gate with
            | Some _ -> sprintf "%s ~ %s | %s" response (side experts) (side gate)
            | None -> sprintf "%s ~ %s" response (side experts)

        let parsed = ColumnRoles.parseFormula formula
        Assert.Equal(Some response, parsed.Response)
        Assert.Equal(experts, parsed.Experts)
        Assert.Equal(gate, parsed.Gate))

/// A data set of n ∈ 1..30 rows and m ∈ 1..5 inputs written under a shuffled header with a text column among them:
/// read by name, in any order asked, it gives exactly the doubles of the positional columns (the same parser); the text
/// column is never parsed.
[<Property>]
let ``a CSV read by name gives the named columns' doubles in the order asked, whatever the file's order`` () =
    let case =
        gen {
            let! m = Gen.choose (1, 5)
            let! n = Gen.choose (1, 30)
            let! x = Generators.matrix n m -1e6 1e6
            let! y = Generators.vector n -10.0 10.0
            let! fileOrder = Gen.shuffle [| 0..m |] // m stands for y
            let! asked = Gen.shuffle [| 0 .. m - 1 |]
            let! textAt = Gen.choose (0, m + 1)
            return x, y, fileOrder, asked, textAt
        }

    Prop.forAll (Arb.fromGen case) (fun (x, y, fileOrder, asked, textAt) ->
        withDir (fun dir ->
            let n, m = x.GetLength 0, x.GetLength 1

            let name c =
                if c = m then "resp" else sprintf "v%d" c

            let columns =
                fileOrder
                |> Array.map (fun c -> name c, Array.init n (fun i -> if c = m then r y.[i] else r x.[i, c]))
                |> Array.toList

            let withText =
                List.insertAt textAt ("label", Array.init n (fun i -> if i % 2 = 0 then "yes" else "no")) columns
                |> List.toArray

            let path = Path.Combine(dir, "d.csv")
            writeColumns path withText
            let names = asked |> Array.map name
            let data = DataCsv.loadColumns path (Some names) (Some "resp")
            Assert.Equal(n, data.Count)

            for i in 0 .. n - 1 do
                Assert.Equal(y.[i], data.Y.[i])

                asked |> Array.iteri (fun t c -> Assert.Equal(x.[i, c], data.X.[i, t]))

            let streamed =
                DataSource.load (DataCsv.sourceColumns path (Some names) (Some "resp") MissingValues.Refuse [||])

            Assert.Equal<float[]>(data.Y, streamed.Y)
            Assert.Equal<float[,]>(data.X, streamed.X)

            // New rows without the response read the same inputs.
            let covariates, responses =
                DataCsv.loadNamedCovariates
                    path
                    {
                        Inputs = names
                        Response = "absent"
                        Levels = [||]
                    }
                    MissingValues.Refuse

            Assert.True(responses.IsNone)
            Assert.Equal<float[,]>(data.X, covariates)))

[<Fact>]
let ``a CSV read by name refuses a missing, repeated or doubly used column, and a text value in a chosen column`` () =
    withDir (fun dir ->
        let path = Path.Combine(dir, "d.csv")
        File.WriteAllLines(path, [| "a,b,name,y"; "1,2,x,3"; "4,5,y,6" |])

        for xNames, yName, fragment in
            [
                Some [| "a"; "q" |], None, "there is no column 'q' (an input); the header has a, b, name, y."
                Some [| "a"; "a" |], None, "the input column 'a' is chosen 2 times"
                Some [| "a"; "y" |], None, "the column 'y' cannot be both an input and the response"
                Some [| "a" |], Some "zz", "there is no column 'zz' (the response)"
                Some [| "a"; "name" |], None, "line 2, column 3: 'x' is not a number"
            ] do
            let e =
                Assert.Throws<InvalidDataException>(fun () -> DataCsv.loadColumns path xNames yName |> ignore)

            Assert.Contains(fragment, e.Message)

        File.WriteAllLines(path, [| "a,b,a,y"; "1,2,3,4" |])

        let e =
            Assert.Throws<InvalidDataException>(fun () -> DataCsv.loadColumns path (Some [| "a" |]) None |> ignore)

        Assert.Contains("the header names the column 'a' 2 times", e.Message)

        File.WriteAllLines(path, [| "a,b"; "1,2" |])

        let e =
            Assert.Throws<InvalidDataException>(fun () -> DataCsv.loadColumns path (Some [| "a" |]) None |> ignore)

        Assert.Contains("there is no response column 'y'; the header has a, b: name the response (--y)", e.Message))

[<Fact>]
let ``roles resolve into a design over the experts' columns then the gate's others, with every name`` () =
    let header = [| "id"; "z"; "x1"; "count"; "x2" |]

    let design =
        ColumnRoles.resolve "f.csv" header header [||] (ColumnRoles.parseFormula "count ~ x2 + x1 | z + x1")

    Assert.Equal<string[]>([| "x2"; "x1"; "z" |], design.Columns.Value.Inputs)
    Assert.Equal("count", design.Columns.Value.Response)
    Assert.Equal<int[]>([| 0; 1 |], design.ExpertColumns)
    Assert.Equal<int[]>([| 2; 1 |], design.GateColumns)
    Assert.Equal<string[]>([| "z"; "x1" |], design.GateNames.Value)

    // Defaults: y (any case) is the response, the experts read every other column, the gate the experts'.
    let shared =
        ColumnRoles.resolve "f.csv" [| "a"; "Y"; "b" |] [| "a"; "Y"; "b" |] [||] ColumnRoles.defaults

    Assert.True shared.IsShared
    Assert.Equal<string[]>([| "a"; "b" |], shared.Columns.Value.Inputs)
    Assert.Equal("Y", shared.Columns.Value.Response)

    for roles, fragment in
        [
            { ColumnRoles.defaults with
                Response = Some "count"
                Gate = Some [| "x1"; "count" |]
            },
            "the column 'count' is the response; it cannot also be one of the gate's columns"
            { ColumnRoles.defaults with
                Response = Some "count"
                Experts = Some [| "x1"; "x1" |]
            },
            "the experts' columns name the column 'x1' 2 times"
            { ColumnRoles.defaults with
                Response = Some "nope"
            },
            "there is no column 'nope' (the response); the file has id, z, x1, count, x2."
            ColumnRoles.defaults, "there is no column y to take as the response"
        ] do
        let e =
            Assert.Throws<ArgumentException>(fun () -> ColumnRoles.resolve "f.csv" header header [||] roles |> ignore)

        Assert.Contains(fragment, e.Message)

/// Any split design with names: the model file writes the names (and no indices) and reads back the same design,
/// names, parameters and text.
[<Property>]
let ``the model file carries the columns' names and reads back the same design`` () =
    let case =
        gen {
            let! m = Gen.choose (2, 5)
            let! experts = Gen.shuffle [| 0 .. m - 1 |]
            let! eCount = Gen.choose (1, m)
            let! gate = Gen.shuffle [| 0 .. m - 1 |]
            let! gCount = Gen.choose (1, m)
            let! k = Gen.choose (2, 3)
            let e = Array.sub experts 0 eCount
            let g = Array.sub gate 0 gCount
            let! a = Generators.matrix k e.Length -2.0 2.0
            let! w = Generators.matrix (k - 1) g.Length -2.0 2.0
            return m, e, g, a, w
        }

    Prop.forAll (Arb.fromGen case) (fun (m, e, g, a, w) ->
        // Names as the roles give them: the experts' columns, then the gate's others.
        let inputs = Array.append e (g |> Array.filter (fun c -> not (Array.contains c e)))

        let design =
            Design.create
                inputs.Length
                (e |> Array.map (fun c -> Array.IndexOf(inputs, c)))
                (g |> Array.map (fun c -> Array.IndexOf(inputs, c)))
            |> Design.withColumns
                {
                    Inputs = inputs |> Array.map (fun c -> sprintf "col \"%d\" of %d" c m)
                    Response = "the response"
                    Levels = [||]
                }

        let k = a.GetLength 0

        let model =
            MoeModel.createWith
                design
                ExpertFamily.Gaussian
                a
                (Array.zeroCreate k)
                w
                (Array.zeroCreate (k - 1))
                Identity
                (Array.create k 0.5)

        let json = ModelJson.serialize model
        let back = ModelJson.deserialize json
        Assert.Equal(json, ModelJson.serialize back)
        Assert.Contains("\"expertColumns\"", json)
        Assert.DoesNotContain("expertInputs", json)
        Assert.True(Design.same design back.Design)
        Assert.Equal<string[]>(design.Columns.Value.Inputs, back.Design.Columns.Value.Inputs)
        Assert.Equal("the response", back.Design.Columns.Value.Response))

/// The acceptance case of the data issue: experts on x1, x2 and a gate on z1, z2 (disjoint columns), n = 200,000, in a
/// CSV whose columns are in another order and hold a text column nobody reads. Read by a formula, the default method
/// recovers every parameter (E_reg and aligned E_gating ≤ 0.01, the tables' rule); the model records the names and
/// predicts new rows by name, columns shuffled, as it predicts the matrix; and the best fit whose gate may read only the
/// experts' columns is worse on held-out rows by more than 0.05 nats per row — the truth's gate, a function of z, is
/// not visible in x (z ⟂ x), so that fit's gate can do no better than a constant.
[<Fact>]
let ``a gate on its own columns is recovered from a file by formula, and a gate confined to the experts' columns is worse``
    ()
    =
    let design = Design.create 4 [| 0; 1 |] [| 2; 3 |]

    let truth =
        MoeModel.createWith
            design
            ExpertFamily.Gaussian
            (array2D [ [ 1.0; -1.0 ]; [ -0.5; 2.0 ] ])
            [| 0.5; -1.0 |]
            (array2D [ [ 2.0; -1.5 ] ])
            [| 0.3 |]
            Identity
            [| 0.1; 0.2 |]

    let data = Sampler.sample truth 200_000 5L
    let heldOut = Sampler.sample truth 50_000 6L

    withDir (fun dir ->
        let write (path: string) (d: Dataset) (order: int[]) =
            let n = d.Count
            // Columns: 0, 1 = x1, x2; 2, 3 = z1, z2; 4 = y; 5 = a text column.
            let column c =
                match c with
                | 0 -> "x1", Array.init n (fun i -> r d.X.[i, 0])
                | 1 -> "x2", Array.init n (fun i -> r d.X.[i, 1])
                | 2 -> "z1", Array.init n (fun i -> r d.X.[i, 2])
                | 3 -> "z2", Array.init n (fun i -> r d.X.[i, 3])
                | 4 -> "y", Array.init n (fun i -> r d.Y.[i])
                | _ -> "site", Array.init n (fun i -> if i % 3 = 0 then "north" else "south")

            writeColumns path (order |> Array.map column)

        let path = Path.Combine(dir, "train.csv")
        write path data [| 5; 2; 0; 4; 3; 1 |]

        let source, fileDesign =
            DataFiles.withRoles path (ColumnRoles.parseFormula "y ~ x1 + x2 | z1 + z2")

        Assert.True(Design.same design fileDesign)

        let config =
            { FitConfig.defaults 2 Identity with
                Design = Some fileDesign
            }

        let fit = Learner.fitSource config source 1_000_000 RunContext.silent
        let e = Metrics.compare fit.Model truth
        Assert.True(e.RegressorError <= 0.01, sprintf "E_reg %.3g" e.RegressorError)
        Assert.True(e.GatingError <= 0.01, sprintf "E_gating %.3g" e.GatingError)

        // The model file records the names; new rows with shuffled columns and no response are read by them.
        let modelPath = Path.Combine(dir, "model.json")
        ModelJson.save modelPath fit.Model
        let loaded = ModelJson.load modelPath
        Assert.Equal<string[]>([| "x1"; "x2" |], loaded.Design.ExpertNames.Value)
        Assert.Equal<string[]>([| "z1"; "z2" |], loaded.Design.GateNames.Value)
        let newPath = Path.Combine(dir, "new.csv")
        write newPath heldOut [| 3; 5; 1; 2; 0 |]
        let x = DataFiles.covariatesFor loaded newPath MissingValues.Refuse
        Assert.Equal<float[]>(MoeModel.predict fit.Model heldOut.X, MoeModel.predict loaded x)

        // The same data with the gate confined to the experts' columns.
        let xOnly, xDesign =
            DataFiles.withRoles path (ColumnRoles.parseFormula "y ~ x1 + x2")

        let confined =
            Learner.fitSource { config with Design = Some xDesign } xOnly 1_000_000 RunContext.silent

        let heldOutX (columns: int[]) =
            Array2D.init heldOut.Count columns.Length (fun i t -> heldOut.X.[i, columns.[t]])

        let perRow (m: MoeModel) (x: float[,]) =
            MoeModel.logLikelihood m x heldOut.Y / float heldOut.Count

        let own = perRow fit.Model heldOut.X
        let xs = perRow confined.Model (heldOutX [| 0; 1 |])
        Assert.True(own - xs > 0.05, sprintf "held-out log-likelihood per row: own gate %.4f, confined %.4f" own xs))

/// Missing values (IO/MissingValues.fs): refused by default with the line, column and the way out; with the policy
/// drop, the rows that have one in a column read are left out — a column nobody reads may have gaps — and the fit is
/// the fit of the file without those rows, bit for bit, in memory and in passes, with a warning that counts them; new
/// rows to predict keep their places, a row with a gap predicting NaN.
[<Fact>]
let ``rows with a missing value are refused by default, and dropped as asked give the fit of the rows without them``
    ()
    =
    let truth = GroundTruth.orthogonal 2 3 Identity 0.1
    let data = Sampler.sample truth 6_000 8L

    withDir (fun dir ->
        let gapped = Path.Combine(dir, "gapped.csv")
        let clean = Path.Combine(dir, "clean.csv")
        let gap (i: int) = i % 97 = 5
        let na (i: int) = i % 211 = 150

        let line (i: int) =
            let cell t v =
                if t = 1 && gap i then ""
                elif t = 3 && na i then "NA"
                else r v

            // A last column nobody reads, with gaps of its own.
            String.Join(
                ",",
                [|
                    cell 0 data.X.[i, 0]
                    cell 1 data.X.[i, 1]
                    cell 2 data.X.[i, 2]
                    cell 3 data.Y.[i]
                    (if i % 5 = 0 then "" else "note")
                |]
            )

        File.WriteAllLines(gapped, Array.append [| "x1,x2,x3,y,comment" |] (Array.init data.Count line))

        let kept = Array.init data.Count id |> Array.filter (fun i -> not (gap i || na i))

        File.WriteAllLines(
            clean,
            Array.append
                [| "x1,x2,x3,y" |]
                (kept
                 |> Array.map (fun i ->
                     String.Join(",", [| r data.X.[i, 0]; r data.X.[i, 1]; r data.X.[i, 2]; r data.Y.[i] |])))
        )

        let roles = ColumnRoles.parseFormula "y ~ x1 + x2 + x3"

        let refused =
            Assert.Throws<InvalidDataException>(fun () -> DataFiles.withRoles gapped roles |> ignore)

        Assert.Contains(
            "gapped.csv: line 7, column 2: the field is empty: a missing value; leave out the rows",
            refused.Message
        )

        let source, design =
            DataFiles.withRoles
                gapped
                { roles with
                    Missing = MissingValues.Drop
                }

        Assert.Equal(int64 kept.Length, source.Rows)

        Assert.Equal(
            (int64 (data.Count - kept.Length), "gapped.csv, line 7, column 2 ('x2')"),
            DataSource.dropped source
        )

        let config =
            { FitConfig.defaults 2 Identity with
                Design = Some design
            }

        let dropped = Learner.fitSource config source 1_000_000 RunContext.silent
        let streamed = Learner.fitSource config source 2_000 RunContext.silent
        let cleanSource, cleanDesign = DataFiles.withRoles clean roles

        let reference =
            Learner.fitSource
                { config with
                    Design = Some cleanDesign
                }
                cleanSource
                1_000_000
                RunContext.silent

        let streamedReference =
            Learner.fitSource
                { config with
                    Design = Some cleanDesign
                }
                cleanSource
                2_000
                RunContext.silent

        Assert.True(streamed.Passes > 1)
        Assert.Equal(ModelJson.serialize reference.Model, ModelJson.serialize dropped.Model)
        Assert.Equal(ModelJson.serialize streamedReference.Model, ModelJson.serialize streamed.Model)

        let warning =
            dropped.Warnings |> Array.find (fun w -> w.Code = FindingCode.RowsDropped)

        Assert.Contains(
            sprintf "%d of %d rows were left out for a missing value" (data.Count - kept.Length) data.Count,
            warning.Message
        )

        Assert.DoesNotContain(reference.Warnings, fun w -> w.Code = FindingCode.RowsDropped)

        // Prediction keeps every row in its place: a gap in an input gives NaN; a gap in the response does not matter.
        let x = DataFiles.covariatesFor dropped.Model gapped MissingValues.Drop
        Assert.Equal(data.Count, x.GetLength 0)
        let p = Inference.predictWithMissing dropped.Model 0.9 x
        let full = Inference.predict dropped.Model 0.9 data.X

        for i in 0 .. data.Count - 1 do
            if gap i then
                Assert.True(
                    Double.IsNaN p.Mean.[i]
                    && Double.IsNaN p.Lower.[i]
                    && Double.IsNaN p.Gate.[i, 0]
                )
            else
                Assert.Equal(full.Mean.[i], p.Mean.[i])
                Assert.Equal(full.Upper.[i], p.Upper.[i]))

/// Categorical columns (docs/data.md): a text column a role reads enters as the indicators of its levels but the
/// reference (the first in ordinal order unless named), exactly the one-hot coding written by hand; the model file keeps
/// the levels and new rows are coded by them; an unseen level, a single level, too many levels and a text response are
/// refused with the reason.
[<Fact>]
let ``a text column enters as the indicators of its levels, coded as by hand and kept for new rows`` () =
    withDir (fun dir ->
        let regions = [| "west"; "north"; "south" |]
        let n = 3_000
        let rng = Random 4
        let x = Array.init n (fun _ -> rng.NextDouble() * 4.0 - 2.0)
        let region = Array.init n (fun i -> regions.[(i * 7 + i / 3) % 3])

        let shift r =
            match r with
            | "north" -> 0.0
            | "south" -> 1.5
            | _ -> -1.0

        let y =
            Array.init n (fun i -> 2.0 * x.[i] + shift region.[i] + 0.1 * rng.NextDouble())

        let path = Path.Combine(dir, "regions.csv")

        File.WriteAllLines(
            path,
            Array.append
                [| "region,x,y,id" |]
                (Array.init n (fun i -> sprintf "%s,%s,%s,row%d" region.[i] (r x.[i]) (r y.[i]) i))
        )

        let source, design =
            DataFiles.withRoles path (ColumnRoles.parseFormula "y ~ x + region")

        Assert.Equal<string[]>([| "x"; "region=south"; "region=west" |], design.Columns.Value.Inputs)
        Assert.Equal<string[]>([| "north"; "south"; "west" |], snd design.Columns.Value.Levels.[0])
        let data = DataSource.load source

        for i in 0 .. n - 1 do
            Assert.Equal(x.[i], data.X.[i, 0])
            Assert.Equal((if region.[i] = "south" then 1.0 else 0.0), data.X.[i, 1])
            Assert.Equal((if region.[i] = "west" then 1.0 else 0.0), data.X.[i, 2])

        // Another reference: its indicator leaves, north's enters.
        let _, west =
            DataFiles.withRoles
                path
                { ColumnRoles.parseFormula "y ~ x + region" with
                    References = [| "region", "west" |]
                }

        Assert.Equal<string[]>([| "x"; "region=north"; "region=south" |], west.Columns.Value.Inputs)

        // The model file keeps the levels; new rows in another column order are coded by them.
        let model =
            MoeModel.createWith
                design
                ExpertFamily.Gaussian
                (array2D [ [ 2.0; 1.5; -1.0 ]; [ -1.0; 0.0; 0.0 ] ])
                [| 0.0; 0.0 |]
                (array2D [ [ 0.5; 0.0; 0.0 ] ])
                [| 0.0 |]
                Identity
                [| 0.1; 0.1 |]

        let back = ModelJson.deserialize (ModelJson.serialize model)
        Assert.Contains("\"levels\": { \"region\": [\"north\", \"south\", \"west\"] }", ModelJson.serialize model)
        let fresh = Path.Combine(dir, "fresh.csv")
        File.WriteAllLines(fresh, [| "x,region"; "1,south"; "-1,north"; "0.5,west" |])
        let coded = DataFiles.covariatesFor back fresh MissingValues.Refuse
        Assert.Equal<float[,]>(array2D [ [ 1.0; 1.0; 0.0 ]; [ -1.0; 0.0; 0.0 ]; [ 0.5; 0.0; 1.0 ] ], coded)

        File.WriteAllLines(fresh, [| "x,region"; "1,south"; "2,east" |])

        let unseen =
            Assert.Throws<InvalidDataException>(fun () ->
                DataFiles.covariatesFor back fresh MissingValues.Refuse |> ignore)

        Assert.Contains(
            "line 3, column 2: 'east' is not a level of the categorical column 'region' (its levels: north, south, west)",
            unseen.Message
        )

        // Refusals: one level, too many levels (the id column), a text response, an unknown reference.
        let one = Path.Combine(dir, "one.csv")
        File.WriteAllLines(one, [| "g,x,y"; "a,1,2"; "a,2,3"; "a,3,1" |])

        for file, roles, fragment in
            [
                one, "y ~ x + g", "the text column 'g' has the single value 'a': it is constant"
                path, "y ~ x + id", "the text column 'id' has more than 50 distinct values"
                path, "region ~ x", "the response 'region' holds text"
            ] do
            let e =
                Assert.Throws<ArgumentException>(fun () ->
                    DataFiles.withRoles file (ColumnRoles.parseFormula roles) |> ignore)

            Assert.Contains(fragment, e.Message)

        let e =
            Assert.Throws<ArgumentException>(fun () ->
                DataFiles.withRoles
                    path
                    { ColumnRoles.parseFormula "y ~ x + region" with
                        References = [| "region", "east" |]
                    }
                |> ignore)

        Assert.Contains("the reference level 'east' of 'region' is not among its levels north, south, west", e.Message))

/// Real data with text columns (tests/data/README.md): flexmix's dmft (797 children's decayed, missing or filled
/// teeth, a count, with three factors: Gender, Ethnic, Treatment; lBegin = log(Begin + 0.5)), read by a formula with the
/// text columns as they are. One Poisson regression (k = 1, a concave maximum) is R's glm fit with R's own factor
/// coding, −1236.6100 — the indicators are the same model whatever the reference level, so the value checks the coding
/// to R's four printed decimals (and IRLS's 1e-3). Two experts with a gate on the same columns reach flexmix's best of
/// 20 starts, −1210.2380, less 0.05 (seeds 1 and 2; docs/data.md has seeds 1–5: that likelihood has no finite maximum,
/// both flexmix's gate and ours running towards a hard split); without Treatment, every seed of 1–5 does.
[<Fact>]
let ``dmft's text columns give R's Poisson regression and flexmix's mixture`` () =
    let path = Path.Combine(AppContext.BaseDirectory, "data", "dmft.csv")
    let source, design = DataFiles.withRoles path (ColumnRoles.parseFormula "End ~ .")
    let data = DataSource.load source
    Assert.Equal(797, data.Count)
    Assert.Equal(9, data.Dimension)

    let config =
        { FitConfig.defaults 2 Identity with
            Family = ExpertFamily.Poisson
            Design = Some design
        }

    let single = Inference.selectExperts config [| 1 |] data RunContext.silent
    Assert.True(abs (single.[0].LogLikelihood - -1236.6100) < 1e-3, sprintf "k = 1: %.4f" single.[0].LogLikelihood)

    for seed in [ 1L; 2L ] do
        let fit =
            Learner.fitSource { config with Seed = seed } source 1_000_000 RunContext.silent

        let ll = MoeModel.logLikelihood fit.Model data.X data.Y
        Assert.True(ll >= -1210.2380 - 0.05, sprintf "seed %d: %.4f" seed ll)
        Assert.Equal<string[]>(design.Columns.Value.Inputs, fit.Model.Design.Columns.Value.Inputs)

    // Without Treatment the mixture's maximum is finite (flexmix converges, to −1233.7154 from most starts): every seed
    // reaches it less 0.05, and one regression is R's glm, −1250.8558.
    let smaller, smallerDesign =
        DataFiles.withRoles path (ColumnRoles.parseFormula "End ~ lBegin + Gender + Ethnic")

    let smallerData = DataSource.load smaller

    let config =
        { config with
            Design = Some smallerDesign
        }

    let single = Inference.selectExperts config [| 1 |] smallerData RunContext.silent
    Assert.True(abs (single.[0].LogLikelihood - -1250.8558) < 1e-3, sprintf "k = 1: %.4f" single.[0].LogLikelihood)

    for seed in 1L .. 5L do
        let fit =
            Learner.fitSource { config with Seed = seed } smaller 1_000_000 RunContext.silent

        let ll = MoeModel.logLikelihood fit.Model smallerData.X smallerData.Y
        Assert.True(ll >= -1233.7154 - 0.05, sprintf "without Treatment, seed %d: %.4f" seed ll)

/// The choice of k with a split design: k = 1 has no gate, so it is the regression on the experts' columns alone —
/// the same value as the shared design's k = 1 on those columns — and its parameter count leaves the gate out.
[<Fact>]
let ``the single regression of a split design reads the experts' columns`` () =
    let design = Design.create 3 [| 0; 2 |] [| 1 |]

    let truth =
        MoeModel.createWith
            design
            ExpertFamily.Gaussian
            (array2D [ [ 1.0; -1.0 ]; [ -0.5; 2.0 ] ])
            [| 0.5; -1.0 |]
            (array2D [ [ 2.0 ] ])
            [| 0.3 |]
            Identity
            [| 0.2; 0.2 |]

    let data = Sampler.sample truth 5_000 3L

    let config =
        { FitConfig.defaults 2 Identity with
            Design = Some design
        }

    let split = Inference.selectExperts config [| 1 |] data RunContext.silent

    let experts =
        Array2D.init data.Count 2 (fun r t -> data.X.[r, design.ExpertColumns.[t]])

    let shared =
        Inference.selectExperts
            (FitConfig.defaults 2 Identity)
            [| 1 |]
            (Dataset.create experts data.Y)
            RunContext.silent

    Assert.Equal(shared.[0].LogLikelihood, split.[0].LogLikelihood)
    Assert.Equal(shared.[0].Parameters, split.[0].Parameters)

/// A text response of two levels is a yes/no outcome (docs/data.md): Pima's diabetes written as No/Yes reads as the 0/1
/// file does — "No" = 0, the first in ordinal order — so one logistic regression is flexmix's −233.1611 again; naming
/// "Yes" the reference flips the coding (the same likelihood, the coefficients' signs turned); a text response of
/// three values is refused.
[<Fact>]
let ``a two-level text response is a yes/no outcome`` () =
    withDir (fun dir ->
        let lines =
            File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "data", "pima.csv"))

        let path = Path.Combine(dir, "pima-text.csv")

        File.WriteAllLines(
            path,
            lines
            |> Array.mapi (fun i line ->
                if i = 0 then
                    line.Replace(",y", ",diabetes")
                else
                    let cut = line.LastIndexOf ','

                    line.Substring(0, cut + 1)
                    + (if line.Substring(cut + 1) = "1" then "Yes" else "No"))
        )

        let numeric =
            DataCsv.load (Path.Combine(AppContext.BaseDirectory, "data", "pima.csv"))

        let source, design =
            DataFiles.withRoles path (ColumnRoles.parseFormula "diabetes ~ .")

        let data = DataSource.load source
        Assert.Equal<float[]>(numeric.Y, data.Y)
        Assert.Equal<float[,]>(numeric.X, data.X)

        Assert.Equal<string[]>(
            [| "No"; "Yes" |],
            design.Columns.Value.Levels |> Array.find (fun (c, _) -> c = "diabetes") |> snd
        )

        let config =
            { FitConfig.defaults 2 Identity with
                Family = ExpertFamily.Bernoulli
                Design = Some design
            }

        let single = Inference.selectExperts config [| 1 |] data RunContext.silent
        Assert.True(abs (single.[0].LogLikelihood - -233.1611) < 1e-3, sprintf "%.4f" single.[0].LogLikelihood)

        let flipped, _ =
            DataFiles.withRoles
                path
                { ColumnRoles.parseFormula "diabetes ~ ." with
                    References = [| "diabetes", "Yes" |]
                }

        Assert.Equal<float[]>(numeric.Y |> Array.map (fun v -> 1.0 - v), (DataSource.load flipped).Y)

        let three = Path.Combine(dir, "three.csv")
        File.WriteAllLines(three, [| "x,y"; "1,a"; "2,b"; "3,c" |])

        let e =
            Assert.Throws<ArgumentException>(fun () -> DataFiles.withRoles three ColumnRoles.defaults |> ignore)

        Assert.Contains("the response 'y' holds text with 3 values; a text response must have two", e.Message))

/// Issue 32's acceptance on real data: NPreg as R writes it (`x`, `yp`, `yb`), read with roles that put the gate and
/// the experts on x, fits as the positional files of the families issue do — bit for bit — and so reaches flexmix's
/// references (tests/data/README.md) less 0.05 nats; the other response column is in the file and is not read.
[<Theory>]
[<InlineData("yp ~ x | x", "npreg-poisson.csv", "poisson", -440.5527)>]
[<InlineData("yb ~ x | x", "npreg-bernoulli.csv", "bernoulli", -138.1849)>]
let ``NPreg read by roles fits as its positional file and reaches flexmix``
    (formula: string)
    (positional: string)
    (family: string)
    (reference: float)
    =
    let dir = Path.Combine(AppContext.BaseDirectory, "data")

    let source, design =
        DataFiles.withRoles (Path.Combine(dir, "npreg-glm.csv")) (ColumnRoles.parseFormula formula)

    let config =
        { FitConfig.defaults 2 Identity with
            Family = ExpertFamily.parse family
            Seed = 1L
        }

    let named =
        Learner.fitSource { config with Design = Some design } source 1_000_000 RunContext.silent

    let plain =
        Learner.fit config (DataCsv.load (Path.Combine(dir, positional))) RunContext.silent

    Assert.Equal<float[]>(
        Seq.cast<float> plain.Model.Regressors |> Seq.toArray,
        Seq.cast<float> named.Model.Regressors |> Seq.toArray
    )

    Assert.Equal<float[]>(
        Seq.cast<float> plain.Model.Gating |> Seq.toArray,
        Seq.cast<float> named.Model.Gating |> Seq.toArray
    )

    let data = DataSource.load source
    let ll = MoeModel.logLikelihood named.Model data.X data.Y
    Assert.True(ll >= reference - 0.05, sprintf "%s: log-likelihood %.4f, flexmix %.4f" formula ll reference)
    Assert.Equal<string[]>([| "x" |], named.Model.Design.ExpertNames.Value)
