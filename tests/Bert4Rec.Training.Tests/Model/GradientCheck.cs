// The whole-model gradient check every model kind runs: each parameter's analytic gradient (TrainStep) against central
// differences of the eval-mode loss, with a scale-free error, the first mismatches reported by tensor name and index.
using Bert4Rec.Training.Model;

namespace Bert4Rec.Training.Tests.Model;

internal static class GradientCheck
{
    /// <summary>Runs TrainStep (dropout must be off), compares every gradient entry, asserts, and returns the analytic gradients.</summary>
    public static float[] AgainstCentralDifferences(SequenceModel m, int[] ids, int[] labels, int batch, float eps, double tolerance = 0.05)
    {
        m.TrainStep(ids, labels, batch, 0);
        var analytic = (float[])m.Gradients.Clone();
        int count = 0, bad = 0;
        var report = new List<string>();
        foreach (var t in m.Layout.Tensors)
            for (int k = 0; k < t.Size; k++)
            {
                int i = (int)t.Offset + k;
                float keep = m.Parameters[i];
                m.Parameters[i] = keep + eps;
                double lp = m.EvalLoss(ids, labels, batch);
                m.Parameters[i] = keep - eps;
                double lm = m.EvalLoss(ids, labels, batch);
                m.Parameters[i] = keep;
                double num = (lp - lm) / (2 * eps);
                double err = Math.Abs(num - analytic[i]) / Math.Max(Math.Abs(num) + Math.Abs(analytic[i]), 1e-2);
                count++;
                if (err > tolerance) { bad++; if (report.Count < 10) report.Add($"{t.Name}[{k}] analytic {analytic[i]:G5} numeric {num:G5}"); }
            }
        Assert.True(bad == 0, $"{bad} of {count} gradients differ:\n" + string.Join("\n", report));
        return analytic;
    }
}
