// AdamW as one flat loop over the parameter buffer (decoupled weight decay only where the layout says so),
// global gradient-norm clipping, and the linear warmup / linear decay schedule.
using Bert4Rec.Contracts;

namespace Bert4Rec.Training.Optim;

public sealed record AdamWSettings(float Beta1 = 0.9f, float Beta2 = 0.999f, float Epsilon = 1e-6f, float WeightDecay = 0.01f);

public sealed class AdamW
{
    private readonly float[] _decayMask;   // 1 where weight decay applies
    public AdamWSettings Settings { get; }
    /// <summary>First and second moments, laid out like the parameters.</summary>
    public float[] M { get; }
    public float[] V { get; }
    /// <summary>Number of updates taken (for bias correction).</summary>
    public long Step { get; set; }

    public AdamW(ParameterLayout layout, AdamWSettings? settings = null)
    {
        Settings = settings ?? new AdamWSettings();
        M = new float[layout.TotalSize];
        V = new float[layout.TotalSize];
        _decayMask = new float[layout.TotalSize];
        foreach (var t in layout.Tensors)
            if (t.WeightDecay) _decayMask.AsSpan(checked((int)t.Offset), checked((int)t.Size)).Fill(1f);
    }

    /// <summary>One update of <paramref name="parameters"/> with <paramref name="gradients"/> at learning rate <paramref name="lr"/>.</summary>
    public void Update(float[] parameters, float[] gradients, float lr)
    {
        if (parameters.Length != M.Length || gradients.Length != M.Length) throw new ArgumentException("parameter/gradient buffers do not match the layout");
        Step++;
        var s = Settings;
        float b1 = s.Beta1, b2 = s.Beta2, eps = s.Epsilon, wd = s.WeightDecay;
        float c1 = 1f / (1f - MathF.Pow(b1, Step)), c2 = 1f / (1f - MathF.Pow(b2, Step));
        float[] m = M, v = V, mask = _decayMask;
        Kernels.Elementwise.ParallelRows(parameters.Length, 1 << 16, (i0, i1) =>
        {
            // Vector<float> lanes do the scalar loop's operations in the same order (no FMA), so results are identical
            int W = System.Numerics.Vector<float>.Count, i = i0;
            var vb1 = new System.Numerics.Vector<float>(b1); var vb1c = new System.Numerics.Vector<float>(1 - b1);
            var vb2 = new System.Numerics.Vector<float>(b2); var vb2c = new System.Numerics.Vector<float>(1 - b2);
            var vc1 = new System.Numerics.Vector<float>(c1); var vc2 = new System.Numerics.Vector<float>(c2);
            var veps = new System.Numerics.Vector<float>(eps); var vwd = new System.Numerics.Vector<float>(wd); var vlr = new System.Numerics.Vector<float>(lr);
            for (; i + W <= i1; i += W)
            {
                var g = new System.Numerics.Vector<float>(gradients, i);
                var mi = vb1 * new System.Numerics.Vector<float>(m, i) + vb1c * g;
                var vi = vb2 * new System.Numerics.Vector<float>(v, i) + vb2c * g * g;
                mi.CopyTo(m, i); vi.CopyTo(v, i);
                var p = new System.Numerics.Vector<float>(parameters, i);
                var update = (mi * vc1) / (System.Numerics.Vector.SquareRoot(vi * vc2) + veps) + vwd * new System.Numerics.Vector<float>(mask, i) * p;
                (p - vlr * update).CopyTo(parameters, i);
            }
            for (; i < i1; i++)
            {
                float g = gradients[i];
                float mi = m[i] = b1 * m[i] + (1 - b1) * g;
                float vi = v[i] = b2 * v[i] + (1 - b2) * g * g;
                float update = (mi * c1) / (MathF.Sqrt(vi * c2) + eps) + wd * mask[i] * parameters[i];
                parameters[i] -= lr * update;
            }
        });
    }
}

public static class GradientClipping
{
    /// <summary>Scales <paramref name="gradients"/> so that their global L2 norm is at most <paramref name="maxNorm"/>; returns the norm before clipping.</summary>
    public static double ClipGlobalNorm(float[] gradients, double maxNorm)
    {
        // float sums of squares over fixed 4096-element chunks (vectorised), accumulated in double: the same on every run of a machine
        double sum = 0;
        for (int i = 0; i < gradients.Length; i += 4096)
            sum += System.Numerics.Tensors.TensorPrimitives.SumOfSquares(gradients.AsSpan(i, Math.Min(4096, gradients.Length - i)));
        double norm = Math.Sqrt(sum);
        if (maxNorm > 0 && norm > maxNorm)
        {
            float scale = (float)(maxNorm / (norm + 1e-6));
            System.Numerics.Tensors.TensorPrimitives.Multiply(gradients, scale, gradients);
        }
        return norm;
    }
}

public static class LearningRateSchedule
{
    /// <summary>Linear warmup from 0 to <paramref name="peak"/> over <paramref name="warmup"/> steps, then linear decay to 0 at <paramref name="total"/>.</summary>
    public static float At(long step, long warmup, long total, float peak)
    {
        if (step < warmup) return peak * (step + 1) / warmup;
        if (total <= warmup) return peak;
        return peak * Math.Max(0f, (float)(total - step) / (total - warmup));
    }
}
