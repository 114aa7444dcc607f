namespace MoE.Core

open System

/// <summary>
/// The output transforms Q4, Q2 and the input transforms t1, t2, t3 of the paper (§3.1), with the dense score
/// tensors S2(x) = x⊗x − I and S4(x) (the fourth Hermite tensor) that they contract.
/// </summary>
/// <remarks>
/// With s_u = &lt;u, x&gt;:
/// t2(u,x) = (s_u⁴ − 6|u|²s_u² + 3|u|⁴)/c = S4(x)(u,u,u,u)/c;
/// t3(u,x) = (s_u² − |u|²)/c' = S2(x)(u,u)/c';
/// t1(u,v,x) = (s_u²s_v² − |u|²s_v² − 4s_us_v&lt;u,v&gt; − |v|²s_u² + |u|²|v|² + 2&lt;u,v&gt;²)/c = S4(x)(u,u,v,v)/c.
/// S4(x)_{ijkl} = x_ix_jx_kx_l − (x_ix_jδ_kl + x_ix_kδ_jl + x_ix_lδ_jk + x_jx_kδ_il + x_jx_lδ_ik + x_kx_lδ_ij)
/// + δ_ijδ_kl + δ_ikδ_jl + δ_ilδ_jk.
/// </remarks>
[<RequireQualifiedAccess>]
module Transforms =

    /// <summary>Q4(y) = y⁴ + αy³ + βy² + γy (the paper's form, uncentred).</summary>
    /// <param name="coefficients">The coefficients (α, β, γ, δ, c, c', means).</param>
    /// <param name="y">A response.</param>
    [<CompiledName("Q4")>]
    let q4 (coefficients: TransformCoefficients) (y: float) : float =
        let c = coefficients
        y * (c.Gamma + y * (c.Beta + y * (c.Alpha + y)))

    /// <summary>Q2(y) = y² + δy (uncentred).</summary>
    /// <param name="coefficients">The coefficients (α, β, γ, δ, c, c', means).</param>
    /// <param name="y">A response.</param>
    [<CompiledName("Q2")>]
    let q2 (coefficients: TransformCoefficients) (y: float) : float = y * (coefficients.Delta + y)

    /// <summary>Q4(y) − E[Q4(Y)] (mean zero under a unit-norm expert).</summary>
    /// <param name="coefficients">The coefficients (α, β, γ, δ, c, c', means).</param>
    /// <param name="y">A response.</param>
    [<CompiledName("Q4Centred")>]
    let q4Centred (coefficients: TransformCoefficients) (y: float) : float = q4 coefficients y - coefficients.Q4Mean

    /// <summary>Q2(y) − E[Q2(Y)].</summary>
    /// <param name="coefficients">The coefficients (α, β, γ, δ, c, c', means).</param>
    /// <param name="y">A response.</param>
    [<CompiledName("Q2Centred")>]
    let q2Centred (coefficients: TransformCoefficients) (y: float) : float = q2 coefficients y - coefficients.Q2Mean

    let private dot (u: float[]) (v: float[]) =
        let mutable s = 0.0

        for i in 0 .. u.Length - 1 do
            s <- s + u.[i] * v.[i]

        s

    let private check2 (u: float[]) (v: float[]) (x: float[]) =
        Guard.notNull "u" u
        Guard.notNull "v" v
        Guard.notNull "x" x

        if u.Length <> x.Length || v.Length <> x.Length then
            invalidArg
                "x"
                (Text.format
                    "u, v and x must have equal lengths, but have %d, %d and %d."
                    [| box u.Length; box v.Length; box x.Length |])

    /// <summary>t1(u, v, x) = S4(x)(u,u,v,v)/c.</summary>
    /// <param name="coefficients">The coefficients (α, β, γ, δ, c, c', means).</param>
    /// <param name="u">A direction (length d).</param>
    /// <param name="v">A second direction (length d).</param>
    /// <param name="x">An input (length d).</param>
    [<CompiledName("T1")>]
    let t1 (coefficients: TransformCoefficients) (u: float[]) (v: float[]) (x: float[]) : float =
        check2 u v x
        let su, sv, uv, nu, nv = dot u x, dot v x, dot u v, dot u u, dot v v

        (su * su * sv * sv - nu * sv * sv - 4.0 * su * sv * uv - nv * su * su
         + nu * nv
         + 2.0 * uv * uv)
        / coefficients.C

    /// <summary>t2(u, x) = S4(x)(u,u,u,u)/c.</summary>
    /// <param name="coefficients">The coefficients (α, β, γ, δ, c, c', means).</param>
    /// <param name="u">A direction (length d).</param>
    /// <param name="x">An input (length d).</param>
    [<CompiledName("T2")>]
    let t2 (coefficients: TransformCoefficients) (u: float[]) (x: float[]) : float =
        check2 u u x
        let su, nu = dot u x, dot u u
        (su * su * su * su - 6.0 * nu * su * su + 3.0 * nu * nu) / coefficients.C

    /// <summary>t3(u, x) = S2(x)(u,u)/c'.</summary>
    /// <param name="coefficients">The coefficients (α, β, γ, δ, c, c', means).</param>
    /// <param name="u">A direction (length d).</param>
    /// <param name="x">An input (length d).</param>
    [<CompiledName("T3")>]
    let t3 (coefficients: TransformCoefficients) (u: float[]) (x: float[]) : float =
        check2 u u x
        let su = dot u x
        (su * su - dot u u) / coefficients.CPrime

    /// <summary>The score tensor S2(x) = x⊗x − I as a d×d matrix.</summary>
    /// <param name="x">An input (length d).</param>
    [<CompiledName("Score2")>]
    let score2 (x: float[]) : float[,] =
        Guard.notNull "x" x
        Array2D.init x.Length x.Length (fun i j -> x.[i] * x.[j] - (if i = j then 1.0 else 0.0))

    /// <summary>The score tensor S4(x) as a dense d×d×d×d array (d⁴ entries: for small d only).</summary>
    /// <exception cref="T:System.ArgumentException">d &gt; 40 (the tensor would exceed 20 MB).</exception>
    /// <param name="x">An input (length d ≤ 40).</param>
    [<CompiledName("Score4")>]
    let score4 (x: float[]) : float[,,,] =
        Guard.notNull "x" x
        let d = x.Length

        if d > 40 then
            invalidArg
                "x"
                (Text.format "The dense S4 tensor has d^4 entries; d = %d is too large (at most 40)." [| box d |])

        let delta i j = if i = j then 1.0 else 0.0

        Array4D.init d d d d (fun i j k l ->
            x.[i] * x.[j] * x.[k] * x.[l]
            - (x.[i] * x.[j] * delta k l
               + x.[i] * x.[k] * delta j l
               + x.[i] * x.[l] * delta j k
               + x.[j] * x.[k] * delta i l
               + x.[j] * x.[l] * delta i k
               + x.[k] * x.[l] * delta i j)
            + delta i j * delta k l
            + delta i k * delta j l
            + delta i l * delta j k)
