namespace MoE.Core

/// <summary>The success rule of every recovery study, figure and acceptance table (docs/learners.md): a fit
/// recovers the truth when E_reg ≤ 0.01 and the aligned E_gating ≤ 0.01.</summary>
[<RequireQualifiedAccess>]
module Success =

    /// The error threshold: 0.01.
    [<Literal>]
    let Threshold = 0.01

    /// <summary>An error within the threshold.</summary>
    /// <param name="error">E_reg or E_gating.</param>
    [<CompiledName("Within")>]
    let within (error: float) : bool = error <= Threshold

    /// <summary>Both errors within the threshold.</summary>
    /// <param name="errors">The fit's recovery errors.</param>
    [<CompiledName("IsRecovered")>]
    let isRecovered (errors: RecoveryErrors) : bool =
        within errors.RegressorError && within errors.GatingError

/// <summary>Summaries of repeated runs.</summary>
[<RequireQualifiedAccess>]
module Summary =

    /// <summary>The median (the mean of the two middle values for an even count).</summary>
    /// <param name="values">At least one value.</param>
    /// <exception cref="T:System.ArgumentException">No values.</exception>
    [<CompiledName("Median")>]
    let median (values: float seq) : float =
        let v = Seq.toArray values

        if v.Length = 0 then
            invalidArg "values" "The median of no values is undefined."

        Dense.median v
