namespace MoE.Core

/// <summary>
/// What a shard's worker runs (docs/math.md §7.7): a coordinator's request computed over the worker's own rows with
/// the kernels a pass in one process uses, so the worker's answer is the bits the pass would add for this shard.
/// </summary>
[<RequireQualifiedAccess>]
module ShardWork =

    let private check (what: string) (expected: int) (actual: int) =
        if expected <> actual then
            invalidArg
                "request"
                (Text.format
                    "The request's %s has %d entries where this shard has %d input columns: the coordinator and the worker read different data."
                    [| box what; box actual; box expected |])

    let private inUnits (view: Standardisation option) (shard: DataSource) =
        if DataSource.isRemote shard then
            invalidArg "shard" "A worker computes over its own rows: the shard it is given must be read where it runs."

        match view with
        | Some s ->
            check "standardisation" shard.Dimension s.Mean.Length
            Standardise.source s shard
        | None -> shard

    /// A decoded request computed over rows in its units.
    let private compute (request: PassRequest) (source: DataSource) : float[] =
        let d = source.Dimension

        let model (m: MoeModel) = check "model" d m.Dimension

        match request with
        | PassRequest.ColumnSums -> Diagnosis.columnSumsPass source
        | PassRequest.CentredPowers means ->
            check "means" (d + 1) means.Length
            Diagnosis.centredPowersPass means source
        | PassRequest.InputSums -> EmKernel.inputSumsPass source
        | PassRequest.CentredGram mean ->
            check "mean" d mean.Length
            EmKernel.centredGramPass mean source
        | PassRequest.Design(columns, intercepts) ->
            for c in columns do
                if c < 0 || c >= d then
                    check "design's columns" d (c + 1)

            EmKernel.designOf columns intercepts source
        | PassRequest.EmStatistics(m, intercepts, hessian) ->
            model m
            EmKernel.statisticsPass m intercepts hessian source
        | PassRequest.MStepObjectives(current, candidate) ->
            model current
            model candidate
            EmKernel.mStepPass current candidate source
        | PassRequest.LikelihoodGradient(m, intercepts) ->
            model m
            LikelihoodKernel.gradientPass m intercepts source
        | PassRequest.LogLikelihood m ->
            model m
            LikelihoodKernel.logLikelihoodPass m source
        | PassRequest.Curvature(m, intercepts) ->
            model m
            LikelihoodKernel.curvatureOf m intercepts source
        | PassRequest.SecondMoments transform -> MomentSums.secondOf transform source |> MomentSums.encodeSecond
        | PassRequest.ProjectedMoments(transform, basis) ->
            check "basis" d (basis.GetLength 0)
            MomentSums.projectedOf transform basis source |> MomentSums.encodeProjected
        | PassRequest.ResponseCheck(family, exposure) ->
            if exposure >= d then
                check "exposure column" d (exposure + 1)

            Responses.checkPass family exposure source

    /// <summary>One pass's part for this shard: the request decoded, computed over the shard's rows (in the request's
    /// units), its chunks merged in order, as a vector.</summary>
    /// <param name="request">The request's bytes, as the coordinator's pass encoded them.</param>
    /// <param name="shard">The worker's rows (local shards only).</param>
    /// <returns>What the coordinator merges in the shard's place.</returns>
    /// <exception cref="T:System.ArgumentException">The request is malformed, of another build, or does not fit the
    /// shard's columns.</exception>
    [<CompiledName("Evaluate")>]
    let evaluate (request: byte[]) (shard: DataSource) : float[] =
        let view, request = Requests.decode request
        compute request (inUnits view shard)

    /// <summary>One pass's part for rows already in the request's units (<c>units</c>): what <c>evaluate</c> computes,
    /// for a worker that keeps its rows standardised between passes instead of standardising them for every
    /// pass.</summary>
    /// <param name="request">The request's bytes.</param>
    /// <param name="source">The worker's rows in the units <c>units request</c> names.</param>
    [<CompiledName("EvaluateInUnits")>]
    let evaluateInUnits (request: byte[]) (source: DataSource) : float[] =
        compute (snd (Requests.decode request)) source

    /// <summary>The units a request's rows are to be seen in (None: as stored).</summary>
    /// <param name="request">The request's bytes (of a pass or of rows).</param>
    [<CompiledName("Units")>]
    let units (request: byte[]) : Standardisation option =
        ShardProtocol.readView (Wire.Reader request)

    /// <summary>A worker's rows in the given units (checked against the rows' columns).</summary>
    /// <param name="view">The units.</param>
    /// <param name="shard">The worker's rows (local shards only).</param>
    [<CompiledName("InUnits")>]
    let sourceInUnits (view: Standardisation option) (shard: DataSource) : DataSource = inUnits view shard

    /// <summary>Rows of this shard by position, in the request's units.</summary>
    /// <param name="request">The request's bytes, as <c>DataSource.gather</c> encoded them.</param>
    /// <param name="shard">The worker's rows (local shards only).</param>
    /// <exception cref="T:System.ArgumentException">The request is malformed or a position is past the shard.</exception>
    [<CompiledName("Gather")>]
    let gather (request: byte[]) (shard: DataSource) : Dataset =
        let view, positions = ShardProtocol.readGatherRequest request
        // Checked as every request is; the units are applied to the rows gathered only (a row-wise map: the same bits
        // as standardising the whole shard and gathering from it).
        let source = inUnits None shard

        match view with
        | Some s -> check "standardisation" shard.Dimension s.Mean.Length
        | None -> ()

        for p in positions do
            if p < 0L || p >= source.Rows then
                invalidArg "request" (Text.format "Row %d is outside the shard's %d rows." [| box p; box source.Rows |])

        let rows =
            if positions.Length = 0 then
                {
                    X = Array2D.zeroCreate 0 source.Dimension
                    Y = [||]
                    Weights = null
                }
            else
                DataSource.gather source positions

        match view with
        | Some s when rows.Count > 0 -> Standardise.apply s rows
        | _ -> rows

    /// <summary>The request of one pass, as a coordinator sends it to a shard's worker (for tests and tools that play
    /// the worker's part).</summary>
    /// <param name="view">The units the shard's rows are seen in.</param>
    /// <param name="request">The pass.</param>
    [<CompiledName("Encode")>]
    let encode (view: Standardisation option) (request: PassRequest) : byte[] = Requests.encode view request
