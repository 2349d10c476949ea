// Softmax cross-entropy over the n real items (columns 1..n of the vocabulary; [PAD] and [MASK] take no part).
namespace Bert4Rec.Training.Kernels;

public static class CrossEntropy
{
    /// <summary>
    /// logits (M, n) over items 1..n; targets (M) in 1..n. Writes into logits, in place, the gradient of
    /// (sum of losses) * <paramref name="gradScale"/> and returns the summed loss (double).
    /// </summary>
    public static double ForwardBackward(Span<float> logits, ReadOnlySpan<int> targets, int M, int n, float gradScale)
    {
        double loss = 0;
        for (int m = 0; m < M; m++)
        {
            var row = logits.Slice(m * n, n);
            int y = targets[m] - 1;
            if ((uint)y >= (uint)n) throw new ArgumentOutOfRangeException(nameof(targets), targets[m], $"target must be an item index in 1..{n}");
            float max = System.Numerics.Tensors.TensorPrimitives.Max(row);
            float ly = row[y];
            System.Numerics.Tensors.TensorPrimitives.Subtract(row, max, row);
            System.Numerics.Tensors.TensorPrimitives.Exp(row, row);
            double sum = System.Numerics.Tensors.TensorPrimitives.Sum(row);
            loss += Math.Log(sum) + max - ly;
            float inv = (float)(gradScale / sum);
            System.Numerics.Tensors.TensorPrimitives.Multiply(row, inv, row);
            row[y] -= gradScale;
        }
        return loss;
    }
}
