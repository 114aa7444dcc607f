[<FsCheck.Xunit.Properties(Arbitrary = [| typeof<MoE.Core.Tests.Generators.Arbitraries> |], MaxTest = 100)>]
module MoE.Core.Tests.FileTests

open System
open System.IO
open FsCheck.FSharp
open FsCheck.Xunit
open Xunit
open MoE.Core
open MoE.Core.Tests.Assertions

/// Doubles that stress a text round trip: extremes, subnormals, negative zero, non-terminating binary fractions.
let private awkward =
    Gen.oneof
        [
            Generators.uniform -1e6 1e6
            Gen.elements
                [
                    0.1 + 0.2
                    -0.0
                    5e-324
                    2.2250738585072014e-308
                    Double.MaxValue
                    -Double.MaxValue
                    1.0 / 3.0
                    1e-300
                    123456789.123456789
                ]
            Gen.choose (-300, 300) |> Gen.map (fun e -> Math.PI * Math.Pow(10.0, float e))
        ]

let private dataset =
    gen {
        let! n = Gen.choose (1, 20)
        let! d = Gen.choose (1, 6)
        let! x = Gen.array2DOfDim n d awkward
        let! y = Gen.arrayOfLength n awkward
        return Dataset.create x y
    }

/// Fewer rows, fewer columns, simpler values.
let private shrinkDataset (data: Dataset) : Dataset seq =
    seq {
        let n, d = data.Count, data.Dimension

        if n > 1 then
            yield Dataset.create (Array2D.init (n - 1) d (fun i j -> data.X.[i, j])) (Array.sub data.Y 0 (n - 1))

        if d > 1 then
            yield Dataset.create (Generators.dropLastColumn data.X) data.Y

        for y in Generators.shrinkEntries data.Y do
            yield Dataset.create data.X y
    }

let private bitsOf (data: Dataset) =
    (Seq.cast<float> data.X |> Seq.map BitConverter.DoubleToInt64Bits |> Seq.toList,
     data.Y |> Array.map BitConverter.DoubleToInt64Bits |> Array.toList)

[<Property>]
let ``CSV round-trips every double bit for bit`` () =
    Prop.forAll (Arb.fromGenShrink (dataset, shrinkDataset)) (fun data ->
        use w = new StringWriter()
        DataCsv.write w data
        let back = DataCsv.read (new StringReader(w.ToString())) "mem.csv"
        back.Dimension = data.Dimension && bitsOf back = bitsOf data)

let private readCsv (text: string) =
    DataCsv.read (new StringReader(text)) "t.csv" |> ignore

/// The text of a dataset laid out as people's files are: row i's flags (bits of layout.[i]) choose a CRLF line end, a
/// blank line after it, quotes around its fields and blanks around them; the last line may lack its line end.
let private render (data: Dataset) (layout: int[]) (lastEnds: bool) =
    let text = Text.StringBuilder()

    text.Append(String.Join(",", [ for j in 1 .. data.Dimension -> sprintf "x%d" j ] @ [ "y" ])).Append('\n')
    |> ignore

    for i in 0 .. data.Count - 1 do
        let flag b = layout.[i] &&& (1 <<< b) <> 0

        let field (v: float) =
            let s = v.ToString("R", Globalization.CultureInfo.InvariantCulture)
            let s = if flag 2 then "\"" + s + "\"" else s
            if flag 3 then " " + s + "\t" else s

        let cells =
            [ for j in 0 .. data.Dimension - 1 -> field data.X.[i, j] ]
            @ [ field data.Y.[i] ]

        text.Append(String.Join(",", cells)) |> ignore

        if i < data.Count - 1 || lastEnds then
            text.Append(if flag 0 then "\r\n" else "\n") |> ignore

        if flag 1 && i < data.Count - 1 then
            text.Append(if flag 0 then " \r\n" else "\n") |> ignore

    text.ToString()

[<Property>]
let ``CSV reading gives every row back whatever the line ends, blank lines, quotes and blanks`` () =
    let case =
        gen {
            let! data = dataset
            let! layout = Gen.arrayOfLength data.Count (Gen.choose (0, 15))
            let! lastEnds = Gen.elements [ true; false ]
            let! chunk = Gen.choose (1, 25)
            return data, layout, lastEnds, chunk
        }

    Prop.forAll (Arb.fromGen case) (fun (data, layout, lastEnds, chunk) ->
        let text = render data layout lastEnds
        let whole = DataCsv.read (new StringReader(text)) "t.csv"
        let chunks = DataCsv.readChunks (new StringReader(text)) "t.csv" chunk |> Seq.toList

        let joined =
            Dataset.create
                (Array2D.init data.Count data.Dimension (fun i j ->
                    let c = chunks.[i / chunk]
                    c.X.[i % chunk, j]))
                (chunks |> Seq.collect _.Y |> Seq.toArray)

        bitsOf whole = bitsOf data
        && bitsOf joined = bitsOf data
        && chunks
           |> List.forall (fun c -> c.Count = chunk || obj.ReferenceEquals(c, List.last chunks)))

/// A file of many parallel blocks and several batches (the reader cuts 8 MiB batches into 1 MiB blocks): 60,000
/// rows of 10 columns (about 12 MB) with CRLF line ends and a blank line after every 997th row.
let private largeCase () =
    let data = Sampler.sample (GroundTruth.orthogonal 2 9 Identity 0.1) 60_000 11L
    let layout = Array.init data.Count (fun i -> if i % 997 = 996 then 3 else 1)
    data, render data layout true

[<Fact>]
let ``a file of many blocks reads back bit for bit, whole and in chunks, from text and from disk`` () =
    let data, text = largeCase ()
    Assert.True(text.Length > 10_000_000)
    let dir = Directory.CreateTempSubdirectory("moe-test-")

    try
        let path = Path.Combine(dir.FullName, "big.csv")
        File.WriteAllText(path, text)
        Assert.Equal(bitsOf data, bitsOf (DataCsv.load path))
        Assert.Equal(bitsOf data, bitsOf (DataCsv.read (new StringReader(text)) "big.csv"))
        let chunks = DataCsv.loadChunks path 7_777 |> Seq.toArray
        Assert.Equal<int[]>(Array.init 8 (fun c -> min 7_777 (60_000 - c * 7_777)), chunks |> Array.map _.Count)
        Assert.Equal<float[]>(data.Y, chunks |> Array.collect _.Y)
        // A UTF-16 file (byte-order mark) is decoded first and reads the same.
        let wide = Path.Combine(dir.FullName, "wide.csv")
        File.WriteAllText(wide, text, Text.UnicodeEncoding(false, true))
        Assert.Equal(bitsOf data, bitsOf (DataCsv.load wide))
    finally
        dir.Delete(true)

[<Fact>]
let ``a bad value deep in a file is reported at its line in the file, by every reader`` () =
    let _, text = largeCase ()
    let lines = text.Split('\n')
    // Row 50,000 (0-based) sits after the header and 50 blank lines: line 50,052 of the file.
    let row = 50_000
    let index = 1 + row + row / 997
    let cells = lines.[index].Split(',')
    cells.[2] <- "abc"
    lines.[index] <- String.Join(",", cells)
    let bad = String.Join("\n", lines)

    let expected =
        [ sprintf "bad.csv: line %d, column 3" (index + 1); "'abc' is not a number" ]

    let dir = Directory.CreateTempSubdirectory("moe-test-")

    try
        let path = Path.Combine(dir.FullName, "bad.csv")
        File.WriteAllText(path, bad)
        throwsWith<InvalidDataException> expected (fun () -> DataCsv.load path |> ignore)
        throwsWith<InvalidDataException> expected (fun () -> DataCsv.read (new StringReader(bad)) "bad.csv" |> ignore)

        throwsWith<InvalidDataException> expected (fun () -> DataCsv.loadChunks path 5_000 |> Seq.iter ignore)
    finally
        dir.Delete(true)

[<Fact>]
let ``lines ended by a carriage return alone are named as such`` () =
    throwsWith<InvalidDataException> [ "line 1, column 1"; "end in '\\r' alone" ] (fun () -> readCsv "x1,y\r1,2\r3,4\r")

[<Property>]
let ``model JSON round-trips every parameter bit for bit`` (m: MoeModel) =
    let back = ModelJson.deserialize (ModelJson.serialize m)

    let bits (a: float[,]) =
        Seq.cast<float> a |> Seq.map BitConverter.DoubleToInt64Bits |> Seq.toList

    back.Activation = m.Activation
    && BitConverter.DoubleToInt64Bits back.Sigma = BitConverter.DoubleToInt64Bits m.Sigma
    && bits back.Regressors = bits m.Regressors
    && bits back.Gating = bits m.Gating
    && back.Experts = m.Experts

[<Fact>]
let ``files on disk round-trip too`` () =
    let dir = Directory.CreateTempSubdirectory("moe-test-")

    try
        let m = GroundTruth.random 3 5 (Activation.leakyRelu 0.1) 0.2 1.5 true 4L
        let path = Path.Combine(dir.FullName, "m.json")
        ModelJson.save path m
        Assert.Equal(ModelJson.serialize m, ModelJson.serialize (ModelJson.load path))
        let data = Sampler.sample m 50 3L
        let csv = Path.Combine(dir.FullName, "d.csv")
        DataCsv.save csv data
        Assert.Equal(bitsOf data, bitsOf (DataCsv.load csv))
        Assert.StartsWith("x1,x2,x3,x4,x5,y\n", File.ReadAllText csv)
    finally
        dir.Delete(true)

[<Fact>]
let ``CSV errors give the line, the column and the text`` () =
    throwsWith<InvalidDataException> [ "t.csv: line 3, column 2"; "'abc' is not a number" ] (fun () ->
        readCsv "x1,x2,y\n1,2,3\n4,abc,6\n")

    throwsWith<InvalidDataException> [ "line 2, column 3"; "'NaN' is not a finite number" ] (fun () ->
        readCsv "x1,x2,y\n1,2,NaN\n")

    throwsWith<InvalidDataException> [ "line 2, column 1"; "'-Infinity' is not a finite" ] (fun () ->
        readCsv "x1,x2,y\n-Infinity,2,3\n")

    throwsWith<InvalidDataException> [ "line 3, column 3"; "2 column(s) but the header has 3" ] (fun () ->
        readCsv "x1,x2,y\n1,2,3\n1,2\n")

    throwsWith<InvalidDataException> [ "line 2, column 4"; "more than the header's 3 columns" ] (fun () ->
        readCsv "x1,x2,y\n1,2,3,4\n")

    throwsWith<InvalidDataException> [ "line 1, column 3"; "last header column must be 'y'"; "'x3'" ] (fun () ->
        readCsv "x1,x2,x3\n1,2,3\n")

    throwsWith<InvalidDataException> [ "line 1, column 1"; "header" ] (fun () -> readCsv "")
    throwsWith<InvalidDataException> [ "no data rows" ] (fun () -> readCsv "x1,y\n\n")
    throwsWith<InvalidDataException> [ "line 1, column 1"; "1 column(s)" ] (fun () -> readCsv "y\n1\n")

[<Fact>]
let ``CSV reading skips blank lines and tolerates spaces and CRLF`` () =
    let data =
        DataCsv.read (new StringReader("x1, x2 ,y\r\n\r\n 1.5 ,2,3\r\n4,5e-3,-6\r\n")) "t.csv"

    Assert.Equal(2, data.Count)
    Assert.Equal(0.005, data.X.[1, 1])
    Assert.Equal<float[]>([| 3.0; -6.0 |], data.Y)

let private json (k: int) (gating: string) (extra: string) =
    sprintf
        """{"k":%d,"d":2,"activation":{"name":"relu","slope":0.0},"sigma":0.1,"regressors":[[1,0],[0,1]],"gating":%s%s}"""
        k
        gating
        extra

[<Fact>]
let ``model JSON errors name the JSON path`` () =
    let bad (fragments: string list) (text: string) =
        throwsWith<InvalidDataException> fragments (fun () -> ModelJson.deserialize text |> ignore)

    bad [ "$.gating"; "expected 1 rows, found 2" ] (json 2 "[[1,0],[0,1]]" "")
    bad [ "$.gating[0]"; "expected 2 numbers (d), found 3" ] (json 2 "[[1,0,0]]" "")
    bad [ "$.gating[0][1]"; "expected a number" ] (json 2 """[[1,"a"]]""" "")
    bad [ "$.regressors"; "expected 3 rows, found 2" ] (json 3 "[[1,0],[0,1]]" "")

    bad
        [ "$"; "'sigma' is missing" ]
        """{"k":2,"d":2,"activation":{"name":"relu"},"regressors":[[1,0],[0,1]],"gating":[[0,1]]}"""

    bad [ "$.activation"; "Unknown activation 'softplus'" ] ((json 2 "[[0,1]]" "").Replace("relu", "softplus"))
    bad [ "$.sigma"; "sigma must be >= 0" ] ((json 2 "[[0,1]]" "").Replace("0.1", "-0.1"))
    bad [ "$.k"; "k >= 2" ] """{"k":1,"d":2}"""
    bad [ "$.k"; "expected an integer" ] """{"k":2.5,"d":2}"""
    bad [ "not valid JSON" ] "{"
    bad [ "expected an object" ] "[1,2]"

[<Fact>]
let ``a custom activation cannot be saved`` () =
    let m =
        MoeModel.create
            (array2D [ [ 1.0 ]; [ 2.0 ] ])
            (array2D [ [ 0.5 ] ])
            (Activation.custom "cube" (fun z -> z * z * z) (fun z -> 3.0 * z * z))
            0.1

    throwsArg<ArgumentException> "model" [ "custom activation 'cube'" ] (fun () -> ModelJson.serialize m |> ignore)

/// A model file's leaky-relu without a slope takes the documented default (Activation.DefaultLeakySlope = 0.1), as
/// the command line does; before, it was read as slope 0, a plain ReLU. A relu with no slope stays slope 0.
[<Fact>]
let ``a leaky-relu without a slope in a model file takes the default slope`` () =
    let json (activation: string) =
        sprintf
            """{"k": 2, "d": 1, "activation": {"name": "%s"}, "sigma": 0.1, "regressors": [[1],[2]], "gating": [[1]]}"""
            activation

    Assert.Equal(LeakyRelu 0.1, (ModelJson.deserialize (json "leaky-relu")).Activation)
    Assert.Equal(Activation.DefaultLeakySlope, (ModelJson.deserialize (json "leaky-relu")).Activation.Slope)
    Assert.Equal(Relu, (ModelJson.deserialize (json "relu")).Activation)

/// New rows to predict come without a response: the same covariates read from x1..xd,y and from x1..xd alone (blank
/// lines, a quoted header, CRLF line ends) are the same doubles, bit for bit; a response read as a covariate is refused.
[<Fact>]
let ``covariates read with or without a response column are the same`` () =
    let data = Sampler.sample (GroundTruth.orthogonal 2 3 Identity 0.1) 1_000 9L
    let dir = Directory.CreateTempSubdirectory "moe-cov-"

    try
        let full = Path.Combine(dir.FullName, "full.csv")
        DataCsv.save full data
        let lines = File.ReadAllLines full
        let covariates = Path.Combine(dir.FullName, "new.csv")

        let text =
            lines
            |> Array.mapi (fun i line ->
                let cut = line.Substring(0, line.LastIndexOf ',')

                if i = 0 then
                    "\"x1\",\"x2\",\"x3\"\r\n\r\n"
                else
                    cut + "\r\n")
            |> String.concat ""

        File.WriteAllText(covariates, text)

        Assert.Equal<float[]>(
            Seq.cast<float> data.X |> Seq.toArray,
            Seq.cast<float>(DataCsv.loadCovariates full 3) |> Seq.toArray
        )

        Assert.Equal<float[]>(
            Seq.cast<float> data.X |> Seq.toArray,
            Seq.cast<float>(DataCsv.loadCovariates covariates 3) |> Seq.toArray
        )

        let e =
            Assert.Throws<InvalidDataException>(fun () -> DataCsv.loadCovariates full 4 |> ignore)

        Assert.Contains("the data have 3 covariates and a response y, but the model needs 4", e.Message)
    finally
        dir.Delete true
