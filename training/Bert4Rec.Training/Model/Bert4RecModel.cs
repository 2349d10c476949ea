// The BERT4Rec model of DESIGN.md: forward and backward over one flat parameter buffer laid out by ParameterLayout.
// Sequences are left-padded; only non-pad tokens are packed and computed, and the output layer runs only where a
// prediction is asked for (masked positions in training, the last position at inference).
using System.Numerics.Tensors;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Kernels;

namespace Bert4Rec.Training.Model;

public sealed unsafe class Bert4RecModel : IDisposable
{
    public ModelConfig Config { get; }
    public ParameterLayout Layout { get; }
    /// <summary>All parameters, laid out by <see cref="Layout"/>.</summary>
    public float[] Parameters { get; }
    /// <summary>Gradients, same layout; zeroed at the start of each <see cref="TrainStep"/>.</summary>
    public float[] Gradients { get; }
    public int MaxBatch { get; }
    public int Threads { get; }

    private readonly int _d, _h, _n, _inner, _items, _vocab;
    private readonly int[] _off;            // offsets of named tensors, cached
    private readonly LayerBuffers[] _layers;
    // packing of the current batch
    private readonly int[] _rowStart, _rowLen;
    private readonly int[] _tokId, _tokPos;
    private int _T;
    // embedding activations
    private readonly float[] _e, _mean0, _rstd0, _h0;
    // output head activations (grown on demand)
    private float[] _hm = [], _u = [], _gu = [], _z = [], _meanO = [], _rstdO = [], _logits = [], _dz = [], _du = [], _dgu = [];
    private int[] _mTok = [], _mTarget = [];
    // backward scratch
    private readonly float[] _dh, _dtmp, _dwide, _dqkv, _dattn;

    private sealed class LayerBuffers
    {
        public required float[] In, Qkv, Probs, Attn, Res1, Mean1, Rstd1, A, F1, G, Res2, Mean2, Rstd2, Out;
    }

    public Bert4RecModel(ModelConfig config, int maxBatch, int threads = 0)
    {
        config.Validate();
        if (maxBatch < 1) throw new ArgumentOutOfRangeException(nameof(maxBatch), maxBatch, "must be >= 1");
        Config = config;
        Layout = new ParameterLayout(config);
        MaxBatch = maxBatch;
        Threads = threads > 0 ? threads : Environment.ProcessorCount;
        Parameters = new float[Layout.TotalSize];
        Gradients = new float[Layout.TotalSize];
        _d = config.Hidden; _h = config.Heads; _n = config.MaxLength; _inner = config.InnerSize;
        _items = config.ItemCount; _vocab = config.VocabSize;
        _off = Layout.Tensors.Select(t => checked((int)t.Offset)).ToArray();

        long maxT = (long)maxBatch * _n;
        if (maxT * _inner > int.MaxValue) throw new ArgumentException($"batch {maxBatch} x length {_n} is too large for one step");
        int T = (int)maxT, d = _d;
        _rowStart = new int[maxBatch]; _rowLen = new int[maxBatch];
        _tokId = new int[T]; _tokPos = new int[T];
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
        _dh = new float[T * d]; _dtmp = new float[T * d]; _dwide = new float[T * _inner];
        _dqkv = new float[T * 3 * d]; _dattn = new float[T * d];
        Blas.SetThreads(Threads);
    }

    private int Off(string name) => checked((int)Layout[name].Offset);

    /// <summary>Truncated normal (std 0.02, cut at 2 std) for matrices and embeddings; LayerNorm gain 1, every bias 0.</summary>
    public void InitializeParameters(ulong seed)
    {
        var rng = new Random(unchecked((int)(seed ^ (seed >> 32))));
        Array.Clear(Parameters);
        foreach (var t in Layout.Tensors)
        {
            var s = Parameters.AsSpan(checked((int)t.Offset), checked((int)t.Size));
            if (t.Name.EndsWith(".g", StringComparison.Ordinal)) s.Fill(1f);
            else if (t.Shape.Length == 2)
                for (int i = 0; i < s.Length; i++)
                {
                    double z;
                    do
                    {
                        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
                        z = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
                    } while (Math.Abs(z) > 2.0);
                    s[i] = (float)(0.02 * z);
                }
        }
    }

    // ---------------------------------------------------------------- packing

    private void Pack(ReadOnlySpan<int> inputIds, int batch)
    {
        if (batch < 1 || batch > MaxBatch) throw new ArgumentOutOfRangeException(nameof(batch), batch, $"batch must be in 1..{MaxBatch}");
        if (inputIds.Length != batch * _n) throw new ArgumentException($"inputIds has {inputIds.Length} ids; batch {batch} x length {_n} needs {batch * _n}");
        int T = 0;
        for (int b = 0; b < batch; b++)
        {
            var row = inputIds.Slice(b * _n, _n);
            int first = 0;
            while (first < _n && row[first] == ModelConfig.PadId) first++;
            _rowStart[b] = T;
            _rowLen[b] = _n - first;
            for (int t = first; t < _n; t++)
            {
                int id = row[t];
                if (id <= 0 || id >= _vocab)
                    throw new ArgumentException(id == 0
                        ? $"row {b}: [PAD] at position {t} after a real token (sequences must be left-padded)"
                        : $"row {b}, position {t}: id {id} is outside the vocabulary 0..{_vocab - 1}");
                _tokId[T] = id;
                _tokPos[T] = t;
                T++;
            }
        }
        _T = T;
    }

    // ---------------------------------------------------------------- forward

    private void Forward(int batch, bool train, ulong seed)
    {
        int T = _T, d = _d;
        float[] P = Parameters;
        var cfg = Config;
        float hp = train ? cfg.HiddenDropout : 0f, ap = train ? cfg.AttentionDropout : 0f;
        int tok = Off("tok_emb"), pos = Off("pos_emb");
        for (int t = 0; t < T; t++)
            TensorPrimitives.Add(P.AsSpan(tok + _tokId[t] * d, d), P.AsSpan(pos + _tokPos[t] * d, d), _e.AsSpan(t * d, d));
        Elementwise.LayerNormForwardParallel(_h0, _mean0, _rstd0, _e, 0, P, Off("ln_emb.g"), Off("ln_emb.b"), T, d, cfg.LayerNormEpsilon);
        if (hp > 0) DropRows(_h0, d, batch, seed, site: 0, hp);

        for (int l = 0; l < cfg.Layers; l++)
        {
            var L = _layers[l];
            string pre = $"layers.{l}.";
            Linear(L.Qkv, L.In, Off(pre + "attn.qkv.w"), Off(pre + "attn.qkv.b"), T, d, 3 * d);
            Blas.SetThreads(1);
            Parallel.For(0, batch, new ParallelOptions { MaxDegreeOfParallelism = Threads }, b =>
            {
                int s = _rowStart[b], len = _rowLen[b];
                if (len == 0) return;
                Attention.Forward(L.Attn.AsSpan(s * d, len * d), L.Probs.AsSpan(ProbOffset(b), _h * len * len),
                    L.Qkv.AsSpan(s * 3 * d, len * 3 * d), len, d, _h, ap, Elementwise.Key(seed, 1 + 3 * l, b));
            });
            Blas.SetThreads(Threads);
            Linear(L.Res1, L.Attn, Off(pre + "attn.out.w"), Off(pre + "attn.out.b"), T, d, d);
            if (hp > 0) DropRows(L.Res1, d, batch, seed, 2 + 3 * l, hp);
            TensorPrimitives.Add(L.Res1.AsSpan(0, T * d), L.In.AsSpan(0, T * d), L.Res1.AsSpan(0, T * d));
            Elementwise.LayerNormForwardParallel(L.A, L.Mean1, L.Rstd1, L.Res1, 0, P, Off(pre + "ln1.g"), Off(pre + "ln1.b"), T, d, cfg.LayerNormEpsilon);
            Linear(L.F1, L.A, Off(pre + "ffn.w1"), Off(pre + "ffn.b1"), T, d, _inner);
            Elementwise.ParallelRows(T, 256, (t0, t1) => Elementwise.GeluForward(L.G.AsSpan(t0 * _inner, (t1 - t0) * _inner), L.F1.AsSpan(t0 * _inner, (t1 - t0) * _inner), (t1 - t0) * _inner));
            Linear(L.Res2, L.G, Off(pre + "ffn.w2"), Off(pre + "ffn.b2"), T, _inner, d);
            if (hp > 0) DropRows(L.Res2, d, batch, seed, 3 + 3 * l, hp);
            TensorPrimitives.Add(L.Res2.AsSpan(0, T * d), L.A.AsSpan(0, T * d), L.Res2.AsSpan(0, T * d));
            Elementwise.LayerNormForwardParallel(L.Out, L.Mean2, L.Rstd2, L.Res2, 0, P, Off(pre + "ln2.g"), Off(pre + "ln2.b"), T, d, cfg.LayerNormEpsilon);
        }
    }

    private int ProbOffset(int b)
    {
        // rows are packed in order; their probability blocks are H*len^2 each
        int off = 0;
        for (int i = 0; i < b; i++) off += _h * _rowLen[i] * _rowLen[i];
        return off;
    }

    /// <summary>Applies dropout to each row's packed tokens; element ids are position*C + c, so packing does not change the mask.</summary>
    private void DropRows(float[] x, int C, int batch, ulong seed, int site, float p)
    {
        Parallel.For(0, batch, new ParallelOptions { MaxDegreeOfParallelism = Threads }, b =>
        {
            int s = _rowStart[b], len = _rowLen[b];
            if (len == 0) return;
            Elementwise.Dropout(x.AsSpan(s * C, len * C), Elementwise.Key(seed, site, b), (long)(_n - len) * C, p);
        });
    }

    /// <summary>y (T,out) = x (T,in) @ W (in,out) + b.</summary>
    private void Linear(float[] y, float[] x, int w, int bias, int T, int inDim, int outDim)
    {
        if (T == 0) return;
        fixed (float* py = y) fixed (float* px = x) fixed (float* pp = Parameters)
            Blas.Sgemm(false, false, T, outDim, inDim, 1f, px, inDim, pp + w, outDim, 0f, py, outDim);
        float[] P = Parameters;
        Elementwise.ParallelRows(T, 512, (t0, t1) => Elementwise.AddBias(y.AsSpan(t0 * outDim, (t1 - t0) * outDim), P.AsSpan(bias, outDim), t1 - t0, outDim));
    }

    /// <summary>Backward of <see cref="Linear"/>: dW += x^T dy, db += colsum(dy), dx (=, or += when accumulate) dy W^T.</summary>
    private void LinearBackward(float[] dx, bool accumulate, float[] dy, float[] x, int w, int bias, int T, int inDim, int outDim)
    {
        if (T == 0) { if (!accumulate) Array.Clear(dx, 0, 0); return; }
        fixed (float* pdx = dx) fixed (float* pdy = dy) fixed (float* px = x) fixed (float* pp = Parameters) fixed (float* pg = Gradients)
        {
            Blas.Sgemm(true, false, inDim, outDim, T, 1f, px, inDim, pdy, outDim, 1f, pg + w, outDim);
            Blas.Sgemm(false, true, T, inDim, outDim, 1f, pdy, outDim, pp + w, outDim, accumulate ? 1f : 0f, pdx, inDim);
        }
        Elementwise.BiasBackward(Gradients.AsSpan(bias, outDim), dy.AsSpan(0, T * outDim), T, outDim);
    }

    // ---------------------------------------------------------------- output head

    private void EnsureHead(int M)
    {
        if (_hm.Length >= M * _d && _logits.Length >= (long)M * _items) return;
        int cap = Math.Max(M, 16);
        _hm = new float[cap * _d]; _u = new float[cap * _d]; _gu = new float[cap * _d]; _z = new float[cap * _d];
        _dz = new float[cap * _d]; _du = new float[cap * _d]; _dgu = new float[cap * _d];
        _meanO = new float[cap]; _rstdO = new float[cap];
        _logits = new float[checked(cap * _items)];
        _mTok = new int[cap]; _mTarget = new int[cap];
    }

    /// <summary>z (M,d) = LN_out(GELU(h W_P + b_P)) for the gathered tokens _mTok[0..M).</summary>
    private void HeadForward(int M, float[] finalHidden)
    {
        int d = _d;
        for (int m = 0; m < M; m++) finalHidden.AsSpan(_mTok[m] * d, d).CopyTo(_hm.AsSpan(m * d, d));
        Linear(_u, _hm, Off("head.w"), Off("head.b"), M, d, d);
        Elementwise.GeluForward(_gu, _u, M * d);
        Elementwise.LayerNormForwardParallel(_z, _meanO, _rstdO, _gu, 0, Parameters, Off("ln_out.g"), Off("ln_out.b"), M, d, Config.LayerNormEpsilon);
    }

    // ---------------------------------------------------------------- public API

    /// <summary>
    /// Train-mode forward (dropout) and the Cloze loss: cross-entropy over items 1..n at positions with labels[b,t] > 0,
    /// averaged over those positions; then the backward pass into <see cref="Gradients"/> (zeroed first). Returns the mean loss
    /// (0 when nothing is labelled). Dropout draws only from <paramref name="dropoutSeed"/>: same seed, same result.
    /// </summary>
    public float TrainStep(ReadOnlySpan<int> inputIds, ReadOnlySpan<int> labels, int batch, ulong dropoutSeed) =>
        LossAndMaybeBackward(inputIds, labels, batch, dropoutSeed, train: true);

    /// <summary>Eval-mode (no dropout) mean loss at labelled positions; no gradients.</summary>
    public float EvalLoss(ReadOnlySpan<int> inputIds, ReadOnlySpan<int> labels, int batch) =>
        LossAndMaybeBackward(inputIds, labels, batch, 0, train: false);

    private float LossAndMaybeBackward(ReadOnlySpan<int> inputIds, ReadOnlySpan<int> labels, int batch, ulong seed, bool train)
    {
        Pack(inputIds, batch);
        if (labels.Length != batch * _n) throw new ArgumentException($"labels has {labels.Length} entries; batch {batch} x length {_n} needs {batch * _n}");
        // gather labelled positions
        int M = 0;
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < _n; t++)
            {
                int y = labels[b * _n + t];
                if (y == 0) continue;
                if (y < 0 || y > _items) throw new ArgumentException($"label {y} at row {b}, position {t} is not an item index in 1..{_items}");
                if (t < _n - _rowLen[b]) throw new ArgumentException($"label at row {b}, position {t} falls on a [PAD] position");
                M++;
            }
        if (train) Array.Clear(Gradients);
        Forward(batch, train, seed);
        if (M == 0) return 0f;
        EnsureHead(M);
        int k = 0;
        for (int b = 0; b < batch; b++)
            for (int t = _n - _rowLen[b]; t < _n; t++)
            {
                int y = labels[b * _n + t];
                if (y == 0) continue;
                _mTok[k] = _rowStart[b] + t - (_n - _rowLen[b]);
                _mTarget[k] = y;
                k++;
            }
        float[] hL = _layers[^1].Out;
        HeadForward(M, hL);
        int d = _d, n = _items, tok = Off("tok_emb"), ob = Off("out_bias");
        fixed (float* pz = _z) fixed (float* pp = Parameters) fixed (float* pl = _logits)
            Blas.Sgemm(false, true, M, n, d, 1f, pz, d, pp + tok + d, d, 0f, pl, n);
        float[] P = Parameters, lg = _logits;
        int[] tg = _mTarget;
        double[] partial = new double[(M + 63) / 64];
        float scale = 1f / M;
        Elementwise.ParallelRows(M, 64, (m0, m1) =>
        {
            Elementwise.AddBias(lg.AsSpan(m0 * n, (m1 - m0) * n), P.AsSpan(ob + 1, n), m1 - m0, n);
            partial[m0 / 64] = CrossEntropy.ForwardBackward(lg.AsSpan(m0 * n, (m1 - m0) * n), tg.AsSpan(m0, m1 - m0), m1 - m0, n, scale);
        });
        double loss = 0;
        foreach (var x in partial) loss += x;
        if (train) Backward(batch, M, seed);
        return (float)(loss / M);
    }

    private void Backward(int batch, int M, ulong seed)
    {
        int T = _T, d = _d, n = _items;
        var cfg = Config;
        float hp = cfg.HiddenDropout, ap = cfg.AttentionDropout;
        int tok = Off("tok_emb"), ob = Off("out_bias");
        float[] G = Gradients;

        // ---- output layer: logits = z E[1..n]^T + b_O[1..n]; _logits holds dlogits
        Elementwise.BiasBackward(G.AsSpan(ob + 1, n), _logits.AsSpan(0, M * n), M, n);
        fixed (float* pl = _logits) fixed (float* pz = _z) fixed (float* pdz = _dz) fixed (float* pp = Parameters) fixed (float* pg = G)
        {
            Blas.Sgemm(false, false, M, d, n, 1f, pl, n, pp + tok + d, d, 0f, pdz, d);          // dz = dlogits E
            Blas.Sgemm(true, false, n, d, M, 1f, pl, n, pz, d, 1f, pg + tok + d, d);            // dE += dlogits^T z
        }
        Array.Clear(_dgu, 0, M * d);
        Elementwise.LayerNormBackward(_dgu, G.AsSpan(Off("ln_out.g"), d), G.AsSpan(Off("ln_out.b"), d), _dz, _gu, Parameters.AsSpan(Off("ln_out.g"), d), _meanO, _rstdO, M, d);
        Array.Clear(_du, 0, M * d);
        Elementwise.GeluBackward(_du, _u, _dgu, M * d);
        LinearBackward(_dz, false, _du, _hm, Off("head.w"), Off("head.b"), M, d, d);      // _dz now holds d(hm)
        Array.Clear(_dh, 0, T * d);
        for (int m = 0; m < M; m++)
            TensorPrimitives.Add(_dh.AsSpan(_mTok[m] * d, d), _dz.AsSpan(m * d, d), _dh.AsSpan(_mTok[m] * d, d));

        // ---- transformer layers, last to first; _dh holds d(layer output)
        for (int l = cfg.Layers - 1; l >= 0; l--)
        {
            var L = _layers[l];
            string pre = $"layers.{l}.";
            // h = LN2(res2)
            Array.Clear(_dtmp, 0, T * d);
            LayerNormRowsBackward(_dtmp, pre + "ln2", _dh, L.Res2, L.Mean2, L.Rstd2, T);
            // res2 = a + dropout(f2): d(a) = dres2 ; d(f2) = dropout(dres2)
            Array.Copy(_dtmp, _dh, T * d);                       // _dh = d(a) (residual part)
            if (hp > 0) DropRows(_dtmp, d, batch, seed, 3 + 3 * l, hp);   // _dtmp = d(f2)
            LinearBackward(_dwide, false, _dtmp, L.G, Off(pre + "ffn.w2"), Off(pre + "ffn.b2"), T, _inner, d);   // _dwide = d(g)
            // d(f1) = gelu'(f1) * d(g), in place
            Elementwise.ParallelRows(T, 256, (t0, t1) =>
                Elementwise.GeluBackwardInPlace(_dwide.AsSpan(t0 * _inner, (t1 - t0) * _inner), L.F1.AsSpan(t0 * _inner, (t1 - t0) * _inner), (t1 - t0) * _inner));
            LinearBackward(_dh, true, _dwide, L.A, Off(pre + "ffn.w1"), Off(pre + "ffn.b1"), T, d, _inner);      // _dh = d(a) total
            // a = LN1(res1)
            Array.Clear(_dtmp, 0, T * d);
            LayerNormRowsBackward(_dtmp, pre + "ln1", _dh, L.Res1, L.Mean1, L.Rstd1, T);
            // res1 = in + dropout(proj)
            Array.Copy(_dtmp, _dh, T * d);                       // _dh = d(in) residual part
            if (hp > 0) DropRows(_dtmp, d, batch, seed, 2 + 3 * l, hp);   // d(proj)
            LinearBackward(_dattn, false, _dtmp, L.Attn, Off(pre + "attn.out.w"), Off(pre + "attn.out.b"), T, d, d);
            Array.Clear(_dqkv, 0, T * 3 * d);
            Blas.SetThreads(1);
            Parallel.For(0, batch, new ParallelOptions { MaxDegreeOfParallelism = Threads }, b =>
            {
                int s = _rowStart[b], len = _rowLen[b];
                if (len == 0) return;
                Attention.Backward(_dqkv.AsSpan(s * 3 * d, len * 3 * d), _dattn.AsSpan(s * d, len * d), L.Qkv.AsSpan(s * 3 * d, len * 3 * d),
                    L.Probs.AsSpan(ProbOffset(b), _h * len * len), len, d, _h, ap, Elementwise.Key(seed, 1 + 3 * l, b));
            });
            Blas.SetThreads(Threads);
            LinearBackward(_dh, true, _dqkv, L.In, Off(pre + "attn.qkv.w"), Off(pre + "attn.qkv.b"), T, d, 3 * d);   // _dh = d(in)
        }

        // ---- embeddings: h0 = dropout(LN_emb(e)), e = E[x] + P[t]
        if (hp > 0) DropRows(_dh, d, batch, seed, 0, hp);
        Array.Clear(_dtmp, 0, T * d);
        LayerNormRowsBackward(_dtmp, "ln_emb", _dh, _e, _mean0, _rstd0, T);
        int pos = Off("pos_emb");
        for (int t = 0; t < T; t++)
        {
            var de = _dtmp.AsSpan(t * d, d);
            var gt = G.AsSpan(tok + _tokId[t] * d, d);
            TensorPrimitives.Add(gt, de, gt);
            var gp = G.AsSpan(pos + _tokPos[t] * d, d);
            TensorPrimitives.Add(gp, de, gp);
        }
    }

    /// <summary>LayerNorm backward over T rows: dx rows are computed in parallel; the gain/bias gradients are summed in fixed order.</summary>
    private void LayerNormRowsBackward(float[] dx, string ln, float[] dy, float[] x, float[] mean, float[] rstd, int T)
    {
        int d = _d, g = Off(ln + ".g"), bo = Off(ln + ".b");
        int chunk = 256, chunks = (T + chunk - 1) / chunk;
        var dgs = new float[chunks * 2 * d];
        float[] P = Parameters;
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = Threads }, c =>
        {
            int t0 = c * chunk, t1 = Math.Min(T, t0 + chunk);
            Elementwise.LayerNormBackward(dx.AsSpan(t0 * d, (t1 - t0) * d), dgs.AsSpan(c * 2 * d, d), dgs.AsSpan(c * 2 * d + d, d),
                dy.AsSpan(t0 * d, (t1 - t0) * d), x.AsSpan(t0 * d, (t1 - t0) * d), P.AsSpan(g, d), mean.AsSpan(t0, t1 - t0), rstd.AsSpan(t0, t1 - t0), t1 - t0, d);
        });
        for (int c = 0; c < chunks; c++)
        {
            TensorPrimitives.Add(Gradients.AsSpan(g, d), dgs.AsSpan(c * 2 * d, d), Gradients.AsSpan(g, d));
            TensorPrimitives.Add(Gradients.AsSpan(bo, d), dgs.AsSpan(c * 2 * d + d, d), Gradients.AsSpan(bo, d));
        }
    }

    /// <summary>
    /// Eval-mode forward at the LAST position of each row (the [MASK] at inference): z (B,d) = LN_out(GELU(h W_P + b_P)),
    /// and, unless <paramref name="logits"/> is empty, logits (B,V) = z E^T + b_O over the whole vocabulary.
    /// </summary>
    public void PredictLast(ReadOnlySpan<int> inputIds, int batch, Span<float> z, Span<float> logits)
    {
        Pack(inputIds, batch);
        if (z.Length != batch * _d) throw new ArgumentException($"z has {z.Length} floats; needs batch {batch} x d {_d}");
        if (!logits.IsEmpty && logits.Length != (long)batch * _vocab) throw new ArgumentException($"logits has {logits.Length} floats; needs batch {batch} x V {_vocab}");
        for (int b = 0; b < batch; b++)
            if (_rowLen[b] == 0) throw new ArgumentException($"row {b} is all [PAD]; the last position must hold a token ([MASK] at inference)");
        Forward(batch, train: false, 0);
        EnsureHead(batch);
        for (int b = 0; b < batch; b++) _mTok[b] = _rowStart[b] + _rowLen[b] - 1;
        HeadForward(batch, _layers[^1].Out);
        _z.AsSpan(0, batch * _d).CopyTo(z);
        if (logits.IsEmpty) return;
        int d = _d, tok = Off("tok_emb"), ob = Off("out_bias");
        fixed (float* pz = _z) fixed (float* pp = Parameters) fixed (float* pl = logits)
            Blas.Sgemm(false, true, batch, _vocab, d, 1f, pz, d, pp + tok, d, 0f, pl, _vocab);
        Elementwise.AddBias(logits, Parameters.AsSpan(ob, _vocab), batch, _vocab);
    }

    public void Dispose() { }
}
