namespace MoE.Core

open System

/// <summary>
/// The softmax gate p_i(x) = exp(&lt;w_i, x&gt;) / Σ_j exp(&lt;w_j, x&gt;), i = 1..k, with w_k = 0 (the gating
/// matrix W holds the k−1 free rows).
/// </summary>
/// <remarks>
/// Stable evaluation: the maximum logit is subtracted before exponentiating, so logits of ±1000 neither
/// overflow nor give NaN; log-probabilities are l_i − logsumexp(l).
/// </remarks>
[<RequireQualifiedAccess>]
module Gate =

    /// The gate's columns of x for <c>logitsInto</c>: null when the design is shared (the columns in order).
    let internal columnsOf (design: Design) : int[] =
        if design.IsShared then null else design.GateColumns

    /// <summary>Writes the k logits (&lt;w_1,x_row&gt; + c_1, …, &lt;w_{k−1},x_row&gt; + c_{k−1}, 0) of one sample into
    /// <paramref name="logits"/>, x's entries taken from <paramref name="columns"/> (null: every column in order).
    /// Unchecked: shapes are the caller's responsibility.</summary>
    let inline internal logitsInto
        (gating: float[,])
        (intercepts: float[])
        (columns: int[])
        (x: float[,])
        (row: int)
        (logits: float[])
        =
        let km1 = gating.GetLength 0
        let d = gating.GetLength 1
        let shared = isNull columns

        for i in 0 .. km1 - 1 do
            let mutable s = 0.0

            for j in 0 .. d - 1 do
                s <- s + gating.[i, j] * x.[row, (if shared then j else columns.[j])]

            logits.[i] <- s + intercepts.[i]

        logits.[km1] <- 0.0

    /// <summary>log Σ_i exp(v_i) over the first <paramref name="count"/> entries, with the maximum
    /// subtracted first. −∞ if every entry is −∞.</summary>
    let internal logSumExp (v: float[]) (count: int) : float =
        let mutable m = Double.NegativeInfinity

        for i in 0 .. count - 1 do
            if v.[i] > m then
                m <- v.[i]

        if Double.IsNegativeInfinity m then
            m
        else
            let mutable s = 0.0

            for i in 0 .. count - 1 do
                s <- s + Math.Exp(v.[i] - m)

            m + Math.Log s

    /// <summary>Replaces the first <paramref name="count"/> entries of v by softmax(v), in place
    /// (max-subtracted). Internal: callers own the buffer.</summary>
    let internal softmaxInPlace (v: float[]) (count: int) =
        let mutable m = Double.NegativeInfinity

        for i in 0 .. count - 1 do
            if v.[i] > m then
                m <- v.[i]

        let mutable s = 0.0

        for i in 0 .. count - 1 do
            let e = Math.Exp(v.[i] - m)
            v.[i] <- e
            s <- s + e

        for i in 0 .. count - 1 do
            v.[i] <- v.[i] / s

    /// <summary>softmax(logits), computed stably.</summary>
    /// <param name="logits">Finite logits (at least one).</param>
    /// <returns>Probabilities that are non-negative and sum to 1 up to rounding.</returns>
    /// <exception cref="T:System.ArgumentException">Empty or non-finite logits.</exception>
    [<CompiledName("Softmax")>]
    let softmax (logits: float[]) : float[] =
        Guard.finiteVector "logits" logits

        if logits.Length = 0 then
            invalidArg "logits" "softmax needs at least one logit."

        let p = Array.copy logits
        softmaxInPlace p p.Length
        p
