using Microsoft.ML;
using Microsoft.ML.Data;
using MoE.Api;

namespace MoE.ML;

/// <summary>The mixture-of-experts trainers in ML.NET's regression and binary-classification catalogues.</summary>
public static class MixtureOfExpertsCatalog
{
    /// <summary>A trainer that fits a mixture of <paramref name="experts"/> identity experts with
    /// <see cref="FitOptions"/>' defaults (intercepts, a noise level per expert, several initializers screened, then
    /// maximum likelihood).</summary>
    /// <param name="catalog">The regression trainers.</param>
    /// <param name="labelColumnName">The label column, a <see cref="float"/> scalar.</param>
    /// <param name="featureColumnName">The feature column, a known-size vector of <see cref="float"/>.</param>
    /// <param name="experts">The number of experts k ≥ 2.</param>
    /// <returns>The trainer.</returns>
    public static MixtureOfExpertsTrainer MixtureOfExperts(this RegressionCatalog.RegressionTrainers catalog,
        string labelColumnName = "Label", string featureColumnName = "Features", int experts = 2)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new MixtureOfExpertsTrainer(new MixtureOfExpertsTrainer.Options
        {
            LabelColumnName = labelColumnName,
            FeatureColumnName = featureColumnName,
            Fit = new FitOptions { Experts = experts },
        });
    }

    /// <summary>A trainer with every option: the columns, the outputs and the fit's <see cref="FitOptions"/>.</summary>
    /// <param name="catalog">The regression trainers.</param>
    /// <param name="options">The options.</param>
    /// <returns>The trainer.</returns>
    public static MixtureOfExpertsTrainer MixtureOfExperts(this RegressionCatalog.RegressionTrainers catalog,
        MixtureOfExpertsTrainer.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new MixtureOfExpertsTrainer(options);
    }

    /// <summary>A binary classifier: a mixture of <paramref name="experts"/> logistic (Bernoulli) experts with
    /// <see cref="FitOptions"/>' defaults, writing ML.NET's <c>Score</c>, <c>Probability</c> and
    /// <c>PredictedLabel</c>.</summary>
    /// <param name="catalog">The binary-classification trainers.</param>
    /// <param name="labelColumnName">The label column, a <see cref="bool"/> scalar.</param>
    /// <param name="featureColumnName">The feature column, a known-size vector of <see cref="float"/>.</param>
    /// <param name="experts">The number of experts k ≥ 2.</param>
    /// <returns>The trainer.</returns>
    public static MixtureOfExpertsBinaryTrainer MixtureOfExperts(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        string labelColumnName = "Label", string featureColumnName = "Features", int experts = 2)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new MixtureOfExpertsBinaryTrainer(new MixtureOfExpertsBinaryTrainer.Options
        {
            LabelColumnName = labelColumnName,
            FeatureColumnName = featureColumnName,
            Fit = new FitOptions { Experts = experts },
        });
    }

    /// <summary>A binary classifier with every option.</summary>
    /// <param name="catalog">The binary-classification trainers.</param>
    /// <param name="options">The options.</param>
    /// <returns>The trainer.</returns>
    public static MixtureOfExpertsBinaryTrainer MixtureOfExperts(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        MixtureOfExpertsBinaryTrainer.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new MixtureOfExpertsBinaryTrainer(options);
    }
}
