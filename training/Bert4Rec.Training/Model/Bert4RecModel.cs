// The BERT4Rec model of DESIGN.md: bidirectional post-LN transformer encoder and the GELU/LayerNorm output transform,
// forward and backward over the packed tokens. Packing, the output layer and the loss are SequenceModel's.
using System.Numerics.Tensors;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Kernels;

namespace Bert4Rec.Training.Model;

public sealed unsafe class Bert4RecModel : SequenceModel
{
    private readonly int _h, _inner;
    private readonly LayerBuffers[] _layers;
    private readonly LayerOffsets[] _lo;
    private readonly int _tok, _pos, _lnEmbG, _lnEmbB, _headW, _headB, _lnOutG, _lnOutB;
    // embedding activations
    private readonly float[] _e, _mean0, _rstd0, _h0;
    // output head activations (grown with the prediction rows)
    private float[] _u = [], _gu = [], _meanO = [], _rstdO = [], _du = [], _dgu = [];
    // backward scratch
    private readonly float[] _dtmp, _dwide, _dqkv, _dattn;

    private sealed class LayerBuffers
    {
        public required float[] In, Qkv, Probs, Attn, Res1, Mean1, Rstd1, A, F1, G, Res2, Mean2, Rstd2, Out;
    }

    private readonly record struct LayerOffsets(int QkvW, int QkvB, int OutW, int OutB, int Ln1G, int Ln1B, int W1, int B1, int W2, int B2, int Ln2G, int Ln2B);

    public Bert4RecModel(ModelConfig config, int maxBatch, int threads = 0) : base(config, maxBatch, threads)
    {
        if (config.Kind != ModelKind.Bert4Rec) throw new ArgumentException($"Bert4RecModel needs a bert4rec config, got {config.Kind.Name()}");
        _h = config.Heads; _inner = config.InnerSize;
        _tok = Off("tok_emb"); _pos = Off("pos_emb"); _lnEmbG = Off("ln_emb.g"); _lnEmbB = Off("ln_emb.b");
        _headW = Off("head.w"); _headB = Off("head.b"); _lnOutG = Off("ln_out.g"); _lnOutB = Off("ln_out.b");
        _lo = Enumerable.Range(0, config.Layers).Select(l =>
        {
            string p = $"layers.{l}.";
            return new LayerOffsets(Off(p + "attn.qkv.w"), Off(p + "attn.qkv.b"), Off(p + "attn.out.w"), Off(p + "attn.out.b"), Off(p + "ln1.g"), Off(p + "ln1.b"),
                Off(p + "ffn.w1"), Off(p + "ffn.b1"), Off(p + "ffn.w2"), Off(p + "ffn.b2"), Off(p + "ln2.g"), Off(p + "ln2.b"));
        }).ToArray();
        int T = maxBatch * _n, d = _d;
        _e = new float[T * d]; _mean0 = new float[T]; _rstd0 = new float[T]; _h0 = new float[T * d];
        _layers = new LayerBuffers[config.Layers];
        long probs = (long)maxBatch * _h * _n * _n;
        if (probs > int.MaxValue) throw new ArgumentException($"attention buffer for batch {maxBatch} x length {_n} is too large");
        for (int l = 0; l < config.Layers; l++)
            _layers[l] = new LayerBuffers
            {
                In = l == 0 ? _h0 : _layers[l - 1].Out,
                Qkv = new float[T * 3 * d], Probs = new float[probs], Attn = new float[T * d], Res1 = new float[T * d],
                Mean1 = new float[T], Rstd1 = new float[T], A = new float[T * d], F1 = new float[T * _inner], G = new float[T * _inner],
                Res2 = new float[T * d], Mean2 = new float[T], Rstd2 = new float[T], Out = new float[T * d],
            };
        _dtmp = new float[T * d]; _dwide = new float[T * _inner];
        _dqkv = new float[T * 3 * d]; _dattn = new float[T * d];
    }

    // ---------------------------------------------------------------- forward

    protected override float[] FinalHidden => _layers[^1].Out;

    protected override void Forward(int batch, bool train, ulong seed)
    {
        int T = _T, d = _d;
        float[] P = Parameters;
        var cfg = Config;
        float hp = train ? cfg.HiddenDropout : 0f, ap = train ? cfg.AttentionDropout : 0f;
        for (int t = 0; t < T; t++)
            TensorPrimitives.Add(P.AsSpan(_tok + _tokId[t] * d, d), P.AsSpan(_pos + _tokPos[t] * d, d), _e.AsSpan(t * d, d));
        Elementwise.LayerNormForwardParallel(_h0, _mean0, _rstd0, _e, 0, P, _lnEmbG, _lnEmbB, T, d, cfg.LayerNormEpsilon);
        if (hp > 0) DropRows(_h0, d, batch, seed, site: 0, hp);

        for (int l = 0; l < cfg.Layers; l++)
        {
            var L = _layers[l];
            var o = _lo[l];
            Linear(L.Qkv, L.In, o.QkvW, o.QkvB, T, d, 3 * d);
            AttentionForwardRows(L.Attn, L.Probs, L.Qkv, batch, _h, ap, seed, 1 + 3 * l, causal: false);
            Linear(L.Res1, L.Attn, o.OutW, o.OutB, T, d, d);
            if (hp > 0) DropRows(L.Res1, d, batch, seed, 2 + 3 * l, hp);
            TensorPrimitives.Add(L.Res1.AsSpan(0, T * d), L.In.AsSpan(0, T * d), L.Res1.AsSpan(0, T * d));
            Elementwise.LayerNormForwardParallel(L.A, L.Mean1, L.Rstd1, L.Res1, 0, P, o.Ln1G, o.Ln1B, T, d, cfg.LayerNormEpsilon);
            Linear(L.F1, L.A, o.W1, o.B1, T, d, _inner);
            Elementwise.ParallelRows(T, 256, (t0, t1) => Elementwise.GeluForward(L.G.AsSpan(t0 * _inner, (t1 - t0) * _inner), L.F1.AsSpan(t0 * _inner, (t1 - t0) * _inner), (t1 - t0) * _inner));
            Linear(L.Res2, L.G, o.W2, o.B2, T, _inner, d);
            if (hp > 0) DropRows(L.Res2, d, batch, seed, 3 + 3 * l, hp);
            TensorPrimitives.Add(L.Res2.AsSpan(0, T * d), L.A.AsSpan(0, T * d), L.Res2.AsSpan(0, T * d));
            Elementwise.LayerNormForwardParallel(L.Out, L.Mean2, L.Rstd2, L.Res2, 0, P, o.Ln2G, o.Ln2B, T, d, cfg.LayerNormEpsilon);
        }
    }

    // ---------------------------------------------------------------- output head: z = LN_out(GELU(h W_P + b_P))

    protected override void AllocateHead(int cap)
    {
        _u = new float[cap * _d]; _gu = new float[cap * _d]; _du = new float[cap * _d]; _dgu = new float[cap * _d];
        _meanO = new float[cap]; _rstdO = new float[cap];
    }

    protected override void HeadForward(int M)
    {
        int d = _d;
        Linear(_u, _hm, _headW, _headB, M, d, d);
        Elementwise.GeluForward(_gu, _u, M * d);
        Elementwise.LayerNormForwardParallel(_z, _meanO, _rstdO, _gu, 0, Parameters, _lnOutG, _lnOutB, M, d, Config.LayerNormEpsilon);
    }

    protected override void HeadBackward(int M)
    {
        int d = _d;
        float[] G = Gradients;
        Array.Clear(_dgu, 0, M * d);
        Elementwise.LayerNormBackward(_dgu, G.AsSpan(_lnOutG, d), G.AsSpan(_lnOutB, d), _dz, _gu, Parameters.AsSpan(_lnOutG, d), _meanO, _rstdO, M, d);
        Array.Clear(_du, 0, M * d);
        Elementwise.GeluBackward(_du, _u, _dgu, M * d);
        LinearBackward(_dz, false, _du, _hm, _headW, _headB, M, d, d);      // _dz now holds d(hm)
    }

    // ---------------------------------------------------------------- backward

    protected override void BackwardEncoder(int batch, ulong seed)
    {
        int T = _T, d = _d;
        var cfg = Config;
        float hp = cfg.HiddenDropout, ap = cfg.AttentionDropout;
        float[] G = Gradients;

        // ---- transformer layers, last to first; _dh holds d(layer output)
        for (int l = cfg.Layers - 1; l >= 0; l--)
        {
            var L = _layers[l];
            var o = _lo[l];
            // h = LN2(res2)
            Array.Clear(_dtmp, 0, T * d);
            LayerNormRowsBackward(_dtmp, o.Ln2G, o.Ln2B, _dh, L.Res2, L.Mean2, L.Rstd2, T);
            // res2 = a + dropout(f2): d(a) = dres2 ; d(f2) = dropout(dres2)
            Array.Copy(_dtmp, _dh, T * d);                       // _dh = d(a) (residual part)
            if (hp > 0) DropRows(_dtmp, d, batch, seed, 3 + 3 * l, hp);   // _dtmp = d(f2)
            LinearBackward(_dwide, false, _dtmp, L.G, o.W2, o.B2, T, _inner, d);   // _dwide = d(g)
            // d(f1) = gelu'(f1) * d(g), in place
            Elementwise.ParallelRows(T, 256, (t0, t1) =>
                Elementwise.GeluBackwardInPlace(_dwide.AsSpan(t0 * _inner, (t1 - t0) * _inner), L.F1.AsSpan(t0 * _inner, (t1 - t0) * _inner), (t1 - t0) * _inner));
            LinearBackward(_dh, true, _dwide, L.A, o.W1, o.B1, T, d, _inner);      // _dh = d(a) total
            // a = LN1(res1)
            Array.Clear(_dtmp, 0, T * d);
            LayerNormRowsBackward(_dtmp, o.Ln1G, o.Ln1B, _dh, L.Res1, L.Mean1, L.Rstd1, T);
            // res1 = in + dropout(proj)
            Array.Copy(_dtmp, _dh, T * d);                       // _dh = d(in) residual part
            if (hp > 0) DropRows(_dtmp, d, batch, seed, 2 + 3 * l, hp);   // d(proj)
            LinearBackward(_dattn, false, _dtmp, L.Attn, o.OutW, o.OutB, T, d, d);
            Array.Clear(_dqkv, 0, T * 3 * d);
            AttentionBackwardRows(_dqkv, _dattn, L.Qkv, L.Probs, batch, _h, ap, seed, 1 + 3 * l);
            LinearBackward(_dh, true, _dqkv, L.In, o.QkvW, o.QkvB, T, d, 3 * d);   // _dh = d(in)
        }

        // ---- embeddings: h0 = dropout(LN_emb(e)), e = E[x] + P[t]
        if (hp > 0) DropRows(_dh, d, batch, seed, 0, hp);
        Array.Clear(_dtmp, 0, T * d);
        LayerNormRowsBackward(_dtmp, _lnEmbG, _lnEmbB, _dh, _e, _mean0, _rstd0, T);
        for (int t = 0; t < T; t++)
        {
            var de = _dtmp.AsSpan(t * d, d);
            var gt = G.AsSpan(_tok + _tokId[t] * d, d);
            TensorPrimitives.Add(gt, de, gt);
            var gp = G.AsSpan(_pos + _tokPos[t] * d, d);
            TensorPrimitives.Add(gp, de, gp);
        }
    }
}
