namespace MoE.Core

open System
open System.Numerics.Tensors
open System.Runtime.InteropServices
open MathNet.Numerics.LinearAlgebra

/// Fitting, applying and undoing standardisations.
[<RequireQualifiedAccess>]
module Standardise =

    /// <summary>No change of units.</summary>
    /// <param name="dimension">d.</param>
    [<CompiledName("None")>]
    let none (dimension: int) : Standardisation =
        {
            Mean = Array.zeroCreate dimension
            Whitening = Array2D.init dimension dimension (fun i j -> if i = j then 1.0 else 0.0)
            YShift = 0.0
            YScale = 1.0
        }

    /// <summary>The standardisation of data read in passes: the covariates' mean and covariance in two passes, the
    /// responses' centre and scale from their moments.</summary>
    /// <param name="source">The data.</param>
    /// <param name="summary">The data's moments (<c>Diagnosis.summarise</c>).</param>
    /// <param name="centre">Whether to centre (the model has intercepts to absorb the shift).</param>
    /// <param name="family">The experts' family: decides, with g, how y may be moved.</param>
    /// <param name="activation">g: decides how y may be moved.</param>
    /// <param name="design">Which columns the experts and the gate read: with a shared design the covariates are
    /// whitened (u = L⁻¹(x − μ), the moment initializers' units); otherwise each column is only centred and scaled, so
    /// that each part's predictor maps back onto its own columns.</param>
    /// <returns>The change of units.</returns>
    /// <exception cref="T:System.ArgumentException">The covariates are collinear (their covariance is singular to
    /// working precision): the message names the ratio of its extreme eigenvalues.</exception>
    [<CompiledName("FitOn")>]
    let fitOn
        (source: DataSource)
        (summary: DataSummary)
        (centre: bool)
        (family: ExpertFamily)
        (activation: Activation)
        (design: Design)
        : Standardisation =
        let d = source.Dimension
        let mean, moments = EmKernel.covarianceOf centre source
        // Second moments about μ (the covariance when centred).
        let cov = Matrix<float>.Build.DenseOfArray(Dense.mirror d moments)

        // Each part's columns must not be collinear: with a shared design all of them; with a split one the experts'
        // and the gate's apart (a column both read may enter the inputs twice, as ML.NET's gate feature column does).
        let parts =
            if design.IsShared then
                [ "", Array.init d id ]
            else
                [
                    " the experts read", design.ExpertColumns
                    " the gate reads", design.GateColumns
                ]

        for part, columns in parts do
            let sub =
                Matrix<float>.Build.Dense(columns.Length, columns.Length, fun i j -> cov.[columns.[i], columns.[j]])

            let values =
                sub.Evd(Symmetricity.Symmetric).EigenValues
                |> Seq.map (fun c -> c.Real)
                |> Seq.toArray

            if not (Array.min values > 1e-12 * Array.max values) then
                invalidArg
                    "data"
                    (Text.format
                        "the covariates%s are collinear: the smallest eigenvalue of their covariance is %.3g of the largest, so one column is (almost) a combination of the others; remove the redundant columns."
                        [| box part; box (Array.min values / Array.max values) |])

        // An exposure column is not a covariate: it keeps its units (its log enters η as it is).
        let o = design.OffsetColumn

        let whitening =
            if design.IsShared then
                cov.Cholesky().Factor.Inverse().ToArray()
            else
                Array2D.init d d (fun i j ->
                    if i <> j then 0.0
                    elif i = o then 1.0
                    else 1.0 / sqrt cov.[i, i])

        if o >= 0 then
            mean.[o] <- 0.0

        // How y may be moved is the family's to say (Gaussian: scaled to the unit expert's second moment).
        let shift, scale =
            ExpertFamily.responseUnits family activation centre summary.Response.Mean summary.Response.Sd

        {
            Mean = mean
            Whitening = whitening
            YShift = shift
            YScale = (if scale > 0.0 then scale else 1.0)
        }

    /// <summary>The standardisation of a dataset (<c>fitOn</c>).</summary>
    /// <param name="data">The data (validated).</param>
    /// <param name="centre">Whether to centre (the model has intercepts to absorb the shift).</param>
    /// <param name="activation">g: decides how y may be moved.</param>
    /// <returns>The change of units.</returns>
    /// <exception cref="T:System.ArgumentException">The covariates are collinear.</exception>
    [<CompiledName("Fit")>]
    let fit (data: Dataset) (centre: bool) (activation: Activation) : Standardisation =
        let source = DataSource.ofDataset data
        fitOn source (Diagnosis.summarise source) centre ExpertFamily.Gaussian activation (Design.shared data.Dimension)

    /// <summary>The data in standardised units.</summary>
    /// <param name="s">The standardisation.</param>
    /// <param name="data">The data.</param>
    [<CompiledName("Apply")>]
    let apply (s: Standardisation) (data: Dataset) : Dataset =
        let n, d = data.Count, data.Dimension
        let l = s.Whitening
        let x = data.X
        let u = Array2D.zeroCreate n d
        // L row-major, so row i's first i + 1 entries are contiguous.
        let lf = Array.init (d * d) (fun t -> l.[t / d, t % d])

        Chunks.forChunks n (fun _ lo hi ->
            let centred = Array.zeroCreate d
            let xs = Chunks.flat x
            let us = MemoryMarshal.CreateSpan(&u.[lo, 0], (hi - lo) * d)

            for r in lo .. hi - 1 do
                TensorPrimitives.Subtract(xs.Slice(r * d, d), ReadOnlySpan s.Mean, Span centred)
                let target = us.Slice((r - lo) * d, d)

                // The sum in j order, one product at a time: the bits of the plain 2-D loop, without its index checks.
                for i in 0 .. d - 1 do
                    let li = ReadOnlySpan(lf, i * d, i + 1)
                    let mutable v = 0.0

                    for j in 0..i do
                        v <- v + li.[j] * centred.[j]

                    target.[i] <- v)

        {
            X = u
            Y = data.Y |> Array.map (fun y -> (y - s.YShift) / s.YScale)
            Weights = data.Weights
        }

    /// <summary>A source in standardised units: the rows of local shards standardised as they are read, remote
    /// shards told the units to standardise their rows in where they live (the same function on the same rows, so
    /// the same bits).</summary>
    /// <param name="s">The standardisation.</param>
    /// <param name="source">The data.</param>
    /// <exception cref="T:System.ArgumentException">A remote shard is already in other units.</exception>
    [<CompiledName("Source")>]
    let source (s: Standardisation) (source: DataSource) : DataSource =
        { source with
            Shards =
                source.Shards
                |> Array.map (fun shard ->
                    match shard.Remote with
                    | Some remote ->
                        if remote.View.IsSome then
                            invalidArg
                                "source"
                                (Text.format "%s is already standardised where it lives." [| box shard.Name |])

                        { shard with
                            Remote = Some { remote with View = Some s }
                        }
                    | None ->
                        { shard with
                            Read = fun () -> shard.Read() |> Seq.map (apply s)
                        })
        }

    /// A shift of y needs the identity and a scale a positively homogeneous g: no other g carries them into the model.
    let private checkActivation (s: Standardisation) (model: MoeModel) =
        let scalable =
            match model.Activation with
            | Identity
            | Relu
            | LeakyRelu _ -> true
            | _ -> false

        if s.YShift <> 0.0 && model.Activation <> Identity then
            invalidArg
                "s"
                (Text.format
                    "A standardisation that shifts y (by %g) applies to identity experts only, not to %s."
                    [| box s.YShift; box model.Activation.Name |])

        if s.YScale <> 1.0 && not scalable then
            invalidArg
                "s"
                (Text.format
                    "A standardisation that scales y (by %g) applies to identity, ReLU and leaky ReLU experts only, not to %s."
                    [| box s.YScale; box model.Activation.Name |])

        if s.Mean.Length <> model.Dimension then
            invalidArg
                "s"
                (Text.format
                    "The standardisation is for d = %d but the model has d = %d."
                    [| box s.Mean.Length; box model.Dimension |])

    /// A model of a design whose parts read different columns, across a per-column change of units (L diagonal): each
    /// coefficient of column t scales by L_tt, each intercept takes the shift ⟨·, μ⟩ of its own part's columns.
    /// toData: a_t = s·L_tt·ã_t, b = m + s·b̃ − Σ a_t μ_t, w_t = L_tt·w̃_t, c = c̃ − Σ w_t μ_t; and the inverse.
    let private perColumn (s: Standardisation) (model: MoeModel) (toData: bool) : MoeModel =
        let l = s.Whitening
        let m = l.GetLength 0

        for i in 0 .. m - 1 do
            for j in 0 .. m - 1 do
                if i <> j && l.[i, j] <> 0.0 then
                    invalidArg
                        "s"
                        "A model whose experts and gate read different columns maps across a per-column change of units only (a diagonal whitening), not a whitening that mixes columns."

        let k = model.Experts
        let e, g = model.Design.ExpertColumns, model.Design.GateColumns

        let scaled (columns: int[]) (factor: float) (row: int -> int -> float) (i: int) =
            Array.init columns.Length (fun t ->
                let f = factor * l.[columns.[t], columns.[t]]
                if toData then row i t * f else row i t / f)

        let shift (columns: int[]) (v: float[]) =
            Seq.sum (seq { for t in 0 .. columns.Length - 1 -> v.[t] * s.Mean.[columns.[t]] })

        let a = Array.init k (scaled e s.YScale (fun i t -> model.Regressors.[i, t]))
        let w = Array.init (k - 1) (scaled g 1.0 (fun i t -> model.Gating.[i, t]))

        let b =
            Array.init k (fun i ->
                if toData then
                    s.YShift + s.YScale * model.RegressorIntercepts.[i] - shift e a.[i]
                else
                    (model.RegressorIntercepts.[i] - s.YShift
                     + shift e (Array.init e.Length (fun t -> model.Regressors.[i, t])))
                    / s.YScale)

        let c =
            Array.init (k - 1) (fun i ->
                if toData then
                    model.GatingIntercepts.[i] - shift g w.[i]
                else
                    model.GatingIntercepts.[i]
                    + shift g (Array.init g.Length (fun t -> model.Gating.[i, t])))

        MoeModel.createWith
            model.Design
            model.Family
            (array2D a)
            b
            (Array2D.init (k - 1) g.Length (fun i t -> w.[i].[t]))
            c
            model.Activation
            ((if toData then
                  ExpertFamily.toDataUnits
              else
                  ExpertFamily.fromDataUnits)
                model.Family
                s.YScale
                model.Sigmas)
        |> MoeModel.withDegreesOfFreedom model.DegreesOfFreedom

    /// <summary>A model fitted in standardised units, in the data's units: with v = (y − m)/s and u = L⁻¹(x − μ),
    /// a = s·L⁻ᵀã, b = m + s·b̃ − ⟨a, μ⟩ for the identity (s·b̃ − ⟨a, μ⟩ otherwise), σ_i = s·σ̃_i, w = L⁻ᵀw̃ and
    /// c = c̃ − ⟨w, μ⟩ (docs/math.md §9.2).</summary>
    /// <param name="s">The standardisation the model was fitted under.</param>
    /// <param name="model">The model in standardised units.</param>
    [<CompiledName("ToDataUnits")>]
    let toDataUnits (s: Standardisation) (model: MoeModel) : MoeModel =
        checkActivation s model

        if not model.Design.IsShared then
            perColumn s model true
        else

            let k, d = model.Experts, model.Dimension
            let l = s.Whitening
            // L⁻ᵀv: (L⁻¹)ᵀ applied to a row vector v.
            let back (v: int -> float) =
                Array.init d (fun j -> Seq.sum (seq { for i in j .. d - 1 -> l.[i, j] * v i }))

            let a = Array.init k (fun i -> back (fun t -> s.YScale * model.Regressors.[i, t]))
            let w = Array.init (k - 1) (fun i -> back (fun t -> model.Gating.[i, t]))

            let b =
                Array.init k (fun i -> s.YShift + s.YScale * model.RegressorIntercepts.[i] - Dense.dot a.[i] s.Mean)

            let c =
                Array.init (k - 1) (fun i -> model.GatingIntercepts.[i] - Dense.dot w.[i] s.Mean)

            MoeModel.createWith
                model.Design
                model.Family
                (array2D a)
                b
                (Array2D.init (k - 1) d (fun i t -> w.[i].[t]))
                c
                model.Activation
                (ExpertFamily.toDataUnits model.Family s.YScale model.Sigmas)
            |> MoeModel.withDegreesOfFreedom model.DegreesOfFreedom

    /// <summary>A model in the data's units, in standardised units: the inverse of <c>toDataUnits</c>.</summary>
    /// <param name="s">The standardisation.</param>
    /// <param name="model">The model in the data's units.</param>
    [<CompiledName("FromDataUnits")>]
    let fromDataUnits (s: Standardisation) (model: MoeModel) : MoeModel =
        checkActivation s model

        if not model.Design.IsShared then
            perColumn s model false
        else

            let k, d = model.Experts, model.Dimension
            let linv = Matrix<float>.Build.DenseOfArray s.Whitening
            let lmat = linv.Inverse()
            // ã = Lᵀa/s, w̃ = Lᵀw.
            let forward (v: float[]) =
                (lmat.TransposeThisAndMultiply(Vector<float>.Build.DenseOfArray v)).ToArray()

            let a =
                Array.init k (fun i -> forward (Array.init d (fun t -> model.Regressors.[i, t] / s.YScale)))

            let w =
                Array.init (k - 1) (fun i -> forward (Array.init d (fun t -> model.Gating.[i, t])))

            let b =
                Array.init k (fun i ->
                    (model.RegressorIntercepts.[i] - s.YShift
                     + Dense.dot (Array.init d (fun t -> model.Regressors.[i, t])) s.Mean)
                    / s.YScale)

            let c =
                Array.init (k - 1) (fun i ->
                    model.GatingIntercepts.[i]
                    + Dense.dot (Array.init d (fun t -> model.Gating.[i, t])) s.Mean)

            MoeModel.createWith
                model.Design
                model.Family
                (array2D a)
                b
                (Array2D.init (k - 1) d (fun i t -> w.[i].[t]))
                c
                model.Activation
                (ExpertFamily.fromDataUnits model.Family s.YScale model.Sigmas)
            |> MoeModel.withDegreesOfFreedom model.DegreesOfFreedom
