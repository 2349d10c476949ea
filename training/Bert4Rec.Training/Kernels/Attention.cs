// Multi-head self-attention over one sequence's non-pad tokens, bidirectional (BERT4Rec) or causal (SASRec: token i
// attends to tokens 0..i), forward and backward side by side: a fast path on sgemm and a naive reference of plain loops,
// which the tests compare. Causal probabilities are exactly 0 above the diagonal, so the backward passes need no flag.
// Pad positions are never packed in, so they take no part as keys (exactly what the -10000 mask does) nor as queries
// (their outputs are never read).
using System.Buffers;
using System.Numerics.Tensors;

namespace Bert4Rec.Training.Kernels;

public static unsafe class Attention
{
    /// <summary>
    /// The fast path (same contract as <see cref="ForwardNaive"/>): per head, S = scale Q K^T and O = dropout(P) V as
    /// single-threaded sgemm calls on strided views of qkv; callers run rows in parallel with OpenBLAS at one thread.
    /// </summary>
    public static void Forward(Span<float> attn, Span<float> probs, ReadOnlySpan<float> qkv, int L, int C, int H, float p, ulong dropKey, bool causal = false)
    {
        int D = C / H, C3 = 3 * C;
        float scale = 1f / MathF.Sqrt(D);
        float[]? pd = p > 0 ? ArrayPool<float>.Shared.Rent(L * L) : null;
        try
        {
            fixed (float* pq = qkv) fixed (float* pp = probs) fixed (float* po = attn)
                for (int h = 0; h < H; h++)
                {
                    float* P = pp + h * L * L;
                    Blas.Sgemm(false, true, L, L, D, scale, pq + h * D, C3, pq + C + h * D, C3, 0f, P, L);
                    var Ps = new Span<float>(P, L * L);
                    for (int i = 0; i < L; i++)
                    {
                        var s = Ps.Slice(i * L, causal ? i + 1 : L);
                        if (causal) Ps.Slice(i * L + i + 1, L - i - 1).Clear();
                        float max = TensorPrimitives.Max(s);
                        TensorPrimitives.Subtract(s, max, s);
                        TensorPrimitives.Exp(s, s);
                        TensorPrimitives.Multiply(s, 1f / TensorPrimitives.Sum(s), s);
                    }
                    float* A = P;
                    if (pd != null)
                    {
                        Elementwise.DropoutInto(Ps, pd.AsSpan(0, L * L), dropKey, (long)h * L * L, p);
                        fixed (float* ppd = pd) Blas.Sgemm(false, false, L, D, L, 1f, ppd, L, pq + 2 * C + h * D, C3, 0f, po + h * D, C);
                    }
                    else Blas.Sgemm(false, false, L, D, L, 1f, A, L, pq + 2 * C + h * D, C3, 0f, po + h * D, C);
                }
        }
        finally { if (pd != null) ArrayPool<float>.Shared.Return(pd); }
    }

    /// <summary>The fast path of <see cref="BackwardNaive"/>: adds into dqkv (L, 3C) the gradient given dattn (L, C).</summary>
    public static void Backward(Span<float> dqkv, ReadOnlySpan<float> dattn, ReadOnlySpan<float> qkv, ReadOnlySpan<float> probs,
                                int L, int C, int H, float p, ulong dropKey)
    {
        int D = C / H, C3 = 3 * C;
        float scale = 1f / MathF.Sqrt(D);
        float[] dp = ArrayPool<float>.Shared.Rent(L * L);
        float[]? pd = p > 0 ? ArrayPool<float>.Shared.Rent(L * L) : null;
        uint th = Elementwise.Threshold(p);
        float keepScale = p > 0 ? 1f / (1f - p) : 1f;
        try
        {
            fixed (float* pq = qkv) fixed (float* pp = probs) fixed (float* pdo = dattn) fixed (float* pg = dqkv) fixed (float* pdp = dp)
                for (int h = 0; h < H; h++)
                {
                    float* P = pp + h * L * L;
                    var Ps = new ReadOnlySpan<float>(P, L * L);
                    // d(dropped P) = dO V^T ; dV += dropped(P)^T dO
                    Blas.Sgemm(false, true, L, L, D, 1f, pdo + h * D, C, pq + 2 * C + h * D, C3, 0f, pdp, L);
                    if (pd != null)
                    {
                        Elementwise.DropoutInto(Ps, pd.AsSpan(0, L * L), dropKey, (long)h * L * L, p);
                        fixed (float* ppd = pd) Blas.Sgemm(true, false, L, D, L, 1f, ppd, L, pdo + h * D, C, 1f, pg + 2 * C + h * D, C3);
                        var dps = dp.AsSpan(0, L * L);
                        Elementwise.DropoutInto(dps, dps, dropKey, (long)h * L * L, p);
                    }
                    else Blas.Sgemm(true, false, L, D, L, 1f, P, L, pdo + h * D, C, 1f, pg + 2 * C + h * D, C3);
                    // softmax backward, scaled: dS = scale * P (dP - rowdot(P, dP))
                    for (int i = 0; i < L; i++)
                    {
                        var pi = Ps.Slice(i * L, L);
                        var di = dp.AsSpan(i * L, L);
                        float dot = TensorPrimitives.Dot(pi, di);
                        TensorPrimitives.Subtract(di, dot, di);
                        TensorPrimitives.Multiply(di, pi, di);
                        TensorPrimitives.Multiply(di, scale, di);
                    }
                    // dQ += dS K ; dK += dS^T Q
                    Blas.Sgemm(false, false, L, D, L, 1f, pdp, L, pq + C + h * D, C3, 1f, pg + h * D, C3);
                    Blas.Sgemm(true, false, L, D, L, 1f, pdp, L, pq + h * D, C3, 1f, pg + C + h * D, C3);
                }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(dp);
            if (pd != null) ArrayPool<float>.Shared.Return(pd);
        }
    }

    /// <summary>
    /// One sequence of L tokens: qkv is (L, 3C) [q | k | v, head h at columns h*D..], output attn is (L, C); probs (H, L, L)
    /// receives the softmax probabilities before dropout (for the backward pass). Attention dropout with probability p uses
    /// the counter stream <paramref name="dropKey"/> (element ids h*L*L + i*L + j).
    /// </summary>
    public static void ForwardNaive(Span<float> attn, Span<float> probs, ReadOnlySpan<float> qkv, int L, int C, int H, float p, ulong dropKey, bool causal = false)
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
                    // causal: keys after i get probability 0 (what an additive -inf mask gives)
                    int keys = causal ? i + 1 : L;
                    var sk = s[..keys];
                    float max = TensorPrimitives.Max(sk);
                    TensorPrimitives.Subtract(sk, max, sk);
                    TensorPrimitives.Exp(sk, sk);
                    float sum = TensorPrimitives.Sum(sk);
                    TensorPrimitives.Multiply(sk, 1f / sum, sk);
                    s[keys..].Clear();
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
    public static void BackwardNaive(Span<float> dqkv, ReadOnlySpan<float> dattn, ReadOnlySpan<float> qkv, ReadOnlySpan<float> probs,
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
