namespace MoE.Core

open System
open System.IO

/// <summary>Data files by name: a CSV or Parquet file (by its extension), or a directory of them read as one data
/// set of shards.</summary>
[<RequireQualifiedAccess>]
module DataFiles =

    /// Whether a path names a Parquet file (by extension).
    let private isParquet (path: string) =
        Path.GetExtension(path).Equals(".parquet", StringComparison.OrdinalIgnoreCase)

    let private isCsv (path: string) =
        Path.GetExtension(path).Equals(".csv", StringComparison.OrdinalIgnoreCase)

    /// One file as a source.
    let private file (path: string) (xNames: string[] option) (yName: string option) : DataSource =
        if isParquet path then
            DataParquet.source path xNames yName
        elif xNames.IsSome || yName.IsSome then
            invalidArg
                "xNames"
                (Text.format
                    "%s: choosing columns by name (--x, --y) applies to Parquet files; a CSV file has the columns x1..xd and y, the last."
                    [| box (Path.GetFileName path) |])
        else
            DataCsv.source path

    /// <summary>The shards of a path in order: the file itself, or a directory's .csv and .parquet files sorted by
    /// name (ordinal), not recursing.</summary>
    /// <param name="path">A file or a directory.</param>
    /// <exception cref="T:System.IO.FileNotFoundException">Neither a file nor a directory.</exception>
    /// <exception cref="T:System.ArgumentException">A directory without data files, or with both kinds.</exception>
    [<CompiledName("Files")>]
    let files (path: string) : string[] =
        Guard.notNull "path" path

        if Directory.Exists path then
            let found =
                Directory.GetFiles path
                |> Array.filter (fun f -> isCsv f || isParquet f)
                |> Array.sortWith (fun a b -> String.CompareOrdinal(Path.GetFileName a, Path.GetFileName b))

            if found.Length = 0 then
                invalidArg "path" (Text.format "The directory %s holds no .csv or .parquet files." [| box path |])

            if found |> Array.exists isCsv && found |> Array.exists isParquet then
                invalidArg
                    "path"
                    (Text.format
                        "The directory %s holds both .csv and .parquet files; keep the shards of one data set in one format."
                        [| box path |])

            found
        elif File.Exists path then
            [| path |]
        else
            raise (FileNotFoundException(Text.format "No file or directory %s." [| box path |], path))

    /// <summary>A file or a directory of shards as one data source (every shard read again for each pass; docs/math.md
    /// §7.6).</summary>
    /// <param name="path">A .csv or .parquet file, or a directory of them (sorted by name).</param>
    /// <param name="xNames">The input columns by name (Parquet only), or None for the convention.</param>
    /// <param name="yName">The response column by name (Parquet only), or None for the convention.</param>
    /// <returns>The source.</returns>
    /// <exception cref="T:System.IO.InvalidDataException">A malformed file (the message names it).</exception>
    [<CompiledName("Source")>]
    let source (path: string) (xNames: string[] option) (yName: string option) : DataSource =
        files path |> Array.map (fun f -> file f xNames yName) |> DataSource.concat

    /// <summary>Refuses, before anything is written, a file of <paramref name="rows"/> rows that cannot fit in the
    /// free space of the disk it goes to. The size is a lower estimate: 18 bytes per value in CSV (a normal draw's
    /// shortest round-trip text is 18–21 characters with its separator), 8 in Parquet (random doubles do not
    /// compress), so a refusal is certain to be right.</summary>
    /// <param name="path">The file to be written.</param>
    /// <param name="dimension">d.</param>
    /// <param name="rows">The rows to be written.</param>
    /// <exception cref="T:System.IO.IOException">The estimate exceeds the free space (the message gives both).</exception>
    [<CompiledName("RequireSpace")>]
    let requireSpace (path: string) (dimension: int) (rows: int64) : unit =
        Guard.notNull "path" path
        let full = Path.GetFullPath path
        let folder = Path.GetDirectoryName full

        let free =
            try
                if Directory.Exists folder then
                    Some(DriveInfo(folder).AvailableFreeSpace)
                else
                    None
            with
            | :? IOException
            | :? UnauthorizedAccessException
            | :? ArgumentException -> None

        let perValue = if isParquet path then 8.0 else 18.0
        let needed = float rows * float (dimension + 1) * perValue

        match free with
        | Some free when needed > float free ->
            raise (
                IOException(
                    Text.format
                        "%d rows of d = %d inputs and a response need at least %.1f GB as %s, but the disk of %s has %.1f GB free."
                        [|
                            box rows
                            box dimension
                            box (needed / 1e9)
                            box (if isParquet path then "Parquet" else "CSV")
                            box folder
                            box (float free / 1e9)
                        |]
                )
            )
        | _ -> ()

    /// <summary>Writes batches of rows to a file, streaming: Parquet for a .parquet name (a row group per batch), CSV
    /// otherwise; created or replaced atomically.</summary>
    /// <param name="path">The file.</param>
    /// <param name="dimension">d.</param>
    /// <param name="batches">The rows, in order.</param>
    /// <returns>The rows written.</returns>
    [<CompiledName("Write")>]
    let write (path: string) (dimension: int) (batches: seq<Dataset>) : int64 =
        if isParquet path then
            DataParquet.write path dimension batches
        else
            DataCsv.writeBatches path dimension batches
