// Element-wise kernels as forward/backward pairs (llm.c style): LayerNorm, exact-erf GELU, bias add, dropout masks.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Bert4Rec.Training.Kernels;

public static class Elementwise
{
    // ---------------- LayerNorm ----------------

    /// <summary>out (T,C) = (x - mean) * rstd * g + b per row; saves mean (T) and rstd (T) for the backward pass.</summary>
    public static void LayerNormForward(Span<float> output, Span<float> mean, Span<float> rstd, ReadOnlySpan<float> input,
                                        ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int T, int C, float eps)
    {
        for (int t = 0; t < T; t++)
        {
            var x = input.Slice(t * C, C);
            var o = output.Slice(t * C, C);
            float m = TensorPrimitives.Sum(x) / C;
            TensorPrimitives.Subtract(x, m, o);                         // o = x - m
            float rs = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(o) / C + eps);
            TensorPrimitives.Multiply(o, rs, o);                        // xhat
            TensorPrimitives.FusedMultiplyAdd(o, weight, bias, o);      // xhat * g + b
            mean[t] = m;
            rstd[t] = rs;
        }
    }

    /// <summary>Adds into dinput (T,C), dweight (C), dbias (C) the gradients of LayerNorm given doutput.</summary>
    public static void LayerNormBackward(Span<float> dinput, Span<float> dweight, Span<float> dbias, ReadOnlySpan<float> doutput,
                                         ReadOnlySpan<float> input, ReadOnlySpan<float> weight, ReadOnlySpan<float> mean,
                                         ReadOnlySpan<float> rstd, int T, int C)
    {
        Span<float> xhat = C <= 1024 ? stackalloc float[C] : new float[C];
        Span<float> d = C <= 1024 ? stackalloc float[C] : new float[C];
        for (int t = 0; t < T; t++)
        {
            var x = input.Slice(t * C, C);
            var dy = doutput.Slice(t * C, C);
            float rs = rstd[t];
            TensorPrimitives.Subtract(x, mean[t], xhat);
            TensorPrimitives.Multiply(xhat, rs, xhat);
            TensorPrimitives.FusedMultiplyAdd(dy, xhat, dweight, dweight);    // dg += dy * xhat
            TensorPrimitives.Add(dbias, dy, dbias);                           // db += dy
            TensorPrimitives.Multiply(dy, weight, d);                         // d = dy * g
            float sumD = TensorPrimitives.Sum(d) / C;
            float sumDX = TensorPrimitives.Dot(d, xhat) / C;
            // dx += rs * (d - sumD - xhat * sumDX)
            TensorPrimitives.Subtract(d, sumD, d);
            TensorPrimitives.FusedMultiplyAdd(xhat, -sumDX, d, d);
            var dx = dinput.Slice(t * C, C);
            TensorPrimitives.FusedMultiplyAdd(d, rs, dx, dx);
        }
    }

    /// <summary>Row-parallel LayerNorm forward over T rows (fixed chunks; same result for any thread count).</summary>
    public static void LayerNormForwardParallel(float[] output, float[] mean, float[] rstd, float[] input, int inputOffset,
                                                float[] weight, int wOffset, int bOffset, int T, int C, float eps)
    {
        ParallelRows(T, 256, (t0, t1) => LayerNormForward(output.AsSpan(t0 * C, (t1 - t0) * C), mean.AsSpan(t0, t1 - t0), rstd.AsSpan(t0, t1 - t0),
            input.AsSpan(inputOffset + t0 * C, (t1 - t0) * C), weight.AsSpan(wOffset, C), weight.AsSpan(bOffset, C), t1 - t0, C, eps));
    }

    // ---------------- GELU (exact, erf form) ----------------

    private const float InvSqrt2 = 0.70710678118654752f;
    private const float InvSqrt2Pi = 0.39894228040143268f;

    /// <summary>erf(x) to about 1.2e-7 absolute (Numerical Recipes' erfc Chebyshev fit), in float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Erf(float x)
    {
        float z = MathF.Abs(x);
        float t = 1f / (1f + 0.5f * z);
        float r = t * MathF.Exp(-z * z - 1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f +
                  t * (-0.18628806f + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f +
                  t * (-0.82215223f + t * 0.17087277f)))))))));
        return x >= 0 ? 1f - r : r - 1f;
    }

    /// <summary>Eight lanes of <see cref="Erf(float)"/> (same fit, vector exp).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Erf(Vector256<float> x)
    {
        var z = Vector256.Abs(x);
        var one = Vector256.Create(1f);
        var t = one / (one + Vector256.Create(0.5f) * z);
        var p = Vector256.Create(0.17087277f);
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(-0.82215223f));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(1.48851587f));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(-1.13520398f));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(0.27886807f));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(-0.18628806f));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(0.09678418f));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(0.37409196f));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(1.00002368f));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(-1.26551223f));
        var r = t * Vector256.Exp(p - z * z);
        return Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, Vector256<float>.Zero), one - r, r - one);
    }

    /// <summary>out = x * 0.5 * (1 + erf(x / sqrt 2)).</summary>
    public static void GeluForward(Span<float> output, ReadOnlySpan<float> input, int N)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var c = Vector256.Create(InvSqrt2);
            var half = Vector256.Create(0.5f);
            var one = Vector256.Create(1f);
            for (; i <= N - 8; i += 8)
            {
                var x = Vector256.Create(input.Slice(i, 8));
                (half * x * (one + Erf(x * c))).CopyTo(output.Slice(i, 8));
            }
        }
        for (; i < N; i++)
        {
            float x = input[i];
            output[i] = 0.5f * x * (1f + Erf(x * InvSqrt2));
        }
    }

    /// <summary>dinput += doutput * gelu'(x), gelu'(x) = Phi(x) + x phi(x).</summary>
    public static void GeluBackward(Span<float> dinput, ReadOnlySpan<float> input, ReadOnlySpan<float> doutput, int N)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i <= N - 8; i += 8)
            {
                var g = GeluDerivative(Vector256.Create(input.Slice(i, 8)));
                (Vector256.Create(dinput.Slice(i, 8)) + Vector256.Create(doutput.Slice(i, 8)) * g).CopyTo(dinput.Slice(i, 8));
            }
        for (; i < N; i++) dinput[i] += doutput[i] * GeluDerivative(input[i]);
    }

    /// <summary>grad[i] *= gelu'(x[i]), in place (the backward pass through GELU when nothing else adds into grad).</summary>
    public static void GeluBackwardInPlace(Span<float> grad, ReadOnlySpan<float> input, int N)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i <= N - 8; i += 8)
                (Vector256.Create(grad.Slice(i, 8)) * GeluDerivative(Vector256.Create(input.Slice(i, 8)))).CopyTo(grad.Slice(i, 8));
        for (; i < N; i++) grad[i] *= GeluDerivative(input[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float GeluDerivative(float x) =>
        0.5f * (1f + Erf(x * InvSqrt2)) + x * InvSqrt2Pi * MathF.Exp(-0.5f * x * x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> GeluDerivative(Vector256<float> x)
    {
        var half = Vector256.Create(0.5f);
        var cdf = half * (Vector256.Create(1f) + Erf(x * Vector256.Create(InvSqrt2)));
        var pdf = Vector256.Create(InvSqrt2Pi) * Vector256.Exp(-half * x * x);
        return cdf + x * pdf;
    }

    // ---------------- bias ----------------

    /// <summary>out (T,C) += bias (C) on every row.</summary>
    public static void AddBias(Span<float> output, ReadOnlySpan<float> bias, int T, int C)
    {
        for (int t = 0; t < T; t++) TensorPrimitives.Add(output.Slice(t * C, C), bias, output.Slice(t * C, C));
    }

    /// <summary>dbias (C) += column sums of dout (T,C).</summary>
    public static void BiasBackward(Span<float> dbias, ReadOnlySpan<float> doutput, int T, int C)
    {
        for (int t = 0; t < T; t++) TensorPrimitives.Add(dbias, doutput.Slice(t * C, C), dbias);
    }

    // ---------------- dropout ----------------

    /// <summary>
    /// Counter-based dropout: element i of stream <paramref name="key"/> is kept when hash(key, i) is above the drop
    /// probability; kept values are scaled by 1/(1-p). The same (key, i) gives the same decision in forward and backward,
    /// on any thread, so no mask is stored.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Keep(ulong key, long i, uint threshold)
    {
        ulong z = PairHash(key, i >> 1);
        return (uint)((i & 1) == 0 ? z >> 32 : z) >= threshold;
    }

    /// <summary>One 64-bit SplitMix hash per pair of element ids (2j, 2j+1): the high half decides the even id, the low half
    /// the odd one, so a bulk pass hashes once per two elements.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong PairHash(ulong key, long pair) => SplitMix(key + (ulong)pair * 0x9E3779B97F4A7C15UL);

    /// <summary>SplitMix64's finaliser: a bijective 64-bit mix whose output bits each depend on every input bit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SplitMix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public static uint Threshold(float p) => p <= 0 ? 0u : (uint)Math.Min(uint.MaxValue, (double)p * 4294967296.0);

    /// <summary>x[i] = keep ? x[i] / (1-p) : 0 for i in [0,N), element ids base+i. Used forward (on activations) and backward (on gradients).</summary>
    public static void Dropout(Span<float> x, ulong key, long baseIndex, float p)
    {
        if (p <= 0) return;
        DropoutInto(x, x, key, baseIndex, p);
    }

    /// <summary>dst[i] = keep(base+i) ? src[i] / (1-p) : 0 (dst may be src); decisions equal to <see cref="Keep"/>'s, one hash per two elements.</summary>
    public static void DropoutInto(ReadOnlySpan<float> src, Span<float> dst, ulong key, long baseIndex, float p)
    {
        uint th = Threshold(p);
        float scale = 1f / (1f - p);
        int n = src.Length, i = 0;
        long g = baseIndex;
        if (n > 0 && (g & 1) != 0) { dst[0] = Keep(key, g, th) ? src[0] * scale : 0f; i = 1; g++; }
        for (; i + 1 < n; i += 2, g += 2)
        {
            ulong z = PairHash(key, g >> 1);
            dst[i] = (uint)(z >> 32) >= th ? src[i] * scale : 0f;
            dst[i + 1] = (uint)z >= th ? src[i + 1] * scale : 0f;
        }
        if (i < n) dst[i] = Keep(key, g, th) ? src[i] * scale : 0f;
    }

    /// <summary>Splits [0,T) into fixed chunks and runs them in parallel (results do not depend on scheduling).</summary>
    public static void ParallelRows(int T, int chunk, Action<int, int> body)
    {
        int chunks = (T + chunk - 1) / chunk;
        if (chunks <= 1) { if (T > 0) body(0, T); return; }
        Parallel.For(0, chunks, c => body(c * chunk, Math.Min(T, (c + 1) * chunk)));
    }

    /// <summary>
    /// A deterministic 31-bit seed from three integers (SplitMix64 finalizer). Unlike HashCode.Combine, which .NET
    /// randomizes per process, it is the same in every process, so a resumed run or a re-run evaluation draws the same.
    /// </summary>
    public static int StableSeed(int a, int b, int c)
    {
        ulong z = SplitMix(((ulong)(uint)a << 32 | (uint)b) ^ ((ulong)(uint)c * 0x9E3779B97F4A7C15UL));
        return (int)(z & int.MaxValue);
    }

    /// <summary>A 64-bit key for one dropout site: (step seed, site, row).</summary>
    public static ulong Key(ulong seed, int site, int row)
    {
        ulong z = seed ^ ((ulong)(uint)site << 40) ^ ((ulong)(uint)row * 0xD1B54A32D192ED03UL);
        z = (z ^ (z >> 33)) * 0xFF51AFD7ED558CCDUL;
        z = (z ^ (z >> 33)) * 0xC4CEB9FE1A85EC53UL;
        return z ^ (z >> 33);
    }
}
