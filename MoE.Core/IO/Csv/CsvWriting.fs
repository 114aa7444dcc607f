namespace MoE.Core

open System
open System.Globalization
open System.IO
open System.Runtime.CompilerServices
open System.Runtime.InteropServices

/// <summary>The CSV writer's pieces (IO/DataCsv.fs writes with them): the header and rows in the shortest round-trip
/// number format.</summary>
module internal CsvWriting =

    /// The header x1,…,xd,y.
    let internal writeHeader (writer: TextWriter) (d: int) =
        for j in 1..d do
            writer.Write('x')
            writer.Write(j)
            writer.Write(',')

        writer.Write("y\n")

    /// The rows, in the shortest round-trip number format.
    let internal writeRows (writer: TextWriter) (data: Dataset) =
        let d = data.Dimension
        let buffer = Array.zeroCreate<char> 32

        let put (v: float) =
            let mutable written = 0

            if not (v.TryFormat(Span<char>(buffer), &written, "R", CultureInfo.InvariantCulture)) then
                invalidOp "A double did not fit its 32-character format buffer."

            writer.Write(buffer, 0, written)

        for r in 0 .. data.Count - 1 do
            for j in 0 .. d - 1 do
                put data.X.[r, j]
                writer.Write(',')

            put data.Y.[r]
            writer.Write('\n')
