// Losses over a sampled set of items instead of the whole catalog (issue 16): each prediction row m has its positive logit
// pos[m] (the target item) and K logits neg[m, j] over candidates shared by the batch. A candidate equal to the row's own
// target (an "accidental hit") takes no part in that row. Both losses write their gradients in place of the logits.
using System.Numerics.Tensors;

namespace Bert4Rec.Training.Kernels;

public static class SampledLoss
{
    /// <summary>
    /// Sampled softmax cross-entropy: row m's loss is logsumexp(pos[m], neg[m, *]) - pos[m], the logits already corrected by
    /// the caller (log-Q). Writes d(loss sum * <paramref name="gradScale"/>) into pos and neg; returns the summed loss.
    /// </summary>
    public static double CrossEntropy(Span<float> pos, Span<float> neg, ReadOnlySpan<int> candidates, ReadOnlySpan<int> targets, int M, int K, float gradScale)
    {
        double loss = 0;
        for (int m = 0; m < M; m++)
        {
            var row = neg.Slice(m * K, K);
            int y = targets[m];
            for (int j = 0; j < K; j++) if (candidates[j] == y) row[j] = float.NegativeInfinity;
            float max = MathF.Max(pos[m], TensorPrimitives.Max(row));
            TensorPrimitives.Subtract(row, max, row);
            TensorPrimitives.Exp(row, row);                               // exp(-inf) = 0: hits get no probability
            float ep = MathF.Exp(pos[m] - max);
            double sum = TensorPrimitives.Sum(row) + (double)ep;
            loss += Math.Log(sum) + max - pos[m];
            float inv = (float)(gradScale / sum);
            TensorPrimitives.Multiply(row, inv, row);
            pos[m] = (float)(ep / sum - 1.0) * gradScale;
        }
        return loss;
    }

    /// <summary>
    /// gBCE (Petrov &amp; Macdonald, RecSys 2023): row m's loss is -beta log sigma(pos[m]) - sum_j log(1 - sigma(neg[m, j])),
    /// beta the calibration power (1 = plain BCE with K negatives). Writes the scaled gradients in place; returns the summed loss.
    /// </summary>
    public static double Gbce(Span<float> pos, Span<float> neg, ReadOnlySpan<int> candidates, ReadOnlySpan<int> targets, int M, int K, float beta, float gradScale)
    {
        double loss = 0;
        for (int m = 0; m < M; m++)
        {
            var row = neg.Slice(m * K, K);
            int y = targets[m];
            for (int j = 0; j < K; j++)
            {
                if (candidates[j] == y) { row[j] = 0f; continue; }
                float s = row[j];
                // -log(1 - sigma(s)) = softplus(s), computed stably; d/ds = sigma(s)
                loss += s > 0 ? s + Math.Log(1 + Math.Exp(-s)) : Math.Log(1 + Math.Exp(s));
                row[j] = gradScale / (1f + MathF.Exp(-s));
            }
            float p = pos[m];
            // -beta log sigma(p) = beta softplus(-p); d/dp = -beta (1 - sigma(p)) = -beta sigma(-p)
            loss += beta * (p < 0 ? -p + Math.Log(1 + Math.Exp(p)) : Math.Log(1 + Math.Exp(-p)));
            pos[m] = -beta * gradScale / (1f + MathF.Exp(p));
        }
        return loss;
    }

    /// <summary>gBCE's beta for K negatives out of <paramref name="items"/> - 1 and calibration t: alpha (t (1 - 1/alpha) + 1/alpha), alpha = K / (items - 1).</summary>
    public static float GbceBeta(int K, int items, float t)
    {
        double alpha = items > 1 ? Math.Min(1.0, K / (double)(items - 1)) : 1.0;
        return (float)(alpha * (t * (1 - 1 / alpha) + 1 / alpha));
    }
}
