namespace MoE.Core

open System
open System.Numerics.Tensors
open System.Runtime.InteropServices
open System.Threading.Tasks

/// <summary>
/// Row chunks for multi-core passes over the samples. The chunking is a function of n alone (at most 64 chunks of
/// at least 2048 rows), and reductions add the chunks' partial sums in chunk order, so results are bit-identical
/// whatever the core count.
/// </summary>
module internal Chunks =

    /// Chunk size and count for n rows.
    let chunking (n: int) =
        let size = max 2048 ((n + 63) / 64)
        size, (n + size - 1) / size

    /// Runs body(chunk, lo, hi) over the chunks, in parallel when there is more than one.
    let forChunks (n: int) (body: int -> int -> int -> unit) =
        let size, count = chunking n

        if count <= 1 then
            body 0 0 n
        else
            Parallel.For(0, count, (fun c -> body c (c * size) (min n ((c + 1) * size))))
            |> ignore

    /// Runs body(state, chunk, lo, hi) over the chunks with one state per worker thread, made by init when the thread
    /// takes its first chunk: scratch buffers are allocated once per thread and pass, not once per chunk. The state must
    /// be scratch only (nothing of a chunk's result may depend on which state it was given).
    let forChunksWith (n: int) (init: unit -> 'S) (body: 'S -> int -> int -> int -> unit) =
        let size, count = chunking n

        if count <= 1 then
            body (init ()) 0 0 n
        else
            Parallel.For(
                0,
                count,
                Func<'S>(init),
                Func<int, ParallelLoopState, 'S, 'S>(fun c _ state ->
                    body state c (c * size) (min n ((c + 1) * size))
                    state),
                Action<'S>(ignore)
            )
            |> ignore

    /// Adds the chunks' partial vectors in chunk order (deterministic).
    let reduce (partials: float[][]) : float[] =
        let total = Array.copy partials.[0]

        for c in 1 .. partials.Length - 1 do
            TensorPrimitives.Add(ReadOnlySpan total, ReadOnlySpan partials.[c], Span total)

        total

    /// The row-major storage of a matrix as a span (empty for an empty matrix).
    let inline flat (m: float[,]) : ReadOnlySpan<float> =
        if m.Length = 0 then
            ReadOnlySpan<float>.Empty
        else
            MemoryMarshal.CreateReadOnlySpan(&m.[0, 0], m.Length)

    /// The chunks' results body(lo, hi), computed in parallel, in chunk order.
    let map (n: int) (body: int -> int -> 'T) : 'T[] =
        let _, count = chunking n
        let results = Array.zeroCreate count
        forChunks n (fun c lo hi -> results.[c] <- body lo hi)
        results

    /// The chunks' partial vectors body(lo, hi) (all of one length), summed in chunk order.
    let sum (n: int) (body: int -> int -> float[]) : float[] = reduce (map n body)

    /// The chunks' partial vectors body(state, lo, hi) with a scratch state per worker thread (forChunksWith), summed in
    /// chunk order.
    let sumWith (n: int) (init: unit -> 'S) (body: 'S -> int -> int -> float[]) : float[] =
        let _, count = chunking n
        let results = Array.zeroCreate count
        forChunksWith n init (fun state c lo hi -> results.[c] <- body state lo hi)
        reduce results
