// Why the paper's L4 stage breaks off its setting (docs/learners.md): in the k-dimensional moment subspace, the
// fourth-order weight along each true direction, T4(a_m⁴)/c, against E[p_m] (Lemma 1 says they are equal), its
// spread over data seeds, and the most negative T4(v⁴)/c over unit v, for free and orthogonal gating.
// Run after `dotnet build -c Release`:  dotnet fsi examples/l4-moments.fsx   (about a minute on 2 cores)
#r "nuget: MathNet.Numerics, 5.0.0"
#r "nuget: System.Numerics.Tensors, 10.0.12"
#r "../MoE.Core/bin/Release/net10.0/MoE.Core.dll"

open MoE.Core

/// T4(u, u, v, v)/c for unit u, v in the subspace's coordinates.
let quartic (t: L4Tensors) (u: float[]) (v: float[]) =
    let r = t.Rank
    let mutable s = 0.0

    for a in 0 .. r - 1 do
        for b in 0 .. r - 1 do
            for c in 0 .. r - 1 do
                for e in 0 .. r - 1 do
                    s <- s + t.T4.[((a * r + b) * r + c) * r + e] * u.[a] * u.[b] * v.[c] * v.[e]

    s / t.C

/// A regressor in the subspace's coordinates, normalised.
let project (t: L4Tensors) (a: float[]) =
    let d, r = t.Basis.GetLength 0, t.Rank
    let z = Array.init r (fun j -> Seq.sum (seq { for i in 0 .. d - 1 -> t.Basis.[i, j] * a.[i] }))
    let norm = sqrt (Array.sumBy (fun v -> v * v) z)
    z |> Array.map (fun v -> v / norm)

/// min over unit v of T4(v⁴)/c, by random search (4000 directions: enough for r ≤ 6 to two digits).
let mostNegative (t: L4Tensors) =
    let rng = Rng.create 5L

    Seq.init 4000 (fun _ ->
        let v = Array.init t.Rank (fun _ -> rng.NextGaussian())
        let n = sqrt (Array.sumBy (fun x -> x * x) v)
        let v = v |> Array.map (fun x -> x / n)
        quartic t v v)
    |> Seq.min

let mean (xs: float seq) = Seq.average xs
let sd (xs: float seq) = let m = mean xs in sqrt (Seq.averageBy (fun x -> (x - m) * (x - m)) xs)

for d, k, g, sigma in [ 10, 2, Identity, 0.05; 10, 3, Relu, 0.1; 10, 4, Relu, 0.1; 20, 4, Relu, 0.5; 20, 6, Identity, 0.05; 50, 6, Relu, 0.1 ] do
    for free in [ true; false ] do
        let truth = GroundTruth.random k d g sigma 1.0 free 1L
        // E[p_m] by Monte Carlo on 200k rows (a product rule over 2k − 1 dimensions is too large for k = 6).
        let masses =
            let x = (Sampler.sample truth 200_000 7L).X
            let p = MoeModel.gateProbabilities truth x
            Array.init k (fun i -> Seq.average (seq { for r in 0 .. 199_999 -> p.[r, i] }))

        let runs =
            [ for seed in 1..4 ->
                  let data = Sampler.sample truth 200_000 (1000L + int64 seed)
                  let t = (SubspaceL4.moments (OutputTransforms.bounded g sigma) k data.X data.Y).Projected
                  let weights = Array.init k (fun i -> let u = project t (Array.init d (fun j -> truth.Regressors.[i, j])) in quartic t u u)
                  weights, mostNegative t ]

        let weights = Array.init k (fun i -> mean (runs |> Seq.map (fun (w, _) -> w.[i])))
        let spread = Array.init k (fun i -> sd (runs |> Seq.map (fun (w, _) -> w.[i]))) |> Array.max

        printfn
            "d=%d, k=%d, %s, σ=%g, %s gating: T4(a_m⁴)/c vs E[p_m] %s; sd %.3f; min T4(v⁴)/c %+.3f"
            d k g.Name sigma (if free then "free" else "orthogonal")
            (String.concat ", " (Array.map2 (sprintf "%.2f/%.2f") weights masses))
            spread
            (mean (runs |> Seq.map snd))
