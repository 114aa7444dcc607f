namespace MoE.Core

open System
open System.Numerics.Tensors
open System.Runtime.InteropServices
open System.Threading
open System.Threading.Tasks

/// <summary>
/// Row chunks for multi-core passes over the samples. A chunk is a fixed number of rows (<c>Size</c>), counted from the
/// start of the data — or of a shard, for data read in pieces — so a batch of a streamed source that starts at a
/// multiple of <c>Size</c> holds exactly the chunks the whole data would have there. Reductions add the chunks' partial
/// results one after another in chunk order, so a result is bit-identical whatever the core count and however the
/// rows arrived (in memory, in batches of a file, from several machines; docs/math.md §7.6).
/// </summary>
module internal Chunks =

    /// Rows per chunk.
    [<Literal>]
    let Size = 4096

    /// Chunk size and count for n rows.
    let chunking (n: int) = Size, (n + Size - 1) / Size

    /// Chunks computed side by side before their results are added: bounds the partial results held at once.
    let private Wave = 64

    /// Runs body(chunk, lo, hi) over the chunks, in parallel when there is more than one.
    let forChunks (n: int) (body: int -> int -> int -> unit) =
        let size, count = chunking n

        if count <= 1 then
            body 0 0 n
        else
            Parallel.For(0, count, (fun c -> body c (c * size) (min n ((c + 1) * size))))
            |> ignore

    /// Runs body(state, chunk, lo, hi) over the chunks with one state per worker thread (<c>states</c>): scratch
    /// buffers are allocated once per thread and pass, not once per chunk. The state must be scratch only (nothing
    /// of a chunk's result may depend on which state it was given).
    let forChunksIn (states: ThreadLocal<'S>) (n: int) (body: 'S -> int -> int -> int -> unit) =
        let size, count = chunking n

        if count <= 1 then
            body states.Value 0 0 n
        else
            Parallel.For(0, count, (fun c -> body states.Value c (c * size) (min n ((c + 1) * size))))
            |> ignore

    /// As forChunksIn, with a state per worker thread made by init.
    let forChunksWith (n: int) (init: unit -> 'S) (body: 'S -> int -> int -> int -> unit) =
        use states = new ThreadLocal<'S>(Func<'S>(init))
        forChunksIn states n body

    /// <summary>The results body(state, lo, hi) of every chunk of rows 0..n−1 merged into <paramref name="acc"/> one
    /// after another in chunk order (the first result is the accumulator when acc is None): acc ⊕ r₀ ⊕ r₁ ⊕ …. Chunks
    /// are computed in parallel waves of 64, so at most 64 results are held.</summary>
    let foldIn
        (states: ThreadLocal<'S>)
        (n: int)
        (body: 'S -> int -> int -> 'T)
        (merge: 'T -> 'T -> 'T)
        (acc: 'T option)
        : 'T option =
        let size, count = chunking n
        let mutable acc = acc
        let results = Array.zeroCreate (min count Wave)
        let mutable first = 0

        while first < count do
            let last = min count (first + Wave)

            if last - first = 1 then
                results.[0] <- body states.Value (first * size) (min n ((first + 1) * size))
            else
                Parallel.For(
                    first,
                    last,
                    fun c -> results.[c - first] <- body states.Value (c * size) (min n ((c + 1) * size))
                )
                |> ignore

            for c in 0 .. last - first - 1 do
                acc <-
                    match acc with
                    | None -> Some results.[c]
                    | Some a -> Some(merge a results.[c])

                results.[c] <- Unchecked.defaultof<'T>

            first <- last

        acc

    /// total + partial, elementwise, in place in total.
    let add (total: float[]) (partial: float[]) : float[] =
        TensorPrimitives.Add(ReadOnlySpan total, ReadOnlySpan partial, Span total)
        total

    /// The chunks' partial vectors body(state, lo, hi) (all of one length) added in chunk order, with a scratch state per
    /// worker thread.
    let sumWith (n: int) (init: unit -> 'S) (body: 'S -> int -> int -> float[]) : float[] =
        use states = new ThreadLocal<'S>(Func<'S>(init))

        match foldIn states n body add None with
        | Some total -> total
        | None -> invalidArg "n" "A sum over no rows."

    /// The chunks' partial vectors body(lo, hi) (all of one length), added in chunk order.
    let sum (n: int) (body: int -> int -> float[]) : float[] =
        sumWith n ignore (fun () lo hi -> body lo hi)

    /// The chunks' results body(lo, hi) merged in chunk order.
    let fold (n: int) (body: int -> int -> 'T) (merge: 'T -> 'T -> 'T) : 'T =
        use states = new ThreadLocal<unit>(Func<unit>(ignore))

        match foldIn states n (fun () lo hi -> body lo hi) merge None with
        | Some total -> total
        | None -> invalidArg "n" "A fold over no rows."

    /// The row-major storage of a matrix as a span (empty for an empty matrix).
    let inline flat (m: float[,]) : ReadOnlySpan<float> =
        if m.Length = 0 then
            ReadOnlySpan<float>.Empty
        else
            MemoryMarshal.CreateReadOnlySpan(&m.[0, 0], m.Length)
