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
    let private file
        (path: string)
        (xNames: string[] option)
        (yName: string option)
        (missing: MissingValues)
        (levels: (string * string[])[])
        : DataSource =
        if isParquet path then
            DataParquet.sourceWith path xNames yName missing levels
        elif
            xNames.IsSome
            || yName.IsSome
            || missing <> MissingValues.Refuse
            || levels.Length > 0
        then
            DataCsv.sourceColumns path xNames yName missing levels
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
    /// <param name="xNames">The input columns by name, or None for the convention.</param>
    /// <param name="yName">The response column by name, or None for the convention.</param>
    /// <returns>The source.</returns>
    /// <exception cref="T:System.IO.InvalidDataException">A malformed file (the message names it).</exception>
    [<CompiledName("Source")>]
    let source (path: string) (xNames: string[] option) (yName: string option) : DataSource =
        files path
        |> Array.map (fun f -> file f xNames yName MissingValues.Refuse [||])
        |> DataSource.concat

    /// <summary>As <c>source</c>, with a policy for rows that have a missing value in a column read (an empty field or
    /// NA in CSV, a null in Parquet): refuse them, or drop them (each shard's <c>Dropped</c> counts them, and a fit
    /// warns with the count).</summary>
    /// <param name="path">A .csv or .parquet file, or a directory of them (sorted by name).</param>
    /// <param name="xNames">The input columns by name, or None for the convention.</param>
    /// <param name="yName">The response column by name, or None for the convention.</param>
    /// <param name="missing">The policy.</param>
    /// <param name="levels">Categorical columns and their levels, the reference first (<c>DataColumns.Levels</c>; empty
    /// for none): an input named "c=l" is the indicator of c's level l.</param>
    /// <returns>The source.</returns>
    [<CompiledName("SourceWith")>]
    let sourceWith
        (path: string)
        (xNames: string[] option)
        (yName: string option)
        (missing: MissingValues)
        (levels: (string * string[])[])
        : DataSource =
        Guard.notNull "levels" levels

        files path
        |> Array.map (fun f -> file f xNames yName missing levels)
        |> DataSource.concat

    /// <summary>The columns of a file (the first shard of a directory), and those the experts read by default: a
    /// CSV's header (both), a Parquet file's columns and its numeric ones.</summary>
    /// <param name="path">A file or a directory of shards.</param>
    /// <returns>The names, in the file's order.</returns>
    [<CompiledName("Columns")>]
    let columns (path: string) : string[] * string[] =
        let first = (files path).[0]

        if isParquet first then
            DataParquet.columnNames first, DataParquet.numericColumns first
        else
            let header = DataCsv.header first
            header, header

    /// <summary>The design roles give over a file's (or its first shard's) columns, with their names
    /// (<c>ColumnRoles.resolve</c>).</summary>
    /// <param name="path">A file or a directory of shards.</param>
    /// <param name="roles">The roles.</param>
    [<CompiledName("Design")>]
    let design (path: string) (roles: ColumnRoles) : Design =
        Guard.notNull "path" path
        let available, inputs = columns path
        let first = (files path).[0]

        let categories =
            if isCsv first then
                DataCsv.categories first available
            else
                DataParquet.categories first available

        ColumnRoles.resolve (Path.GetFileName path) available inputs categories roles

    /// <summary>A file or a directory of shards with its columns in roles (<see cref="T:MoE.Core.ColumnRoles"/>): the
    /// source reads the design's inputs, in its order, and its response; the design carries the names, so a model fitted
    /// with it (<c>FitConfig.Design</c>) records them and reads new data by name.</summary>
    /// <param name="path">A .csv or .parquet file, or a directory of them.</param>
    /// <param name="roles">The roles.</param>
    /// <returns>The source and the design.</returns>
    /// <exception cref="T:System.ArgumentException">A role naming a column the file lacks, or roles that clash (the
    /// message says which).</exception>
    [<CompiledName("WithRoles")>]
    let withRoles (path: string) (roles: ColumnRoles) : DataSource * Design =
        let design = design path roles
        let names = design.Columns.Value

        match roles.Weights with
        | None -> sourceWith path (Some names.Inputs) (Some names.Response) roles.Missing names.Levels, design
        | Some weights ->
            // The weights are read as one more column (its missing values under the same policy), then split off.
            let read = Array.append names.Inputs [| weights |]

            sourceWith path (Some read) (Some names.Response) roles.Missing names.Levels
            |> DataSource.withWeightColumn weights,
            design

    /// <summary>A model's data from a file (a CSV or Parquet file, or a directory of shards), read as the model reads
    /// it: by the column names it records (any column order, other columns ignored), else by position (x1, …, xd, y; a
    /// Parquet file's numeric columns but y), checked against the model's d.</summary>
    /// <param name="model">The model.</param>
    /// <param name="path">The data.</param>
    /// <returns>The inputs and responses, in memory.</returns>
    /// <exception cref="T:System.IO.InvalidDataException">A column the model needs is missing, or the file has not the
    /// model's d inputs (the message says which).</exception>
    [<CompiledName("DataFor")>]
    let dataFor (model: MoeModel) (path: string) : Dataset =
        Guard.notNull "model" (box model)
        Guard.notNull "path" path

        match model.Design.Columns with
        | Some columns ->
            DataSource.load (
                sourceWith path (Some columns.Inputs) (Some columns.Response) MissingValues.Refuse columns.Levels
            )
        | None ->
            let data = DataSource.load (source path None None)

            if data.Dimension <> model.Dimension then
                raise (
                    InvalidDataException(
                        Text.format
                            "%s: the data have %d covariates and a response y, but the model has d = %d: it needs the covariates it was fitted on, followed by y."
                            [| box (Path.GetFileName path); box data.Dimension; box model.Dimension |]
                    )
                )

            data

    /// <summary>The inputs of new rows for a model (<c>dataFor</c>, with the response optional in a CSV file: rows to
    /// predict need not have it). With <c>MissingValues.Drop</c>, a missing value (an empty field or NA in a CSV read by
    /// the model's names, a null in Parquet) is read as NaN, so that row's predictions are NaN and no row shifts
    /// (<c>Inference.predict</c>).</summary>
    /// <param name="model">The model.</param>
    /// <param name="path">A CSV or Parquet file.</param>
    /// <param name="missing">Refuse missing values (the default), or read them as NaN.</param>
    /// <returns>The n×m inputs, in the model's column order.</returns>
    [<CompiledName("CovariatesFor")>]
    let covariatesFor (model: MoeModel) (path: string) (missing: MissingValues) : float[,] =
        Guard.notNull "model" (box model)
        Guard.notNull "path" path

        match model.Design.Columns with
        | Some columns when isCsv path -> fst (DataCsv.loadNamedCovariates path columns missing)
        | None when isCsv path && missing = MissingValues.Drop ->
            // Positional columns x1..xd (y optional, last), read by their names with missing values marked.
            let header = DataCsv.header path
            let d = model.Dimension

            if
                header.Length = d
                || (header.Length = d + 1
                    && header.[d].Equals("y", StringComparison.OrdinalIgnoreCase))
            then
                fst (
                    DataCsv.loadNamedCovariates
                        path
                        {
                            Inputs = Array.sub header 0 d
                            Response = "y"
                            Levels = [||]
                        }
                        missing
                )
            else
                DataCsv.loadCovariates path d
        | None when isCsv path -> DataCsv.loadCovariates path model.Dimension
        | Some columns when isParquet path && missing = MissingValues.Drop ->
            (DataParquet.loadMarked path columns.Inputs columns.Response columns.Levels).X
        | None when isParquet path && missing = MissingValues.Drop ->
            let data = DataParquet.loadMarked path [||] "y" [||]

            if data.Dimension <> model.Dimension then
                (dataFor model path).X
            else
                data.X
        | _ -> (dataFor model path).X

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
