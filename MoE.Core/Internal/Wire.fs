namespace MoE.Core

open System
open System.IO
open System.Text

/// <summary>
/// The bytes of a request to a shard's worker (docs/math.md §7.7): little-endian numbers written whole, so every
/// double crosses the wire with its bits, and a version byte first, so a worker of another build refuses a request
/// it would read wrongly instead of computing something else.
/// </summary>
module internal Wire =

    /// The format's version: raised whenever any request's layout changes.
    [<Literal>]
    let Version = 2uy

    /// A writer of one request.
    type Writer() =
        let stream = new MemoryStream()
        let w = new BinaryWriter(stream, Encoding.UTF8)
        do w.Write Version

        member _.Byte(v: byte) = w.Write v
        member _.Bool(v: bool) = w.Write v
        member _.Int(v: int) = w.Write v
        member _.Long(v: int64) = w.Write v
        member _.Float(v: float) = w.Write v
        member _.String(v: string) = w.Write v

        member this.Floats(v: float[]) =
            w.Write v.Length

            for x in v do
                w.Write x

        member this.Longs(v: int64[]) =
            w.Write v.Length

            for x in v do
                w.Write x

        member this.Ints(v: int[]) =
            w.Write v.Length

            for x in v do
                w.Write x

        member this.Matrix(v: float[,]) =
            w.Write(v.GetLength 0)
            w.Write(v.GetLength 1)

            for i in 0 .. v.GetLength 0 - 1 do
                for j in 0 .. v.GetLength 1 - 1 do
                    w.Write v.[i, j]

        member _.ToArray() =
            w.Flush()
            stream.ToArray()

    /// A reader of one request; every read checks that the bytes hold what it asks for.
    type Reader(bytes: byte[]) =
        let r = new BinaryReader(new MemoryStream(bytes, false), Encoding.UTF8)

        let fail () =
            invalidArg "request" "The request to the shard's worker is cut short or malformed."

        do
            if bytes.Length = 0 then
                fail ()

            let v = r.ReadByte()

            if v <> Version then
                invalidArg
                    "request"
                    (Text.format
                        "The request is in wire format %d, and this build reads format %d: run the same build of moe on every machine."
                        [| box v; box Version |])

        member _.Guarded(read: unit -> 'T) : 'T =
            try
                read ()
            with :? EndOfStreamException ->
                fail ()

        member this.Byte() = this.Guarded r.ReadByte
        member this.Bool() = this.Guarded r.ReadBoolean
        member this.Int() = this.Guarded r.ReadInt32
        member this.Long() = this.Guarded r.ReadInt64
        member this.Float() = this.Guarded r.ReadDouble
        member this.String() = this.Guarded r.ReadString

        member this.Count() =
            let n = this.Int()

            if n < 0 || int64 n > r.BaseStream.Length - r.BaseStream.Position then
                fail ()

            n

        member this.Floats() =
            let n = this.Count()
            Array.init n (fun _ -> this.Float())

        member this.Longs() =
            let n = this.Count()
            Array.init n (fun _ -> this.Long())

        member this.Ints() =
            let n = this.Count()
            Array.init n (fun _ -> this.Int())

        member this.Matrix() =
            let rows = this.Count()
            let cols = this.Count()

            if int64 rows * int64 cols * 8L > r.BaseStream.Length then
                fail ()

            let m = Array2D.zeroCreate rows cols

            for i in 0 .. rows - 1 do
                for j in 0 .. cols - 1 do
                    m.[i, j] <- this.Float()

            m

        /// Fails unless every byte was read.
        member _.End() =
            if r.BaseStream.Position <> r.BaseStream.Length then
                fail ()
