namespace MoE.Core

open System

/// <summary>
/// A pass over the data as data (docs/math.md §7.7): which statistic, at which parameters. Every pass of a fit is one
/// of these, so a shard's worker on another machine can compute the shard's part of it from the request alone and
/// send back a sum, never rows. The worker computes it with the same kernel (<c>ShardWork.evaluate</c>), so it gets
/// the bits a pass in one process gets.
/// </summary>
[<RequireQualifiedAccess>]
type PassRequest =
    /// Σx and Σy (the data summary's first pass).
    | ColumnSums
    /// The centred second, third and fourth powers of every column and of y about the given means (d + 1).
    | CentredPowers of means: float[]
    /// Σx alone (the covariance's first pass).
    | InputSums
    /// Σ (x − μ)(x − μ)ᵀ about the given mean (upper triangle).
    | CentredGram of mean: float[]
    /// Σ x̃ x̃ᵀ, the Gram of the given columns, with or without the intercept column.
    | Design of columns: int[] * intercepts: bool
    /// Every sum of one E-step at the model (and the gate's Hessian when asked).
    | EmStatistics of model: MoeModel * intercepts: bool * hessian: bool
    /// The weighted SSE per expert and the gate objective of a candidate M-step under the current posterior.
    | MStepObjectives of current: MoeModel * candidate: MoeModel
    /// The log-likelihood and its gradient.
    | LikelihoodGradient of model: MoeModel * intercepts: bool
    /// The log-likelihood alone.
    | LogLikelihood of model: MoeModel
    /// The diagonal of the complete-data information.
    | Curvature of model: MoeModel * intercepts: bool
    /// The L4 method's first-pass sums Σ Q2(y) x xᵀ.
    | SecondMoments of transform: OutputTransform
    /// The L4 method's second-pass sums, projected onto a basis.
    | ProjectedMoments of transform: OutputTransform * basis: float[,]
    /// The responses the family has no density at, or exposures that are not positive (the input column given, −1
    /// for none): how many, the first one's row and value, which of the two (the data check).
    | ResponseCheck of family: ExpertFamily * exposureColumn: int

/// Requests to and from bytes.
module internal Requests =

    let private writeActivation (w: Wire.Writer) (g: Activation) =
        match g with
        | Identity -> w.Byte 0uy
        | Relu -> w.Byte 1uy
        | LeakyRelu slope ->
            w.Byte 2uy
            w.Float slope
        | Sigmoid -> w.Byte 3uy
        | Tanh -> w.Byte 4uy
        | Custom(name, _, _) ->
            invalidArg
                "activation"
                (Text.format
                    "The custom activation '%s' is a function, and a function cannot be sent to a shard's worker: fit with a built-in activation, or in one process."
                    [| box name |])

    let private readActivation (r: Wire.Reader) =
        match r.Byte() with
        | 0uy -> Identity
        | 1uy -> Relu
        | 2uy -> LeakyRelu(r.Float())
        | 3uy -> Sigmoid
        | 4uy -> Tanh
        | b -> invalidArg "request" (Text.format "Unknown activation code %d in the request." [| box b |])

    let private writeModel (w: Wire.Writer) (m: MoeModel) =
        w.Matrix m.Regressors
        w.Matrix m.Gating
        writeActivation w m.Activation
        w.Floats m.RegressorIntercepts
        w.Floats m.GatingIntercepts
        ExpertFamily.writeWire w m.Family m.Sigma m.Sigmas m.DegreesOfFreedom
        w.Int m.Design.Inputs
        w.Ints m.Design.ExpertColumns
        w.Ints m.Design.GateColumns

    let private readModel (r: Wire.Reader) : MoeModel =
        let regressors = r.Matrix()
        let gating = r.Matrix()
        let g = readActivation r
        let b = r.Floats()
        let c = r.Floats()
        let family, sigma, sigmas, dof = ExpertFamily.readWire r
        let inputs = r.Int()
        let expertColumns = r.Ints()
        let gateColumns = r.Ints()

        let design =
            try
                Design.create inputs expertColumns gateColumns
            with :? ArgumentException as e ->
                invalidArg "request" (Text.format "The request's model has an invalid design: %s" [| box e.Message |])

        let k, d = regressors.GetLength 0, regressors.GetLength 1

        if
            k < 1
            || gating.GetLength 0 <> k - 1
            || d <> expertColumns.Length
            || gating.GetLength 1 <> gateColumns.Length
            || b.Length <> k
            || c.Length <> k - 1
            || sigmas.Length <> k
            || (dof.Length <> 0 && dof.Length <> k)
        then
            invalidArg "request" "The request's model has parts of inconsistent shapes."

        {
            Regressors = regressors
            Gating = gating
            Activation = g
            Family = family
            Design = design
            Sigma = sigma
            RegressorIntercepts = b
            GatingIntercepts = c
            Sigmas = sigmas
            DegreesOfFreedom = dof
        }

    let private writeTransform (w: Wire.Writer) (t: OutputTransform) =
        match t.Origin with
        | Some(kind, g, sigma) ->
            w.String kind
            writeActivation w g
            w.Float sigma
        | None ->
            invalidArg
                "transform"
                "This output transform was built from its coefficients, not derived from g and σ, so a shard's worker cannot build it again: use OutputTransforms.polynomialFor or bounded."

    let private readTransform (r: Wire.Reader) : OutputTransform =
        let kind = r.String()
        let g = readActivation r
        let sigma = r.Float()

        match kind with
        | "polynomial" -> OutputTransforms.polynomialFor g sigma
        | "bounded" -> OutputTransforms.bounded g sigma
        | _ -> invalidArg "request" (Text.format "Unknown output transform '%s' in the request." [| box kind |])

    /// The bytes of a pass request over rows seen in the given units.
    let encode (view: Standardisation option) (request: PassRequest) : byte[] =
        let w = Wire.Writer()
        ShardProtocol.writeView w view

        match request with
        | PassRequest.ColumnSums -> w.Byte 0uy
        | PassRequest.CentredPowers means ->
            w.Byte 1uy
            w.Floats means
        | PassRequest.InputSums -> w.Byte 2uy
        | PassRequest.CentredGram mean ->
            w.Byte 3uy
            w.Floats mean
        | PassRequest.Design(columns, intercepts) ->
            w.Byte 4uy
            w.Ints columns
            w.Bool intercepts
        | PassRequest.EmStatistics(model, intercepts, hessian) ->
            w.Byte 5uy
            writeModel w model
            w.Bool intercepts
            w.Bool hessian
        | PassRequest.MStepObjectives(current, candidate) ->
            w.Byte 6uy
            writeModel w current
            writeModel w candidate
        | PassRequest.LikelihoodGradient(model, intercepts) ->
            w.Byte 7uy
            writeModel w model
            w.Bool intercepts
        | PassRequest.LogLikelihood model ->
            w.Byte 8uy
            writeModel w model
        | PassRequest.Curvature(model, intercepts) ->
            w.Byte 9uy
            writeModel w model
            w.Bool intercepts
        | PassRequest.SecondMoments transform ->
            w.Byte 10uy
            writeTransform w transform
        | PassRequest.ProjectedMoments(transform, basis) ->
            w.Byte 11uy
            writeTransform w transform
            w.Matrix basis
        | PassRequest.ResponseCheck(family, exposure) ->
            w.Byte 12uy
            w.String family.Name
            w.Int exposure

        w.ToArray()

    /// The units and the request in bytes made by <c>encode</c>.
    let decode (bytes: byte[]) : Standardisation option * PassRequest =
        let r = Wire.Reader bytes
        let view = ShardProtocol.readView r

        let request =
            match r.Byte() with
            | 0uy -> PassRequest.ColumnSums
            | 1uy -> PassRequest.CentredPowers(r.Floats())
            | 2uy -> PassRequest.InputSums
            | 3uy -> PassRequest.CentredGram(r.Floats())
            | 4uy ->
                let columns = r.Ints()
                PassRequest.Design(columns, r.Bool())
            | 5uy ->
                let model = readModel r
                let intercepts = r.Bool()
                PassRequest.EmStatistics(model, intercepts, r.Bool())
            | 6uy ->
                let current = readModel r
                PassRequest.MStepObjectives(current, readModel r)
            | 7uy ->
                let model = readModel r
                PassRequest.LikelihoodGradient(model, r.Bool())
            | 8uy -> PassRequest.LogLikelihood(readModel r)
            | 9uy ->
                let model = readModel r
                PassRequest.Curvature(model, r.Bool())
            | 10uy -> PassRequest.SecondMoments(readTransform r)
            | 11uy ->
                let transform = readTransform r
                PassRequest.ProjectedMoments(transform, r.Matrix())
            | 12uy ->
                let family = ExpertFamily.parse (r.String())
                PassRequest.ResponseCheck(family, r.Int())
            | b -> invalidArg "request" (Text.format "Unknown pass request code %d." [| box b |])

        r.End()
        view, request
