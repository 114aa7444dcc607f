namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra

/// <summary>k = 1 of the choice of k (docs/inference.md §1): the single regression of the family — least squares for
/// Gaussian experts (closed form for the identity, L-BFGS otherwise), Newton's method (IRLS) for the GLM ones.</summary>
module internal SingleRegression =

    /// Row r's frequency weight (docs/math.md §13): 1 when the rows carry none. A weight of 1 multiplies exactly, so
    /// unweighted rows give the bits they gave before weights existed.
    let inline private weightOf (w: float[]) (r: int) = if isNull w then 1.0 else w.[r]

    /// Σ w_r, summed in row order (n, exactly, without weights).
    let private total (w: float[]) (n: int) =
        if isNull w then float n else Array.sum w

    /// The single regression y = g(⟨a, x⟩ + b) + N(0, σ²) by least squares: closed form for the identity, else L-BFGS
    /// from the linear fit. σ² = RSS/n is its maximum-likelihood level. Weighted rows: rows and responses scaled by
    /// √w for the least squares, each row's loss by w, n = Σw.
    let private gaussian
        (g: Activation)
        (intercept: bool)
        (x: float[,])
        (y: float[])
        (w: float[])
        (context: RunContext)
        =
        let n, d = x.GetLength 0, x.GetLength 1
        let width = if intercept then d + 1 else d
        let total = total w n

        let design =
            Matrix<float>.Build.Dense(n, width, fun r t -> sqrt (weightOf w r) * (if t < d then x.[r, t] else 1.0))

        let linear =
            design
                .QR()
                .Solve(Vector<float>.Build.DenseOfArray(Array.init n (fun r -> sqrt (weightOf w r) * y.[r])))
                .ToArray()

        let coefficients =
            match g with
            | Identity -> linear
            | _ ->
                let f (v: float[]) =
                    let grad = Array.zeroCreate width
                    let mutable loss = 0.0

                    for r in 0 .. n - 1 do
                        let mutable z = if intercept then v.[d] else 0.0

                        for t in 0 .. d - 1 do
                            z <- z + v.[t] * x.[r, t]

                        let e = g.Value z - y.[r]
                        loss <- loss + weightOf w r * e * e / (2.0 * total)
                        let s = weightOf w r * e * g.Derivative z / total

                        for t in 0 .. d - 1 do
                            grad.[t] <- grad.[t] + s * x.[r, t]

                        if intercept then
                            grad.[d] <- grad.[d] + s

                    loss, grad

                (Lbfgs.minimize Stage.Single context false 500 1e-10 f linear).Value

        let rss =
            Seq.sum (
                seq {
                    for r in 0 .. n - 1 ->
                        let mutable z = if intercept then coefficients.[d] else 0.0

                        for t in 0 .. d - 1 do
                            z <- z + coefficients.[t] * x.[r, t]

                        let e = y.[r] - g.Value z
                        weightOf w r * e * e
                }
            )

        let sigma = sqrt (rss / total)
        let ll = -0.5 * total * (Math.Log(2.0 * Math.PI * sigma * sigma) + 1.0)
        Array.sub coefficients 0 d, (if intercept then coefficients.[d] else 0.0), sigma, ll

    /// The single generalised linear regression of a family without levels (Poisson, Bernoulli, binomial) by Newton's
    /// method (IRLS, docs/math.md §12.2) from the intercept at the link of ȳ, each step halved until the likelihood does
    /// not fall; its σ is reported as 1 (the family has none). <c>offsets</c> holds Poisson's log t, or binomial's
    /// trials n (§12.5: the score y − nμ, the information nμ(1 − μ)). Returns slopes, intercept, σ and the
    /// log-likelihood.
    let private glm
        (family: ExpertFamily)
        (intercept: bool)
        (x: float[,])
        (y: float[])
        (w: float[])
        (offsets: float[])
        =
        let n, d = x.GetLength 0, x.GetLength 1
        let width = if intercept then d + 1 else d

        let eta (v: float[]) (r: int) =
            let mutable z = if intercept then v.[d] else 0.0

            for t in 0 .. d - 1 do
                z <- z + v.[t] * x.[r, t]

            if isNull offsets || not (ExpertFamily.offsetsPredictor family) then
                z
            else
                z + offsets.[r]

        // A binomial row's trials (1 for every other family, whose mean and variance are per row).
        let trials (r: int) =
            if family = ExpertFamily.Binomial then offsets.[r] else 1.0

        let logLikelihood (v: float[]) =
            Seq.sum (
                seq {
                    for r in 0 .. n - 1 ->
                        weightOf w r
                        * ExpertFamily.jointLogDensity family 0.0 0.0 0.0 0.0 (trials r) y.[r] (eta v r)
                }
            )

        let mutable v = Array.zeroCreate width

        if intercept then
            let mutable sum = 0.0

            for r in 0 .. n - 1 do
                sum <- sum + weightOf w r * y.[r]

            // With offsets log t the rate's link: Σ w y / Σ w t; with trials the success rate's, Σ w y / Σ w n.
            let exposure =
                if isNull offsets then
                    total w n
                elif family = ExpertFamily.Binomial then
                    Seq.sum (seq { for r in 0 .. n - 1 -> weightOf w r * offsets.[r] })
                else
                    Seq.sum (seq { for r in 0 .. n - 1 -> weightOf w r * DetMath.exp offsets.[r] })

            v.[d] <- ExpertFamily.startIntercept family (sum / exposure)

        let mutable ll = logLikelihood v
        let mutable go = true
        let mutable iterations = 0

        while go && iterations < 200 do
            iterations <- iterations + 1
            let gram = Array.zeroCreate (width * width)
            let rhs = Array.zeroCreate width

            for r in 0 .. n - 1 do
                let z = eta v r
                let mu = ExpertFamily.responseMean family z

                let variance = weightOf w r * trials r * ExpertFamily.variance family mu
                let residual = weightOf w r * (y.[r] - trials r * mu)

                let row t = if t < d then x.[r, t] else 1.0

                for t in 0 .. width - 1 do
                    rhs.[t] <- rhs.[t] + residual * row t

                    for u in t .. width - 1 do
                        gram.[t * width + u] <- gram.[t * width + u] + variance * row t * row u

            let step = Canonical.expertSolution width gram rhs
            let mutable scale = 1.0
            let mutable accepted = false

            while not accepted && scale > 1e-10 do
                let trial = Array.init width (fun t -> v.[t] + scale * step.[t])
                let llTrial = logLikelihood trial

                if llTrial >= ll then
                    accepted <- true
                    go <- llTrial - ll > 1e-13 * max 1.0 (abs ll)
                    v <- trial
                    ll <- llTrial
                else
                    scale <- scale * 0.5

            if not accepted then
                go <- false

        Array.sub v 0 d, (if intercept then v.[d] else 0.0), 1.0, ll

    /// The single Student-t regression (docs/math.md §14.2) by ECM from the least-squares line: each step weighs the
    /// rows by u = (ν+1)/(ν + e²/σ²), solves weighted least squares, sets σ² = Σ w u e²/Σ w and ν by the family's step
    /// (unless <paramref name="fixedNu"/> holds it), until the log-likelihood gains less than 1e-13 relative. Returns
    /// slopes, intercept, σ, ν and the log-likelihood.
    let private studentT
        (intercept: bool)
        (x: float[,])
        (y: float[])
        (w: float[])
        (fixedNu: float option)
        (context: RunContext)
        =
        let n, d = x.GetLength 0, x.GetLength 1
        let width = if intercept then d + 1 else d
        let a0, b0, s0, _ = gaussian Identity intercept x y w context
        let mutable v = Array.append a0 (if intercept then [| b0 |] else [||])
        let mutable sigma = max s0 1e-300

        let mutable nu = fixedNu |> Option.defaultValue StudentT.StartDegreesOfFreedom

        let count = total w n

        let residual (v: float[]) (r: int) =
            let mutable z = if intercept then v.[d] else 0.0

            for t in 0 .. d - 1 do
                z <- z + v.[t] * x.[r, t]

            y.[r] - z

        let logLikelihood (v: float[]) (sigma: float) (nu: float) =
            let c, b, shape = StudentT.constants [| sigma |] [| nu |]

            Seq.sum (
                seq { for r in 0 .. n - 1 -> weightOf w r * StudentT.logDensity c.[0] b.[0] shape.[0] (residual v r) }
            )

        let mutable ll = logLikelihood v sigma nu
        let mutable go = true
        let mutable iterations = 0

        while go && iterations < 1000 do
            iterations <- iterations + 1
            context.Cancellation.ThrowIfCancellationRequested()
            let b = nu * sigma * sigma
            let gram = Array.zeroCreate (width * width)
            let rhs = Array.zeroCreate width
            let mutable sumLogW, sumW = 0.0, 0.0

            for r in 0 .. n - 1 do
                let e = residual v r
                let weight = StudentT.weight b (nu + 1.0) e
                let rw = weightOf w r * weight
                sumLogW <- sumLogW + weightOf w r * Math.Log weight
                sumW <- sumW + rw
                let row t = if t < d then x.[r, t] else 1.0
                let target = y.[r]

                for t in 0 .. width - 1 do
                    rhs.[t] <- rhs.[t] + rw * target * row t

                    for u in t .. width - 1 do
                        gram.[t * width + u] <- gram.[t * width + u] + rw * row t * row u

            let next = Gaussian.expertSolution width gram rhs
            // σ² = σ²_old·Σ w·(u/σ²_old)·e²/Σ w at the new line (the weights of the E-step).
            let mutable swe2 = 0.0

            for r in 0 .. n - 1 do
                let eOld = residual v r
                let e = residual next r
                swe2 <- swe2 + weightOf w r * StudentT.weight b (nu + 1.0) eOld * e * e

            let sigmaNext = max (sigma * sqrt (swe2 / count)) 1e-300

            let nuNext =
                match fixedNu with
                | Some f -> f
                | None ->
                    (StudentT.degreesOfFreedom
                        [| [| 0.0; 0.0; sumLogW; sumW |] |]
                        [| count |]
                        count
                        [| sigma |]
                        [| nu |]).[0]

            let llNext = logLikelihood next sigmaNext nuNext
            go <- llNext - ll > 1e-13 * max 1.0 (abs ll)
            v <- next
            sigma <- sigmaNext
            nu <- nuNext
            ll <- llNext

        Array.sub v 0 d, (if intercept then v.[d] else 0.0), sigma, nu, ll

    /// <summary>The single regression of a family: slopes, intercept, σ (1 for a family without levels), ν (Student-t;
    /// 0 for the other families) and the log-likelihood.</summary>
    /// <param name="family">The expert family.</param>
    /// <param name="g">The activation (Gaussian experts).</param>
    /// <param name="intercept">Whether the regression has an intercept.</param>
    /// <param name="x">n×d inputs.</param>
    /// <param name="y">n responses.</param>
    /// <param name="w">The rows' frequency weights, or null for unit weights.</param>
    /// <param name="offsets">The rows' offsets log t (docs/math.md §12.4), or null for none (the GLM families only).</param>
    /// <param name="fixedNu">Student-t's fixed degrees of freedom, or None to estimate them.</param>
    /// <param name="context">Progress and cancellation.</param>
    let fit
        (family: ExpertFamily)
        (g: Activation)
        (intercept: bool)
        (x: float[,])
        (y: float[])
        (w: float[])
        (offsets: float[])
        (fixedNu: float option)
        (context: RunContext)
        =
        if ExpertFamily.hasLevels family then
            if not (isNull offsets) then
                invalidArg "offsets" "Offsets enter a GLM expert's link; a Gaussian regression takes none."

            if family = ExpertFamily.StudentT then
                studentT intercept x y w fixedNu context
            else
                let a, b, s, ll = gaussian g intercept x y w context
                a, b, s, 0.0, ll
        else
            let a, b, s, ll = glm family intercept x y w offsets
            a, b, s, 0.0, ll
