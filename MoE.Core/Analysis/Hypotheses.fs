namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra

/// <summary>A Wald test of linear hypotheses about a model's coefficients (<c>Hypotheses.wald</c>).</summary>
type WaldTest =
    {
        /// The hypotheses as written.
        Hypotheses: string[]
        /// Each hypothesis's estimate Rθ̂ − r and its standard error.
        Estimates: (float * float)[]
        /// The statistic (Rθ̂ − r)ᵀ (R Σ Rᵀ)⁻¹ (Rθ̂ − r).
        Statistic: float
        /// Its degrees of freedom q, the number of hypotheses.
        DegreesOfFreedom: int
        /// P(χ²_q ≥ statistic).
        P: float
    }

/// <summary>Tests of hypotheses about a fitted model's coefficients (docs/inference.md §2.1), from the covariance of
/// its standard errors (<c>Inference.standardErrorsOf</c>).</summary>
[<RequireQualifiedAccess>]
module Hypotheses =

    /// <summary>A Wald test of linear hypotheses about a model's coefficients, jointly (docs/inference.md §2.1): the
    /// hypotheses are rows of R θ = r, the statistic W = (Rθ̂ − r)ᵀ (R Σ Rᵀ)⁻¹ (Rθ̂ − r) with Σ the estimates'
    /// covariance (<c>standardErrorsOf</c>, observed or sandwich), and its p-value from χ² with one degree per
    /// hypothesis. A term is <c>name[i]</c>: expert i's coefficient on the column called name (its name in the data, or
    /// x1, x2, … by position), <c>intercept[i]</c> expert i's intercept, <c>gate.name[j]</c> and <c>gate.intercept[j]</c>
    /// row j of the gate (1 ≤ j &lt; k; row k is 0), each with an optional factor (<c>2*x1[1]</c>); hypotheses are
    /// separated by ';', e.g. <c>x1[1] = x1[2]; x2[1] = x2[2]</c> ("does x1 and x2 act the same in both experts?").
    /// With k = 2 the labels are the fit's: read them from the model first.</summary>
    /// <param name="errors">The fit's standard errors (their covariance and parameter layout).</param>
    /// <param name="model">The fitted model.</param>
    /// <param name="hypotheses">The hypotheses, as above.</param>
    /// <exception cref="T:System.ArgumentException">A term that names no coefficient, a malformed hypothesis, or
    /// hypotheses that are not linearly independent (R Σ Rᵀ singular).</exception>
    [<CompiledName("Wald")>]
    let wald (errors: StandardErrors) (model: MoeModel) (hypotheses: string) : WaldTest =
        Guard.notNull "hypotheses" hypotheses
        let parameters = errors.Parameters
        let p = parameters.Length

        let columnNames (names: string[] option) (width: int) =
            Array.init width (fun t ->
                match names with
                | Some n when t < n.Length -> n.[t]
                | _ -> Text.format "x%d" [| box (t + 1) |])

        let expertNames = columnNames model.Design.ExpertNames model.ExpertDimension
        let gateNames = columnNames model.Design.GateNames model.GateDimension

        // Whether position i of a text is inside backticks.
        let quoted (text: string) (i: int) =
            (text.Substring(0, i) |> Seq.filter ((=) '`') |> Seq.length) % 2 = 1

        // The text split at c where c is outside backticks.
        let splitOutside (c: char) (text: string) =
            let cuts =
                [|
                    for i in 0 .. text.Length - 1 do
                        if text.[i] = c && not (quoted text i) then
                            yield i
                |]

            Array.init (cuts.Length + 1) (fun j ->
                let start = if j = 0 then 0 else cuts.[j - 1] + 1
                let stop = if j = cuts.Length then text.Length else cuts.[j]
                text.Substring(start, stop - start))

        let fail (text: string) (why: string) =
            invalidArg "hypotheses" (Text.format "In the hypothesis '%s', %s" [| box text; box why |])

        let index (text: string) (term: string) =
            let open' = term.LastIndexOf '['

            if open' <= 0 || not (term.EndsWith ']') then
                fail
                    text
                    (Text.format
                        "'%s' is not a coefficient: write name[i], intercept[i], gate.name[j] or gate.intercept[j]."
                        [| box term |])

            // A name holding '=', '-', '+' or spaces (a level's indicator, site=north) is quoted in backticks.
            let name = term.Substring(0, open').Trim().Trim('`')

            let number =
                match Int32.TryParse(term.Substring(open' + 1, term.Length - open' - 2).Trim()) with
                | true, v -> v
                | _ -> fail text (Text.format "'%s' has no expert number in its brackets." [| box term |])

            let gate, column =
                if name.StartsWith "gate." then
                    true, name.Substring 5
                else
                    false, name

            let rows = if gate then model.Experts - 1 else model.Experts

            if number < 1 || number > rows then
                fail
                    text
                    (Text.format
                        "'%s' names %s %d, but the model has %d%s."
                        [|
                            box term
                            box (if gate then "gate row" else "expert")
                            box number
                            box rows
                            box (
                                if gate then
                                    " gate rows (row k is 0, not a parameter)"
                                else
                                    " experts"
                            )
                        |])

            let t =
                if column = "intercept" then
                    if not model.HasIntercepts then
                        fail text "the model has no intercepts."

                    -1
                else
                    match Array.IndexOf((if gate then gateNames else expertNames), column) with
                    | -1 ->
                        fail
                            text
                            (Text.format
                                "there is no column '%s' the %s (%s)."
                                [|
                                    box column
                                    box (if gate then "gate reads" else "experts read")
                                    box (String.Join(", ", (if gate then gateNames else expertNames)))
                                |])
                    | t -> t

            let key = (if gate then "w" else "a"), number - 1, t
            Array.IndexOf(parameters, key)

        // One hypothesis: a sum of (factor × coefficient) on each side, or a constant.
        let parse (text: string) =
            let sides = splitOutside '=' text

            if sides.Length <> 2 then
                fail text "write one '=' between two sums of coefficients."

            let row = Array.zeroCreate p
            let mutable constant = 0.0

            for side, sign in [ sides.[0], 1.0; sides.[1], -1.0 ] do
                // A minus outside backticks starts a negative term, unless it is a number's exponent (1e-3).
                let exponent (i: int) =
                    i >= 2
                    && (side.[i - 1] = 'e' || side.[i - 1] = 'E')
                    && Char.IsDigit side.[i - 2]

                let normalised =
                    String(
                        side
                        |> Seq.mapi (fun i c -> i, c)
                        |> Seq.collect (fun (i, c) ->
                            if c = '-' && not (quoted side i) && not (exponent i) then
                                "+-" :> seq<char>
                            else
                                Seq.singleton c)
                        |> Seq.toArray
                    )

                for raw in
                    splitOutside '+' normalised
                    |> Array.map _.Trim()
                    |> Array.filter (fun t -> t.Length > 0) do
                    let negative = raw.StartsWith '-'
                    let body = (if negative then raw.Substring 1 else raw).Trim()
                    let s = if negative then -sign else sign
                    let star = body.IndexOf '*'

                    let factor, term =
                        if star > 0 then
                            match
                                Double.TryParse(
                                    body.Substring(0, star).Trim(),
                                    Globalization.NumberStyles.Float,
                                    Globalization.CultureInfo.InvariantCulture
                                )
                            with
                            | true, v -> v, body.Substring(star + 1).Trim()
                            | _ -> fail text (Text.format "'%s' is not a number times a coefficient." [| box body |])
                        else
                            1.0, body

                    if term.Contains '[' then
                        let j = index text term
                        row.[j] <- row.[j] + s * factor
                    else
                        match
                            Double.TryParse(
                                term,
                                Globalization.NumberStyles.Float,
                                Globalization.CultureInfo.InvariantCulture
                            )
                        with
                        | true, v -> constant <- constant - s * factor * v
                        | _ -> fail text (Text.format "'%s' is neither a coefficient nor a number." [| box term |])

            if Array.forall ((=) 0.0) row then
                fail text "it names no coefficient (or its terms cancel)."

            row, constant

        let texts =
            splitOutside ';' hypotheses
            |> Array.map _.Trim()
            |> Array.filter (fun t -> t.Length > 0)

        if texts.Length = 0 then
            invalidArg "hypotheses" "There is no hypothesis; write e.g. 'x1[1] = x1[2]'."

        let rows = texts |> Array.map parse
        let q = rows.Length

        let theta = Likelihood.pack (Inference.settingsOf model false true) model
        // The estimates in the layout of the covariance: the coefficients, whose order pack shares.
        let value (row: float[]) =
            Seq.sum (
                seq {
                    for j in 0 .. p - 1 do
                        if row.[j] <> 0.0 then
                            yield row.[j] * theta.[j]
                }
            )

        let cov = Matrix<float>.Build.DenseOfArray errors.Covariance
        let r = Matrix<float>.Build.Dense(q, p, fun h j -> (fst rows.[h]).[j])
        let d = Vector<float>.Build.Dense(q, fun h -> value (fst rows.[h]) - snd rows.[h])
        let middle = r * cov * r.Transpose()

        let eigen =
            middle.Evd(Symmetricity.Symmetric).EigenValues |> Seq.map _.Real |> Seq.toArray

        if not (Array.min eigen > 1e-12 * Array.max eigen) then
            invalidArg
                "hypotheses"
                "The hypotheses are not linearly independent (one follows from the others); drop the redundant ones."

        let statistic = d * middle.Inverse() * d

        {
            Hypotheses = texts
            Estimates = Array.init q (fun h -> d.[h], sqrt middle.[h, h])
            Statistic = statistic
            DegreesOfFreedom = q
            P = 1.0 - MathNet.Numerics.Distributions.ChiSquared.CDF(float q, statistic)
        }
