namespace MoE.Core

open System

/// <summary>The ground-truth families of the paper's experiments and of the learner's acceptance tests.</summary>
[<RequireQualifiedAccess>]
type Preset =
    /// a_i = e_i, w_i = e_{k+i}: unit, orthonormal regressors and gating orthogonal to them (needs d ≥ 2k−1).
    | Orthogonal
    /// a_i = e_i, w_i uniform on the sphere of radius R (needs d ≥ k).
    | RandomGating
    /// Unit regressors in random, generally non-orthogonal directions (uniform on the sphere); gating rows of
    /// norm R orthogonal to the regressors' span (needs d ≥ k+1), or anywhere on the sphere when free.
    | Random of freeGating: bool

/// Ground-truth models for experiments.
[<RequireQualifiedAccess>]
module GroundTruth =

    let private check (experts: int) (dimension: int) (radius: float) =
        if experts < 2 then
            raise (
                ArgumentOutOfRangeException(
                    "experts",
                    experts,
                    Text.format "A mixture needs k >= 2 experts, but k = %d." [| box experts |]
                )
            )

        Guard.positiveInt "dimension" dimension
        Guard.positive "radius" radius

        Guard.allocation
            "experts"
            (Text.format "k = %d regressors of d = %d" [| box experts; box dimension |])
            (int64 experts)
            (int64 dimension)

    let private needDimension (preset: string) (required: int64) (experts: int) (dimension: int) (rule: string) =
        if int64 dimension < required then
            raise (
                ArgumentOutOfRangeException(
                    "dimension",
                    Text.format
                        "The %s preset needs d >= %s = %d for k = %d, but d = %d."
                        [| box preset; box rule; box required; box experts; box dimension |]
                )
            )

    /// A uniform direction on the sphere of radius r: a normalised Gaussian vector.
    let private sphere (rng: Xoshiro256StarStar) (dimension: int) (r: float) : float[] =
        let mutable v = Array.zeroCreate dimension
        let mutable norm = 0.0

        while norm < 1e-12 do
            v <- Array.init dimension (fun _ -> rng.NextGaussian())
            norm <- sqrt (Array.sumBy (fun t -> t * t) v)

        v |> Array.map (fun t -> r * t / norm)

    /// <summary>The paper's orthogonal setting: a_i = e_i, w_i = e_{k+i} (1-based).</summary>
    /// <param name="experts">k ≥ 2.</param>
    /// <param name="dimension">d ≥ 2k−1.</param>
    /// <param name="activation">g.</param>
    /// <param name="sigma">σ ≥ 0.</param>
    /// <returns>The model.</returns>
    /// <exception cref="T:System.ArgumentOutOfRangeException">k &lt; 2 or d &lt; 2k−1.</exception>
    [<CompiledName("Orthogonal")>]
    let orthogonal (experts: int) (dimension: int) (activation: Activation) (sigma: float) : MoeModel =
        check experts dimension 1.0
        needDimension "orthogonal" (2L * int64 experts - 1L) experts dimension "2k-1"
        let a = Array2D.init experts dimension (fun i j -> if i = j then 1.0 else 0.0)

        let w =
            Array2D.init (experts - 1) dimension (fun i j -> if j = experts + i then 1.0 else 0.0)

        MoeModel.create a w activation sigma

    /// <summary>a_i = e_i and each w_i uniform on the sphere of radius <paramref name="radius"/> (the paper's
    /// Fig. 3 setting with radius 1).</summary>
    /// <param name="experts">k ≥ 2.</param>
    /// <param name="dimension">d ≥ k.</param>
    /// <param name="activation">g.</param>
    /// <param name="sigma">σ ≥ 0.</param>
    /// <param name="radius">R &gt; 0.</param>
    /// <param name="seed">Seed of the gating draw.</param>
    /// <returns>The model.</returns>
    [<CompiledName("RandomGating")>]
    let randomGating
        (experts: int)
        (dimension: int)
        (activation: Activation)
        (sigma: float)
        (radius: float)
        (seed: int64)
        : MoeModel =
        check experts dimension radius
        needDimension "random-gating" (int64 experts) experts dimension "k"
        let rng = Rng.create seed
        let a = Array2D.init experts dimension (fun i j -> if i = j then 1.0 else 0.0)
        let rows = Array.init (experts - 1) (fun _ -> sphere rng dimension radius)
        MoeModel.create a (array2D rows) activation sigma

    /// <summary>Unit regressors in random directions (uniform on the sphere, redrawn until their Gram matrix
    /// has smallest eigenvalue ≥ 0.1, so they are well separated), and gating rows of norm
    /// <paramref name="radius"/>: orthogonal to the regressors' span, or uniform on the sphere when
    /// <paramref name="freeGating"/>.</summary>
    /// <param name="experts">k ≥ 2.</param>
    /// <param name="dimension">d ≥ k+1 (d ≥ k when the gating is free).</param>
    /// <param name="activation">g.</param>
    /// <param name="sigma">σ ≥ 0.</param>
    /// <param name="radius">R &gt; 0.</param>
    /// <param name="freeGating">Whether the gating may have a component along the regressors.</param>
    /// <param name="seed">Seed of the draw.</param>
    /// <returns>The model.</returns>
    [<CompiledName("Random")>]
    let random
        (experts: int)
        (dimension: int)
        (activation: Activation)
        (sigma: float)
        (radius: float)
        (freeGating: bool)
        (seed: int64)
        : MoeModel =
        check experts dimension radius

        if freeGating then
            needDimension "random (free gating)" (int64 experts) experts dimension "k"
        else
            needDimension "random" (int64 experts + 1L) experts dimension "k+1"

        let rng = Rng.create seed

        let minGramEigenvalue (rows: float[][]) =
            let g =
                MathNet.Numerics.LinearAlgebra.Matrix<float>.Build.Dense(
                    experts,
                    experts,
                    fun i j -> Array.fold2 (fun s u v -> s + u * v) 0.0 rows.[i] rows.[j]
                )

            g.Evd(MathNet.Numerics.LinearAlgebra.Symmetricity.Symmetric).EigenValues
            |> Seq.map (fun c -> c.Real)
            |> Seq.min

        let mutable rows = Array.init experts (fun _ -> sphere rng dimension 1.0)
        let mutable attempts = 1

        while minGramEigenvalue rows < 0.1 do
            if attempts >= 1000 then
                invalidOp (
                    Text.format
                        "Could not draw %d well-separated unit regressors in d = %d after 1000 attempts."
                        [| box experts; box dimension |]
                )

            rows <- Array.init experts (fun _ -> sphere rng dimension 1.0)
            attempts <- attempts + 1

        // Orthonormal basis of span{a_m} (Gram–Schmidt; the rows are well separated, so it is stable).
        let basis = ResizeArray<float[]>()

        let removeSpan (v: float[]) =
            for b in basis do
                let c = Array.fold2 (fun s u t -> s + u * t) 0.0 v b

                for j in 0 .. dimension - 1 do
                    v.[j] <- v.[j] - c * b.[j]

        for r in rows do
            let v = Array.copy r
            removeSpan v
            let nv = sqrt (Array.sumBy (fun t -> t * t) v)
            basis.Add(v |> Array.map (fun t -> t / nv))

        let orthogonalRow () =
            let mutable result = [||]

            while result.Length = 0 do
                let v = Array.init dimension (fun _ -> rng.NextGaussian())
                removeSpan v
                let nv = sqrt (Array.sumBy (fun t -> t * t) v)

                if nv > 1e-6 then
                    result <- v |> Array.map (fun t -> radius * t / nv)

            result

        let gating =
            Array.init (experts - 1) (fun _ ->
                if freeGating then
                    sphere rng dimension radius
                else
                    orthogonalRow ())

        MoeModel.create (array2D rows) (array2D gating) activation sigma

    /// <summary>Any preset by value (for the command line).</summary>
    /// <param name="preset">The family.</param>
    /// <param name="experts">k.</param>
    /// <param name="dimension">d.</param>
    /// <param name="activation">g.</param>
    /// <param name="sigma">σ.</param>
    /// <param name="radius">R (ignored by <c>Orthogonal</c>).</param>
    /// <param name="seed">Seed (ignored by <c>Orthogonal</c>).</param>
    /// <returns>The model.</returns>
    [<CompiledName("Create")>]
    let create
        (preset: Preset)
        (experts: int)
        (dimension: int)
        (activation: Activation)
        (sigma: float)
        (radius: float)
        (seed: int64)
        : MoeModel =
        match preset with
        | Preset.Orthogonal -> orthogonal experts dimension activation sigma
        | Preset.RandomGating -> randomGating experts dimension activation sigma radius seed
        | Preset.Random free -> random experts dimension activation sigma radius free seed

    /// <summary>A ground truth of the general model (docs/math.md §9): a model for standard covariates u given
    /// intercepts and noise levels, expressed in the units of x = μ + s ⊙ u (a = a_u/s, b = b_u − ⟨a, μ⟩, and the same
    /// for the gate), so that <c>Sampler.sampleCovariates μ s</c> draws its data.</summary>
    /// <param name="model">The model for standard covariates (e.g. a preset).</param>
    /// <param name="regressorIntercepts">b_i for standard covariates (k).</param>
    /// <param name="gatingIntercepts">c_i for standard covariates (k − 1).</param>
    /// <param name="sigmas">σ_i (k).</param>
    /// <param name="mean">μ (d).</param>
    /// <param name="scale">s (d, every entry &gt; 0).</param>
    /// <returns>The model in the units of x.</returns>
    [<CompiledName("InCovariateUnits")>]
    let inCovariateUnits
        (model: MoeModel)
        (regressorIntercepts: float[])
        (gatingIntercepts: float[])
        (sigmas: float[])
        (mean: float[])
        (scale: float[])
        : MoeModel =
        MoeModel.validate model
        Sampler.checkCovariateUnits mean scale model.Dimension
        let k, d = model.Experts, model.Dimension
        let a = Array2D.init k d (fun i t -> model.Regressors.[i, t] / scale.[t])
        let w = Array2D.init (k - 1) d (fun i t -> model.Gating.[i, t] / scale.[t])

        let dot (m: float[,]) i =
            Seq.sum (seq { for t in 0 .. d - 1 -> m.[i, t] * mean.[t] })

        Guard.notNull "regressorIntercepts" regressorIntercepts
        Guard.notNull "gatingIntercepts" gatingIntercepts

        if regressorIntercepts.Length <> k || gatingIntercepts.Length <> k - 1 then
            invalidArg
                "regressorIntercepts"
                (Text.format
                    "k = %d experts need %d regressor intercepts and %d gating intercepts, not %d and %d."
                    [|
                        box k
                        box k
                        box (k - 1)
                        box regressorIntercepts.Length
                        box gatingIntercepts.Length
                    |])

        MoeModel.createGeneral
            a
            (Array.init k (fun i -> regressorIntercepts.[i] - dot a i))
            w
            (Array.init (k - 1) (fun i -> gatingIntercepts.[i] - dot w i))
            model.Activation
            sigmas

    /// <summary>Random intercepts for a ground truth of the general model: b_i, c_i ~ N(0, 1) from a stream of their
    /// own (the preset drawn with the same seed does not change).</summary>
    /// <param name="experts">k ≥ 2.</param>
    /// <param name="seed">The seed.</param>
    /// <returns>(b, c): k regressor intercepts and k − 1 gating intercepts.</returns>
    [<CompiledName("RandomIntercepts")>]
    let randomIntercepts (experts: int) (seed: int64) : float[] * float[] =
        check experts 1 1.0
        let rng = Rng.stream seed Streams.Intercepts
        let b = Array.init experts (fun _ -> rng.NextGaussian())
        let c = Array.init (experts - 1) (fun _ -> rng.NextGaussian())
        b, c
