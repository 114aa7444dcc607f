namespace MoE.Core

open System

/// <summary>What EM fits and how (docs/math.md §7).</summary>
type EmSettings =
    {
        /// Whether the noise levels are updated (false: the model's levels stay).
        EstimateSigma: bool
        /// One σ for every expert (the paper's model) or one per expert.
        CommonSigma: bool
        /// Whether Student-t experts' degrees of freedom are updated (the ECM step of docs/math.md §14.2; false: the
        /// model's ν_i stay).
        EstimateDegreesOfFreedom: bool
        /// Whether the intercepts b_i and c_i are fitted (false: they stay as in the start).
        FitIntercepts: bool
        /// Whether the regressors (and their intercepts) stay fixed: EM on the gate and σ only.
        FixRegressors: bool
        /// A floor under every σ_i (0 for none).
        SigmaFloor: float
        /// The guard against degenerate likelihoods (docs/math.md §7.4): an inverse-gamma prior on each σ_i² with
        /// ν pseudo-observations of variance s₀² — (ν, s₀²) — or None. EM then maximises the posterior, and
        /// σ_i² = (SSE_i + ν s₀²)/(N_i + ν + 2) can never reach 0.
        SigmaPrior: (float * float) option
        /// The guard against separation (docs/math.md §12.3): a N(0, 1/λ) prior on every coefficient of every expert
        /// and of the gate (intercepts too, in working units) — λ — or None; for the families without levels. EM and L-BFGS then maximise the posterior, whose mode is
        /// finite where an expert's rows are perfectly predicted and the likelihood alone climbs forever.
        CoefficientPrior: float option
        /// SQUAREM acceleration (Varadhan and Roland 2008) with a fallback that keeps every accepted step monotone.
        Accelerate: bool
        /// The gate takes a Newton step (its per-sample Hessian costs ((k−1)p)²/2 per row) when (k−1)·p is at most
        /// this, and Böhning's fixed-bound step beyond (docs/math.md §7.2).
        GateNewtonLimit: int
        /// EM hands over to a quasi-Newton method once an accepted step gains less than this (per row, as Tolerance)
        /// and its linear rate predicts that converging would cost more than L-BFGS (docs/math.md §7.5). 0: EM runs
        /// to Tolerance.
        Handover: float
        /// The budget of EM maps (M-steps).
        MaxIterations: int
        /// Convergence: the log-likelihood gain of an accepted step per row (relative to |LL| when that is larger)
        /// below this.
        Tolerance: float
    }

/// Settings of EM.
[<RequireQualifiedAccess>]
module EmSettings =

    /// <summary>The paper's model: a common σ (estimated or not), no intercepts, no acceleration.</summary>
    /// <param name="estimateSigma">Whether σ is updated.</param>
    /// <param name="maxIterations">The iteration budget.</param>
    /// <param name="tolerance">The relative log-likelihood gain that counts as converged.</param>
    [<CompiledName("Paper")>]
    let paper (estimateSigma: bool) (maxIterations: int) (tolerance: float) : EmSettings =
        {
            EstimateSigma = estimateSigma
            CommonSigma = true
            EstimateDegreesOfFreedom = false
            FitIntercepts = false
            FixRegressors = false
            SigmaFloor = 0.0
            SigmaPrior = None
            CoefficientPrior = None
            Accelerate = false
            GateNewtonLimit = 64
            Handover = 0.0
            MaxIterations = maxIterations
            Tolerance = tolerance
        }
