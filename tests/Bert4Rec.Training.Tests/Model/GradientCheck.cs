// The whole-model gradient check every model kind runs: each parameter's analytic gradient (TrainStep) against central
// differences of the eval-mode loss, with a scale-free error, the first mismatches reported by tensor name and index.
using Bert4Rec.Training.Model;

namespace Bert4Rec.Training.Tests.Model;

internal static class GradientCheck
{
    /// <summary>Runs TrainStep (dropout must be off), compares every gradient entry, asserts, and returns the analytic gradients.</summary>
    public static float[] AgainstCentralDifferences(SequenceModel m, int[] ids, int[] labels, int batch, float eps, double tolerance = 0.05,
                                                     SampledObjective? sampled = null)
    {
        m.TrainStep(ids, labels, batch, 0, sampled);
        return AgainstCentralDifferences(m.Layout, m.Parameters, m.Gradients, () => m.EvalLoss(ids, labels, batch, sampled), eps, tolerance);
    }

    /// <summary>The check for any model: <paramref name="gradients"/> (filled by the caller's training step) against central
    /// differences of <paramref name="evalLoss"/> over every entry of <paramref name="parameters"/>.</summary>
    /// <summary>Adds uniform noise of width <paramref name="width"/> to every parameter and sets every bias (*.b) to
    /// <paramref name="bias"/>: larger weights than an initialisation, so every path carries signal, and most ReLUs open.</summary>
    public static void Perturb(Bert4Rec.Contracts.ParameterLayout layout, float[] parameters, int seed, float width = 0.8f, float bias = 0.3f)
    {
        var rng = new Random(seed);
        for (int i = 0; i < parameters.Length; i++) parameters[i] += (float)(rng.NextDouble() - 0.5) * width;
        foreach (var t in layout.Tensors.Where(t => t.Name.EndsWith(".b")))
            layout.Slice(parameters, t.Name).Fill(bias);
    }

    public static float[] AgainstCentralDifferences(Bert4Rec.Contracts.ParameterLayout layout, float[] parameters, float[] gradients, Func<double> evalLoss,
                                                     float eps, double tolerance = 0.05)
    {
        var analytic = (float[])gradients.Clone();
        int count = 0, bad = 0;
        var report = new List<string>();
        foreach (var t in layout.Tensors)
            for (int k = 0; k < t.Size; k++)
            {
                int i = (int)t.Offset + k;
                float keep = parameters[i];
                parameters[i] = keep + eps;
                double lp = evalLoss();
                parameters[i] = keep - eps;
                double lm = evalLoss();
                parameters[i] = keep;
                double num = (lp - lm) / (2 * eps);
                double err = Math.Abs(num - analytic[i]) / Math.Max(Math.Abs(num) + Math.Abs(analytic[i]), 1e-2);
                count++;
                if (err > tolerance) { bad++; if (report.Count < 10) report.Add($"{t.Name}[{k}] analytic {analytic[i]:G5} numeric {num:G5}"); }
            }
        Assert.True(bad == 0, $"{bad} of {count} gradients differ:\n" + string.Join("\n", report));
        return analytic;
    }
}

/// <summary>Checks of the output identity every sequential kind shares: logit(v) = z . E[v] + b_O[v], and the loss at a
/// position is -log softmax over items 1..n of those logits.</summary>
internal static class OutputIdentity
{
    public static void AssertLogitsAreZDotEPlusBias(SequenceModel m, float[] z, float[] logits, int rows)
    {
        int V = m.Config.VocabSize, d = m.Config.Hidden;
        var e = m.Layout.Slice(m.Parameters, "tok_emb");
        var bias = m.Layout.Slice(m.Parameters, "out_bias");
        for (int r = 0; r < rows; r++)
            for (int v = 0; v < V; v++)
            {
                double s = bias[v];
                for (int c = 0; c < d; c++) s += z[r * d + c] * e[v * d + c];
                Assert.Equal(s, logits[r * V + v], 4);
            }
    }

    /// <summary>The eval loss of one row with a label at its last position equals -log softmax of <paramref name="logits"/> (V).</summary>
    public static void AssertLastPositionLossIsLogSoftmax(SequenceModel m, ReadOnlySpan<int> row, ReadOnlySpan<float> logits, int target)
    {
        var labels = new int[row.Length]; labels[^1] = target;
        float loss = m.EvalLoss(row, labels, 1);
        double max = double.MinValue, sum = 0;
        for (int v = 1; v <= m.Config.ItemCount; v++) max = Math.Max(max, logits[v]);
        for (int v = 1; v <= m.Config.ItemCount; v++) sum += Math.Exp(logits[v] - max);
        Assert.Equal(Math.Log(sum) + max - logits[target], loss, 4);
    }
}
