namespace MoE.Core

open System

/// <summary>Regions of a model's predictive law beyond its central intervals (docs/inference.md §3.3).</summary>
[<RequireQualifiedAccess>]
module PredictiveRegions =

    /// <summary>The highest-density region of each row's predictive law at probability <paramref name="level"/>
    /// (docs/inference.md §3.3): the smallest set holding that probability, {y : f(y | x) ≥ c} with c chosen so that it
    /// does — for a mixture of separated experts a union of intervals, one per mode, where the central interval would
    /// span the empty gap between them. Gaussian experts: f on a grid of 512 points over the experts' means ± 10σ_i
    /// (the means among them, so no mode is missed), each crossing of c refined by bisection to 1e-12 of the grid's
    /// span, the density's turning points refined and added to the grid so that a mode enters the set exactly when c falls
    /// below its peak, the mass of the set from the mixture's CDF, and c found by bisection until that mass is the level to 1e-12.
    /// A count or a 0/1 outcome: the most probable values, taken in order of probability until their mass reaches the
    /// level, joined into runs of consecutive values.</summary>
    /// <param name="model">The model.</param>
    /// <param name="level">The region's probability, in (0, 1).</param>
    /// <param name="x">n×d inputs.</param>
    /// <returns>For each row, its intervals in increasing order (a single value v of a count as [v, v]).</returns>
    /// <exception cref="T:System.ArgumentException">level outside (0, 1), or x is not n×d and finite.</exception>
    [<CompiledName("HighestDensity")>]
    let highestDensity (model: MoeModel) (level: float) (x: float[,]) : (float * float)[][] =
        if not (level > 0.0 && level < 1.0) then
            invalidArg "level" (Text.format "The region's probability must be in (0, 1), but is %g." [| box level |])

        let p = Inference.predictQuantiles model 0.0 [||] x
        let k = model.Experts
        let family = model.Family
        let sigmas = model.Sigmas

        let region (r: int) =
            let w = Array.init k (fun i -> p.Gate.[r, i])
            let mu = Array.init k (fun i -> p.ExpertMeans.[r, i])

            let cdf = Inference.mixtureCdf model p.Gate p.ExpertMeans p.Trials r

            if ExpertFamily.isDiscrete family then
                let top =
                    Math.Ceiling(
                        Array.max mu
                        + ExpertFamily.quantileReach
                            family
                            sigmas
                            model.DegreesOfFreedom
                            (Array.max mu)
                            (if p.Trials.Length = 0 then 0.0 else p.Trials.[r])
                    )

                let counts = int top + 1
                let mass = Array.init counts (fun v -> cdf (float v) - cdf (float v - 1.0))
                // Most probable first; equal probabilities by the smaller count, so the region is deterministic.
                let order = Array.init counts id |> Array.sortBy (fun v -> -mass.[v], v)
                let chosen = Array.zeroCreate counts
                let mutable total = 0.0
                let mutable i = 0

                while total < level && i < counts do
                    chosen.[order.[i]] <- true
                    total <- total + mass.[order.[i]]
                    i <- i + 1

                [|
                    let mutable v = 0

                    while v < counts do
                        if chosen.[v] then
                            let start = v

                            while v + 1 < counts && chosen.[v + 1] do
                                v <- v + 1

                            yield float start, float v

                        v <- v + 1
                |]
            else
                let f (y: float) =
                    let mutable s = 0.0

                    for i in 0 .. k - 1 do
                        let z = (y - mu.[i]) / sigmas.[i]
                        s <- s + w.[i] * exp (-0.5 * z * z) / (sigmas.[i] * sqrt (2.0 * Math.PI))

                    s

                let lo = Seq.min (seq { for i in 0 .. k - 1 -> mu.[i] - 10.0 * sigmas.[i] })
                let hi = Seq.max (seq { for i in 0 .. k - 1 -> mu.[i] + 10.0 * sigmas.[i] })

                let coarse =
                    Array.append (Array.init 512 (fun j -> lo + (hi - lo) * float j / 511.0)) mu
                    |> Array.sort

                let stop = 1e-12 * (hi - lo)

                // The density's turning points, each refined by golden-section search inside the three grid points
                // that bracket it, join the grid: between two neighbours f is then monotone, so a level c crosses it at
                // most once and a mode enters the region exactly when c falls below its peak. (A mixture's peak is not
                // its expert's mean when a wide expert leans on it; with only the means in the grid, a thin mode
                // appeared with a width already, and the mass jumped past the level.)
                let turning (a: float) (b: float) (peak: bool) =
                    let g y = if peak then f y else -(f y)
                    let r = 0.5 * (sqrt 5.0 - 1.0)
                    let mutable a, b = a, b
                    let mutable c, d = b - r * (b - a), a + r * (b - a)
                    let mutable gc, gd = g c, g d

                    while b - a > stop do
                        if gc >= gd then
                            b <- d
                            d <- c
                            gd <- gc
                            c <- b - r * (b - a)
                            gc <- g c
                        else
                            a <- c
                            c <- d
                            gc <- gd
                            d <- a + r * (b - a)
                            gd <- g d

                    0.5 * (a + b)

                let coarseValues = coarse |> Array.map f

                let grid =
                    [|
                        yield! coarse

                        for j in 1 .. coarse.Length - 2 do
                            let v0, v, v1 = coarseValues.[j - 1], coarseValues.[j], coarseValues.[j + 1]

                            if v >= v0 && v >= v1 && (v > v0 || v > v1) then
                                yield turning coarse.[j - 1] coarse.[j + 1] true
                            elif v <= v0 && v <= v1 && (v < v0 || v < v1) then
                                yield turning coarse.[j - 1] coarse.[j + 1] false
                    |]
                    |> Array.sort

                let values = grid |> Array.map f

                // The crossing of c between a point below it and one above, by bisection.
                let crossing (below: float) (above: float) (c: float) =
                    let mutable a, b = below, above

                    while abs (b - a) > stop do
                        let m = 0.5 * (a + b)
                        if f m >= c then b <- m else a <- m

                    0.5 * (a + b)

                let runs (c: float) =
                    [|
                        let mutable j = 0

                        while j < grid.Length do
                            if values.[j] >= c then
                                let start = j

                                while j + 1 < grid.Length && values.[j + 1] >= c do
                                    j <- j + 1

                                let left =
                                    if start = 0 then
                                        lo
                                    else
                                        crossing grid.[start - 1] grid.[start] c

                                let right =
                                    if j = grid.Length - 1 then
                                        hi
                                    else
                                        crossing grid.[j + 1] grid.[j] c

                                yield left, right

                            j <- j + 1
                    |]

                let massOf (c: float) =
                    runs c |> Array.sumBy (fun (a, b) -> cdf b - cdf a)

                // The mass falls as c rises: bisect c between 0 (everything) and the highest density (nothing).
                let mutable cLo, cHi = 0.0, Array.max values
                let mutable iterations = 0

                while iterations < 200 && cHi - cLo > 1e-15 * cHi do
                    let c = 0.5 * (cLo + cHi)
                    if massOf c >= level then cLo <- c else cHi <- c
                    iterations <- iterations + 1

                runs cLo

        Array.init (x.GetLength 0) region
