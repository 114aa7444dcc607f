namespace MoE.Core

open System
open System.Threading.Tasks

/// <summary>Draws samples from a <see cref="T:MoE.Core.MoeModel"/>: x ~ N(0, I_d), z ~ p(x),
/// y = g(&lt;a_z, x&gt;) + σξ.</summary>
/// <remarks>
/// Reproducibility: the n samples are cut into fixed chunks of <see cref="F:MoE.Core.SamplerModule.ChunkSize"/>
/// rows; chunk c draws from its own xoshiro256** stream <c>Rng.stream seed c</c>. Within a chunk, each
/// row draws d normals for x, one uniform for z and then its response's draws (Gaussian experts: one normal for ξ;
/// Bernoulli: one uniform; Poisson: one uniform below a mean of 10, pairs of uniforms until accepted above), in that order. The gate uses
/// <see cref="T:MoE.Core.DetMath"/>'s exp and the built-in activations are deterministic too, so the same seed
/// gives bit-identical data on any machine, whatever the core count (chunks run in parallel), and the first
/// m rows of a draw of n ≥ m samples equal a draw of m samples.
/// </remarks>
[<RequireQualifiedAccess>]
module Sampler =

    /// Rows per independent random stream.
    [<Literal>]
    let ChunkSize = 4096

    /// The expert an inverse CDF gives: the first i with u < p_0 + … + p_i (u in [0, Σp)), the last if rounding leaves
    /// u past the sum.
    let private pick (p: float[]) (k: int) (u: float) =
        let mutable cumulative = 0.0
        let mutable chosen = k - 1
        let mutable i = 0

        while i < k do
            cumulative <- cumulative + p.[i]

            if u < cumulative then
                chosen <- i
                i <- k
            else
                i <- i + 1

        chosen

    /// Rows of chunk `chunk` (its own random stream) below row n, written to x, y, z at their position minus `offset`.
    let private sampleChunk
        (model: MoeModel)
        (seed: int64)
        (chunk: int64)
        (n: int64)
        (offset: int64)
        (x: float[,])
        (y: float[])
        (z: int[])
        =
        let rng = Rng.stream seed chunk
        let k = model.Experts
        let d = model.Dimension
        let a = model.Regressors
        let w = model.Gating

        let expertColumns, gateColumns =
            model.Design.ExpertColumns, model.Design.GateColumns

        let p = Array.zeroCreate<float> k
        let first = int (chunk * int64 ChunkSize - offset)
        let last = int (min n ((chunk + 1L) * int64 ChunkSize) - offset) - 1

        for r in first..last do
            for j in 0 .. d - 1 do
                x.[r, j] <- rng.NextGaussian()

            // An exposure column (docs/math.md §12.4) is drawn log-normal: log t ~ N(0, 1); binomial trials (§12.5)
            // n = round(10·e^(z/2)), at least 1 (typically 3 to 30).
            if model.Design.HasOffset then
                let z = x.[r, model.Design.OffsetColumn]

                x.[r, model.Design.OffsetColumn] <-
                    if ExpertFamily.offsetsPredictor model.Family then
                        DetMath.exp z
                    else
                        max 1.0 (Math.Round(10.0 * DetMath.exp (0.5 * z)))

            // Deterministic softmax: logits, max-shift, DetMath.exp.
            let mutable m = 0.0 // the k-th logit

            for i in 0 .. k - 2 do
                let mutable s = 0.0

                for j in 0 .. gateColumns.Length - 1 do
                    s <- s + w.[i, j] * x.[r, gateColumns.[j]]

                let s = s + model.GatingIntercepts.[i]
                p.[i] <- s

                if s > m then
                    m <- s

            p.[k - 1] <- 0.0
            let mutable total = 0.0

            for i in 0 .. k - 1 do
                p.[i] <- DetMath.exp (p.[i] - m)
                total <- total + p.[i]

            // z = first i with u·total < p_1 + … + p_i (inverse CDF without normalising).
            let chosen = pick p k (rng.NextDouble() * total)

            let mutable s = 0.0

            for j in 0 .. expertColumns.Length - 1 do
                s <- s + a.[chosen, j] * x.[r, expertColumns.[j]]

            if ModelRows.hasPredictorOffset model then
                s <- s + Design.offsetAt model.Design x r

            y.[r] <-
                ExpertFamily.draw
                    model.Family
                    (model.Activation.Value(s + model.RegressorIntercepts.[chosen]))
                    model.Sigmas.[chosen]
                    (ModelRows.degreesOfFreedomOf model chosen)
                    (ModelRows.trialsAt model x r)
                    rng

            z.[r] <- chosen

    /// <summary>n samples and their latent experts z (0-based).</summary>
    /// <param name="model">The model to sample from.</param>
    /// <param name="count">n ≥ 1.</param>
    /// <param name="seed">The seed; see the module remarks for what it guarantees.</param>
    /// <returns>The dataset and the latent expert index of each sample.</returns>
    /// <exception cref="T:System.ArgumentException">An invalid model.</exception>
    /// <exception cref="T:System.ArgumentOutOfRangeException">count &lt; 1, or n×d values that do not fit in memory.</exception>
    [<CompiledName("SampleWithLatent")>]
    let sampleWithLatent (model: MoeModel) (count: int) (seed: int64) : Dataset * int[] =
        MoeModel.validate model
        Guard.positiveInt "count" count

        Guard.allocation
            "count"
            (Text.format "n = %d samples of d = %d inputs" [| box count; box model.Dimension |])
            (int64 count)
            (int64 model.Dimension)

        let x = Array2D.zeroCreate count model.Dimension
        let y = Array.zeroCreate count
        let z = Array.zeroCreate count
        let chunks = (count + ChunkSize - 1) / ChunkSize

        Parallel.For(0, chunks, (fun c -> sampleChunk model seed (int64 c) (int64 count) 0L x y z))
        |> ignore

        for v in y do
            if not (Double.IsFinite v) then
                invalidOp (
                    Text.format
                        "The activation %s produced a non-finite response %s."
                        [| box model.Activation.Name; box (string v) |]
                )

        { X = x; Y = y; Weights = null }, z

    /// <summary>Responses drawn from the model at given inputs: row r's expert z_r ~ p(x_r), then y_r from that expert
    /// at x_r — the parametric bootstrap's draw (docs/inference.md §2.2), the covariates kept as observed. Rows are cut
    /// into chunks of <c>ChunkSize</c>, chunk c drawing from <c>Rng.stream seed c</c> (per row one uniform for z, then the
    /// family's draws, as <c>sample</c>), so the same seed gives the same bits on any machine and core count.</summary>
    /// <param name="model">The model to draw from.</param>
    /// <param name="x">n×d inputs (an exposure column positive).</param>
    /// <param name="seed">The seed.</param>
    /// <returns>n responses.</returns>
    /// <exception cref="T:System.ArgumentException">An invalid model, or x not n×d and finite.</exception>
    [<CompiledName("ResponsesAt")>]
    let responsesAt (model: MoeModel) (x: float[,]) (seed: int64) : float[] =
        MoeModel.validate model
        ModelRows.checkInputs model x
        let n = x.GetLength 0
        let k = model.Experts
        let y = Array.zeroCreate n
        let chunks = (n + ChunkSize - 1) / ChunkSize
        let gateColumns = Gate.columnsOf model.Design

        Parallel.For(
            0,
            chunks,
            fun c ->
                let rng = Rng.stream seed (int64 c)
                let gate = Array.zeroCreate k

                for r in c * ChunkSize .. min n ((c + 1) * ChunkSize) - 1 do
                    Gate.logitsInto model.Gating model.GatingIntercepts gateColumns x r gate
                    Gate.softmaxInPlace gate k
                    let chosen = pick gate k (rng.NextDouble())

                    y.[r] <-
                        ExpertFamily.draw
                            model.Family
                            (model.Activation.Value(ModelRows.linearPredictor model x r chosen))
                            model.Sigmas.[chosen]
                            (ModelRows.degreesOfFreedomOf model chosen)
                            (ModelRows.trialsAt model x r)
                            rng
        )
        |> ignore

        y

    /// <summary>n samples (x, y) from the model.</summary>
    /// <param name="model">The model to sample from.</param>
    /// <param name="count">n ≥ 1.</param>
    /// <param name="seed">The seed; see the module remarks for what it guarantees.</param>
    /// <returns>The dataset.</returns>
    /// <exception cref="T:System.ArgumentException">An invalid model.</exception>
    /// <exception cref="T:System.ArgumentOutOfRangeException">count &lt; 1.</exception>
    /// <example>
    /// <code lang="fsharp">
    /// let truth = GroundTruth.orthogonal 2 10 Identity 0.05
    /// let data = Sampler.sample truth 100_000 7L   // the same bits on every machine
    /// data.Count, data.Dimension                   // (100000, 10)
    /// </code>
    /// </example>
    [<CompiledName("Sample")>]
    let sample (model: MoeModel) (count: int) (seed: int64) : Dataset = fst (sampleWithLatent model count seed)

    /// <summary>Rows start..start + count − 1 of the draw of <paramref name="model"/> with <paramref name="seed"/>:
    /// exactly those rows of <c>sample</c> of any larger n, so a file of 10⁸ rows can be written a batch at a time.</summary>
    /// <param name="model">The model to sample from.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="start">The first row, a multiple of ChunkSize (4096).</param>
    /// <param name="count">The rows, ≥ 1.</param>
    /// <exception cref="T:System.ArgumentException">An invalid model, or a start that is not a multiple of 4096.</exception>
    [<CompiledName("SampleRange")>]
    let sampleRange (model: MoeModel) (seed: int64) (start: int64) (count: int) : Dataset =
        MoeModel.validate model
        Guard.positiveInt "count" count

        if start < 0L || start % int64 ChunkSize <> 0L then
            invalidArg
                "start"
                (Text.format "A range starts at a multiple of %d rows, not at %d." [| box ChunkSize; box start |])

        let x = Array2D.zeroCreate count model.Dimension
        let y = Array.zeroCreate count
        let z = Array.zeroCreate count
        let first = start / int64 ChunkSize
        let chunks = (count + ChunkSize - 1) / ChunkSize

        Parallel.For(0, chunks, fun c -> sampleChunk model seed (first + int64 c) (start + int64 count) start x y z)
        |> ignore

        { X = x; Y = y; Weights = null }

    /// The model seen from standard covariates u, where x = μ + s ⊙ u: ⟨a, x⟩ + b = ⟨a ⊙ s, u⟩ + b + ⟨a, μ⟩ (the
    /// same for the gate).
    let internal toStandardCovariates (mean: float[]) (scale: float[]) (model: MoeModel) : MoeModel =
        let k = model.Experts
        let e, g = model.Design.ExpertColumns, model.Design.GateColumns

        let shift (columns: int[]) (row: int -> int -> float) (i: int) =
            Seq.sum (seq { for t in 0 .. columns.Length - 1 -> row i t * mean.[columns.[t]] })

        MoeModel.createWith
            model.Design
            model.Family
            (Array2D.init k e.Length (fun i t -> model.Regressors.[i, t] * scale.[e.[t]]))
            (Array.init k (fun i -> model.RegressorIntercepts.[i] + shift e (fun i t -> model.Regressors.[i, t]) i))
            (Array2D.init (k - 1) g.Length (fun i t -> model.Gating.[i, t] * scale.[g.[t]]))
            (Array.init (k - 1) (fun i -> model.GatingIntercepts.[i] + shift g (fun i t -> model.Gating.[i, t]) i))
            model.Activation
            model.Sigmas
        |> MoeModel.withDegreesOfFreedom model.DegreesOfFreedom

    /// Checks covariate units: d finite means and d positive finite scales.
    let internal checkCovariateUnits (mean: float[]) (scale: float[]) (dimension: int) =
        Guard.notNull "mean" mean
        Guard.notNull "scale" scale
        Guard.finiteVector "mean" mean
        Guard.finiteVector "scale" scale

        if mean.Length <> dimension || scale.Length <> dimension then
            invalidArg
                "mean"
                (Text.format
                    "The covariates' mean and scale need d = %d entries each, but have %d and %d."
                    [| box dimension; box mean.Length; box scale.Length |])

        for t in 0 .. dimension - 1 do
            if not (scale.[t] > 0.0) then
                invalidArg
                    "scale"
                    (Text.format "Every covariate scale must be > 0, but scale[%d] = %g." [| box t; box scale.[t] |])

    /// <summary>n samples whose covariates are x = μ + s ⊙ u with u ~ N(0, I) — shifted and scaled, as real
    /// covariates are — and y from <paramref name="model"/>, which is in those units.</summary>
    /// <param name="mean">μ (d).</param>
    /// <param name="scale">s (d, every entry &gt; 0).</param>
    /// <param name="model">The model, in the units of x.</param>
    /// <param name="count">n ≥ 1.</param>
    /// <param name="seed">The seed (the same bits on every machine).</param>
    /// <returns>The dataset.</returns>
    /// <exception cref="T:System.ArgumentException">An invalid model, or a mean or scale of the wrong length or with
    /// a non-positive scale.</exception>
    [<CompiledName("SampleCovariates")>]
    let sampleCovariates (mean: float[]) (scale: float[]) (model: MoeModel) (count: int) (seed: int64) : Dataset =
        MoeModel.validate model
        checkCovariateUnits mean scale model.Dimension
        let standard = sample (toStandardCovariates mean scale model) count seed
        let d = model.Dimension

        {
            X = Array2D.init count d (fun r t -> mean.[t] + scale.[t] * standard.X.[r, t])
            Y = standard.Y
            Weights = null
        }

    /// <summary>n samples in batches of <paramref name="rows"/> (the last shorter), each drawn when it is enumerated:
    /// the rows of <c>sample</c> (or of <c>sampleCovariates</c> when covariate units are given), one batch in memory at a
    /// time.</summary>
    /// <param name="model">The model to sample from (in the covariates' units when they are given).</param>
    /// <param name="units">The covariates' mean and scale, or None for standard covariates.</param>
    /// <param name="count">n ≥ 1.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="rows">Rows per batch, a positive multiple of 4096.</param>
    [<CompiledName("Batches")>]
    let batches
        (model: MoeModel)
        (units: (float[] * float[]) option)
        (count: int64)
        (seed: int64)
        (rows: int)
        : seq<Dataset> =
        MoeModel.validate model

        if count < 1L then
            raise (ArgumentOutOfRangeException("count", count, "count must be at least 1."))

        if rows < 1 || rows % ChunkSize <> 0 then
            invalidArg "rows" (Text.format "Batches hold a multiple of %d rows, not %d." [| box ChunkSize; box rows |])

        let standard =
            match units with
            | Some(mean, scale) ->
                checkCovariateUnits mean scale model.Dimension
                toStandardCovariates mean scale model
            | None -> model

        seq {
            let mutable start = 0L

            while start < count do
                let n = int (min (int64 rows) (count - start))
                let batch = sampleRange standard seed start n

                match units with
                | Some(mean, scale) ->
                    let d = model.Dimension

                    yield
                        {
                            X = Array2D.init n d (fun r t -> mean.[t] + scale.[t] * batch.X.[r, t])
                            Y = batch.Y
                            Weights = null
                        }
                | None -> yield batch

                start <- start + int64 n
        }
