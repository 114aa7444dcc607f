using Core = MoE.Core;

namespace MoE.Api;

/// <summary>Which estimator <see cref="MoeLearner.Fit"/> runs.</summary>
public enum FitMethod
{
    /// <summary>Several initializers (spectral, L4, whitened L4, subspace and random starts), each screened by a short
    /// EM, the best by held-out likelihood taken to the maximum likelihood: the default.</summary>
    Auto,
    /// <summary>The paper's estimator: L4 for the regressors, L_log for the gating, then the EM polish.</summary>
    L4,
    /// <summary>The spectral method of Makkuva et al. (ICML 2019): third-order moments for the regressors, then EM on
    /// the gate and the noise with the regressors fixed.</summary>
    Spectral,
    /// <summary>Baseline: mini-batch SGD on the mean-square loss ℓ2 from a random start (the paper's model only).</summary>
    L2,
    /// <summary>Baseline: EM on the likelihood from random starts (the best by held-out likelihood when there are
    /// several; <see cref="FitOptions.RandomStarts"/>).</summary>
    Em,
}

/// <summary>How the L4 stage is minimised.</summary>
public enum L4Solver
{
    /// <summary>Moment subspace + L-BFGS with restarts (fast; the default).</summary>
    Subspace,
    /// <summary>The paper's mini-batch SGD on the full-dimensional L4.</summary>
    Sgd,
}

/// <summary>Which output transforms the L4 stage uses.</summary>
public enum OutputTransformKind
{
    /// <summary>Variance-reduced bounded transforms (the default).</summary>
    Bounded,
    /// <summary>The paper's polynomial Q4 and Q2.</summary>
    Polynomial,
}

/// <summary>Options of <see cref="MoeLearner.Fit"/>. Every property has a sensible default except
/// <see cref="Experts"/>: the model a regression user expects (intercepts, a noise level per expert, standardised
/// covariates for the moment initializers) fitted by <see cref="FitMethod.Auto"/>. <see cref="Paper"/> gives the
/// paper's model and estimator instead.</summary>
public sealed class FitOptions
{
    /// <summary>Options with every default of the core's <c>FitConfig.defaults</c> (the one place the defaults are
    /// written) and no <see cref="Experts"/> yet.</summary>
    public FitOptions()
    {
        CopyFrom(Core.FitConfigModule.Defaults(2, Core.Activation.Identity));
        Experts = 0;
    }

    private FitOptions(Core.FitConfig config) => CopyFrom(config);

    /// <summary>The number of experts k ≥ 2 (required).</summary>
    public int Experts { get; set; }

    /// <summary>The expert non-linearity g (default identity).</summary>
    public Activation Activation { get; set; } = Activation.Identity;

    /// <summary>The experts' family (default <see cref="ExpertFamily.Gaussian"/>; Poisson for counts, Bernoulli for 0/1
    /// outcomes, both with the identity activation).</summary>
    public ExpertFamily Family { get; set; }

    /// <summary>The noise level σ if known (every expert's); null (the default) to estimate it.</summary>
    public double? Sigma { get; set; }

    /// <summary>Student-t experts' degrees of freedom ν if known (every expert's, &gt; 0); null (the default) to estimate
    /// one per expert. Only for <see cref="ExpertFamily.StudentT"/>.</summary>
    public double? DegreesOfFreedom { get; set; }

    /// <summary>The estimator (default <see cref="FitMethod.Auto"/>).</summary>
    public FitMethod Method { get; set; }

    /// <summary>Whether the experts and the gate have intercepts b_i and c_i (default true).</summary>
    public bool Intercepts { get; set; }

    /// <summary>One noise level for every expert (the paper's model) instead of one per expert (default false).</summary>
    public bool CommonSigma { get; set; }

    /// <summary>Whether the data are standardised for the moment initializers (default true); the model is reported
    /// in the data's units either way.</summary>
    public bool Standardise { get; set; }

    /// <summary>Random whole-space starts <see cref="FitMethod.Auto"/> also screens, and the starts of
    /// <see cref="FitMethod.Em"/> (default 1).</summary>
    public int RandomStarts { get; set; }

    /// <summary>Random frames of the moment subspace <see cref="FitMethod.Auto"/> also screens (default 2).</summary>
    public int SubspaceStarts { get; set; }

    /// <summary>The L4 solver (default <see cref="L4Solver.Subspace"/>).</summary>
    public L4Solver Solver { get; set; }

    /// <summary>The L4 output transforms (default <see cref="OutputTransformKind.Bounded"/>).</summary>
    public OutputTransformKind Transform { get; set; }

    /// <summary>Whether the EM polish runs after the paper's stages (default true).</summary>
    public bool Polish { get; set; }

    /// <summary>The seed of every random choice (default 1).</summary>
    public long Seed { get; set; }

    /// <summary>The EM iteration budget (default 200).</summary>
    public int EmIterations { get; set; }

    /// <summary>EM stops when the relative log-likelihood gain of a step falls below this (default 1e-9; the paper's
    /// configuration uses 1e-11).</summary>
    public double EmTolerance { get; set; }

    /// <summary>EM hands over to L-BFGS on the likelihood once its relative gain per step is below this and shrinking
    /// slowly (default 1e-3; 0: EM to the end, as in the paper's configuration).</summary>
    public double EmHandover { get; set; }

    /// <summary>Standard errors of every parameter in <see cref="FitResult.StandardErrors"/>: None (default),
    /// Observed or Sandwich (docs/inference.md). In-memory fits only.</summary>
    public StandardErrorKind StandardErrors { get; set; } = StandardErrorKind.None;

    /// <summary>The paper's model and estimator (the core's <c>FitConfig.paper</c>): no intercepts, one σ, the data as
    /// given, L4, EM to 1e-11.</summary>
    /// <param name="experts">k ≥ 2.</param>
    /// <param name="activation">g (default identity).</param>
    public static FitOptions Paper(int experts, Activation? activation = null) =>
        new(Core.FitConfigModule.Paper(experts, (activation ?? Activation.Identity).Inner));

    /// <summary>These options with the paper's model (the core's <c>FitConfig.withPaperModel</c>): no intercepts, one
    /// σ, the data as given; with <see cref="FitMethod.L4"/> also the paper's EM settings. The other options stay.</summary>
    public FitOptions WithPaperModel()
    {
        var paper = new FitOptions(Core.FitConfigModule.WithPaperModel(ToCore(Math.Max(Experts, 2))))
        {
            Experts = Experts,
            StandardErrors = StandardErrors,
        };
        return paper;
    }

    /// <summary>The options that refit a model of this kind (its k, activation, family and intercepts; the core's
    /// <c>FitConfig.forModel</c>): what <see cref="MoeLearner.Select"/> needs to compare the model's k with others on
    /// its data.</summary>
    /// <param name="model">The model.</param>
    /// <param name="commonSigma">Whether its fit had one noise level for every expert (a model file does not say).</param>
    public static FitOptions ForModel(MixtureOfExperts model, bool commonSigma = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new FitOptions(Core.FitConfigModule.ForModel(model.Inner, commonSigma));
    }

    /// <summary>Every option the core configuration has, from it: the one map from the core's fields to these
    /// properties (<see cref="ToCore(int)"/> is the other way).</summary>
    private void CopyFrom(Core.FitConfig c)
    {
        Experts = c.Experts;
        Activation = new Activation(c.Activation);
        Family = ExpertFamilies.From(c.Family);
        Sigma = c.Sigma is { } s ? s.Value : null;
        DegreesOfFreedom = c.DegreesOfFreedom is { } nu ? nu.Value : null;
        Method = c.Method.IsAuto ? FitMethod.Auto
            : c.Method.IsL4 ? FitMethod.L4
            : c.Method.IsSpectral ? FitMethod.Spectral
            : c.Method.IsL2 ? FitMethod.L2
            : FitMethod.Em;
        Intercepts = c.Intercepts;
        CommonSigma = c.CommonSigma;
        Standardise = c.Standardise;
        RandomStarts = c.RandomStarts;
        SubspaceStarts = c.SubspaceStarts;
        Solver = c.L4Solver.IsSubspaceSolver ? L4Solver.Subspace : L4Solver.Sgd;
        Transform = c.Transform.IsBounded ? OutputTransformKind.Bounded : OutputTransformKind.Polynomial;
        Polish = c.Polish;
        Seed = c.Seed;
        EmIterations = c.EmIterations;
        EmTolerance = c.EmTolerance;
        EmHandover = c.EmHandover;
    }

    /// <summary>A copy (every property is a value or immutable, so a shallow copy is a snapshot).</summary>
    internal FitOptions Clone() => (FitOptions)MemberwiseClone();

    internal Core.FitConfig ToCore() => ToCore(Experts);

    internal Core.FitConfig ToCore(int experts)
    {
        ArgumentNullException.ThrowIfNull(Activation, nameof(Activation));
        if (!Enum.IsDefined(StandardErrors))
        {
            throw Undefined(nameof(StandardErrors), StandardErrors);
        }

        var config = Core.FitConfigModule.Defaults(experts, Activation.Inner)
            .WithMethod(Method switch
            {
                FitMethod.Auto => Core.FitMethod.Auto,
                FitMethod.L4 => Core.FitMethod.L4,
                FitMethod.Spectral => Core.FitMethod.Spectral,
                FitMethod.L2 => Core.FitMethod.L2,
                FitMethod.Em => Core.FitMethod.Em,
                _ => throw Undefined(nameof(Method), Method),
            })
            .WithL4Solver(Solver switch
            {
                L4Solver.Subspace => Core.L4Solver.DefaultSubspace,
                L4Solver.Sgd => Core.L4Solver.DefaultSgd,
                _ => throw Undefined(nameof(Solver), Solver),
            })
            .WithTransform(Transform switch
            {
                OutputTransformKind.Bounded => Core.TransformKind.Bounded,
                OutputTransformKind.Polynomial => Core.TransformKind.Polynomial,
                _ => throw Undefined(nameof(Transform), Transform),
            })
            .WithFamily(Family switch
            {
                ExpertFamily.Gaussian or ExpertFamily.Poisson or ExpertFamily.Bernoulli or ExpertFamily.StudentT
                    or ExpertFamily.Binomial => ExpertFamilies.ToCore(Family),
                _ => throw Undefined(nameof(Family), Family),
            })
            .WithIntercepts(Intercepts)
            .WithCommonSigma(CommonSigma)
            .WithStandardise(Standardise)
            .WithRandomStarts(RandomStarts)
            .WithSubspaceStarts(SubspaceStarts)
            .WithPolish(Polish)
            .WithSeed(Seed)
            .WithEmIterations(EmIterations)
            .WithEmTolerance(EmTolerance)
            .WithEmHandover(EmHandover);
        if (DegreesOfFreedom is { } nu) config = config.WithDegreesOfFreedom(nu);
        return Sigma is { } s ? config.WithSigma(s) : config;
    }

    private static ArgumentOutOfRangeException Undefined<T>(string name, T value) where T : struct, Enum =>
        new(name, value, $"{name} = {value} is not a defined {typeof(T).Name} value; expected one of {string.Join(", ", Enum.GetNames<T>())}.");
}
