namespace MoE.Core

open System
open MathNet.Numerics.LinearAlgebra

/// <summary>Standard errors of a fitted model's parameters, in the user's units, with Wald intervals.</summary>
type StandardErrors =
    {
        /// k×d standard errors of the regressors a_i.
        Regressors: float[,]
        /// k standard errors of the expert intercepts b_i (empty without intercepts).
        RegressorIntercepts: float[]
        /// (k−1)×d standard errors of the gating rows w_j (w_k = 0 is not a parameter).
        Gating: float[,]
        /// k−1 standard errors of the gate intercepts c_j (empty without intercepts).
        GatingIntercepts: float[]
        /// k standard errors of the noise levels σ_i (by the delta method from log σ_i; one value repeated for a
        /// common σ; zeros when σ was given, not fitted; empty for a family without levels, Poisson or Bernoulli).
        Sigmas: float[]
        /// "observed" (the inverse observed information) or "sandwich" (H⁻¹ J H⁻¹, J the scores' outer products).
        Method: string
        /// The smallest eigenvalue of the observed information per row, relative to its largest: near 0 means a
        /// parameter is barely identified and its interval is unreliable.
        Conditioning: float
        /// The covariance of the estimates in the order of <c>Parameters</c> (the regressors' and gate's coefficients;
        /// the noise levels are on the log scale there): what a Wald test of several coefficients at once needs.
        Covariance: float[,]
        /// The coefficients the covariance is over, as (part, expert or gate row, column): part "a" an expert's
        /// coefficient (column −1 its intercept), "w" the gate's (column −1 its intercept), "s" a log noise level.
        Parameters: (string * int * int)[]
    }

/// <summary>Mixture predictions for every row: the mean, each expert's mean, the gate probabilities and, on request,
/// predictive quantiles of the mixture.</summary>
type Predictions =
    {
        /// n conditional means Σ_i p_i(x) μ_i(x).
        Mean: float[]
        /// n×k expert means μ_i(x) = g(⟨a_i, x⟩ + b_i).
        ExpertMeans: float[,]
        /// n×k gate probabilities p_i(x).
        Gate: float[,]
        /// n lower and upper ends of the central predictive interval (empty without an interval).
        Lower: float[]
        /// See Lower.
        Upper: float[]
        /// The interval's probability (0 without an interval).
        Level: float
        /// n×q quantiles of the predictive distribution at <c>Probabilities</c> (n×0 when none were asked for).
        Quantiles: float[,]
        /// The q probabilities of <c>Quantiles</c>' columns, each in (0, 1) (empty when none were asked for).
        Probabilities: float[]
        /// Binomial experts' trials per row, which their predictive distributions need (docs/math.md §12.5; the means
        /// are probabilities of a success); empty for every other family.
        Trials: float[]
    }

/// <summary>The fit for one number of experts and its information criteria.</summary>
type KChoice =
    {
        /// k (1: a single regression, the same g, intercept and noise).
        Experts: int
        /// The maximised log-likelihood (total over rows).
        LogLikelihood: float
        /// The number of free parameters.
        Parameters: int
        /// −2 LL + 2 p.
        Aic: float
        /// −2 LL + p log n.
        Bic: float
        /// BIC − 2 Σ_n log r_{n,ẑ_n} (flexmix's: the classification likelihood at the most likely expert).
        Icl: float
        /// The model for k ≥ 2 (None for k = 1, whose parameters are in Single).
        Model: MoeModel option
        /// For k = 1: slopes, intercept, σ and ν (Student-t; 0 for the other families) of the single regression.
        Single: (float[] * float * float * float) option
        /// Warnings of the fit.
        Warnings: Finding[]
    }

/// <summary>What a fitted model says beyond its point estimate (docs/inference.md): standard errors from the
/// observed information, predictions with intervals, and the choice of k by information criteria.</summary>
[<RequireQualifiedAccess>]
module Inference =

    let internal settingsWith
        (model: MoeModel)
        (commonSigma: bool)
        (estimateSigma: bool)
        (estimateDegreesOfFreedom: bool)
        : EmSettings =
        { EmSettings.paper estimateSigma 1 1e-9 with
            CommonSigma = commonSigma
            FitIntercepts = model.HasIntercepts
            // Student-t's interior ν_i, when fitted, are parameters of the information (last in the layout), so the
            // other errors carry their uncertainty; the covariance reported is the others' block (docs/math.md §14.2).
            EstimateDegreesOfFreedom = estimateDegreesOfFreedom && model.Family = ExpertFamily.StudentT
        }

    let internal settingsOf (model: MoeModel) (commonSigma: bool) (estimateSigma: bool) : EmSettings =
        settingsWith model commonSigma estimateSigma estimateSigma

    /// <summary>Standard errors of every parameter at a maximum of the likelihood. The observed information is the
    /// negative Hessian of the log-likelihood in θ = (a_i, b_i, w_j, c_j, log σ_i), by central differences of the
    /// analytic gradient (docs/inference.md: steps of 1e-4 in units where each variable's curvature per row is 1,
    /// so the truncation error is ~1e-8 and the rounding error ~1e-11 relative); its inverse is the covariance, or
    /// with <paramref name="sandwich"/> H⁻¹ J H⁻¹ with J = Σ_n s_n s_nᵀ, robust to a misspecified noise model.</summary>
    /// <param name="model">The fitted model (a maximum of the likelihood without prior: the default fit's).</param>
    /// <param name="commonSigma">Whether the fit had one σ for all experts.</param>
    /// <param name="estimateSigma">Whether σ was fitted (false: σ was given and is not a parameter).</param>
    /// <param name="estimateDegreesOfFreedom">Whether Student-t's ν_i were fitted (false: fixed by the fit's
    /// <c>DegreesOfFreedom</c>, so they are not parameters and the other errors do not allow for their estimation).
    /// Read only with <paramref name="estimateSigma"/>.</param>
    /// <param name="sandwich">The sandwich estimator instead of the inverse observed information.</param>
    /// <param name="data">The rows of the fit, with their weights if they carry any.</param>
    /// <exception cref="T:System.InvalidOperationException">The observed information is not positive definite: the
    /// model is not at a strict maximum (not converged, or an expert is not identified).</exception>
    /// <remarks>Rows with frequency weights (<c>Dataset.Weights</c>) count w times: the information is the weighted
    /// Hessian and J = Σ_n w_n s_n s_nᵀ, so the errors are those of the data with each row repeated w times — frequency
    /// weights, not survey weights, whose sampling design these errors do not know (docs/math.md §13).</remarks>
    [<CompiledName("StandardErrorsWith")>]
    let standardErrorsWith
        (model: MoeModel)
        (commonSigma: bool)
        (estimateSigma: bool)
        (estimateDegreesOfFreedom: bool)
        (sandwich: bool)
        (data: Dataset)
        : StandardErrors =
        Guard.notNull "data" (box data)
        let x, y = data.X, data.Y
        MoeModel.validate model
        ModelRows.checkLikelihoodInputs model x y
        let source = DataSource.ofDataset data
        // A family without levels (Poisson, Bernoulli) has no σ among its parameters.
        let estimateSigma = estimateSigma && ExpertFamily.hasLevels model.Family

        let settings =
            settingsWith model commonSigma estimateSigma (estimateSigma && estimateDegreesOfFreedom)

        let theta = Likelihood.pack settings model
        let p = theta.Length
        let n = data.Weight
        let k, d = model.Experts, model.Dimension

        let scale =
            let full = LikelihoodKernel.curvatureOf model settings.FitIntercepts source
            // The same map from the kernel's layout to the variables as the gradient's.
            let c = Likelihood.restrictCurvature settings model full
            let floor = 1e-6 * Array.max c
            c |> Array.map (fun v -> sqrt (max v floor / n))

        let gradient (v: float[]) =
            snd (Likelihood.objectiveOn settings (Likelihood.unpack settings model v) source)

        let hessian = Matrix<float>.Build.Dense(p, p)

        for j in 0 .. p - 1 do
            let h = 1e-4 / scale.[j]
            let plus = Array.copy theta
            let minus = Array.copy theta
            plus.[j] <- plus.[j] + h
            minus.[j] <- minus.[j] - h
            let gp, gm = gradient plus, gradient minus

            for i in 0 .. p - 1 do
                hessian.[i, j] <- (gp.[i] - gm.[i]) / (2.0 * h)

        let information = -(hessian + hessian.Transpose()) / 2.0
        // Conditioning in the scaled variables, where a well-identified parameter has information ~1 per row.
        let scaled =
            Matrix<float>.Build.Dense(p, p, fun i j -> information.[i, j] / (n * scale.[i] * scale.[j]))

        let eigen =
            scaled.Evd(Symmetricity.Symmetric).EigenValues |> Seq.map _.Real |> Seq.toArray

        let smallest, largest = Array.min eigen, Array.max eigen

        if not (smallest > 1e-12 * largest) then
            invalidOp (
                Text.format
                    "The observed information is not positive definite (smallest eigenvalue %.3g of %.3g in scaled units): the model is not at a strict maximum of the likelihood, or a parameter is not identified (an expert with almost no weight, or experts that coincide). Refit, or fit fewer experts."
                    [| box smallest; box largest |]
            )

        let inverse = information.Inverse()

        let covariance =
            if not sandwich then
                inverse
            else
                let scores = Matrix<float>.Build.Dense(p, p)
                let row = Array2D.zeroCreate 1 d

                for r in 0 .. y.Length - 1 do
                    for t in 0 .. d - 1 do
                        row.[0, t] <- x.[r, t]

                    let _, s = Likelihood.objective settings model row [| y.[r] |]
                    let w = data.WeightOf r

                    for i in 0 .. p - 1 do
                        for j in 0 .. p - 1 do
                            scores.[i, j] <- scores.[i, j] + w * s.[i] * s.[j]

                inverse * scores * inverse

        let dE, dG = model.ExpertDimension, model.GateDimension
        let width = if settings.FitIntercepts then dE + 1 else dE
        let gateWidth = if settings.FitIntercepts then dG + 1 else dG
        let nW = (k - 1) * gateWidth
        let nA = k * width
        let levels = if commonSigma then 1 else k
        // The coefficients and levels; Student-t's ν variables after them are marginalised out (their block dropped).
        let p = nA + nW + (if estimateSigma then levels else 0)

        let covariance =
            if p < covariance.RowCount then
                covariance.SubMatrix(0, p, 0, p)
            else
                covariance

        let se = Array.init p (fun j -> sqrt (max covariance.[j, j] 0.0))

        {
            Regressors = Array2D.init k dE (fun i t -> se.[i * width + t])
            RegressorIntercepts =
                (if settings.FitIntercepts then
                     Array.init k (fun i -> se.[i * width + dE])
                 else
                     [||])
            Gating = Array2D.init (k - 1) dG (fun j t -> se.[nA + j * gateWidth + t])
            GatingIntercepts =
                (if settings.FitIntercepts then
                     Array.init (k - 1) (fun j -> se.[nA + j * gateWidth + dG])
                 else
                     [||])
            Sigmas =
                if not (ExpertFamily.hasLevels model.Family) then
                    [||]
                else
                    Array.init k (fun i ->
                        if estimateSigma then
                            model.Sigmas.[i] * se.[nA + nW + (if levels = 1 then 0 else i)]
                        else
                            0.0)
            Method = (if sandwich then "sandwich" else "observed")
            Conditioning = smallest / largest
            Covariance = covariance.ToArray()
            Parameters =
                [|
                    for i in 0 .. k - 1 do
                        for t in 0 .. width - 1 -> "a", i, (if t < dE then t else -1)
                    for j in 0 .. k - 2 do
                        for t in 0 .. gateWidth - 1 -> "w", j, (if t < dG then t else -1)
                    for i in 0 .. p - nA - nW - 1 -> "s", i, -1
                |]
        }


    /// <summary>Standard errors of every parameter at a maximum of the likelihood (<c>standardErrorsWith</c>, with
    /// Student-t's degrees of freedom counted as fitted whenever σ is).</summary>
    /// <param name="model">The fitted model.</param>
    /// <param name="commonSigma">Whether the fit had one σ for all experts.</param>
    /// <param name="estimateSigma">Whether σ (and Student-t's ν) was fitted.</param>
    /// <param name="sandwich">The sandwich estimator instead of the inverse observed information.</param>
    /// <param name="data">The rows of the fit.</param>
    [<CompiledName("StandardErrorsOf")>]
    let standardErrorsOf
        (model: MoeModel)
        (commonSigma: bool)
        (estimateSigma: bool)
        (sandwich: bool)
        (data: Dataset)
        : StandardErrors =
        standardErrorsWith model commonSigma estimateSigma estimateSigma sandwich data

    /// <summary>Row r's predictive CDF P(Y ≤ q | x_r) = Σ_i p_i F_i(q), from its gate probabilities and expert means
    /// (a <c>Predictions</c>' <c>Gate</c> and <c>ExpertMeans</c>): the one the quantiles, the intervals, the PIT and the
    /// highest-density regions all read.</summary>
    let internal mixtureCdf (model: MoeModel) (gate: float[,]) (means: float[,]) (trials: float[]) (r: int) (q: float) =
        let mutable s = 0.0
        let n = if trials.Length = 0 then 0.0 else trials.[r]

        for i in 0 .. model.Experts - 1 do
            s <-
                s
                + gate.[r, i]
                  * ExpertFamily.cdf
                      model.Family
                      means.[r, i]
                      model.Sigmas.[i]
                      (ModelRows.degreesOfFreedomOf model i)
                      n
                      q

        s

    /// Refuses an interval probability outside (0, 1) other than 0 (none).
    let private checkLevel (level: float) =
        if not (level = 0.0 || (level > 0.0 && level < 1.0)) then
            invalidArg
                "level"
                (Text.format "The interval's probability must be in (0, 1) (or 0 for none), but is %g." [| box level |])

    /// Refuses a quantile's probability outside (0, 1).
    let private checkProbabilities (probabilities: float[]) =
        Guard.notNull "probabilities" probabilities

        for p in probabilities do
            if not (p > 0.0 && p < 1.0) then
                invalidArg
                    "probabilities"
                    (Text.format
                        "A quantile's probability must be in (0, 1), but one is %g (0 and 1 are the support's ends, infinite for a Gaussian)."
                        [| box p |])


    /// <summary>Standard errors of every parameter at a maximum of the likelihood, on unweighted rows in memory
    /// (<c>standardErrorsOf</c>).</summary>
    /// <param name="model">The fitted model.</param>
    /// <param name="commonSigma">Whether the fit had one σ for all experts.</param>
    /// <param name="estimateSigma">Whether σ was fitted.</param>
    /// <param name="sandwich">The sandwich estimator instead of the inverse observed information.</param>
    /// <param name="x">n×d inputs of the fit.</param>
    /// <param name="y">n responses of the fit.</param>
    [<CompiledName("StandardErrors")>]
    let standardErrors
        (model: MoeModel)
        (commonSigma: bool)
        (estimateSigma: bool)
        (sandwich: bool)
        (x: float[,])
        (y: float[])
        : StandardErrors =
        standardErrorsOf model commonSigma estimateSigma sandwich { X = x; Y = y; Weights = null }

    /// <summary>Predictions for every row: the mixture mean, each expert's mean and the gate, with
    /// <paramref name="level"/> &gt; 0 the central predictive interval of the mixture Σ_i p_i f_i(y | x), and the
    /// quantiles at <paramref name="probabilities"/>. A quantile q solves Σ_i p_i F_i(q) = probability (Gaussian:
    /// F_i(q) = Φ((q − μ_i)/σ_i)) by bisection to 1e-12 of the experts' spread; a count's is the whole number where the
    /// mixture's CDF passes it. The mixture's quantiles need not be near any expert's mean: with two experts far apart
    /// the median may fall between them, where little probability lies.</summary>
    /// <param name="model">The model.</param>
    /// <param name="level">The interval's probability in (0, 1), or 0 for none.</param>
    /// <param name="probabilities">The quantiles' probabilities, each in (0, 1) (empty for none).</param>
    /// <param name="x">n×d inputs.</param>
    /// <exception cref="T:System.ArgumentException">level is not 0 or in (0, 1), or x is not n×d and finite.</exception>
    [<CompiledName("PredictQuantiles")>]
    let predictQuantiles (model: MoeModel) (level: float) (probabilities: float[]) (x: float[,]) : Predictions =
        checkLevel level
        checkProbabilities probabilities

        let gate = MoeModel.gateProbabilities model x
        let n, k, d = x.GetLength 0, model.Experts, model.ExpertDimension
        let columns = model.Design.ExpertColumns
        let g = model.Activation

        let means =
            Array2D.init n k (fun r i ->
                let mutable z = model.RegressorIntercepts.[i]

                for t in 0 .. d - 1 do
                    z <- z + model.Regressors.[i, t] * x.[r, columns.[t]]

                if ModelRows.hasPredictorOffset model then
                    z <- z + Design.offsetAt model.Design x r

                ExpertFamily.responseMean model.Family (g.Value z))

        let trials =
            if model.Family = ExpertFamily.Binomial then
                Array.init n (fun r -> ModelRows.trialsAt model x r)
            else
                [||]

        let mean =
            Array.init n (fun r -> Seq.sum (seq { for i in 0 .. k - 1 -> gate.[r, i] * means.[r, i] }))

        let quantile (r: int) (target: float) =
            let cdf = mixtureCdf model gate means trials r

            // Every quantile of the mixture lies between the components' extreme quantiles.
            let reach =
                ExpertFamily.quantileReach
                    model.Family
                    model.Sigmas
                    model.DegreesOfFreedom
                    (Seq.max (seq { for i in 0 .. k - 1 -> abs means.[r, i] }))
                    (if trials.Length = 0 then 0.0 else trials.[r])

            let mutable lo = Seq.min (seq { for i in 0 .. k - 1 -> means.[r, i] }) - reach

            let mutable hi = Seq.max (seq { for i in 0 .. k - 1 -> means.[r, i] }) + reach

            let stop = 1e-12 * (hi - lo)

            while hi - lo > stop do
                let mid = 0.5 * (lo + hi)
                if cdf mid < target then lo <- mid else hi <- mid

            // A discrete family's quantile is the whole number where its CDF jumps past the target.
            // (+ 0.0 turns a −0 from rounding a small negative midpoint into 0: a count is never −0.)
            if ExpertFamily.isDiscrete model.Family then
                Math.Round(0.5 * (lo + hi)) + 0.0
            else
                0.5 * (lo + hi)

        let lower, upper =
            if level = 0.0 then
                [||], [||]
            else
                Array.init n (fun r -> quantile r ((1.0 - level) / 2.0)),
                Array.init n (fun r -> quantile r ((1.0 + level) / 2.0))

        {
            Mean = mean
            ExpertMeans = means
            Gate = gate
            Lower = lower
            Upper = upper
            Level = level
            Quantiles = Array2D.init n probabilities.Length (fun r j -> quantile r probabilities.[j])
            Probabilities = Array.copy probabilities
            Trials = trials
        }

    /// <summary>Predictions for every row without quantiles beyond the interval's (<c>predictQuantiles</c> with none).</summary>
    /// <param name="model">The model.</param>
    /// <param name="level">The interval's probability in (0, 1), or 0 for none.</param>
    /// <param name="x">n×d inputs.</param>
    /// <exception cref="T:System.ArgumentException">level is not 0 or in (0, 1), or x is not n×d and finite.</exception>
    [<CompiledName("Predict")>]
    let predict (model: MoeModel) (level: float) (x: float[,]) : Predictions = predictQuantiles model level [||] x

    /// <summary>Predictions for rows that may hold NaN for a missing value (<c>DataFiles.covariatesFor</c> with
    /// <c>MissingValues.Drop</c>): such a row's every output is NaN, so no row shifts; the others are <c>predict</c>'s,
    /// bit for bit.</summary>
    /// <param name="model">The model.</param>
    /// <param name="level">The interval's probability in (0, 1), or 0 for none.</param>
    /// <param name="x">n×d inputs, NaN where a value is missing (any other non-finite value is refused).</param>
    /// <param name="probabilities">The quantiles' probabilities, each in (0, 1) (empty for none).</param>
    [<CompiledName("PredictQuantilesWithMissing")>]
    let predictQuantilesWithMissing
        (model: MoeModel)
        (level: float)
        (probabilities: float[])
        (x: float[,])
        : Predictions =
        Guard.notNull "x" x
        let n, m = x.GetLength 0, x.GetLength 1

        let complete =
            Array.init n (fun r -> Seq.forall (fun t -> not (Double.IsNaN x.[r, t])) (seq { 0 .. m - 1 }))

        if Array.forall id complete then
            predictQuantiles model level probabilities x
        else
            let rows = Array.init n id |> Array.filter (fun r -> complete.[r])
            let k = model.Experts
            let mean = Array.create n nan
            let means = Array2D.create n k nan
            let gate = Array2D.create n k nan
            let withInterval = level <> 0.0
            let lower = if withInterval then Array.create n nan else [||]
            let upper = if withInterval then Array.create n nan else [||]
            let quantiles = Array2D.create n probabilities.Length nan

            let trials =
                if model.Family = ExpertFamily.Binomial then
                    Array.create n nan
                else
                    [||]

            if rows.Length > 0 then
                let p =
                    predictQuantiles model level probabilities (Array2D.init rows.Length m (fun r t -> x.[rows.[r], t]))

                rows
                |> Array.iteri (fun j r ->
                    mean.[r] <- p.Mean.[j]

                    for i in 0 .. k - 1 do
                        means.[r, i] <- p.ExpertMeans.[j, i]
                        gate.[r, i] <- p.Gate.[j, i]

                    for q in 0 .. probabilities.Length - 1 do
                        quantiles.[r, q] <- p.Quantiles.[j, q]

                    if trials.Length > 0 then
                        trials.[r] <- p.Trials.[j]

                    if withInterval then
                        lower.[r] <- p.Lower.[j]
                        upper.[r] <- p.Upper.[j])
            else
                checkLevel level
                checkProbabilities probabilities

            {
                Mean = mean
                ExpertMeans = means
                Gate = gate
                Lower = lower
                Upper = upper
                Level = level
                Quantiles = quantiles
                Probabilities = Array.copy probabilities
                Trials = trials
            }

    /// <summary>Predictions for rows that may hold NaN for a missing value, without quantiles beyond the interval's
    /// (<c>predictQuantilesWithMissing</c> with none).</summary>
    /// <param name="model">The model.</param>
    /// <param name="level">The interval's probability in (0, 1), or 0 for none.</param>
    /// <param name="x">n×d inputs, NaN where a value is missing.</param>
    [<CompiledName("PredictWithMissing")>]
    let predictWithMissing (model: MoeModel) (level: float) (x: float[,]) : Predictions =
        predictQuantilesWithMissing model level [||] x

    /// <summary>Fits every k of <paramref name="experts"/> with the configuration (k = 1: a single regression) and
    /// reports the log-likelihood, the parameter count, AIC, BIC and ICL of each. Choose by BIC (consistent for the
    /// number of components of a mixture of regressions under regularity; AIC over-fits as n grows), or by ICL when
    /// well-separated experts are wanted.</summary>
    /// <param name="config">The fit's configuration (its Experts is replaced by each k).</param>
    /// <param name="experts">The values of k (each ≥ 1).</param>
    /// <param name="data">The data.</param>
    /// <param name="context">Progress and cancellation.</param>
    [<CompiledName("SelectExperts")>]
    let selectExperts (config: FitConfig) (experts: int[]) (data: Dataset) (context: RunContext) : KChoice[] =
        Guard.notNull "experts" experts

        if experts.Length = 0 then
            invalidArg "experts" "At least one number of experts is needed."

        for k in experts do
            if k < 1 then
                invalidArg "experts" (Text.format "Every number of experts must be >= 1, but one is %d." [| box k |])

        // n of the criteria: Σw for weighted rows (docs/math.md §13), the rows' count otherwise.
        let n = data.Weight
        let d = data.Dimension


        [|
            for k in Array.distinct experts |> Array.sort do
                context.Cancellation.ThrowIfCancellationRequested()

                if k = 1 then
                    // One expert and no gate: the regression on the experts' columns.
                    let design = FitConfig.designFor config d

                    let x =
                        if design.IsShared then
                            data.X
                        else
                            Array2D.init data.Count design.ExpertColumns.Length (fun r t ->
                                data.X.[r, design.ExpertColumns.[t]])

                    let a, b, s, nu, ll =
                        SingleRegression.fit
                            config.Family
                            config.Activation
                            config.Intercepts
                            x
                            data.Y
                            data.Weights
                            (if design.HasOffset && config.Family = ExpertFamily.Binomial then
                                 Array.init data.Count (fun r -> data.X.[r, design.OffsetColumn])
                             elif design.HasOffset then
                                 Array.init data.Count (fun r -> Design.offsetAt design data.X r)
                             else
                                 null)
                            config.DegreesOfFreedom
                            context

                    let p =
                        int (
                            FitConfig.parameterCount
                                { config with
                                    Experts = 1
                                    CommonSigma = true
                                }
                                d
                        )

                    let bic = -2.0 * ll + float p * Math.Log n

                    {
                        Experts = 1
                        LogLikelihood = ll
                        Parameters = p
                        Aic = -2.0 * ll + 2.0 * float p
                        Bic = bic
                        Icl = bic
                        Model = None
                        Single = Some(a, b, s, nu)
                        Warnings = [||]
                    }
                else
                    let fit = Learner.fit { config with Experts = k } data context
                    let m = fit.Model

                    let ll =
                        if data.IsWeighted then
                            LikelihoodKernel.logLikelihoodOf m (DataSource.ofDataset data)
                        else
                            MoeModel.logLikelihood m data.X data.Y

                    let p = int (FitConfig.parameterCount { config with Experts = k } d)
                    let post = MoeModel.responsibilities m data.X data.Y

                    let classification =
                        Seq.sum (
                            seq {
                                for r in 0 .. data.Count - 1 ->
                                    data.WeightOf r
                                    * Math.Log(max (Seq.max (seq { for i in 0 .. k - 1 -> post.[r, i] })) 1e-300)
                            }
                        )

                    let bic = -2.0 * ll + float p * Math.Log n

                    {
                        Experts = k
                        LogLikelihood = ll
                        Parameters = p
                        Aic = -2.0 * ll + 2.0 * float p
                        Bic = bic
                        Icl = bic - 2.0 * classification
                        Model = Some m
                        Single = None
                        Warnings = fit.Warnings
                    }
        |]

    /// <summary>Whether a choice's likelihood is degenerate (the fit kept the guarded model because an expert would
    /// collapse onto a few points or repeated responses without it): its criteria are not comparable.</summary>
    /// <param name="choice">One k's fit.</param>
    [<CompiledName("IsDegenerate")>]
    let isDegenerate (choice: KChoice) : bool =
        choice.Warnings
        |> Array.exists (fun w -> w.Code = FindingCode.LikelihoodDegenerate)

    /// <summary>The k with the lowest BIC and the k with the lowest ICL among the choices that are not degenerate
    /// (among all when every one is).</summary>
    /// <param name="choices">The fits of <c>selectExperts</c>.</param>
    [<CompiledName("Choose")>]
    let choose (choices: KChoice[]) : int * int =
        if choices.Length = 0 then
            invalidArg "choices" "There is no fit to choose from."

        let regular = choices |> Array.filter (isDegenerate >> not)
        let pool = if regular.Length > 0 then regular else choices
        (pool |> Array.minBy _.Bic).Experts, (pool |> Array.minBy _.Icl).Experts
