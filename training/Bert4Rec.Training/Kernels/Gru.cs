// The GRU recurrence over one sequence's tokens, forward and backward side by side, in ONNX's gate order z | r | h with
// linear_before_reset = 1 (PyTorch's formula):
//     z = σ(gx_z + h W_z + b_z)   r = σ(gx_r + h W_r + b_r)   hr = h W_h + b_h   n = tanh(gx_h + r * hr)
//     h' = (1 - z) * n + z * h,   h_0 = 0
// where gx = x W_ih + b_ih is computed beforehand for all tokens by one sgemm, and W = W_hh (d,3d), b = b_hh (3d).
// The input-side products (dW_ih, dx) and dW_hh are left to sgemm calls over all tokens: the backward here only returns
// the pre-activation gradients. A naive reference of plain loops sits beside the fast path; the tests compare them.
using System.Numerics.Tensors;

namespace Bert4Rec.Training.Kernels;

public static class Gru
{
    /// <summary>
    /// Runs the recurrence over L tokens from h_0 = 0. h is (L,d): the state after each token; gates is (L,3d): z | r | n
    /// after their activations; hr is (L,d): h_{t-1} W_h + b_h, the candidate's recurrent part before the reset gate.
    /// gx is (L,3d), whh (d,3d), bhh (3d).
    /// </summary>
    public static void Forward(Span<float> h, Span<float> gates, Span<float> hr, ReadOnlySpan<float> gx, ReadOnlySpan<float> whh,
                               ReadOnlySpan<float> bhh, int L, int d)
    {
        CheckSizes(h.Length, gates.Length, hr.Length, gx.Length, whh.Length, bhh.Length, L, d);
        int d3 = 3 * d;
        Span<float> gh = d3 <= 3072 ? stackalloc float[d3] : new float[d3];     // h_{t-1} W_hh + b_hh (3d)
        Span<float> tmp = d <= 1024 ? stackalloc float[d] : new float[d];
        for (int t = 0; t < L; t++)
        {
            bhh.CopyTo(gh);
            if (t > 0)
            {
                var hp = h.Slice((t - 1) * d, d);
                for (int i = 0; i < d; i++) TensorPrimitives.MultiplyAdd(whh.Slice(i * d3, d3), hp[i], gh, gh);
            }
            var g = gates.Slice(t * d3, d3);
            var x = gx.Slice(t * d3, d3);
            // z | r
            TensorPrimitives.Add(x[..(2 * d)], gh[..(2 * d)], g[..(2 * d)]);
            TensorPrimitives.Sigmoid(g[..(2 * d)], g[..(2 * d)]);
            // n = tanh(gx_h + r * hr)
            var hrt = hr.Slice(t * d, d);
            gh[(2 * d)..].CopyTo(hrt);
            var n = g[(2 * d)..];
            TensorPrimitives.MultiplyAdd(g.Slice(d, d), hrt, x[(2 * d)..], n);
            TensorPrimitives.Tanh(n, n);
            // h' = n + z * (h - n)
            var ht = h.Slice(t * d, d);
            if (t > 0) TensorPrimitives.Subtract(h.Slice((t - 1) * d, d), n, tmp);
            else TensorPrimitives.Negate(n, tmp);
            TensorPrimitives.MultiplyAdd(g[..d], tmp, n, ht);
        }
    }

    /// <summary>
    /// Backward of <see cref="Forward"/>: given dh (L,d), the loss gradient reaching each state from outside the recurrence,
    /// writes dgx (L,3d) = d(gx) and dgh (L,3d) = d(h_{t-1} W_hh + b_hh), so that dW_ih = x^T dgx, db_ih = colsum(dgx),
    /// dW_hh = H_prev^T dgh and db_hh = colsum(dgh) (H_prev: each token's previous state, 0 for the first).
    /// </summary>
    public static void Backward(Span<float> dgx, Span<float> dgh, ReadOnlySpan<float> dh, ReadOnlySpan<float> h, ReadOnlySpan<float> gates,
                                ReadOnlySpan<float> hr, ReadOnlySpan<float> whh, int L, int d)
    {
        CheckSizes(h.Length, gates.Length, hr.Length, dgx.Length, whh.Length, 3 * d, L, d);
        if (dgh.Length != L * 3 * d || dh.Length != L * d) throw new ArgumentException($"dgh needs {L * 3 * d} floats and dh {L * d}");
        int d3 = 3 * d;
        Span<float> carry = d <= 1024 ? stackalloc float[d] : new float[d];      // d(h_t) from step t+1
        carry.Clear();
        for (int t = L - 1; t >= 0; t--)
        {
            var g = gates.Slice(t * d3, d3);
            var hrt = hr.Slice(t * d, d);
            var dx = dgx.Slice(t * d3, d3);
            var dr = dgh.Slice(t * d3, d3);
            var dht = dh.Slice(t * d, d);
            for (int i = 0; i < d; i++)
            {
                float dhi = dht[i] + carry[i];
                float z = g[i], r = g[d + i], n = g[2 * d + i];
                float hp = t > 0 ? h[(t - 1) * d + i] : 0f;
                float dz = dhi * (hp - n) * z * (1f - z);
                float dn = dhi * (1f - z) * (1f - n * n);
                float drr = dn * hrt[i] * r * (1f - r);
                dx[i] = dz; dx[d + i] = drr; dx[2 * d + i] = dn;
                dr[i] = dz; dr[d + i] = drr; dr[2 * d + i] = dn * r;
                carry[i] = dhi * z;                                                   // the direct path h' = ... + z * h
            }
            if (t == 0) break;
            for (int i = 0; i < d; i++) carry[i] += TensorPrimitives.Dot(whh.Slice(i * d3, d3), (ReadOnlySpan<float>)dr);
        }
    }

    /// <summary>The naive reference of <see cref="Forward"/>: scalar loops, the formulas as written.</summary>
    public static void ForwardNaive(Span<float> h, Span<float> gates, Span<float> hr, ReadOnlySpan<float> gx, ReadOnlySpan<float> whh,
                                    ReadOnlySpan<float> bhh, int L, int d)
    {
        CheckSizes(h.Length, gates.Length, hr.Length, gx.Length, whh.Length, bhh.Length, L, d);
        int d3 = 3 * d;
        var prev = new float[d];
        for (int t = 0; t < L; t++)
        {
            for (int j = 0; j < d; j++)
            {
                double az = gx[t * d3 + j] + bhh[j], ar = gx[t * d3 + d + j] + bhh[d + j], ah = bhh[2 * d + j];
                for (int i = 0; i < d; i++)
                {
                    az += prev[i] * whh[i * d3 + j];
                    ar += prev[i] * whh[i * d3 + d + j];
                    ah += prev[i] * whh[i * d3 + 2 * d + j];
                }
                double z = 1 / (1 + Math.Exp(-az)), r = 1 / (1 + Math.Exp(-ar));
                double n = Math.Tanh(gx[t * d3 + 2 * d + j] + r * ah);
                gates[t * d3 + j] = (float)z; gates[t * d3 + d + j] = (float)r; gates[t * d3 + 2 * d + j] = (float)n;
                hr[t * d + j] = (float)ah;
                h[t * d + j] = (float)((1 - z) * n + z * prev[j]);
            }
            h.Slice(t * d, d).CopyTo(prev);
        }
    }

    /// <summary>The naive reference of <see cref="Backward"/>: scalar loops, the chain rule term by term.</summary>
    public static void BackwardNaive(Span<float> dgx, Span<float> dgh, ReadOnlySpan<float> dh, ReadOnlySpan<float> h, ReadOnlySpan<float> gates,
                                     ReadOnlySpan<float> hr, ReadOnlySpan<float> whh, int L, int d)
    {
        CheckSizes(h.Length, gates.Length, hr.Length, dgx.Length, whh.Length, 3 * d, L, d);
        int d3 = 3 * d;
        var carry = new double[d];
        for (int t = L - 1; t >= 0; t--)
        {
            var next = new double[d];
            for (int j = 0; j < d; j++)
            {
                double g = dh[t * d + j] + carry[j];
                double z = gates[t * d3 + j], r = gates[t * d3 + d + j], n = gates[t * d3 + 2 * d + j];
                double hp = t > 0 ? h[(t - 1) * d + j] : 0;
                double dn = g * (1 - z), dz = g * (hp - n);
                double dan = dn * (1 - n * n);                   // d(pre-tanh)
                double dhr = dan * r, dR = dan * hr[t * d + j];
                double daz = dz * z * (1 - z), dar = dR * r * (1 - r);
                dgx[t * d3 + j] = (float)daz; dgx[t * d3 + d + j] = (float)dar; dgx[t * d3 + 2 * d + j] = (float)dan;
                dgh[t * d3 + j] = (float)daz; dgh[t * d3 + d + j] = (float)dar; dgh[t * d3 + 2 * d + j] = (float)dhr;
                next[j] += g * z;
            }
            for (int i = 0; i < d; i++)
                for (int k = 0; k < d3; k++) next[i] += whh[i * d3 + k] * dgh[t * d3 + k];
            carry = next;
        }
    }

    private static void CheckSizes(int h, int gates, int hr, int gx, int whh, int bhh, int L, int d)
    {
        if (L < 0 || d < 1) throw new ArgumentOutOfRangeException(nameof(L), $"L {L} and d {d} must be >= 0 and >= 1");
        if (h != L * d || hr != L * d) throw new ArgumentException($"h and hr need L x d = {L * d} floats, got {h} and {hr}");
        if (gates != L * 3 * d || gx != L * 3 * d) throw new ArgumentException($"gates and gx need L x 3d = {L * 3 * d} floats, got {gates} and {gx}");
        if (whh != d * 3 * d || bhh != 3 * d) throw new ArgumentException($"whh needs d x 3d = {3 * d * d} floats and bhh 3d = {3 * d}, got {whh} and {bhh}");
    }
}
