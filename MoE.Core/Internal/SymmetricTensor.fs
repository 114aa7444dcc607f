/// Bookkeeping for symmetric fourth-order tensors in r dimensions: the unique index quadruples, and the dense
/// Hermite tensor E[F·S4(z)] assembled from the moments a pass accumulates (docs/math.md §4).
module internal MoE.Core.SymmetricTensor

/// The unique index tuples i ≤ j ≤ k ≤ l of a symmetric 4-tensor in n dimensions.
let quads (n: int) : struct (int * int * int * int)[] =
    [|
        for i in 0 .. n - 1 do
            for j in i .. n - 1 do
                for k in j .. n - 1 do
                    for l in k .. n - 1 do
                        yield struct (i, j, k, l)
    |]

/// E[F·S4(z)] (dense kp⁴, row-major) from the accumulated E[F z_iz_jz_kz_l] (unique i ≤ j ≤ k ≤ l, in the
/// order of <c>quads kp</c>), E[F z_iz_j] (upper triangle) and E[F]:
/// E[F S4]_{ijkl} = E[F z⁴]_{ijkl} − (E[F zz]_{ij}δ_kl + 5 more pairings) + E[F](δ_ijδ_kl + δ_ikδ_jl + δ_ilδ_jk).
let assembleS4 (kp: int) (qs: struct (int * int * int * int)[]) (f4: float[]) (f4z2: float[,]) (f4s: float) : float[] =
    let sym2 (a: float[,]) i j = if i <= j then a.[i, j] else a.[j, i]
    let e4full = Array.zeroCreate (kp * kp * kp * kp)

    for q in 0 .. qs.Length - 1 do
        let struct (i, j, kk, l) = qs.[q]

        for perm in
            [|
                struct (i, j, kk, l)
                struct (i, j, l, kk)
                struct (i, kk, j, l)
                struct (i, kk, l, j)
                struct (i, l, j, kk)
                struct (i, l, kk, j)
                struct (j, i, kk, l)
                struct (j, i, l, kk)
                struct (j, kk, i, l)
                struct (j, kk, l, i)
                struct (j, l, i, kk)
                struct (j, l, kk, i)
                struct (kk, i, j, l)
                struct (kk, i, l, j)
                struct (kk, j, i, l)
                struct (kk, j, l, i)
                struct (kk, l, i, j)
                struct (kk, l, j, i)
                struct (l, i, j, kk)
                struct (l, i, kk, j)
                struct (l, j, i, kk)
                struct (l, j, kk, i)
                struct (l, kk, i, j)
                struct (l, kk, j, i)
            |] do
            let struct (a, b, c, e) = perm
            e4full.[((a * kp + b) * kp + c) * kp + e] <- f4.[q]

    let delta i j = if i = j then 1.0 else 0.0

    for a in 0 .. kp - 1 do
        for b in 0 .. kp - 1 do
            for c in 0 .. kp - 1 do
                for e in 0 .. kp - 1 do
                    let idx = ((a * kp + b) * kp + c) * kp + e

                    e4full.[idx] <-
                        e4full.[idx]
                        - (sym2 f4z2 a b * delta c e
                           + sym2 f4z2 a c * delta b e
                           + sym2 f4z2 a e * delta b c
                           + sym2 f4z2 b c * delta a e
                           + sym2 f4z2 b e * delta a c
                           + sym2 f4z2 c e * delta a b)
                        + f4s * (delta a b * delta c e + delta a c * delta b e + delta a e * delta b c)

    e4full

/// The unique index triples i ≤ j ≤ l of a symmetric 3-tensor in n dimensions.
let triples (n: int) : struct (int * int * int)[] =
    [|
        for i in 0 .. n - 1 do
            for j in i .. n - 1 do
                for l in j .. n - 1 do
                    yield struct (i, j, l)
    |]

/// E[F·S3(z)] (dense n³, row-major) from the accumulated E[F z_iz_jz_l] (unique i ≤ j ≤ l, in the order of
/// <c>triples n</c>) and E[F z_i], for z in orthonormal coordinates:
/// E[F S3]_{ijl} = E[F z_iz_jz_l] − (δ_ij E[F z_l] + δ_il E[F z_j] + δ_jl E[F z_i]).
let assembleS3 (n: int) (ts: struct (int * int * int)[]) (f3: float[]) (f1: float[]) : float[] =
    let full = Array.zeroCreate (n * n * n)

    for q in 0 .. ts.Length - 1 do
        let struct (i, j, l) = ts.[q]

        for struct (a, b, c) in
            [|
                struct (i, j, l)
                struct (i, l, j)
                struct (j, i, l)
                struct (j, l, i)
                struct (l, i, j)
                struct (l, j, i)
            |] do
            full.[(a * n + b) * n + c] <- f3.[q]

    let delta i j = if i = j then 1.0 else 0.0

    for a in 0 .. n - 1 do
        for b in 0 .. n - 1 do
            for c in 0 .. n - 1 do
                let idx = (a * n + b) * n + c
                full.[idx] <- full.[idx] - (delta a b * f1.[c] + delta a c * f1.[b] + delta b c * f1.[a])

    full
