// Bidirectional multi-head self-attention over one sequence's non-pad tokens, forward and backward side by side.
// Pad positions are never packed in, so they take no part as keys (exactly what the -10000 mask does) nor as queries
// (their outputs are never read).
using System.Buffers;
using System.Numerics.Tensors;

namespace Bert4Rec.Training.Kernels;

public static class Attention
{
    /// <summary>
    /// One sequence of L tokens: qkv is (L, 3C) [q | k | v, head h at columns h*D..], output attn is (L, C); probs (H, L, L)
    /// receives the softmax probabilities before dropout (for the backward pass). Attention dropout with probability p uses
    /// the counter stream <paramref name="dropKey"/> (element ids h*L*L + i*L + j).
    /// </summary>
    public static void Forward(Span<float> attn, Span<float> probs, ReadOnlySpan<float> qkv, int L, int C, int H, float p, ulong dropKey)
    {
        int D = C / H;
        float scale = 1f / MathF.Sqrt(D);
        float[] kt = ArrayPool<float>.Shared.Rent(D * L);
        float[] row = ArrayPool<float>.Shared.Rent(L);
        uint th = Elementwise.Threshold(p);
        float keepScale = p > 0 ? 1f / (1f - p) : 1f;
        try
        {
            for (int h = 0; h < H; h++)
            {
                // K^T (D, L) contiguous so that a query row against all keys is D axpys of length L.
                for (int j = 0; j < L; j++)
                    for (int c = 0; c < D; c++) kt[c * L + j] = qkv[j * 3 * C + C + h * D + c];
                var P = probs.Slice(h * L * L, L * L);
                for (int i = 0; i < L; i++)
                {
                    var s = P.Slice(i * L, L);
                    s.Clear();
                    var q = qkv.Slice(i * 3 * C + h * D, D);
                    for (int c = 0; c < D; c++) TensorPrimitives.MultiplyAdd(kt.AsSpan(c * L, L), q[c] * scale, s, s);
                    float max = TensorPrimitives.Max(s);
                    TensorPrimitives.Subtract(s, max, s);
                    TensorPrimitives.Exp(s, s);
                    float sum = TensorPrimitives.Sum(s);
                    TensorPrimitives.Multiply(s, 1f / sum, s);
                    // out_i = sum_j dropout(P_ij) v_j
                    var o = attn.Slice(i * C + h * D, D);
                    o.Clear();
                    for (int j = 0; j < L; j++)
                    {
                        float w = s[j];
                        if (p > 0) w = Elementwise.Keep(dropKey, (long)h * L * L + i * L + j, th) ? w * keepScale : 0f;
                        if (w != 0f) TensorPrimitives.MultiplyAdd(qkv.Slice(j * 3 * C + 2 * C + h * D, D), w, o, o);
                    }
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(kt);
            ArrayPool<float>.Shared.Return(row);
        }
    }

    /// <summary>Adds into dqkv (L, 3C) the gradient given dattn (L, C), using qkv and the saved probabilities.</summary>
    public static void Backward(Span<float> dqkv, ReadOnlySpan<float> dattn, ReadOnlySpan<float> qkv, ReadOnlySpan<float> probs,
                                int L, int C, int H, float p, ulong dropKey)
    {
        int D = C / H;
        float scale = 1f / MathF.Sqrt(D);
        uint th = Elementwise.Threshold(p);
        float keepScale = p > 0 ? 1f / (1f - p) : 1f;
        float[] vt = ArrayPool<float>.Shared.Rent(D * L);
        float[] dp = ArrayPool<float>.Shared.Rent(L);
        try
        {
            for (int h = 0; h < H; h++)
            {
                for (int j = 0; j < L; j++)
                    for (int c = 0; c < D; c++) vt[c * L + j] = qkv[j * 3 * C + 2 * C + h * D + c];
                var P = probs.Slice(h * L * L, L * L);
                for (int i = 0; i < L; i++)
                {
                    var pi = P.Slice(i * L, L);
                    var dOi = dattn.Slice(i * C + h * D, D);
                    var dpi = dp.AsSpan(0, L);
                    // d(dropped P)_ij = dO_i . v_j
                    dpi.Clear();
                    for (int c = 0; c < D; c++) TensorPrimitives.MultiplyAdd(vt.AsSpan(c * L, L), dOi[c], dpi, dpi);
                    for (int j = 0; j < L; j++)
                    {
                        bool keep = p <= 0 || Elementwise.Keep(dropKey, (long)h * L * L + i * L + j, th);
                        float pd = keep ? pi[j] * keepScale : 0f;
                        // dV_j += dropped P_ij * dO_i
                        if (pd != 0f) TensorPrimitives.MultiplyAdd(dOi, pd, dqkv.Slice(j * 3 * C + 2 * C + h * D, D), dqkv.Slice(j * 3 * C + 2 * C + h * D, D));
                        dpi[j] = keep ? dpi[j] * keepScale : 0f;
                    }
                    // softmax backward: dS_ij = P_ij (dP_ij - sum_k P_ik dP_ik)
                    float dot = TensorPrimitives.Dot(pi, dpi);
                    TensorPrimitives.Subtract(dpi, dot, dpi);
                    TensorPrimitives.Multiply(dpi, pi, dpi);
                    // dQ_i += scale sum_j dS_ij K_j ; dK_j += scale dS_ij Q_i
                    var dqi = dqkv.Slice(i * 3 * C + h * D, D);
                    var qi = qkv.Slice(i * 3 * C + h * D, D);
                    for (int j = 0; j < L; j++)
                    {
                        float g = dpi[j] * scale;
                        if (g == 0f) continue;
                        TensorPrimitives.MultiplyAdd(qkv.Slice(j * 3 * C + C + h * D, D), g, dqi, dqi);
                        var dkj = dqkv.Slice(j * 3 * C + C + h * D, D);
                        TensorPrimitives.MultiplyAdd(qi, g, dkj, dkj);
                    }
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(vt);
            ArrayPool<float>.Shared.Return(dp);
        }
    }
}
