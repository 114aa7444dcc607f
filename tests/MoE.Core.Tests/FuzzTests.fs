/// The readers under random damage: byte flips, insertions, deletions, truncations and splices of valid CSV and JSON
/// files. Each reader either returns data or raises its own precise error (InvalidDataException) — never another
/// exception type, never a hang. (tests/MoE.Api.Tests/CliFuzzTests drives the CLI with the same damage.)
[<FsCheck.Xunit.Properties(MaxTest = 400)>]
module MoE.Core.Tests.FuzzTests

open System
open System.IO
open System.Text
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open MoE.Core

/// One kind of damage; positions are fractions of the file in thousandths, lengths in bytes.
type Damage =
    | Flip of at: int * value: byte
    | Insert of at: int * bytes: byte[]
    | Delete of at: int * length: int
    | Truncate of at: int
    | Splice of at: int * from: int
    | DuplicateLine of at: int

let private truth = GroundTruth.orthogonal 2 3 Identity 0.1

let private csv =
    let data = Sampler.sample truth 40 3L
    use writer = new StringWriter()
    DataCsv.write writer data
    Encoding.UTF8.GetBytes(writer.ToString())

let private json = Encoding.UTF8.GetBytes(ModelJson.serialize truth)

let private position (bytes: byte[]) (at: int) =
    int (int64 (abs (at % 1001)) * int64 bytes.Length / 1000L)

/// The damage applied to a file; a splice takes a prefix of this file and a suffix of the other format's file.
let private apply (other: byte[]) (bytes: byte[]) (damage: Damage) : byte[] =
    match damage with
    | Flip(at, value) when bytes.Length > 0 ->
        let b = Array.copy bytes
        b.[min (b.Length - 1) (position b at)] <- value
        b
    | Insert(at, extra) when not (isNull extra) ->
        let p = position bytes at
        Array.concat [ bytes.[.. p - 1]; extra; bytes.[p..] ]
    | Delete(at, length) ->
        let p = position bytes at
        let q = min bytes.Length (p + abs (length % 64))
        Array.append bytes.[.. p - 1] bytes.[q..]
    | Truncate at -> bytes.[.. position bytes at - 1]
    | Splice(at, from) -> Array.append bytes.[.. position bytes at - 1] other.[position other from ..]
    | DuplicateLine at ->
        let text = Encoding.UTF8.GetString bytes
        let lines = text.Split('\n')
        let i = abs (at % max 1 lines.Length)
        Encoding.UTF8.GetBytes(String.Join("\n", Array.insertAt i lines.[i] lines))
    | _ -> bytes

let private damaged (file: byte[]) (other: byte[]) (damages: Damage list) =
    damages |> List.truncate 4 |> List.fold (apply other) file

/// Reads the bytes the way a file is read (UTF-8 with a byte-order mark honoured, invalid bytes replaced).
let private text (bytes: byte[]) =
    use reader = new StreamReader(new MemoryStream(bytes), Encoding.UTF8, true)
    reader.ReadToEnd()

[<Property>]
let ``the CSV reader returns data or an InvalidDataException for any damaged file`` (damages: Damage list) =
    let bytes = damaged csv json damages

    try
        let data = DataCsv.read (new StringReader(text bytes)) "fuzz.csv"
        // What comes back is a valid dataset.
        Dataset.validate data
        true
    with :? InvalidDataException ->
        true

[<Property>]
let ``the chunked CSV reader fails like the whole-file reader`` (damages: Damage list) =
    let content = text (damaged csv json damages)

    let whole =
        try
            Ok (DataCsv.read (new StringReader(content)) "fuzz.csv").Count
        with :? InvalidDataException as e ->
            Error e.Message

    let chunked =
        try
            Ok(DataCsv.readChunks (new StringReader(content)) "fuzz.csv" 7 |> Seq.sumBy _.Count)
        with :? InvalidDataException as e ->
            Error e.Message

    whole = chunked

[<Property>]
let ``the model reader returns a valid model or an InvalidDataException for any damaged file`` (damages: Damage list) =
    let bytes = damaged json csv damages

    try
        let model = ModelJson.deserialize (text bytes)
        MoeModel.validate model
        true
    with :? InvalidDataException ->
        true

[<Property>]
let ``error messages quote at most 40 characters of a value`` (NonNegativeInt length) =
    let field = String('7', length % 100_000) + "x"

    try
        DataCsv.read (new StringReader("x1,y\n1," + field + "\n")) "long.csv" |> ignore
        false
    with :? InvalidDataException as e ->
        e.Message.Length < 120
