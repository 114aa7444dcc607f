namespace MoE.Onnx.Tests;

/// <summary>
/// How far an exported graph's outputs may lie from the façade's: rounding, scaled by each output's condition.
/// </summary>
/// <remarks>
/// ONNX Runtime adds the same products in another order (blocked MatMul) and evaluates exp, tanh and the sigmoid
/// with its own kernels, so the two agree to rounding of the computation, not of the result. First-order error
/// propagation gives each output's scale s (Higham, Accuracy and Stability of Numerical Algorithms, §3.1):
/// <list type="bullet">
/// <item>expert i: η_i = Σ_j a_ij x_j + b_i is off by at most γ_d·S_i with S_i = Σ_j |a_ij x_j| + |b_i|, so
/// μ_i = g(η_i) by L·S_i (L the activation's Lipschitz constant: 1, the leaky slope's max(1, |s|), ¼ for the
/// sigmoid);</item>
/// <item>gate i: p_i = exp(l_i − log Σ_j exp l_j) is off by p_i·(|δl_i| + max_j |δl_j|), so s = p_i(T_i + max_j T_j)
/// with T_i the gate logit's Σ|terms|;</item>
/// <item>the mean Σ p_i μ_i: s = Σ_i p_i·s(μ_i) + |μ_i|·s(p_i);</item>
/// <item>a Poisson expert's rate e^η by μ·S_i (exp's relative condition is |η|, and δη ≤ γ_d·S_i), a Bernoulli
/// expert's probability σ(η) by S_i/4.</item>
/// </list>
/// The reported difference is |onnx − façade| / (|façade| + s). ONNX Runtime flushes subnormal results to zero
/// (an exp that underflows, e.g. a gate probability of 1e-39 in float32), so a façade value below the precision's
/// smallest normal only requires the runtime's to be below it too, and the mean may lose the terms p_i·μ_i of such
/// probabilities. The bound a difference must meet is a multiple
/// of the precision's unit roundoff u: the sums here have d ≤ 12 terms, so γ_d ≈ 12u, and 1e-12 (≈ 4500 u in
/// double) and 1e-5 (≈ 170 u in float32, whose input x is itself rounded to float) leave room for the runtimes'
/// transcendental functions (a few ulp) and nothing for a wrong graph — a wrong parameter, column or operator
/// is off by O(1) in these units (the mutation tests below check that).
/// </remarks>
public static class Agreement
{
    public static double Lipschitz(string activation, double slope) => activation switch
    {
        "sigmoid" => 0.25,
        "leaky-relu" => Math.Max(1.0, Math.Abs(slope)),
        _ => 1.0,
    };

    /// The largest scaled difference over every output of every row, and where it is.
    public static (double Worst, string Where) Compare(ModelSpec spec, MoE.Api.MixtureOfExperts model, double[,] x,
        Scores facade, Scores onnx, bool float32)
    {
        var (experts, gateColumns) = spec.Columns();
        int n = x.GetLength(0), k = model.Experts;
        var a = model.Regressors;
        var b = model.RegressorIntercepts;
        var w = model.Gating;
        var c = model.GatingIntercepts;
        var lip = Lipschitz(spec.Activation, spec.Slope);
        var tiny = float32 ? 1.1754943508222875e-38 : 2.2250738585072014e-308; // the smallest normal float, double
        double worst = 0;
        var where = "";
        var sMu = new double[k];
        var sP = new double[k];
        var t = new double[k];

        void Check(double got, double want, double scale, string what, int row, double dropped = 0)
        {
            // ONNX Runtime flushes subnormal results to zero: a value below the smallest normal need only stay there.
            var e = Math.Abs(want) < tiny
                ? (Math.Abs(got) < tiny ? 0.0 : double.PositiveInfinity)
                : Math.Max(0, Math.Abs(got - want) - dropped) / (Math.Abs(want) + scale);
            if (!(e <= worst))
            {
                worst = double.IsNaN(e) ? double.PositiveInfinity : e;
                where = $"{what} of row {row}: onnx {got:R}, façade {want:R}, scale {scale:E3}";
            }
        }

        // A float32 Poisson graph caps its rates at e^88 (float32 overflows at e^88.7): a row with a rate past the cap
        // is checked for that cap and for finite outputs (never NaN), not against the façade's double rates.
        var cap = Math.Exp(OnnxExport.PoissonFloat32EtaCap);

        for (var r = 0; r < n; r++)
        {
            if (float32 && spec.Family == "poisson"
                && Enumerable.Range(0, k).Any(i => facade.ExpertMeans[r, i] > cap * (1 + 1e-6)))
            {
                for (var i = 0; i < k; i++)
                    if (facade.ExpertMeans[r, i] > cap * (1 + 1e-6))
                        Check(onnx.ExpertMeans[r, i], cap, cap * 1e-6, $"capped expert_means[{i}]", r);
                if (!double.IsFinite(onnx.Mean[r]))
                    Check(onnx.Mean[r], facade.Mean[r], 0, "mean (capped row)", r);
                continue;
            }

            double tMax = 0;
            for (var i = 0; i < k; i++)
            {
                double sE = Math.Abs(b[i]), sG = i < k - 1 ? Math.Abs(c[i]) : 0;
                for (var j = 0; j < experts.Length; j++) sE += Math.Abs(a[i, j] * x[r, experts[j]]);
                if (i < k - 1)
                    for (var j = 0; j < gateColumns.Length; j++) sG += Math.Abs(w[i, j] * x[r, gateColumns[j]]);
                // μ = e^η (Poisson) moves by μ·δη; σ(η) (Bernoulli) by at most δη/4.
                sMu[i] = spec.Family switch
                {
                    "poisson" => Math.Abs(facade.ExpertMeans[r, i]) * sE,
                    "bernoulli" => 0.25 * sE,
                    _ => lip * sE,
                };
                t[i] = sG;
                tMax = Math.Max(tMax, sG);
            }

            double sMean = 0, dropped = 0;
            for (var i = 0; i < k; i++)
            {
                var p = facade.Gate[r, i];
                var mu = facade.ExpertMeans[r, i];
                // A flushed gate probability drops its term from the mean: p_i·|μ_i|, which a huge Poisson rate can
                // make visible (1e-40 × 1e23).
                if (p < tiny) dropped += p * Math.Abs(mu);
                sP[i] = p * (t[i] + tMax);
                sMean += p * sMu[i] + Math.Abs(mu) * sP[i];
                Check(onnx.ExpertMeans[r, i], mu, sMu[i], $"expert_means[{i}]", r);
                Check(onnx.Gate[r, i], p, sP[i], $"gate[{i}]", r);
            }

            Check(onnx.Mean[r], facade.Mean[r], sMean, "mean", r, dropped);
        }

        return (worst, where);
    }
}
