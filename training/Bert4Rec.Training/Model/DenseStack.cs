// A stack of dense layers y = x W + b over the flat parameter buffer (W row-major (in, out) at PREFIX.l.w, b at PREFIX.l.b),
// ReLU after each layer, or after each but the last: the MLP towers of the feature models, forward and backward.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Kernels;

namespace Bert4Rec.Training.Model;

internal sealed class DenseStack
{
    private readonly int[] _sizes, _w, _b;
    private readonly bool _reluLast;
    /// <summary>Acts[0]: the input (rows of <see cref="InputSize"/>), written by the caller; Acts[l+1]: layer l's output.</summary>
    public float[][] Acts { get; }
    /// <summary>Grads[L]: the gradient of the output, written by the caller before <see cref="Backward"/>; Grads[0]: the input's.</summary>
    public float[][] Grads { get; }
    public int Layers => _w.Length;
    public int InputSize => _sizes[0];
    public int OutputSize => _sizes[^1];

    /// <param name="sizes">The input size, then each layer's output size.</param>
    public DenseStack(ParameterLayout layout, string prefix, int[] sizes, bool reluLast, int maxBatch)
    {
        _sizes = sizes; _reluLast = reluLast;
        int layers = sizes.Length - 1;
        _w = new int[layers]; _b = new int[layers];
        for (int l = 0; l < layers; l++)
        {
            var w = layout[$"{prefix}.{l}.w"];
            if (w.Shape[0] != sizes[l] || w.Shape[1] != sizes[l + 1]) throw new ArgumentException($"{prefix}.{l}.w is ({w.Shape[0]},{w.Shape[1]}), not ({sizes[l]},{sizes[l + 1]})");
            _w[l] = checked((int)w.Offset); _b[l] = checked((int)layout[$"{prefix}.{l}.b"].Offset);
        }
        Acts = sizes.Select(s => new float[maxBatch * s]).ToArray();
        Grads = sizes.Select(s => new float[maxBatch * s]).ToArray();
    }

    private bool Relu(int l) => _reluLast || l < Layers - 1;

    public void Forward(float[] parameters, int count)
    {
        for (int l = 0; l < Layers; l++)
        {
            int i = _sizes[l], o = _sizes[l + 1];
            var y = Acts[l + 1].AsSpan(0, count * o);
            Blas.Sgemm(false, false, count, o, i, 1f, Acts[l].AsSpan(0, count * i), i, parameters.AsSpan(_w[l], i * o), o, 0f, y, o);
            Elementwise.AddBias(y, parameters.AsSpan(_b[l], o), count, o);
            if (Relu(l)) for (int k = 0; k < y.Length; k++) if (y[k] < 0) y[k] = 0;
        }
    }

    /// <summary>From Grads[L] back to Grads[0], adding the weights' and biases' gradients into <paramref name="gradients"/>
    /// (Grads[l] of the ReLU layers is overwritten with the pre-activation gradient on the way).</summary>
    public void Backward(float[] parameters, float[] gradients, int count)
    {
        for (int l = Layers - 1; l >= 0; l--)
        {
            int i = _sizes[l], o = _sizes[l + 1];
            var y = Acts[l + 1].AsSpan(0, count * o);
            var da = Grads[l + 1].AsSpan(0, count * o);
            if (Relu(l)) for (int k = 0; k < da.Length; k++) if (y[k] <= 0) da[k] = 0;
            Blas.Sgemm(true, false, i, o, count, 1f, Acts[l].AsSpan(0, count * i), i, da, o, 1f, gradients.AsSpan(_w[l], i * o), o);
            Elementwise.BiasBackward(gradients.AsSpan(_b[l], o), da, count, o);
            Blas.Sgemm(false, true, count, i, o, 1f, da, o, parameters.AsSpan(_w[l], i * o), o, 0f, Grads[l].AsSpan(0, count * i), i);
        }
    }
}
