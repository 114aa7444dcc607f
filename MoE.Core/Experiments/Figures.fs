namespace MoE.Core

open System.Diagnostics

/// <summary>Every setting of the reproduced figures, including those the paper leaves unstated
/// (docs/figures/report.md says why each was chosen).</summary>
type FigureDesign =
    {
        /// Runs per figure (the paper draws 5).
        Runs: int
        /// Samples per run (fresh data per run).
        Samples: int
        /// The noise level σ of the truth.
        Sigma: float
        /// SGD on L4 (Figs 2a, 3a): the recipe of docs/math.md §6.2.
        L4Sgd: SgdL4Settings
        /// SGD on ℓ2 (Figs 2a, 3a).
        L2Sgd: SgdSettings
        /// SGD on L_log with A fixed (Figs 2b, 3b).
        GatingSgd: SgdSettings
        /// SGD on L4 with batch 128 and learning rate 0.001 (Fig. 4).
        Fig4Sgd: SgdL4Settings
        /// Rows of the sign search's subsample when Â from L4 is made ready for L_log.
        SignSubsample: int
    }

/// The figures' design.
[<RequireQualifiedAccess>]
module FigureDesign =

    /// <summary>The design of <c>moe reproduce</c>: 5 runs of n = 50,000 (3 when quick), σ = 0.05, the SGD
    /// recipes of docs/math.md §6.2.</summary>
    /// <param name="quick">Fewer runs.</param>
    [<CompiledName("Standard")>]
    let standard (quick: bool) : FigureDesign =
        let sgd epochs batch rate final =
            {
                Epochs = epochs
                BatchSize = batch
                LearningRate = rate
                FinalLearningRate = final
                Clip = 5.0
            }

        let weights = L4Weights.create 0.1 10.0 4.0 true

        {
            Runs = (if quick then 3 else 5)
            Samples = 50_000
            Sigma = 0.05
            L4Sgd =
                {
                    Weights = weights
                    Schedule = sgd 60 1024 0.003 0.0003
                }
            L2Sgd = sgd 60 1024 0.05 0.005
            GatingSgd = sgd 30 1024 1.0 0.1
            Fig4Sgd =
                {
                    Weights = weights
                    Schedule = sgd 60 128 0.001 0.001
                }
            SignSubsample = 20_000
        }

/// <summary>One curve of a figure: an error per epoch of one run.</summary>
type Curve =
    {
        /// The panel: "a" (regressor error) or "b" (gating error).
        Panel: string
        /// The series: "L4", "l2", or the fixed A of a gating run ("A = A*", "A = Â from L4", "A = Â from ℓ2").
        Series: string
        /// The run, 0-based.
        Run: int
        /// The error after each epoch (index 0: the start).
        Values: float[]
    }

/// <summary>The wall time of one step of an experiment.</summary>
type StepTiming =
    {
        /// What ran (e.g. "fig2: SGD on L4 (one run)").
        Step: string
        /// Seconds.
        Seconds: float
    }

/// <summary>A reproduced figure: its curves and the time of each step.</summary>
type FigureResult =
    {
        /// fig2, fig3 or fig4.
        Name: string
        /// The setting in words (e.g. "w₁ = e₃").
        Setting: string
        /// Every run's curves.
        Curves: Curve[]
        /// Every timed step.
        Timings: StepTiming[]
    }

/// <summary>The paper's Figs 2, 3 and 4, as data (docs/figures/report.md). Each run draws a fresh truth and sample
/// from the seed; progress receives one message per run.</summary>
[<RequireQualifiedAccess>]
module Figures =

    /// The activation of every figure: the paper's identity experts.
    let private g = Identity

    let private regressorError (a: float[,]) (truth: MoeModel) =
        (Metrics.compare (MoeModel.create a truth.Gating truth.Activation truth.Sigma) truth).RegressorError

    let private gatingError (a: float[,]) (w: float[,]) (truth: MoeModel) =
        (Metrics.compare (MoeModel.create a w truth.Activation truth.Sigma) truth).GatingError

    let private timed (timings: ResizeArray<StepTiming>) (step: string) (f: unit -> 'T) : 'T =
        let clock = Stopwatch.StartNew()
        let result = f ()

        timings.Add
            {
                Step = step
                Seconds = clock.Elapsed.TotalSeconds
            }

        result

    /// Â from an L4 iterate made ready for L_log: dual-basis directions, signs by likelihood.
    let private resolve (design: FigureDesign) (a: float[,]) (data: Dataset) (seed: int64) =
        let directions = Directions.ofL4Solution a
        (Signs.resolve directions g design.Sigma data.X data.Y design.SignSubsample seed RunContext.silent).Value

    /// <summary>Figs 2 and 3: ℓ2 vs L4 by SGD (panel a), then L_log by SGD with A fixed at A*, Â from L4 and Â from
    /// ℓ2 (panel b); d = 10, k = 2, identity experts.</summary>
    /// <param name="design">The design.</param>
    /// <param name="seed">The seed: run r uses truth seed + r and data seed·1000 + r.</param>
    /// <param name="randomGating">Fig. 3 (w₁ uniform on the unit sphere) instead of Fig. 2 (w₁ = e₃).</param>
    /// <param name="progress">One message per run.</param>
    /// <returns>The curves and timings.</returns>
    [<CompiledName("RegressorsAndGating")>]
    let regressorsAndGating
        (design: FigureDesign)
        (seed: int64)
        (randomGating: bool)
        (progress: string -> unit)
        : FigureResult =
        let name = if randomGating then "fig3" else "fig2"
        let curves = ResizeArray<Curve>()
        let timings = ResizeArray<StepTiming>()
        let context = RunContext.silent

        for run in 0 .. design.Runs - 1 do
            progress (Text.format "%s run %d/%d" [| box name; box (run + 1); box design.Runs |])
            let runSeed = seed + int64 run

            let truth =
                if randomGating then
                    GroundTruth.randomGating 2 10 g design.Sigma 1.0 runSeed
                else
                    GroundTruth.orthogonal 2 10 g design.Sigma

            let data = Sampler.sample truth design.Samples (seed * 1000L + int64 run)

            let l4 =
                timed timings (name + ": SGD on L4 (one run)") (fun () ->
                    Trajectories.sgdL4Path
                        (Coefficients.solve g design.Sigma)
                        design.L4Sgd
                        2
                        runSeed
                        data.X
                        data.Y
                        context)

            let l2 =
                timed timings (name + ": SGD on ℓ2 (one run)") (fun () ->
                    Trajectories.sgdL2Path design.L2Sgd 2 g runSeed data.X data.Y context)

            let fromL4 = resolve design (Array.last l4) data runSeed

            let add panel series values =
                curves.Add
                    {
                        Panel = panel
                        Series = series
                        Run = run
                        Values = values
                    }

            add "a" "L4" (l4 |> Array.map (fun a -> regressorError a truth))
            add "a" "l2" (l2 |> Array.map (fun m -> (Metrics.compare m truth).RegressorError))

            for label, a in
                [
                    "A = A*", truth.Regressors
                    "A = Â from L4", fromL4.Regressors
                    "A = Â from ℓ2", (Array.last l2).Regressors
                ] do
                let model = MoeModel.create a (Array2D.zeroCreate 1 10) g design.Sigma

                let path =
                    timed timings (Text.format "%s: SGD on L_log, %s (one run)" [| box name; box label |]) (fun () ->
                        Trajectories.sgdGatingPath design.GatingSgd model runSeed data.X data.Y context)

                add "b" label (path |> Array.map (fun w -> gatingError a w truth))

        {
            Name = name
            Setting =
                (if randomGating then
                     "w₁ uniform on the unit sphere"
                 else
                     "w₁ = e₃")
            Curves = curves.ToArray()
            Timings = timings.ToArray()
        }

    /// <summary>Fig. 4: SGD on L4 with batch 128 and learning rate 0.001, d = 5, k = 2, orthogonal gating.</summary>
    /// <param name="design">The design.</param>
    /// <param name="seed">The seed: run r uses data seed·1000 + 500 + r and SGD seed + r.</param>
    /// <param name="progress">One message per run.</param>
    /// <returns>The curves and timings.</returns>
    [<CompiledName("Fig4")>]
    let fig4 (design: FigureDesign) (seed: int64) (progress: string -> unit) : FigureResult =
        let curves = ResizeArray<Curve>()
        let timings = ResizeArray<StepTiming>()

        for run in 0 .. design.Runs - 1 do
            progress (Text.format "fig4 run %d/%d" [| box (run + 1); box design.Runs |])
            let truth = GroundTruth.orthogonal 2 5 g design.Sigma
            let data = Sampler.sample truth design.Samples (seed * 1000L + 500L + int64 run)

            let path =
                timed timings "fig4: SGD on L4, batch 128 (one run)" (fun () ->
                    Trajectories.sgdL4Path
                        (Coefficients.solve g design.Sigma)
                        design.Fig4Sgd
                        2
                        (seed + int64 run)
                        data.X
                        data.Y
                        RunContext.silent)

            curves.Add
                {
                    Panel = "a"
                    Series = "L4"
                    Run = run
                    Values = path |> Array.map (fun a -> regressorError a truth)
                }

        {
            Name = "fig4"
            Setting = "d = 5, k = 2, batch 128, learning rate 0.001"
            Curves = curves.ToArray()
            Timings = timings.ToArray()
        }
