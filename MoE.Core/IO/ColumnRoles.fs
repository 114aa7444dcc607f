namespace MoE.Core

open System

/// <summary>
/// What each of a data file's columns is in a fit (docs/data.md): the response, the experts' inputs x_E and the gate's
/// inputs x_G. Any of the three may be left to its default: the response is the column named y (in any case); the
/// experts read every column but the response; the gate reads the experts' columns. The gate and the experts may read
/// different columns, overlapping or disjoint — flexmix's concomitant variables, MoEClust's <c>gating = ~ z</c>.
/// </summary>
[<NoComparison>]
type ColumnRoles =
    {
        /// The response column's name, or None for the column named y.
        Response: string option
        /// The experts' columns by name, in the order of a row of the regressors, or None for every column but the
        /// response, in the file's order.
        Experts: string[] option
        /// The gate's columns by name, in the order of a row of the gating, or None for the experts' columns.
        Gate: string[] option
        /// What a row with a missing value in a column these roles read does: refuse (the default) or drop.
        Missing: MissingValues
        /// The reference level of categorical columns, (column, level); a column not listed takes its first level in
        /// ordinal order.
        References: (string * string)[]
        /// The column of the rows' frequency weights (docs/math.md §13), or None: every row weighs 1. It is read with
        /// the rows (never an input of the model), so a model predicts without it.
        Weights: string option
        /// The column of the rows' exposures t &gt; 0 (docs/math.md §12.4), or None: each count's mean is t·e^η, the
        /// offset log t entering every expert's linear predictor (Poisson experts). An input of the model that neither
        /// part reads as a covariate, so predictions need it too.
        Offset: string option
    }

/// <summary>Building, parsing and resolving <see cref="T:MoE.Core.ColumnRoles"/>.</summary>
[<RequireQualifiedAccess>]
module ColumnRoles =

    /// <summary>Every role at its default: y is the response, the experts and the gate read every other column.</summary>
    [<CompiledName("Defaults")>]
    let defaults: ColumnRoles =
        {
            Response = None
            Experts = None
            Gate = None
            Missing = MissingValues.Refuse
            References = [||]
            Weights = None
            Offset = None
        }

    /// The terms of one side of a formula: column names joined by '+', or '.' for the default.
    let private terms (formula: string) (side: string) (text: string) : string[] option =
        let fail (why: string) =
            invalidArg "formula" (Text.format "In the formula '%s', %s" [| box formula; box why |])

        let trimmed = text.Trim()

        if trimmed = "." then
            None
        elif trimmed.Length = 0 then
            fail (
                Text.format "the %s is empty; write column names joined by '+', or '.' for every column." [| box side |]
            )
        else
            trimmed.Split('+')
            |> Array.map (fun term ->
                let t = term.Trim()

                let name =
                    if t.Length >= 2 && t.StartsWith '`' && t.EndsWith '`' then
                        t.Substring(1, t.Length - 2)
                    else
                        t

                if name.Length = 0 then
                    fail (Text.format "the %s has an empty term." [| box side |])
                elif t = "." then
                    fail (Text.format "'.' must stand alone on the %s." [| box side |])
                elif t = "1" || t = "0" || t = "-1" then
                    fail
                        "intercepts are not written in the formula: the fit has them unless --no-intercept (FitOptions.Intercepts) says otherwise."
                elif
                    not (t.StartsWith '`')
                    && name.IndexOfAny([| '*'; ':'; '^'; '('; ')'; '-'; '~'; '|' |]) >= 0
                then
                    fail (
                        Text.format
                            "the term '%s' is not a column name: only sums of columns are supported (write a transformed column into the data, or quote a name holding such characters in backticks)."
                            [| box t |]
                    )
                else
                    name)
            |> Some

    /// <summary>Parses a formula as R users write it: <c>y ~ a + b | z1 + z2</c> — the response left of '~', the
    /// experts' columns right of it, the gate's after '|' (default: the experts'); '.' stands for the default (every
    /// column but the response); a name with spaces or operators goes in backticks. Unlike flexmix, where
    /// <c>y ~ x | g</c> names a grouping variable and concomitant variables go in <c>FLXPmultinom(~ z)</c>, the part
    /// after '|' here is the gate's inputs (MoEClust's <c>gating = ~ z</c>).</summary>
    /// <param name="formula">The formula.</param>
    /// <returns>The roles.</returns>
    /// <exception cref="T:System.ArgumentException">Not of that form: the message says which part.</exception>
    [<CompiledName("ParseFormula")>]
    let parseFormula (formula: string) : ColumnRoles =
        Guard.notNull "formula" formula

        let fail (why: string) =
            invalidArg "formula" (Text.format "In the formula '%s', %s" [| box formula; box why |])

        match formula.Split('~') with
        | [| left; right |] ->
            let response = left.Trim().Trim('`')

            if response.Length = 0 then
                fail "the response (left of '~') is missing."

            if response.IndexOf('+') >= 0 || response = "." then
                fail "the left of '~' must be the one response column."

            let experts, gate =
                match right.Split('|') with
                | [| e |] -> terms formula "right of '~'" e, None
                | [| e; g |] ->
                    let gate = terms formula "gate's side (right of '|')" g
                    terms formula "experts' side (between '~' and '|')" e, gate
                | _ -> fail "'|' may appear once, between the experts' and the gate's columns."

            {
                Response = Some response
                Experts = experts
                Gate = gate
                Missing = MissingValues.Refuse
                References = [||]
                Weights = None
                Offset = None
            }
        | [| _ |] -> fail "there is no '~': write 'y ~ a + b' or 'y ~ a + b | z1 + z2'."
        | _ -> fail "'~' may appear once."

    /// <summary>The design the roles give over a file's columns: the inputs are the experts' columns, then the gate's
    /// others (so each column is read once), and the design carries every name.</summary>
    /// <param name="source">A name for messages (the file).</param>
    /// <param name="available">The file's columns (a role naming another is refused).</param>
    /// <param name="inputs">The columns the experts read by default, with the response left out (a CSV's header; a
    /// Parquet file's numeric columns).</param>
    /// <param name="categories">The file's categorical (text) columns and their levels (<c>DataCsv.categories</c>): each
    /// one a role reads enters the inputs as the indicators of its levels but the reference.</param>
    /// <param name="roles">The roles.</param>
    /// <returns>The design, with <c>Columns</c> set (its <c>Inputs</c> are the columns to read, in order).</returns>
    /// <exception cref="T:System.ArgumentException">A named column the file lacks, a column named twice in a role,
    /// the response among the inputs, no input left.</exception>
    [<CompiledName("Resolve")>]
    let resolve
        (source: string)
        (available: string[])
        (inputs: string[])
        (categories: (string * string[])[])
        (roles: ColumnRoles)
        : Design =
        Guard.notNull "available" available
        Guard.notNull "inputs" inputs
        Guard.notNull "categories" categories

        let fail (why: string) =
            invalidArg "roles" (Text.format "%s: %s" [| box source; box why |])

        let listed = String.Join(", ", available)

        let check (role: string) (name: string) =
            if not (Array.contains name available) then
                fail (Text.format "there is no column '%s' (%s); the file has %s." [| box name; box role; box listed |])

        let response =
            match roles.Response with
            | Some name ->
                check "the response" name
                name
            | None ->
                match
                    available
                    |> Array.tryFind (fun c -> String.Equals(c, "y", StringComparison.OrdinalIgnoreCase))
                with
                | Some y -> y
                | None ->
                    fail (
                        Text.format
                            "there is no column y to take as the response; name it (--y, or the formula's left side). The file has %s."
                            [| box listed |]
                    )

        let weights =
            match roles.Weights with
            | Some name ->
                check "the weights" name

                if name = response then
                    fail (Text.format "the column '%s' is the response; it cannot also be the weights." [| box name |])

                if categories |> Array.exists (fun (c, _) -> c = name) then
                    fail (
                        Text.format
                            "the weights column '%s' holds text; frequency weights are numbers (finite, at least 0)."
                            [| box name |]
                    )

                Some name
            | None -> None

        let offset =
            match roles.Offset with
            | Some name ->
                check "the exposure" name

                if name = response then
                    fail (Text.format "the column '%s' is the response; it cannot also be the exposure." [| box name |])

                if Some name = weights then
                    fail (Text.format "the column '%s' is the weights; it cannot also be the exposure." [| box name |])

                if categories |> Array.exists (fun (c, _) -> c = name) then
                    fail (
                        Text.format
                            "the exposure column '%s' holds text; an exposure is a positive number."
                            [| box name |]
                    )

                Some name
            | None -> None

        let chosen (role: string) (names: string[]) =
            names |> Array.iter (check role)

            match offset with
            | Some t when Array.contains t names ->
                fail (
                    Text.format
                        "the column '%s' is the exposure; its logarithm enters the experts with no coefficient, so it cannot also be one of the %s."
                        [| box t; box role |]
                )
            | _ -> ()

            match weights with
            | Some w when Array.contains w names ->
                fail (
                    Text.format "the column '%s' is the weights; it cannot also be one of the %s." [| box w; box role |]
                )
            | _ -> ()

            match names |> Array.countBy id |> Array.tryFind (fun (_, c) -> c > 1) with
            | Some(name, count) ->
                fail (
                    Text.format
                        "the %s name the column '%s' %d times; name each column once."
                        [| box role; box name; box count |]
                )
            | None -> ()

            if Array.contains response names then
                fail (
                    Text.format
                        "the column '%s' is the response; it cannot also be one of the %s."
                        [| box response; box role |]
                )

            if names.Length = 0 then
                fail (Text.format "the %s are empty." [| box role |])

            names

        let experts =
            match roles.Experts with
            | Some names -> chosen "experts' columns" names
            | None ->
                let others =
                    inputs
                    |> Array.filter (fun c -> c <> response && Some c <> weights && Some c <> offset)

                if others.Length = 0 then
                    fail "the file has the response alone; there is no input column."

                others

        let gate =
            match roles.Gate with
            | Some names -> chosen "gate's columns" names
            | None -> experts

        // A text response of two levels is a yes/no outcome: 0 for its first level (the reference), 1 for the other.
        let responseLevels =
            match categories |> Array.tryFind (fun (c, _) -> c = response) with
            | None -> [||]
            | Some(_, found) when found.Length = 2 ->
                let ordered =
                    match roles.References |> Array.tryFind (fun (c, _) -> c = response) with
                    | Some(_, reference) when not (Array.contains reference found) ->
                        fail (
                            Text.format
                                "the reference level '%s' of '%s' is not among its levels %s."
                                [| box reference; box response; box (String.Join(", ", found)) |]
                        )
                    | Some(_, reference) -> Array.append [| reference |] (found |> Array.filter ((<>) reference))
                    | None -> found

                [| response, ordered |]
            | Some(_, found) ->
                fail (
                    Text.format
                        "the response '%s' holds text with %d values; a text response must have two (a yes/no outcome, read as 0 for the first level in ordinal order or --reference, 1 for the other)."
                        [| box response; box (min found.Length DataCsv.MaxLevels) |]
                )

        // Each categorical column read: its levels with the reference first.
        let levels =
            Array.append experts gate
            |> Array.distinct
            |> Array.choose (fun c -> categories |> Array.tryFind (fun (name, _) -> name = c))
            |> Array.map (fun (column, found) ->
                if found.Length > DataCsv.MaxLevels then
                    fail (
                        Text.format
                            "the text column '%s' has more than %d distinct values: an identifier or free text, not a categorical column; leave it out of the roles (--x, --gate-x)."
                            [| box column; box DataCsv.MaxLevels |]
                    )

                if found.Length < 2 then
                    fail (
                        Text.format
                            "the text column '%s' has the single value '%s': it is constant, leave it out."
                            [| box column; box (String.Join("", found)) |]
                    )

                match roles.References |> Array.tryFind (fun (c, _) -> c = column) with
                | Some(_, reference) when not (Array.contains reference found) ->
                    fail (
                        Text.format
                            "the reference level '%s' of '%s' is not among its levels %s."
                            [| box reference; box column; box (String.Join(", ", found)) |]
                    )
                | Some(_, reference) -> column, Array.append [| reference |] (found |> Array.filter ((<>) reference))
                | None -> column, found)

        for column, _ in roles.References do
            let categorical =
                levels |> Array.exists (fun (c, _) -> c = column)
                || (column = response && responseLevels.Length > 0)

            if not categorical then
                fail (
                    Text.format
                        "a reference level is given for '%s', which is not a categorical column the roles read."
                        [| box column |]
                )

        // A categorical column enters as its indicators, side by side.
        let expand (names: string[]) =
            names
            |> Array.collect (fun c ->
                match levels |> Array.tryFind (fun (name, _) -> name = c) with
                | Some(_, l) -> l |> Array.skip 1 |> Array.map (Design.indicator c)
                | None -> [| c |])

        let experts, gate = expand experts, expand gate

        // The exposure, read by neither part, comes last.
        let read =
            Array.append experts (gate |> Array.filter (fun g -> not (Array.contains g experts)))
            |> fun covariates -> Array.append covariates (Option.toArray offset)

        let index (name: string) = Array.IndexOf(read, name)

        Design.create read.Length (Array.map index experts) (Array.map index gate)
        |> (match offset with
            | Some t -> Design.withOffset (index t)
            | None -> id)
        |> Design.withColumns
            {
                Inputs = read
                Response = response
                Levels = Array.append responseLevels levels
            }
