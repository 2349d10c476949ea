// The pieces NeuMF and DeepFM share: the ReLU MLP over a batch of input rows (layers mlp.l.w / mlp.l.b of the layout) with
// its backward, the same MLP over every item for one user (first layer split into an item part and a user part), the
// initialisation, and the binary cross-entropy of a logit.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Kernels;

namespace Bert4Rec.Training.Model;

public sealed class ReluTower
{
    private readonly int _L;
    private readonly int[] _outs, _wOff, _bOff;
    /// <summary>Acts[0] (B, in0) is the input the caller writes; Acts[l+1] = ReLU(Acts[l] W_l + b_l).</summary>
    public float[][] Acts { get; }
    /// <summary>The gradients of the same: the caller writes DActs[L]; <see cref="Backward"/> leaves dL/dinput in DActs[0].</summary>
    public float[][] DActs { get; }
    public int Input { get; }
    /// <summary>Layer l's output size.</summary>
    public IReadOnlyList<int> Outputs => _outs;

    public ReluTower(ParameterLayout layout, int input, int[] outputs, int maxBatch)
    {
        _L = outputs.Length; _outs = outputs; Input = input;
        _wOff = Enumerable.Range(0, _L).Select(l => checked((int)layout[$"mlp.{l}.w"].Offset)).ToArray();
        _bOff = Enumerable.Range(0, _L).Select(l => checked((int)layout[$"mlp.{l}.b"].Offset)).ToArray();
        Acts = new float[_L + 1][]; DActs = new float[_L + 1][];
        for (int l = 0; l <= _L; l++)
        {
            int w = l == 0 ? input : outputs[l - 1];
            Acts[l] = new float[maxBatch * w]; DActs[l] = new float[maxBatch * w];
        }
    }

    /// <summary>Layer l's weights (in_l, out_l) within the flat parameters.</summary>
    public Span<float> Weights(float[] parameters, int l) => parameters.AsSpan(_wOff[l], (l == 0 ? Input : _outs[l - 1]) * _outs[l]);

    public void Forward(float[] parameters, int count)
    {
        int inSize = Input;
        for (int l = 0; l < _L; l++)
        {
            int o = _outs[l];
            var y = Acts[l + 1].AsSpan(0, count * o);
            Blas.Sgemm(false, false, count, o, inSize, 1f, Acts[l].AsSpan(0, count * inSize), inSize, parameters.AsSpan(_wOff[l], inSize * o), o, 0f, y, o);
            Elementwise.AddBias(y, parameters.AsSpan(_bOff[l], o), count, o);
            Relu(y);
            inSize = o;
        }
    }

    /// <summary>Last layer first: da = dx ⊙ [y > 0], dW += x^T da, db += Σ da, dx_prev = da W^T.</summary>
    public void Backward(float[] parameters, float[] gradients, int count)
    {
        for (int l = _L - 1; l >= 0; l--)
        {
            int o = _outs[l], inSize = l == 0 ? Input : _outs[l - 1];
            var y = Acts[l + 1].AsSpan(0, count * o);
            var da = DActs[l + 1].AsSpan(0, count * o);
            for (int k = 0; k < da.Length; k++) if (y[k] <= 0) da[k] = 0;
            Blas.Sgemm(true, false, inSize, o, count, 1f, Acts[l].AsSpan(0, count * inSize), inSize, da, o, 1f, gradients.AsSpan(_wOff[l], inSize * o), o);
            Elementwise.BiasBackward(gradients.AsSpan(_bOff[l], o), da, count, o);
            Blas.Sgemm(false, true, count, inSize, o, 1f, da, o, parameters.AsSpan(_wOff[l], inSize * o), o, 0f, DActs[l].AsSpan(0, count * inSize), inSize);
        }
    }

    /// <summary>Buffers for <see cref="OverItems"/>: one (n, out_l) per layer.</summary>
    public float[][] ItemBuffers(int n) => _outs.Select(o => new float[n * o]).ToArray();

    /// <summary>The tower over n items for one user, its first layer split: ReLU(itemPart (n, out_0) + userPart (out_0)) (itemPart
    /// holds b_0), then the other layers; returns the last layer's (n, out_L) rows.</summary>
    public float[] OverItems(float[] parameters, ReadOnlySpan<float> itemPart, ReadOnlySpan<float> userPart, int n, float[][] hidden)
    {
        int o0 = _outs[0];
        var h0 = hidden[0];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < o0; c++) { float v = itemPart[i * o0 + c] + userPart[c]; h0[i * o0 + c] = v > 0 ? v : 0; }
        for (int l = 1; l < _L; l++)
        {
            int inSize = _outs[l - 1], o = _outs[l];
            Blas.Sgemm(false, false, n, o, inSize, 1f, hidden[l - 1], inSize, parameters.AsSpan(_wOff[l], inSize * o), o, 0f, hidden[l], o);
            Elementwise.AddBias(hidden[l], parameters.AsSpan(_bOff[l], o), n, o);
            Relu(hidden[l]);
        }
        return hidden[_L - 1];
    }

    /// <summary>Adds b_0 to (rows, out_0) first-layer products.</summary>
    public void AddFirstBias(float[] parameters, Span<float> x, int rows) => Elementwise.AddBias(x, parameters.AsSpan(_bOff[0], _outs[0]), rows, _outs[0]);

    private static void Relu(Span<float> y) { for (int k = 0; k < y.Length; k++) if (y[k] < 0) y[k] = 0; }

    /// <summary>The feature models' initialisation: embeddings N(0, 0.01) as the NCF paper, <paramref name="dense"/> matrices
    /// Glorot-uniform, biases (names ending ".b") 0.</summary>
    public static void Initialize(ParameterLayout layout, float[] parameters, ulong seed, Func<ParameterTensor, bool> dense)
    {
        var rng = new Random(unchecked((int)(seed ^ (seed >> 32))));
        Array.Clear(parameters);
        foreach (var t in layout.Tensors)
        {
            var s = parameters.AsSpan(checked((int)t.Offset), checked((int)t.Size));
            if (t.Name.EndsWith(".b", StringComparison.Ordinal)) continue;
            bool isDense = dense(t);
            double limit = isDense ? Math.Sqrt(6.0 / (t.Shape[0] + t.Shape[1])) : 0;
            for (int i = 0; i < s.Length; i++)
            {
                if (isDense) { s[i] = (float)((rng.NextDouble() * 2 - 1) * limit); continue; }
                double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
                s[i] = (float)(0.01 * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
            }
        }
    }

    /// <summary>Binary cross-entropy of logit z against label y, stable for any z.</summary>
    public static double Bce(float z, float y) => Math.Max(z, 0) - z * y + Math.Log(1 + Math.Exp(-Math.Abs(z)));
}
