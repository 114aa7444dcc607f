/// Per-row building blocks of the fused kernels, on spans of the row-major sample and parameter storage.
module internal MoE.Core.RowOps

open System
open System.Numerics.Tensors

/// The gate logits l_i = &lt;w_i, x&gt; + c_i (l_k = 0) into logits; returns max_i l_i (≥ 0).
let inline logitsInto (ws: ReadOnlySpan<float>) (c: float[]) (xr: ReadOnlySpan<float>) (logits: float[]) =
    let d, km1 = xr.Length, logits.Length - 1
    let mutable mx = 0.0

    for i in 0 .. km1 - 1 do
        let v = TensorPrimitives.Dot(ws.Slice(i * d, d), xr) + c.[i]
        logits.[i] <- v

        if v > mx then
            mx <- v

    logits.[km1] <- 0.0
    mx

/// acc[t, u] += c·x_t·x_u for t ≤ u (upper triangle of a d×d row-major block starting at offset).
let inline rankOneUpper (acc: float[]) (offset: int) (stride: int) (c: float) (x: ReadOnlySpan<float>) =
    let d = x.Length

    for t in 0 .. d - 1 do
        let ct = c * x.[t]

        if ct <> 0.0 then
            let row = Span<float>(acc, offset + t * stride + t, d - t)

            TensorPrimitives.MultiplyAdd(x.Slice t, ct, ReadOnlySpan<float>(acc, offset + t * stride + t, d - t), row)
