// What every sequential model of the family shares: one flat parameter buffer laid out by ParameterLayout, left-padded
// input rows packed so that pads are never computed, the output identity logit(v) = z . E[v] + b_O[v] computed only
// where a prediction is asked for, the cross-entropy over items 1..n, and the dense-layer and LayerNorm helpers.
// A model kind supplies its encoder (forward/backward over the packed tokens) and the head that maps a token's final
// hidden state to z.
using System.Numerics.Tensors;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Kernels;

namespace Bert4Rec.Training.Model;

public abstract unsafe class SequenceModel : IDisposable
{
    public ModelConfig Config { get; }
    public ParameterLayout Layout { get; }
    /// <summary>All parameters, laid out by <see cref="Layout"/>.</summary>
    public float[] Parameters { get; }
    /// <summary>Gradients, same layout; zeroed at the start of each <see cref="TrainStep"/>.</summary>
    public float[] Gradients { get; }
    public int MaxBatch { get; }
    public int Threads { get; }

    protected readonly int _d, _n, _items, _vocab;
    // packing of the current batch: row b's tokens are _rowStart[b] .. _rowStart[b] + _rowLen[b] - 1
    protected readonly int[] _rowStart, _rowLen;
    protected readonly int[] _tokId, _tokPos;
    protected int _T;
    /// <summary>d(final hidden) (T,d): filled by the head's backward, consumed by <see cref="BackwardEncoder"/>.</summary>
    protected readonly float[] _dh;
    // prediction rows (grown on demand): gathered final hidden (M,d), z (M,d), dz (M,d), logits (M,n)
    protected float[] _hm = [], _z = [], _dz = [], _logits = [];
    protected int[] _mTok = [], _mTarget = [];
    private readonly int _tokOff, _biasOff;

    protected SequenceModel(ModelConfig config, int maxBatch, int threads)
    {
        config.Validate();
        if (maxBatch < 1) throw new ArgumentOutOfRangeException(nameof(maxBatch), maxBatch, "must be >= 1");
        Config = config;
        Layout = new ParameterLayout(config);
        MaxBatch = maxBatch;
        Threads = threads > 0 ? threads : Environment.ProcessorCount;
        Parameters = new float[Layout.TotalSize];
        Gradients = new float[Layout.TotalSize];
        _d = config.Hidden; _n = config.MaxLength; _items = config.ItemCount; _vocab = config.VocabSize;
        long maxT = (long)maxBatch * _n;
        if (maxT * 4 * _d > int.MaxValue) throw new ArgumentException($"batch {maxBatch} x length {_n} is too large for one step");
        _rowStart = new int[maxBatch]; _rowLen = new int[maxBatch];
        _tokId = new int[maxT]; _tokPos = new int[maxT];
        _dh = new float[maxT * _d];
        _tokOff = Off("tok_emb"); _biasOff = Off("out_bias");
        Blas.SetThreads(Threads);
    }

    /// <summary>Offset of a named tensor (resolve once in constructors, not per step).</summary>
    protected int Off(string name) => checked((int)Layout[name].Offset);

    /// <summary>Truncated normal (std 0.02, cut at 2 std) for matrices and embeddings; LayerNorm gain 1, every bias 0.</summary>
    public virtual void InitializeParameters(ulong seed)
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

    // ---------------------------------------------------------------- what a kind supplies

    /// <summary>Forward over the packed tokens (_T of them); leaves every token's final hidden state in <see cref="FinalHidden"/> (T,d).</summary>
    protected abstract void Forward(int batch, bool train, ulong seed);
    /// <summary>The last forward's final hidden states (T,d).</summary>
    protected abstract float[] FinalHidden { get; }
    /// <summary>Backward of <see cref="Forward"/> given d(final hidden) in <see cref="_dh"/>, adding into <see cref="Gradients"/>.</summary>
    protected abstract void BackwardEncoder(int batch, ulong seed);
    /// <summary>z (M,d) from the gathered final hidden states _hm (M,d). Default: z = h.</summary>
    protected virtual void HeadForward(int M) => _hm.AsSpan(0, M * _d).CopyTo(_z);
    /// <summary>Backward of <see cref="HeadForward"/>: turns dz (M,d) in _dz into d(hm), in place. Default: identity.</summary>
    protected virtual void HeadBackward(int M) { }
    /// <summary>Head buffers for M prediction rows beyond _hm/_z/_dz (called when those grow).</summary>
    protected virtual void AllocateHead(int capacity) { }
    /// <summary>z of a row with no token at all (an empty history), or a refusal naming why the kind cannot have one.</summary>
    protected virtual void EmptyRowState(Span<float> z, int row) =>
        throw new ArgumentException($"row {row} is all [PAD]; the last position must hold a token");

    // ---------------------------------------------------------------- packing

    protected void Pack(ReadOnlySpan<int> inputIds, int batch)
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

    // ---------------------------------------------------------------- shared layers

    /// <summary>Applies dropout to each row's packed tokens; element ids are position*C + c, so packing does not change the mask.</summary>
    protected void DropRows(float[] x, int C, int batch, ulong seed, int site, float p)
    {
        Parallel.For(0, batch, new ParallelOptions { MaxDegreeOfParallelism = Threads }, b =>
        {
            int s = _rowStart[b], len = _rowLen[b];
            if (len == 0) return;
            Elementwise.Dropout(x.AsSpan(s * C, len * C), Elementwise.Key(seed, site, b), (long)(_n - len) * C, p);
        });
    }

    /// <summary>y (T,out) = x (T,in) @ W (in,out) + b.</summary>
    protected void Linear(float[] y, float[] x, int w, int bias, int T, int inDim, int outDim) =>
        LinearStrided(y, 0, outDim, x, w, bias, T, inDim, outDim);

    /// <summary>Columns [yCol, yCol+out) of y (T, ldy) = x (T,in) @ W (in,out) + b.</summary>
    protected void LinearStrided(float[] y, int yCol, int ldy, float[] x, int w, int bias, int T, int inDim, int outDim)
    {
        if (T == 0) return;
        fixed (float* py = y) fixed (float* px = x) fixed (float* pp = Parameters)
            Blas.Sgemm(false, false, T, outDim, inDim, 1f, px, inDim, pp + w, outDim, 0f, py + yCol, ldy);
        float[] P = Parameters;
        Elementwise.ParallelRows(T, 512, (t0, t1) =>
        {
            for (int t = t0; t < t1; t++)
            {
                var row = y.AsSpan(t * ldy + yCol, outDim);
                TensorPrimitives.Add(row, P.AsSpan(bias, outDim), row);
            }
        });
    }

    /// <summary>Backward of <see cref="Linear"/>: dW += x^T dy, db += colsum(dy), dx (=, or += when accumulate) dy W^T.</summary>
    protected void LinearBackward(float[] dx, bool accumulate, float[] dy, float[] x, int w, int bias, int T, int inDim, int outDim) =>
        LinearBackwardStrided(dx, accumulate, dy, 0, outDim, x, w, bias, T, inDim, outDim);

    /// <summary>Backward of <see cref="LinearStrided"/>, dy being columns [dyCol, dyCol+out) of a (T, ldy) buffer.</summary>
    protected void LinearBackwardStrided(float[] dx, bool accumulate, float[] dy, int dyCol, int ldy, float[] x, int w, int bias, int T, int inDim, int outDim)
    {
        if (T == 0) return;
        fixed (float* pdx = dx) fixed (float* pdy = dy) fixed (float* px = x) fixed (float* pp = Parameters) fixed (float* pg = Gradients)
        {
            Blas.Sgemm(true, false, inDim, outDim, T, 1f, px, inDim, pdy + dyCol, ldy, 1f, pg + w, outDim);
            Blas.Sgemm(false, true, T, inDim, outDim, 1f, pdy + dyCol, ldy, pp + w, outDim, accumulate ? 1f : 0f, pdx, inDim);
        }
        var db = Gradients.AsSpan(bias, outDim);
        if (ldy == outDim) Elementwise.BiasBackward(db, dy.AsSpan(0, T * outDim), T, outDim);
        else for (int t = 0; t < T; t++) TensorPrimitives.Add(db, dy.AsSpan(t * ldy + dyCol, outDim), db);
    }

    /// <summary>LayerNorm backward over T rows, adding into dx: rows in parallel; the gain/bias gradients summed in fixed order.</summary>
    protected void LayerNormRowsBackward(float[] dx, int g, int bo, float[] dy, float[] x, float[] mean, float[] rstd, int T)
    {
        int d = _d, chunk = 256, chunks = (T + chunk - 1) / chunk;
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

    /// <summary>Self-attention over each row's packed tokens (rows in parallel, OpenBLAS at one thread inside): attn (T,d) from
    /// qkv (T,3d), saving the probabilities; dropout on them from stream (seed, site, row).</summary>
    protected void AttentionForwardRows(float[] attn, float[] probs, float[] qkv, int batch, int heads, float p, ulong seed, int site, bool causal)
    {
        int d = _d;
        Blas.SetThreads(1);
        Parallel.For(0, batch, new ParallelOptions { MaxDegreeOfParallelism = Threads }, b =>
        {
            int s = _rowStart[b], len = _rowLen[b];
            if (len == 0) return;
            Attention.Forward(attn.AsSpan(s * d, len * d), probs.AsSpan(ProbOffset(b, heads), heads * len * len),
                qkv.AsSpan(s * 3 * d, len * 3 * d), len, d, heads, p, Elementwise.Key(seed, site, b), causal);
        });
        Blas.SetThreads(Threads);
    }

    /// <summary>Backward of <see cref="AttentionForwardRows"/>: adds into dqkv (T,3d) given dattn (T,d).</summary>
    protected void AttentionBackwardRows(float[] dqkv, float[] dattn, float[] qkv, float[] probs, int batch, int heads, float p, ulong seed, int site)
    {
        int d = _d;
        Blas.SetThreads(1);
        Parallel.For(0, batch, new ParallelOptions { MaxDegreeOfParallelism = Threads }, b =>
        {
            int s = _rowStart[b], len = _rowLen[b];
            if (len == 0) return;
            Attention.Backward(dqkv.AsSpan(s * 3 * d, len * 3 * d), dattn.AsSpan(s * d, len * d), qkv.AsSpan(s * 3 * d, len * 3 * d),
                probs.AsSpan(ProbOffset(b, heads), heads * len * len), len, d, heads, p, Elementwise.Key(seed, site, b));
        });
        Blas.SetThreads(Threads);
    }

    /// <summary>Offset of row b's block of per-head attention probabilities (H*len^2 each, rows packed in order).</summary>
    protected int ProbOffset(int b, int heads)
    {
        int off = 0;
        for (int i = 0; i < b; i++) off += heads * _rowLen[i] * _rowLen[i];
        return off;
    }

    // ---------------------------------------------------------------- public API

    /// <summary>
    /// Train-mode forward (dropout) and the loss: cross-entropy over items 1..n at positions with labels[b,t] > 0,
    /// averaged over those positions; then the backward pass into <see cref="Gradients"/> (zeroed first). Returns the mean loss
    /// (0 when nothing is labelled). Dropout draws only from <paramref name="dropoutSeed"/>: same seed, same result.
    /// </summary>
    public float TrainStep(ReadOnlySpan<int> inputIds, ReadOnlySpan<int> labels, int batch, ulong dropoutSeed) =>
        LossAndMaybeBackward(inputIds, labels, batch, dropoutSeed, train: true, null);

    /// <summary>
    /// <see cref="TrainStep(ReadOnlySpan{int}, ReadOnlySpan{int}, int, ulong)"/> with the loss computed over a sampled set of
    /// items (<paramref name="sampled"/>; null = cross-entropy over all items): the output layer then costs M x K x d, not M x n x d.
    /// </summary>
    public float TrainStep(ReadOnlySpan<int> inputIds, ReadOnlySpan<int> labels, int batch, ulong dropoutSeed, SampledObjective? sampled) =>
        LossAndMaybeBackward(inputIds, labels, batch, dropoutSeed, train: true, sampled);

    /// <summary>Eval-mode (no dropout) mean loss at labelled positions; no gradients.</summary>
    public float EvalLoss(ReadOnlySpan<int> inputIds, ReadOnlySpan<int> labels, int batch) =>
        LossAndMaybeBackward(inputIds, labels, batch, 0, train: false, null);

    /// <summary>Eval-mode mean loss over a sampled set of items (<paramref name="sampled"/>; null = all items); no gradients.</summary>
    public float EvalLoss(ReadOnlySpan<int> inputIds, ReadOnlySpan<int> labels, int batch, SampledObjective? sampled) =>
        LossAndMaybeBackward(inputIds, labels, batch, 0, train: false, sampled);

    private void EnsureHead(int M)
    {
        if (_hm.Length >= M * _d) return;
        int cap = Math.Max(M, 16);
        _hm = new float[cap * _d]; _z = new float[cap * _d]; _dz = new float[cap * _d];
        _mTok = new int[cap]; _mTarget = new int[cap];
        AllocateHead(cap);
    }

    private void GatherHead(int M)
    {
        float[] h = FinalHidden;
        int d = _d;
        for (int m = 0; m < M; m++) h.AsSpan(_mTok[m] * d, d).CopyTo(_hm.AsSpan(m * d, d));
        HeadForward(M);
    }

    private float LossAndMaybeBackward(ReadOnlySpan<int> inputIds, ReadOnlySpan<int> labels, int batch, ulong seed, bool train, SampledObjective? sampled)
    {
        Pack(inputIds, batch);
        int M = CountLabels(labels, batch, _n, _items, _rowLen);
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
        GatherHead(M);
        int d = _d, n = _items, tok = _tokOff, ob = _biasOff;
        if (sampled != null)
        {
            double sl = SampledLossAndGradient(M, sampled, train);
            if (train) BackwardFromDz(M, batch, seed);
            return (float)(sl / M);
        }
        // The output layer in blocks of rows: a block's logits stay in cache from their GEMM through the softmax to the two
        // backward GEMMs, instead of streaming an (M, n) buffer through memory about ten times; the buffer is one block.
        int R = OutputBlockRows(n);
        if (_logits.Length < (long)Math.Min(R, M) * n) _logits = new float[checked(Math.Min(R, M) * n)];
        float[] P = Parameters, lg = _logits, G = Gradients;
        int[] tg = _mTarget;
        float scale = 1f / M;
        double loss = 0;
        for (int r0 = 0; r0 < M; r0 += R)
        {
            int rows = Math.Min(R, M - r0);
            fixed (float* pz = _z) fixed (float* pp = Parameters) fixed (float* pl = _logits)
                Blas.Sgemm(false, true, rows, n, d, 1f, pz + (long)r0 * d, d, pp + tok + d, d, 0f, pl, n);
            double[] partial = new double[(rows + 15) / 16];
            int rr0 = r0;
            Elementwise.ParallelRows(rows, 16, (m0, m1) =>
            {
                Elementwise.AddBias(lg.AsSpan(m0 * n, (m1 - m0) * n), P.AsSpan(ob + 1, n), m1 - m0, n);
                partial[m0 / 16] = CrossEntropy.ForwardBackward(lg.AsSpan(m0 * n, (m1 - m0) * n), tg.AsSpan(rr0 + m0, m1 - m0), m1 - m0, n, scale);
            });
            foreach (var x in partial) loss += x;
            if (!train) continue;
            // logits = z E[1..n]^T + b_O[1..n]; the block now holds dlogits
            Elementwise.BiasBackward(G.AsSpan(ob + 1, n), lg.AsSpan(0, rows * n), rows, n);
            fixed (float* pl = _logits) fixed (float* pz = _z) fixed (float* pdz = _dz) fixed (float* pp = Parameters) fixed (float* pg = G)
            {
                Blas.Sgemm(false, false, rows, d, n, 1f, pl, n, pp + tok + d, d, 0f, pdz + (long)r0 * d, d);   // dz = dlogits E
                Blas.Sgemm(true, false, n, d, rows, 1f, pl, n, pz + (long)r0 * d, d, 1f, pg + tok + d, d);       // dE += dlogits^T z
            }
        }
        if (train) BackwardFromDz(M, batch, seed);
        return (float)(loss / M);
    }

    /// <summary>Rows per block of the full-CE output layer; 0 = by the catalog size (about 2 MB of logits, 32..1024 rows).</summary>
    public int OutputBlock { get; set; }

    private int OutputBlockRows(int n) => OutputBlock > 0 ? OutputBlock : Math.Clamp((1 << 19) / n, 32, 1024);

    /// <summary>From dz (M,d) in _dz: the head's backward, the scatter onto the tokens, the encoder's backward.</summary>
    private void BackwardFromDz(int M, int batch, ulong seed)
    {
        int d = _d;
        HeadBackward(M);                                                                             // _dz = d(hm)
        Array.Clear(_dh, 0, _T * d);
        for (int m = 0; m < M; m++)
            TensorPrimitives.Add(_dh.AsSpan(_mTok[m] * d, d), _dz.AsSpan(m * d, d), _dh.AsSpan(_mTok[m] * d, d));
        BackwardEncoder(batch, seed);
    }

    // sampled output layer, kept between steps (K and M are about the same every step): candidate embeddings (K,d) and their
    // gradient, logits (M,K), positive logits (M), per-candidate bias-minus-log-Q and bias gradient (K)
    private float[] _ec = [], _dec = [], _sl = [], _sp = [], _colTerm = [], _dbc = [];

    /// <summary>
    /// The loss over the sampled candidates and, when training, its gradients: dz into _dz, and the output layer's
    /// gradients scattered onto the rows of the candidates and the targets (E and b_O are tied to the input embeddings).
    /// Returns the summed loss over the M rows.
    /// </summary>
    private double SampledLossAndGradient(int M, SampledObjective o, bool train)
    {
        int d = _d, K = o.Candidates.Length, tok = _tokOff, ob = _biasOff;
        o.CheckCandidates(_items);
        if (_ec.Length < K * d) { _ec = new float[K * d]; _dec = new float[K * d]; _colTerm = new float[K]; _dbc = new float[K]; }
        if (_sl.Length < (long)M * K) _sl = new float[checked(Math.Max(M, 16) * K)];
        if (_sp.Length < M) _sp = new float[Math.Max(M, 16)];
        float[] P = Parameters, ec = _ec, sl = _sl, sp = _sp, z = _z;
        int[] cand = o.Candidates, tg = _mTarget;
        float[]? logQ = o.LogQ;
        for (int j = 0; j < K; j++) P.AsSpan(tok + cand[j] * d, d).CopyTo(ec.AsSpan(j * d, d));
        fixed (float* pz = z) fixed (float* pe = ec) fixed (float* pl = sl)
            Blas.Sgemm(false, true, M, K, d, 1f, pz, d, pe, d, 0f, pl, K);
        // candidate column terms: bias minus the log-Q correction
        float[] colTerm = _colTerm;
        for (int j = 0; j < K; j++) colTerm[j] = P[ob + cand[j]] - (logQ != null ? logQ[cand[j]] : 0f);
        double[] partial = new double[(M + 63) / 64];
        float scale = 1f / M;
        Elementwise.ParallelRows(M, 64, (m0, m1) =>
        {
            for (int m = m0; m < m1; m++)
            {
                var row = sl.AsSpan(m * K, K);
                TensorPrimitives.Add(row, colTerm.AsSpan(0, K), row);
                int y = tg[m];
                sp[m] = TensorPrimitives.Dot(z.AsSpan(m * d, d), P.AsSpan(tok + y * d, d)) + P[ob + y] - (logQ != null ? logQ[y] : 0f);
            }
            var pos = sp.AsSpan(m0, m1 - m0);
            var neg = sl.AsSpan(m0 * K, (m1 - m0) * K);
            partial[m0 / 64] = o.Kind == SampledLossKind.Gbce
                ? SampledLoss.Gbce(pos, neg, cand, tg.AsSpan(m0, m1 - m0), m1 - m0, K, o.Beta, scale)
                : SampledLoss.CrossEntropy(pos, neg, cand, tg.AsSpan(m0, m1 - m0), m1 - m0, K, scale);
        });
        double loss = 0;
        foreach (var x in partial) loss += x;
        if (!train) return loss;
        float[] G = Gradients;
        // dz = dpos E[y] + dneg Ec
        for (int m = 0; m < M; m++)
        {
            var dz = _dz.AsSpan(m * d, d);
            TensorPrimitives.Multiply(P.AsSpan(tok + tg[m] * d, d), sp[m], dz);
        }
        float[] dEc = _dec;
        fixed (float* pl = sl) fixed (float* pe = ec) fixed (float* pdz = _dz) fixed (float* pz = z) fixed (float* pd = dEc)
        {
            Blas.Sgemm(false, false, M, d, K, 1f, pl, K, pe, d, 1f, pdz, d);
            Blas.Sgemm(true, false, K, d, M, 1f, pl, K, pz, d, 0f, pd, d);                        // dEc = dneg^T z
        }
        var dbc = _dbc.AsSpan(0, K);
        dbc.Clear();
        Elementwise.BiasBackward(dbc, sl.AsSpan(0, M * K), M, K);
        // scatter in a fixed order (candidates may repeat; targets repeat)
        for (int j = 0; j < K; j++)
        {
            int c = cand[j];
            var g = G.AsSpan(tok + c * d, d);
            TensorPrimitives.Add(g, dEc.AsSpan(j * d, d), g);
            G[ob + c] += dbc[j];
        }
        for (int m = 0; m < M; m++)
        {
            int y = tg[m];
            var g = G.AsSpan(tok + y * d, d);
            TensorPrimitives.MultiplyAdd(z.AsSpan(m * d, d), sp[m], g, g);
            G[ob + y] += sp[m];
        }
        return loss;
    }

    /// <summary>
    /// The number of labelled positions of a batch (labels (batch, n), 0 = none), refusing a label that is not an item index
    /// in 1..items or that falls on a row's [PAD] positions (row b has <paramref name="rowLengths"/>[b] real tokens, right-aligned).
    /// Every engine checks its labels with this one rule.
    /// </summary>
    public static int CountLabels(ReadOnlySpan<int> labels, int batch, int n, int items, ReadOnlySpan<int> rowLengths)
    {
        if (labels.Length != batch * n) throw new ArgumentException($"labels has {labels.Length} entries; batch {batch} x length {n} needs {batch * n}");
        int M = 0;
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < n; t++)
            {
                int y = labels[b * n + t];
                if (y == 0) continue;
                if (y < 0 || y > items) throw new ArgumentException($"label {y} at row {b}, position {t} is not an item index in 1..{items}");
                if (t < n - rowLengths[b]) throw new ArgumentException($"label at row {b}, position {t} falls on a [PAD] position");
                M++;
            }
        return M;
    }

    /// <summary>
    /// Eval-mode forward at the LAST position of each row (BERT4Rec's [MASK]; SASRec's and GRU4Rec's last item): z (B,d),
    /// and, unless <paramref name="logits"/> is empty, logits (B,V) = z E^T + b_O over the whole vocabulary.
    /// </summary>
    public void PredictLast(ReadOnlySpan<int> inputIds, int batch, Span<float> z, Span<float> logits)
    {
        Pack(inputIds, batch);
        if (z.Length != batch * _d) throw new ArgumentException($"z has {z.Length} floats; needs batch {batch} x d {_d}");
        if (!logits.IsEmpty && logits.Length != (long)batch * _vocab) throw new ArgumentException($"logits has {logits.Length} floats; needs batch {batch} x V {_vocab}");
        Forward(batch, train: false, 0);
        EnsureHead(batch);
        // rows with no token get the kind's empty state; the others are gathered in order
        int M = 0;
        for (int b = 0; b < batch; b++) if (_rowLen[b] > 0) _mTok[M++] = _rowStart[b] + _rowLen[b] - 1;
        GatherHead(M);
        for (int b = 0, m = 0; b < batch; b++)
        {
            if (_rowLen[b] > 0) _z.AsSpan(m++ * _d, _d).CopyTo(z.Slice(b * _d, _d));
            else EmptyRowState(z.Slice(b * _d, _d), b);
        }
        if (logits.IsEmpty) return;
        int d = _d;
        fixed (float* pz = z) fixed (float* pp = Parameters) fixed (float* pl = logits)
            Blas.Sgemm(false, true, batch, _vocab, d, 1f, pz, d, pp + _tokOff, d, 0f, pl, _vocab);
        Elementwise.AddBias(logits, Parameters.AsSpan(_biasOff, _vocab), batch, _vocab);
    }

    public virtual void Dispose() { }
}

/// <summary>Builds the model of a config's kind.</summary>
public static class SequenceModels
{
    public static SequenceModel Create(ModelConfig config, int maxBatch, int threads = 0) => config.Kind switch
    {
        ModelKind.Bert4Rec => new Bert4RecModel(config, maxBatch, threads),
        ModelKind.SasRec => new SasRecModel(config, maxBatch, threads),
        ModelKind.Gru4Rec => new Gru4RecModel(config, maxBatch, threads),
        ModelKind.NeuMf or ModelKind.DeepFm or ModelKind.TwoTower => throw new NotSupportedException($"{config.Kind.Name()} is a feature model, not a sequential one: it is trained and tested by `train` and `compare` (evaluate --run, export --run and serving read sequential runs only, for now)"),
        _ => throw new ArgumentOutOfRangeException(nameof(config), config.Kind, "unknown model kind"),
    };
}

public enum SampledLossKind { SampledCe, Gbce }

/// <summary>
/// One step's sampled set of items for the loss (issue 16): the <see cref="Candidates"/>, shared by every prediction row of
/// the batch, drawn by the trainer; <see cref="LogQ"/> (indexed by item, 1..n) is subtracted from every logit of sampled-CE
/// (log of the expected count of the item in the draw; null when uniform, where it is a constant); <see cref="Beta"/> is gBCE's.
/// </summary>
public sealed class SampledObjective
{
    public required SampledLossKind Kind { get; init; }
    public required int[] Candidates { get; init; }
    public float[]? LogQ { get; init; }
    public float Beta { get; init; } = 1f;

    /// <summary>Refuses a candidate that is not an item index in 1..<paramref name="items"/> (every engine checks the same way).</summary>
    public void CheckCandidates(int items)
    {
        if (Candidates.Length < 1) throw new ArgumentException("sampled objective: no candidates");
        foreach (int c in Candidates)
            if (c < 1 || c > items) throw new ArgumentException($"sampled objective: candidate {c} is not an item index in 1..{items}");
    }
}
