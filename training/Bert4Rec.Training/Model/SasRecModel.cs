// SASRec (Kang & McAuley 2018) as DESIGN.md gives it, trained with cross-entropy over all items at every position
// (Klenitskiy & Vasilev 2023): causal self-attention in the original pre-LN block layout, where queries come from
// LN_a(h) and keys and values from h itself; point-wise feed-forward of inner size d with ReLU; a final LayerNorm.
// Forward and backward over the packed (non-pad) tokens; packing, the tied output layer and the loss are SequenceModel's.
using System.Numerics.Tensors;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Kernels;

namespace Bert4Rec.Training.Model;

public sealed unsafe class SasRecModel : SequenceModel
{
    private readonly int _h, _inner;
    private readonly float _embScale;
    private readonly Block[] _blocks;
    private readonly BlockOffsets[] _bo;
    private readonly int _tok, _pos, _lnLastG, _lnLastB;
    private readonly float[] _h0;                                  // (T,d) block 0 input
    private float[] _meanO = [], _rstdO = [];                     // final LayerNorm statistics of the prediction rows
    private readonly float[] _dtmp, _dwide, _dqkv, _dattn;        // backward scratch

    private sealed class Block
    {
        // In (T,d) -> A = LN_a(In) -> Qkv (T,3d): q from A, k|v from In -> Attn (T,d) -> Res1 = A + drop(Attn W_o + b_o)
        // -> F = LN_f(Res1) -> F1 = F W_1 + b_1 (T,inner) -> G = drop(ReLU(F1)) -> Out = F + drop(G W_2 + b_2)
        public required float[] In, A, MeanA, RstdA, Qkv, Probs, Attn, Res1, F, MeanF, RstdF, F1, G, Out;
    }

    private readonly record struct BlockOffsets(int LnAG, int LnAB, int QW, int QB, int KvW, int KvB, int OutW, int OutB,
                                                int LnFG, int LnFB, int W1, int B1, int W2, int B2);

    // dropout sites: 0 = embeddings; block l: 1+4l attention probabilities, 2+4l attention projection, 3+4l inner, 4+4l output
    private static int Site(int l, int k) => 1 + 4 * l + k;

    public SasRecModel(ModelConfig config, int maxBatch, int threads = 0) : base(config, maxBatch, threads)
    {
        if (config.Kind != ModelKind.SasRec) throw new ArgumentException($"SasRecModel needs a sasrec config, got {config.Kind.Name()}");
        _h = config.Heads; _inner = config.InnerSize; _embScale = MathF.Sqrt(config.Hidden);
        _tok = Off("tok_emb"); _pos = Off("pos_emb"); _lnLastG = Off("ln_last.g"); _lnLastB = Off("ln_last.b");
        _bo = Enumerable.Range(0, config.Layers).Select(l =>
        {
            string p = $"layers.{l}.";
            return new BlockOffsets(Off(p + "ln_attn.g"), Off(p + "ln_attn.b"), Off(p + "attn.q.w"), Off(p + "attn.q.b"), Off(p + "attn.kv.w"),
                Off(p + "attn.kv.b"), Off(p + "attn.out.w"), Off(p + "attn.out.b"), Off(p + "ln_ffn.g"), Off(p + "ln_ffn.b"),
                Off(p + "ffn.w1"), Off(p + "ffn.b1"), Off(p + "ffn.w2"), Off(p + "ffn.b2"));
        }).ToArray();
        int T = maxBatch * _n, d = _d;
        long probs = (long)maxBatch * _h * _n * _n;
        if (probs > int.MaxValue) throw new ArgumentException($"attention buffer for batch {maxBatch} x length {_n} is too large");
        _h0 = new float[T * d];
        _blocks = new Block[config.Layers];
        for (int l = 0; l < config.Layers; l++)
            _blocks[l] = new Block
            {
                In = l == 0 ? _h0 : _blocks[l - 1].Out,
                A = new float[T * d], MeanA = new float[T], RstdA = new float[T], Qkv = new float[T * 3 * d], Probs = new float[probs],
                Attn = new float[T * d], Res1 = new float[T * d], F = new float[T * d], MeanF = new float[T], RstdF = new float[T],
                F1 = new float[T * _inner], G = new float[T * _inner], Out = new float[T * d],
            };
        _dtmp = new float[T * d]; _dwide = new float[T * _inner]; _dqkv = new float[T * 3 * d]; _dattn = new float[T * d];
    }

    protected override float[] FinalHidden => _blocks[^1].Out;

    protected override void Forward(int batch, bool train, ulong seed)
    {
        int T = _T, d = _d, inner = _inner;
        float[] P = Parameters;
        var cfg = Config;
        float hp = train ? cfg.HiddenDropout : 0f, ap = train ? cfg.AttentionDropout : 0f;
        // h0 = dropout(E[x] sqrt(d) + P[t])
        for (int t = 0; t < T; t++)
            TensorPrimitives.MultiplyAdd(P.AsSpan(_tok + _tokId[t] * d, d), _embScale, P.AsSpan(_pos + _tokPos[t] * d, d), _h0.AsSpan(t * d, d));
        if (hp > 0) DropRows(_h0, d, batch, seed, 0, hp);

        for (int l = 0; l < cfg.Layers; l++)
        {
            var L = _blocks[l];
            var o = _bo[l];
            Elementwise.LayerNormForwardParallel(L.A, L.MeanA, L.RstdA, L.In, 0, P, o.LnAG, o.LnAB, T, d, cfg.LayerNormEpsilon);
            LinearStrided(L.Qkv, 0, 3 * d, L.A, o.QW, o.QB, T, d, d);
            LinearStrided(L.Qkv, d, 3 * d, L.In, o.KvW, o.KvB, T, d, 2 * d);
            AttentionForwardRows(L.Attn, L.Probs, L.Qkv, batch, _h, ap, seed, Site(l, 0), causal: true);
            Linear(L.Res1, L.Attn, o.OutW, o.OutB, T, d, d);
            if (hp > 0) DropRows(L.Res1, d, batch, seed, Site(l, 1), hp);
            TensorPrimitives.Add(L.Res1.AsSpan(0, T * d), L.A.AsSpan(0, T * d), L.Res1.AsSpan(0, T * d));
            Elementwise.LayerNormForwardParallel(L.F, L.MeanF, L.RstdF, L.Res1, 0, P, o.LnFG, o.LnFB, T, d, cfg.LayerNormEpsilon);
            Linear(L.F1, L.F, o.W1, o.B1, T, d, inner);
            TensorPrimitives.Max(L.F1.AsSpan(0, T * inner), 0f, L.G.AsSpan(0, T * inner));
            if (hp > 0) DropRows(L.G, inner, batch, seed, Site(l, 2), hp);
            Linear(L.Out, L.G, o.W2, o.B2, T, inner, d);
            if (hp > 0) DropRows(L.Out, d, batch, seed, Site(l, 3), hp);
            TensorPrimitives.Add(L.Out.AsSpan(0, T * d), L.F.AsSpan(0, T * d), L.Out.AsSpan(0, T * d));
        }
    }

    // ---------------------------------------------------------------- head: z = LN_last(h)

    protected override void AllocateHead(int cap) { _meanO = new float[cap]; _rstdO = new float[cap]; }

    protected override void HeadForward(int M) =>
        Elementwise.LayerNormForwardParallel(_z, _meanO, _rstdO, _hm, 0, Parameters, _lnLastG, _lnLastB, M, _d, Config.LayerNormEpsilon);

    protected override void HeadBackward(int M)
    {
        // _dz holds dz; d(hm) replaces it (LayerNormRowsBackward adds, so it goes through _dattn, (T,d) with M <= T, as scratch)
        int d = _d;
        Array.Clear(_dattn, 0, M * d);
        LayerNormRowsBackward(_dattn, _lnLastG, _lnLastB, _dz, _hm, _meanO, _rstdO, M);
        Array.Copy(_dattn, _dz, M * d);
    }

    /// <summary>An empty history: every position is [PAD], whose state is 0 after every block, so z = LN_last(0) = its bias.</summary>
    protected override void EmptyRowState(Span<float> z, int row) => Parameters.AsSpan(_lnLastB, _d).CopyTo(z);

    // ---------------------------------------------------------------- backward

    protected override void BackwardEncoder(int batch, ulong seed)
    {
        int T = _T, d = _d, inner = _inner;
        var cfg = Config;
        float hp = cfg.HiddenDropout, ap = cfg.AttentionDropout;
        float[] G = Gradients;
        for (int l = cfg.Layers - 1; l >= 0; l--)
        {
            var L = _blocks[l];
            var o = _bo[l];
            // Out = F + drop(G W2 + b2): d(F) gets dOut (kept in _dh); the projection gets drop(dOut)
            Array.Copy(_dh, _dtmp, T * d);
            if (hp > 0) DropRows(_dtmp, d, batch, seed, Site(l, 3), hp);
            LinearBackward(_dwide, false, _dtmp, L.G, o.W2, o.B2, T, inner, d);            // _dwide = d(G)
            if (hp > 0) DropRows(_dwide, inner, batch, seed, Site(l, 2), hp);               // d(ReLU(F1))
            var dw = _dwide.AsSpan(0, T * inner);
            var f1 = L.F1.AsSpan(0, T * inner);
            for (int i = 0; i < dw.Length; i++) if (f1[i] <= 0f) dw[i] = 0f;                // d(F1)
            LinearBackward(_dh, true, _dwide, L.F, o.W1, o.B1, T, d, inner);                // _dh = d(F) total
            // F = LN_f(Res1)
            Array.Clear(_dtmp, 0, T * d);
            LayerNormRowsBackward(_dtmp, o.LnFG, o.LnFB, _dh, L.Res1, L.MeanF, L.RstdF, T); // _dtmp = d(Res1)
            // Res1 = A + drop(Attn W_o + b_o)
            Array.Copy(_dtmp, _dh, T * d);                                                   // _dh = d(A), residual part
            if (hp > 0) DropRows(_dtmp, d, batch, seed, Site(l, 1), hp);
            LinearBackward(_dattn, false, _dtmp, L.Attn, o.OutW, o.OutB, T, d, d);          // _dattn = d(Attn)
            Array.Clear(_dqkv, 0, T * 3 * d);
            AttentionBackwardRows(_dqkv, _dattn, L.Qkv, L.Probs, batch, _h, ap, seed, Site(l, 0));
            LinearBackwardStrided(_dh, true, _dqkv, 0, 3 * d, L.A, o.QW, o.QB, T, d, d);      // _dh = d(A) total
            // A = LN_a(In); k|v = In W_kv + b_kv
            Array.Clear(_dtmp, 0, T * d);
            LayerNormRowsBackward(_dtmp, o.LnAG, o.LnAB, _dh, L.In, L.MeanA, L.RstdA, T);
            LinearBackwardStrided(_dtmp, true, _dqkv, d, 3 * d, L.In, o.KvW, o.KvB, T, d, 2 * d);
            Array.Copy(_dtmp, _dh, T * d);                                                   // _dh = d(In)
        }
        // h0 = drop(E[x] sqrt(d) + P[t])
        if (hp > 0) DropRows(_dh, d, batch, seed, 0, hp);
        for (int t = 0; t < T; t++)
        {
            var de = _dh.AsSpan(t * d, d);
            var gt = G.AsSpan(_tok + _tokId[t] * d, d);
            TensorPrimitives.MultiplyAdd(de, _embScale, gt, gt);
            var gp = G.AsSpan(_pos + _tokPos[t] * d, d);
            TensorPrimitives.Add(gp, de, gp);
        }
    }
}
