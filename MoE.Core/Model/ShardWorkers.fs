namespace MoE.Core

open System
open System.Threading.Tasks

/// <summary>
/// A worker that computes a shard's part of a pass where the shard's rows live (a cluster's shard grain; docs/math.md
/// §7.7): the coordinator sends a request — which statistic, at which parameters, in which units — and gets back the
/// shard's sum, never its rows. A worker must answer exactly what a pass over the same shard would compute here
/// (<c>ShardWork.evaluate</c> does), so a fit on workers gives the bits of a fit in one process.
/// </summary>
type IShardWorker =
    /// <summary>The shard's part of a pass: the encoded request computed over the shard's rows, its chunks merged in
    /// order (<c>ShardWork.evaluate</c>).</summary>
    /// <param name="request">The request, as <c>Passes</c> encodes it.</param>
    abstract Evaluate: request: byte[] -> Task<float[]>

    /// <summary>Rows of the shard by position, in the units the request names (<c>ShardWork.gather</c>).</summary>
    /// <param name="request">The request, as <c>DataSource.gather</c> encodes it.</param>
    abstract Gather: request: byte[] -> Task<Dataset>

/// <summary>A shard whose rows live with a worker: the worker, and the units its rows are seen in.</summary>
type RemoteShard =
    {
        /// The shard's worker.
        Worker: IShardWorker
        /// The standardisation applied to the rows where they live before any statistic, if any.
        View: Standardisation option
    }

/// The remote-shard protocol's own messages (docs/math.md §7.7): the units a shard's rows are seen in, and a request
/// for rows by position. Pass requests (Kernels/Requests.fs) carry the units first.
module internal ShardProtocol =

    /// The units a remote shard's rows are seen in, on the wire.
    let writeView (w: Wire.Writer) (view: Standardisation option) =
        match view with
        | None -> w.Bool false
        | Some s ->
            w.Bool true
            w.Floats s.Mean
            w.Matrix s.Whitening
            w.Float s.YShift
            w.Float s.YScale

    /// Reads what <c>writeView</c> wrote.
    let readView (r: Wire.Reader) : Standardisation option =
        if r.Bool() then
            let mean = r.Floats()
            let whitening = r.Matrix()
            let yShift = r.Float()
            let yScale = r.Float()

            if whitening.GetLength 0 <> mean.Length || whitening.GetLength 1 <> mean.Length then
                invalidArg "request" "The request's standardisation has a whitening matrix of the wrong shape."

            Some
                {
                    Mean = mean
                    Whitening = whitening
                    YShift = yShift
                    YScale = yScale
                }
        else
            None

    /// The request for rows of a remote shard: its units, then the positions within the shard.
    let gatherRequest (view: Standardisation option) (positions: int64[]) =
        let w = Wire.Writer()
        writeView w view
        w.Longs positions
        w.ToArray()

    /// Reads what <c>gatherRequest</c> wrote.
    let readGatherRequest (request: byte[]) =
        let r = Wire.Reader request
        let view = readView r
        let positions = r.Longs()
        r.End()
        view, positions
