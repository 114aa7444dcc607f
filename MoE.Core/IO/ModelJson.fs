namespace MoE.Core

open System
open System.IO
open System.Text
open System.Text.Json

/// <summary>
/// The model file: one JSON schema for fitted models and ground truths,
/// <c>{"k":2,"d":10,"activation":{"name":"relu","slope":0.0},"sigma":0.05,"regressors":[[…],…],"gating":[[…],…]}</c>
/// with k regressor rows and k−1 gating rows of d numbers each, and the optional fields of the general model (docs/math.md
/// §9): <c>"regressorIntercepts": [b_1..b_k]</c>, <c>"gatingIntercepts": [c_1..c_{k−1}]</c> and <c>"sigmas": [σ_1..σ_k]</c>
/// (then <c>"sigma"</c> may be omitted). An absent field means the paper's model: zero intercepts, one σ.
/// </summary>
/// <remarks>
/// Numbers are written in the shortest round-trip form, so a saved model reloads to identical parameters.
/// Reading reports the JSON path of the first problem (a missing field, a wrong type, a row of the wrong
/// length, a non-finite or invalid value) in an <see cref="T:System.IO.InvalidDataException"/>.
/// Custom activations have no file form: saving a model with one is an ArgumentException.
/// </remarks>
[<RequireQualifiedAccess>]
module ModelJson =

    let private num (v: float) =
        v.ToString("R", Globalization.CultureInfo.InvariantCulture)

    /// One row per line: `[a, b, …]` with the shortest round-trip form of each number.
    let private writeMatrix (sb: StringBuilder) (name: string) (m: float[,]) =
        sb.Append("  \"").Append(name).Append("\": [") |> ignore

        for i in 0 .. m.GetLength 0 - 1 do
            let row = Array.init (m.GetLength 1) (fun j -> num m.[i, j])

            sb.Append(if i = 0 then "\n    [" else ",\n    [").Append(String.Join(", ", row)).Append(']')
            |> ignore

        sb.Append("\n  ]") |> ignore

    /// <summary>The model as JSON text (one matrix row per line).</summary>
    /// <param name="model">A model with a built-in activation.</param>
    /// <returns>The JSON text.</returns>
    /// <exception cref="T:System.ArgumentException">An invalid model, or a custom activation.</exception>
    [<CompiledName("Serialize")>]
    let serialize (model: MoeModel) : string =
        MoeModel.validate model

        if not model.Activation.IsBuiltIn then
            invalidArg
                "model"
                (Text.format
                    "The custom activation '%s' cannot be written to a model file; only %s can."
                    [|
                        box model.Activation.Name
                        box (String.Join(", ", Activation.builtInNames))
                    |])

        // Built-in names are plain ASCII words, so no string escaping is needed.
        let sb = StringBuilder()

        sb.Append("{\n  \"k\": ").Append(model.Experts).Append(",\n  \"d\": ").Append(model.Dimension)
        |> ignore

        // The data's column names, when the model has them: the response, then each part's columns by name (the
        // inputs' order is theirs: the experts' columns, then the gate's others). Else the design by index, written
        // only when the experts and the gate do not both read every input in order.
        match model.Design.Columns, model.Design.ExpertNames, model.Design.GateNames with
        | Some columns, Some experts, Some gate ->
            // A JSON string: JsonEncodedText escapes as the serializer would, without reflection (Native AOT has none).
            let quoted (text: string) =
                "\"" + JsonEncodedText.Encode(text).ToString() + "\""

            let names (v: string[]) =
                String.Join(", ", v |> Array.map quoted)

            sb
                .Append(",\n  \"response\": ")
                .Append(quoted columns.Response)
                .Append(",\n  \"expertColumns\": [")
                .Append(names experts)
                .Append("],\n  \"gateColumns\": [")
                .Append(names gate)
                .Append(']')
            |> ignore

            match model.Design.OffsetName with
            | Some name -> sb.Append(",\n  \"offsetColumn\": ").Append(quoted name) |> ignore
            | None -> ()

            if columns.Levels.Length > 0 then
                sb.Append(",\n  \"levels\": { ") |> ignore

                columns.Levels
                |> Array.iteri (fun i (column, levels) ->
                    if i > 0 then
                        sb.Append(", ") |> ignore

                    sb.Append(quoted column).Append(": [").Append(names levels).Append(']')
                    |> ignore)

                sb.Append(" }") |> ignore
        | _ when not model.Design.IsShared ->
            let indices (v: int[]) = String.Join(", ", v)

            sb
                .Append(",\n  \"expertInputs\": [")
                .Append(indices model.Design.ExpertColumns)
                .Append("],\n  \"gateInputs\": [")
                .Append(indices model.Design.GateColumns)
                .Append(']')
            |> ignore

            if model.Design.HasOffset then
                sb.Append(",\n  \"offsetInput\": ").Append(model.Design.OffsetColumn) |> ignore
        | _ -> ()

        sb.Append(",\n  \"activation\": { \"name\": \"").Append(model.Activation.Name)
        |> ignore

        sb.Append("\", \"slope\": ").Append(num model.Activation.Slope).Append(" },\n")
        |> ignore

        // The family is written only when it is not the default (a file without it holds Gaussian experts), and then
        // the family's own fields: leading ones here, trailing ones at the end.
        if model.Family <> ExpertFamily.Gaussian then
            sb.Append("  \"family\": \"").Append(model.Family.Name).Append("\",\n")
            |> ignore

        let leading, trailing =
            ExpertFamily.jsonFields model.Family model.Sigma model.Sigmas model.DegreesOfFreedom

        for name, value in leading do
            sb.Append("  \"").Append(name).Append("\": ").Append(num value).Append(",\n")
            |> ignore

        writeMatrix sb "regressors" model.Regressors
        sb.Append(",\n") |> ignore
        writeMatrix sb "gating" model.Gating

        let writeVector (name: string) (v: float[]) =
            sb.Append(",\n  \"").Append(name).Append("\": [").Append(String.Join(", ", v |> Array.map num)).Append(']')
            |> ignore
        // The general model's fields, written only when they differ from the paper's model.
        if model.HasIntercepts then
            writeVector "regressorIntercepts" model.RegressorIntercepts
            writeVector "gatingIntercepts" model.GatingIntercepts

        for name, values in trailing do
            writeVector name values

        sb.Append("\n}\n").ToString()

    let private fail (path: string) (message: string) =
        raise (InvalidDataException(Text.format "model JSON, %s: %s" [| box path; box message |]))

    /// An argument check's message without .NET's " (Parameter 'x')": in a file the path names the place.
    let private reason (e: ArgumentException) =
        match e.ParamName with
        | null -> e.Message
        | name -> e.Message.Replace(Text.format " (Parameter '%s')" [| box name |], "")

    let private property (element: JsonElement) (path: string) (name: string) (kind: JsonValueKind) =
        let mutable value = Unchecked.defaultof<JsonElement>

        if not (element.TryGetProperty(name, &value)) then
            fail path (Text.format "the required field '%s' is missing." [| box name |])

        if value.ValueKind <> kind then
            fail (path + "." + name) (Text.format "expected %A, found %A." [| box kind; box value.ValueKind |])

        value

    let private number (element: JsonElement) (path: string) =
        if element.ValueKind <> JsonValueKind.Number then
            fail path (Text.format "expected a number, found %A." [| box element.ValueKind |])

        let v = element.GetDouble()

        if not (Double.IsFinite v) then
            fail path "the number is out of the range of a double."

        v

    let private count (element: JsonElement) (path: string) (name: string) =
        let e = property element path name JsonValueKind.Number
        let mutable v = 0

        if not (e.TryGetInt32(&v)) then
            fail (path + "." + name) (Text.format "expected an integer, found %s." [| box (e.GetRawText()) |])

        v

    let private matrix (root: JsonElement) (name: string) (rows: int) (columns: int) =
        let arr = property root "$" name JsonValueKind.Array
        let path = "$." + name

        if arr.GetArrayLength() <> rows then
            fail path (Text.format "expected %d rows, found %d." [| box rows; box (arr.GetArrayLength()) |])

        let m = Array2D.zeroCreate rows columns

        arr.EnumerateArray()
        |> Seq.iteri (fun i row ->
            let rowPath = Text.format "%s[%d]" [| box path; box i |]

            if row.ValueKind <> JsonValueKind.Array then
                fail
                    rowPath
                    (Text.format "expected an array of %d numbers, found %A." [| box columns; box row.ValueKind |])

            if row.GetArrayLength() <> columns then
                fail
                    rowPath
                    (Text.format "expected %d numbers (d), found %d." [| box columns; box (row.GetArrayLength()) |])

            row.EnumerateArray()
            |> Seq.iteri (fun j v -> m.[i, j] <- number v (Text.format "%s[%d]" [| box rowPath; box j |])))

        m

    /// <summary>Parses a model from JSON text.</summary>
    /// <param name="json">The text.</param>
    /// <returns>The validated model.</returns>
    /// <exception cref="T:System.IO.InvalidDataException">Malformed JSON, a missing or mistyped field, a shape
    /// that disagrees with k and d, or an invalid value (the message gives the JSON path).</exception>
    [<CompiledName("Deserialize")>]
    let deserialize (json: string) : MoeModel =
        Guard.notNull "json" json

        let doc =
            try
                JsonDocument.Parse(json)
            with :? JsonException as e ->
                raise (InvalidDataException(Text.format "model JSON: not valid JSON: %s" [| box e.Message |], e))

        use doc = doc
        let root = doc.RootElement

        if root.ValueKind <> JsonValueKind.Object then
            fail "$" (Text.format "expected an object, found %A." [| box root.ValueKind |])

        let k = count root "$" "k"
        let d = count root "$" "d"

        if k < 2 then
            fail "$.k" (Text.format "a mixture needs k >= 2 experts, found %d." [| box k |])

        if d < 1 then
            fail "$.d" (Text.format "the dimension must be >= 1, found %d." [| box d |])

        let act = property root "$" "activation" JsonValueKind.Object
        let name = (property act "$.activation" "name" JsonValueKind.String).GetString()

        let slope =
            let mutable s = Unchecked.defaultof<JsonElement>

            if act.TryGetProperty("slope", &s) then
                Some(number s "$.activation.slope")
            else
                None

        let activation =
            try
                Activation.parseOrDefault name slope
            with :? ArgumentException as e ->
                fail "$.activation" (reason e)

        let vector (name: string) (length: int) =
            let mutable e = Unchecked.defaultof<JsonElement>

            if root.TryGetProperty(name, &e) then
                let path = "$." + name

                if e.ValueKind <> JsonValueKind.Array then
                    fail
                        path
                        (Text.format "expected an array of %d numbers, found %A." [| box length; box e.ValueKind |])

                if e.GetArrayLength() <> length then
                    fail path (Text.format "expected %d numbers, found %d." [| box length; box (e.GetArrayLength()) |])

                Some(
                    e.EnumerateArray()
                    |> Seq.mapi (fun i v -> number v (Text.format "%s[%d]" [| box path; box i |]))
                    |> Seq.toArray
                )
            else
                None

        let family =
            let mutable e = Unchecked.defaultof<JsonElement>

            if root.TryGetProperty("family", &e) then
                if e.ValueKind <> JsonValueKind.String then
                    fail "$.family" (Text.format "expected a string, found %A." [| box e.ValueKind |])

                try
                    ExpertFamily.parse (e.GetString())
                with :? ArgumentException as ex ->
                    fail "$.family" (reason ex)
            else
                ExpertFamily.Gaussian

        let numberField (name: string) =
            let mutable e = Unchecked.defaultof<JsonElement>

            if root.TryGetProperty(name, &e) then
                Some(number (property root "$" name JsonValueKind.Number) ("$." + name))
            else
                None

        let sigmas, dof = ExpertFamily.ofJson family numberField vector fail k

        let indices (name: string) =
            let mutable e = Unchecked.defaultof<JsonElement>

            if root.TryGetProperty(name, &e) then
                let path = "$." + name

                if e.ValueKind <> JsonValueKind.Array then
                    fail path (Text.format "expected an array of input indices, found %A." [| box e.ValueKind |])

                Some(
                    e.EnumerateArray()
                    |> Seq.mapi (fun i v ->
                        let mutable c = 0

                        if v.ValueKind <> JsonValueKind.Number || not (v.TryGetInt32(&c)) then
                            fail (Text.format "%s[%d]" [| box path; box i |]) "expected an integer input index."

                        c)
                    |> Seq.toArray
                )
            else
                None

        let names (name: string) =
            let mutable e = Unchecked.defaultof<JsonElement>

            if root.TryGetProperty(name, &e) then
                let path = "$." + name

                if e.ValueKind <> JsonValueKind.Array then
                    fail path (Text.format "expected an array of column names, found %A." [| box e.ValueKind |])

                Some(
                    e.EnumerateArray()
                    |> Seq.mapi (fun i v ->
                        if v.ValueKind <> JsonValueKind.String then
                            fail (Text.format "%s[%d]" [| box path; box i |]) "expected a column name (a string)."

                        v.GetString())
                    |> Seq.toArray
                )
            else
                None

        // "levels": { "column": ["reference", "level", …], … } — the categorical columns, in the file's order.
        let levels =
            let mutable e = Unchecked.defaultof<JsonElement>

            if root.TryGetProperty("levels", &e) then
                if e.ValueKind <> JsonValueKind.Object then
                    fail
                        "$.levels"
                        (Text.format "expected an object of columns' levels, found %A." [| box e.ValueKind |])

                e.EnumerateObject()
                |> Seq.map (fun p ->
                    let path = "$.levels." + p.Name

                    if p.Value.ValueKind <> JsonValueKind.Array then
                        fail path "expected an array of levels (strings), the reference first."

                    p.Name,
                    (p.Value.EnumerateArray()
                     |> Seq.mapi (fun i v ->
                         if v.ValueKind <> JsonValueKind.String then
                             fail (Text.format "%s[%d]" [| box path; box i |]) "expected a level (a string)."

                         v.GetString())
                     |> Seq.toArray))
                |> Seq.toArray
            else
                [||]

        let response =
            let mutable e = Unchecked.defaultof<JsonElement>

            if root.TryGetProperty("response", &e) then
                if e.ValueKind <> JsonValueKind.String then
                    fail
                        "$.response"
                        (Text.format "expected the response column's name, found %A." [| box e.ValueKind |])

                Some(e.GetString())
            else
                None

        // The exposure column (docs/math.md §12.4): by name, or by index in a model without names.
        let offsetName =
            let mutable e = Unchecked.defaultof<JsonElement>

            if root.TryGetProperty("offsetColumn", &e) then
                if e.ValueKind <> JsonValueKind.String then
                    fail
                        "$.offsetColumn"
                        (Text.format "expected the exposure column's name, found %A." [| box e.ValueKind |])

                Some(e.GetString())
            else
                None

        let offsetIndex =
            let mutable e = Unchecked.defaultof<JsonElement>

            if root.TryGetProperty("offsetInput", &e) then
                let v = number e "$.offsetInput"

                if v <> Math.Floor v || v < 0.0 || v >= float d then
                    fail
                        "$.offsetInput"
                        (Text.format "expected an input index in [0, %d), found %g." [| box d; box v |])

                int v
            else
                -1

        let withOffset (index: int) (design: Design) =
            if index < 0 then
                design
            else
                try
                    Design.withOffset index design
                with :? ArgumentException as e ->
                    fail "$" (reason e)

        let design =
            match names "expertColumns", names "gateColumns", response with
            | Some experts, Some gate, Some response ->
                // The inputs are the experts' columns, then the gate's others, then the exposure's, as the file was
                // written.
                let inputs =
                    Array.append experts (gate |> Array.filter (fun g -> not (Array.contains g experts)))
                    |> fun read -> Array.append read (Option.toArray offsetName)

                if inputs.Length <> d then
                    fail
                        "$.d"
                        (Text.format
                            "the experts' and the gate's columns name %d distinct inputs, but d is %d."
                            [| box inputs.Length; box d |])

                try
                    Design.create
                        d
                        (experts |> Array.map (fun n -> Array.IndexOf(inputs, n)))
                        (gate |> Array.map (fun n -> Array.IndexOf(inputs, n)))
                    |> (match offsetName with
                        | Some name -> Design.withOffset (Array.IndexOf(inputs, name))
                        | None -> id)
                    |> Design.withColumns
                        {
                            Inputs = inputs
                            Response = response
                            Levels = levels
                        }
                with :? ArgumentException as e ->
                    fail "$" (reason e)
            | None, None, None ->
                match indices "expertInputs", indices "gateInputs" with
                | None, None -> Design.shared d
                | experts, gate ->
                    try
                        Design.create
                            d
                            (experts |> Option.defaultWith (fun () -> Array.init d id))
                            (gate |> Option.defaultWith (fun () -> Array.init d id))
                    with :? ArgumentException as e ->
                        fail "$" (reason e)
                    |> withOffset offsetIndex
            | _ -> fail "$" "a model's columns by name need all three of 'response', 'expertColumns' and 'gateColumns'."

        let regressors = matrix root "regressors" k design.ExpertColumns.Length
        let gating = matrix root "gating" (k - 1) design.GateColumns.Length

        let b =
            vector "regressorIntercepts" k
            |> Option.defaultWith (fun () -> Array.zeroCreate k)

        let c =
            vector "gatingIntercepts" (k - 1)
            |> Option.defaultWith (fun () -> Array.zeroCreate (k - 1))

        if
            family = ExpertFamily.Gaussian
            && design.IsShared
            && design.Columns.IsNone
            && Array.forall (fun v -> v = 0.0) b
            && Array.forall (fun v -> v = 0.0) c
            && Array.forall (fun v -> v = sigmas.[0]) sigmas
        then
            MoeModel.create regressors gating activation sigmas.[0]
        else
            MoeModel.createWith design family regressors b gating c activation sigmas
            |> MoeModel.withDegreesOfFreedom dof

    /// <summary>Writes a model file (created or replaced atomically: a failed write leaves the previous file).</summary>
    /// <param name="path">The file.</param>
    /// <param name="model">The model.</param>
    [<CompiledName("Save")>]
    let save (path: string) (model: MoeModel) : unit =
        Guard.notNull "path" path
        AtomicFile.writeAllText path (serialize model)

    /// <summary>Reads a model file.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The model.</returns>
    /// <exception cref="T:System.IO.InvalidDataException">See <c>deserialize</c>; the message starts with the file name.</exception>
    /// <example>
    /// <code lang="fsharp">
    /// let model = ModelJson.load "model.json"
    /// ModelJson.save "copy.json" model   // numbers round-trip exactly
    /// </code>
    /// </example>
    [<CompiledName("Load")>]
    let load (path: string) : MoeModel =
        Guard.notNull "path" path
        let text = File.ReadAllText path

        try
            deserialize text
        with :? InvalidDataException as e ->
            raise (InvalidDataException(Text.format "%s: %s" [| box (Path.GetFileName path); box e.Message |], e))
