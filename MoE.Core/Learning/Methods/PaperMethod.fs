namespace MoE.Core

open System

/// <summary>
/// The paper's estimator (<c>FitMethod.L4</c>; Makkuva et al. and docs/learners.md): L4 for the regressors'
/// directions, their signs, L_log for the gating, the scales, then — when configured — the polish to maximum
/// likelihood. σ, when not given, comes from a provisional run of the stages (docs/learners.md).
/// </summary>
module internal PaperMethod =

    /// Stage 1 on data in memory: the L4 estimate A at σ.
    let private l4InMemory (config: FitConfig) (x: float[,]) (y: float[]) (context: RunContext) (sigma: float) =
        let k = config.Experts

        match config.L4Solver with
        | L4Solver.Subspace s ->
            let moments = SubspaceL4.moments (FitConfig.outputTransform config sigma) k x y
            SubspaceL4.solve moments s.Weights k s.Restarts config.Seed context
        | L4Solver.Sgd s -> PaperSgd.l4 (Coefficients.solve config.Activation sigma) s k config.Seed x y context ignore

    /// The paper's stages at a given σ with stage 1 given: L4, directions, signs, gating, scales, gating again.
    let private stagesFrom
        (l4: float -> StageOutcome<float[,]>)
        (config: FitConfig)
        (sigma: float)
        (x: float[,])
        (y: float[])
        (context: RunContext)
        (log: StageLog)
        : StageOutcome<MoeModel> =
        let g = config.Activation
        let a = log.Run(Stage.L4, (fun () -> l4 sigma)).Value
        let directions = log.Direct(Stage.Directions, (fun () -> Directions.ofL4Solution a))

        for v in Seq.cast<float> directions do
            if not (Double.IsFinite v) then
                raise (NonFiniteException(Stage.L4, 0, v))

        // Up to k = 3 the 2^k patterns are enumerated (8 short gating fits); beyond, the vote is linear in k.
        let signed =
            if config.Experts <= 3 then
                log
                    .Run(
                        Stage.Signs,
                        fun () -> Signs.resolve directions g sigma x y config.SignSubsample config.Seed context
                    )
                    .Value
            else
                let voted =
                    log
                        .Run(
                            Stage.Signs,
                            fun () -> Signs.vote directions g sigma x y config.SignSubsample config.Seed context
                        )
                        .Value

                MoeModel.create voted (Array2D.zeroCreate (config.Experts - 1) (x.GetLength 1)) g sigma

        let fitGating (m: MoeModel) =
            match config.Gating with
            | GatingMethod.QuasiNewton -> Gating.fit m x y config.GatingIterations context true
            | GatingMethod.ProjectedGradient(radius, rate, iterations, splitting) ->
                Gating.fitProjected m x y radius rate iterations splitting context

        let gated = log.Run(Stage.Gating, (fun () -> fitGating signed)).Value
        let scaled = log.Direct(Stage.Scales, (fun () -> Scales.fit gated x y))
        log.Run(Stage.Gating, (fun () -> fitGating scaled))

    /// The paper's stages at a given σ on data in memory.
    let private stages config sigma (x: float[,]) (y: float[]) context log =
        stagesFrom (l4InMemory config x y context) config sigma x y context log

    /// σ from the configuration, or the provisional σ₁ of a first run of the paper's stages (docs/learners.md).
    let private sigmaFor config (x: float[,]) (y: float[]) (sigma0: float) context log =
        match config.Sigma with
        | Some s -> s
        | None ->
            Sigma.provisional (fun sigma xs ys -> (stages config sigma xs ys context log).Value) config.Seed sigma0 x y

    /// The failure of the L4 stage with its true cause: the data's departures from the estimator's assumptions when
    /// there are any, too few samples otherwise.
    let private explain (findings: Finding[]) (e: NonFiniteException) : exn =
        let assumptions =
            findings
            |> Array.filter (fun f -> f.Code = FindingCode.NotStandardised || f.Code = FindingCode.NotGaussian)
            |> Array.map (fun f -> f.Message.TrimEnd('.'))

        let detail =
            if assumptions.Length > 0 then
                Text.format
                    "The data break the estimator's assumptions: %s. Or fit with the EM method (--method em)."
                    [| box (String.Join("; ", assumptions)) |]
            else
                "This happens when n is too small for d and k. Increase n, or fit with the EM method (--method em)."

        let cause =
            if String.IsNullOrEmpty e.Detail then
                "A loss or gradient became non-finite."
            else
                e.Detail

        NonFiniteException(e.Stage, e.Iteration, e.Value, cause + " " + detail) :> exn

    /// <summary>The paper's estimator on a prepared problem: its stages on the rows in memory (or, read in passes, the
    /// subspace solver's moments from every row and the other stages on a sample), then the polish.</summary>
    let run (problem: Problem) : MethodResult =
        let config, log, context = problem.Config, problem.Log, problem.Context
        let rows = problem.Sample()
        let x, y = rows.X, rows.Y

        let outcome =
            try
                let sigma = sigmaFor config x y (Sigma.initial y) context log

                let staged =
                    match config.L4Solver with
                    | L4Solver.Subspace subspace when not problem.InMemory ->
                        // The L4 moments of every row: two passes.
                        let fromAllRows (sigma: float) =
                            SubspaceL4.solve
                                (SubspaceL4.momentsOf
                                    (FitConfig.outputTransform config sigma)
                                    config.Experts
                                    problem.Working)
                                subspace.Weights
                                config.Experts
                                subspace.Restarts
                                config.Seed
                                context

                        stagesFrom fromAllRows config sigma x y context log
                    | _ -> stages config sigma x y context log

                if config.Polish then
                    Chain.maximumLikelihood
                        (Chain.settings config problem.WorkingSd)
                        staged.Value
                        problem.Working
                        context
                        log
                else
                    staged
            with :? NonFiniteException as e when e.Stage = Stage.L4 ->
                raise (explain problem.Findings e)

        {
            Outcome = outcome
            Candidates = [||]
            Initializer = "l4"
        }
