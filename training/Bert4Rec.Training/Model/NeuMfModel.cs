// NeuMF (He et al., WWW 2017) on the native engine: a GMF branch p_u * q_i and an MLP tower over [p'_u, q'_i, pooled user
// fields, pooled item fields], fused by one linear layer into a logit; binary cross-entropy over positives and sampled
// negatives, hand-written backward. Layout: ParameterLayout's NeuMF table.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Kernels;

namespace Bert4Rec.Training.Model;

public sealed unsafe class NeuMfModel : IPointwiseModel
{
    public ModelConfig Config { get; }
    public ParameterLayout Layout { get; }
    public float[] Parameters { get; }
    public float[] Gradients { get; }
    public int MaxBatch { get; }

    private readonly int _f, _m, _L, _in0, _users, _rows;
    private readonly (int Vocab, int Width)[] _uf, _if;
    private readonly int[] _userSlots, _itemSlots;      // (U, Wu) and (n+1, Wi): feature value ids, 0 = pad
    private readonly int _uw, _iw;
    private readonly int _gmfU, _gmfI, _mlpU, _mlpI, _outW, _outB;
    private readonly int[] _ufOff, _ifOff;
    // per step (B examples): the tower's Acts[0] = x0 (B,in0), layer l's output m >> l; _g (B,f) = p_u * q_i; _z (B)
    private readonly ReluTower _tower;
    private readonly float[] _g, _z;

    /// <param name="userSlots">(UserCount, user width) feature ids of each user, or null when the config has no user fields.</param>
    /// <param name="itemSlots">(ItemCount + 1, item width) feature ids of each item (row 0 unused), or null without item fields.</param>
    /// <param name="maxBatch">Examples one training step takes at most.</param>
    public NeuMfModel(ModelConfig config, int[]? userSlots, int[]? itemSlots, int maxBatch, int threads = 0)
    {
        config.Validate();
        if (config.Kind != ModelKind.NeuMf) throw new ArgumentException($"NeuMfModel needs a neumf config, got {config.Kind.Name()}");
        if (maxBatch < 1) throw new ArgumentOutOfRangeException(nameof(maxBatch), maxBatch, "must be >= 1");
        Config = config;
        Layout = new ParameterLayout(config);
        Parameters = new float[Layout.TotalSize];
        Gradients = new float[Layout.TotalSize];
        MaxBatch = maxBatch;
        _f = config.Hidden; _m = config.MlpEmbedding; _L = config.Layers; _users = config.UserCount; _rows = config.ItemCount + 1;
        _uf = FeatureShape.Parse(config.UserFeatures);
        _if = FeatureShape.Parse(config.ItemFeatures);
        _uw = _uf.Sum(x => x.Width); _iw = _if.Sum(x => x.Width);
        _userSlots = FeatureShape.CheckSlots(userSlots, _uf, _users, "user");
        _itemSlots = FeatureShape.CheckSlots(itemSlots, _if, _rows, "item");
        _in0 = 2 * _m + _f * (_uf.Length + _if.Length);
        int Off(string name) => checked((int)Layout[name].Offset);
        _gmfU = Off("gmf.user"); _gmfI = Off("gmf.item"); _mlpU = Off("mlp.user"); _mlpI = Off("mlp.item");
        _ufOff = Enumerable.Range(0, _uf.Length).Select(k => Off($"user_feat.{k}")).ToArray();
        _ifOff = Enumerable.Range(0, _if.Length).Select(k => Off($"item_feat.{k}")).ToArray();
        _outW = Off("out.w"); _outB = Off("out.b");
        _tower = new ReluTower(Layout, _in0, Enumerable.Range(0, _L).Select(l => _m >> l).ToArray(), maxBatch);
        _g = new float[maxBatch * _f]; _z = new float[maxBatch];
        Blas.SetThreads(threads > 0 ? threads : Environment.ProcessorCount);
    }

    /// <summary>Embeddings N(0, 0.01) as the paper; MLP and output weights Glorot-uniform; biases 0.</summary>
    public void InitializeParameters(ulong seed) =>
        ReluTower.Initialize(Layout, Parameters, seed, t => t.Name.EndsWith(".w", StringComparison.Ordinal));

    // ---------------------------------------------------------------- forward and backward over examples

    /// <summary>Mean over a field's non-pad slots of its embedding rows, into <paramref name="output"/> (f).</summary>
    private void PoolField(Span<float> output, ReadOnlySpan<int> slots, int tableOffset) =>
        FeatureFields.Pool(Parameters.AsSpan(tableOffset), _f, slots, output);

    private void PoolFieldBackward(ReadOnlySpan<float> dout, ReadOnlySpan<int> slots, int tableOffset) =>
        FeatureFields.PoolBackward(Gradients.AsSpan(tableOffset), _f, slots, dout);

    /// <summary>x0 row of (u, i): mlp.user[u] | mlp.item[i] | user fields | item fields.</summary>
    private void GatherInput(Span<float> x0, int u, int i)
    {
        Parameters.AsSpan(_mlpU + u * _m, _m).CopyTo(x0);
        Parameters.AsSpan(_mlpI + i * _m, _m).CopyTo(x0[_m..]);
        int o = 2 * _m, s = 0;
        for (int k = 0; k < _uf.Length; k++) { PoolField(x0.Slice(o, _f), _userSlots.AsSpan(u * _uw + s, _uf[k].Width), _ufOff[k]); o += _f; s += _uf[k].Width; }
        s = 0;
        for (int k = 0; k < _if.Length; k++) { PoolField(x0.Slice(o, _f), _itemSlots.AsSpan(i * _iw + s, _if[k].Width), _ifOff[k]); o += _f; s += _if[k].Width; }
    }

    private void CheckExamples(ReadOnlySpan<int> users, ReadOnlySpan<int> items, int count)
    {
        if (count < 0 || count > MaxBatch) throw new ArgumentOutOfRangeException(nameof(count), count, $"must be in 0..{MaxBatch}");
        if (users.Length < count || items.Length < count) throw new ArgumentException($"{count} examples need {count} users and items");
        for (int b = 0; b < count; b++)
        {
            if ((uint)users[b] >= (uint)_users) throw new ArgumentOutOfRangeException(nameof(users), users[b], $"user index outside 0..{_users - 1}");
            if (items[b] < 1 || items[b] >= _rows) throw new ArgumentOutOfRangeException(nameof(items), items[b], $"item index outside 1..{_rows - 1}");
        }
    }

    /// <summary>Logits of <paramref name="count"/> (user, item) examples into _z, keeping every activation for the backward.</summary>
    private void Forward(ReadOnlySpan<int> users, ReadOnlySpan<int> items, int count)
    {
        int f = _f;
        var x0 = _tower.Acts[0];
        for (int b = 0; b < count; b++)
        {
            int u = users[b], i = items[b];
            GatherInput(x0.AsSpan(b * _in0, _in0), u, i);
            var p = Parameters.AsSpan(_gmfU + u * f, f);
            var q = Parameters.AsSpan(_gmfI + i * f, f);
            var g = _g.AsSpan(b * f, f);
            for (int c = 0; c < f; c++) g[c] = p[c] * q[c];
        }
        _tower.Forward(Parameters, count);
        var w = Parameters.AsSpan(_outW, 2 * f);
        float bias = Parameters[_outB];
        var xL = _tower.Acts[_L];
        for (int b = 0; b < count; b++)
        {
            double z = bias;
            for (int c = 0; c < f; c++) z += _g[b * f + c] * w[c] + xL[b * f + c] * w[f + c];
            _z[b] = (float)z;
        }
    }

    public float TrainStep(ReadOnlySpan<int> users, ReadOnlySpan<int> items, ReadOnlySpan<float> labels, int count)
    {
        CheckExamples(users, items, count);
        if (labels.Length < count) throw new ArgumentException($"{count} examples need {count} labels");
        Array.Clear(Gradients);
        if (count == 0) return 0f;
        Forward(users, items, count);
        int f = _f;
        double loss = 0;
        var w = Parameters.AsSpan(_outW, 2 * f);
        var dw = Gradients.AsSpan(_outW, 2 * f);
        var dxL = _tower.DActs[_L];
        // _g (B,f) holds g until its row's output gradient is taken, then dL/dg
        for (int b = 0; b < count; b++)
        {
            loss += ReluTower.Bce(_z[b], labels[b]);
            float dz = (float)((1.0 / (1.0 + Math.Exp(-_z[b])) - labels[b]) / count);
            Gradients[_outB] += dz;
            for (int c = 0; c < f; c++)
            {
                dw[c] += dz * _g[b * f + c];
                dw[f + c] += dz * _tower.Acts[_L][b * f + c];
                _g[b * f + c] = dz * w[c];
                dxL[b * f + c] = dz * w[f + c];
            }
        }
        _tower.Backward(Parameters, Gradients, count);
        // the embeddings: x0's columns back to their rows, the GMF product to both sides
        var dx0 = _tower.DActs[0];
        for (int b = 0; b < count; b++)
        {
            int u = users[b], i = items[b];
            var row = dx0.AsSpan(b * _in0, _in0);
            Add(Gradients.AsSpan(_mlpU + u * _m, _m), row[.._m]);
            Add(Gradients.AsSpan(_mlpI + i * _m, _m), row.Slice(_m, _m));
            int o = 2 * _m, s = 0;
            for (int k = 0; k < _uf.Length; k++) { PoolFieldBackward(row.Slice(o, f), _userSlots.AsSpan(u * _uw + s, _uf[k].Width), _ufOff[k]); o += f; s += _uf[k].Width; }
            s = 0;
            for (int k = 0; k < _if.Length; k++) { PoolFieldBackward(row.Slice(o, f), _itemSlots.AsSpan(i * _iw + s, _if[k].Width), _ifOff[k]); o += f; s += _if[k].Width; }
            var p = Parameters.AsSpan(_gmfU + u * f, f);
            var q = Parameters.AsSpan(_gmfI + i * f, f);
            var dp = Gradients.AsSpan(_gmfU + u * f, f);
            var dq = Gradients.AsSpan(_gmfI + i * f, f);
            for (int c = 0; c < f; c++) { float d = _g[b * f + c]; dp[c] += d * q[c]; dq[c] += d * p[c]; }
        }
        return (float)(loss / count);
    }

    private static void Add(Span<float> dst, ReadOnlySpan<float> src) { for (int c = 0; c < dst.Length; c++) dst[c] += src[c]; }

    /// <summary>The mean binary cross-entropy of the examples without touching the gradients (for gradient checks).</summary>
    public double EvalLoss(ReadOnlySpan<int> users, ReadOnlySpan<int> items, ReadOnlySpan<float> labels, int count)
    {
        CheckExamples(users, items, count);
        Forward(users, items, count);
        double loss = 0;
        for (int b = 0; b < count; b++) loss += ReluTower.Bce(_z[b], labels[b]);
        return count == 0 ? 0 : loss / count;
    }

    /// <summary>The logits of the examples (eval mode), for tests and the exporter's parity check.</summary>
    public void Logits(ReadOnlySpan<int> users, ReadOnlySpan<int> items, Span<float> logits)
    {
        int count = users.Length;
        for (int start = 0; start < count; start += MaxBatch)
        {
            int c = Math.Min(MaxBatch, count - start);
            CheckExamples(users.Slice(start, c), items.Slice(start, c), c);
            Forward(users.Slice(start, c), items.Slice(start, c), c);
            _z.AsSpan(0, c).CopyTo(logits.Slice(start, c));
        }
    }

    // ---------------------------------------------------------------- scoring every item

    /// <summary>
    /// Logits of every item for each user. The first layer splits into a user part and an item part,
    /// x0 W_0 = [user columns] W_0[user rows] + [item columns] W_0[item rows], so the item part is computed once per call
    /// for all items and each user adds its own row; the rest of the tower runs over the n items per user.
    /// </summary>
    public void ScoreItems(ReadOnlySpan<int> users, Span<float> scores)
    {
        int B = users.Length, n = _rows - 1, f = _f, o0 = _tower.Outputs[0];
        if (scores.Length < B * _rows) throw new ArgumentException($"scores holds {scores.Length} floats, {B} users need {B * _rows}");
        foreach (int u in users) if ((uint)u >= (uint)_users) throw new ArgumentOutOfRangeException(nameof(users), u, $"user index outside 0..{_users - 1}");
        if (B == 0) return;
        int uCols = _m + f * _uf.Length, iCols = _m + f * _if.Length;
        // item side: X_i (n, iCols) = mlp.item | item fields, then X_i W_0[item rows] + b_0 (n, o0)
        var xi = new float[n * iCols];
        var itemPart = new float[n * o0];
        for (int i = 1; i <= n; i++)
        {
            var row = xi.AsSpan((i - 1) * iCols, iCols);
            Parameters.AsSpan(_mlpI + i * _m, _m).CopyTo(row);
            int o = _m, s = 0;
            for (int k = 0; k < _if.Length; k++) { PoolField(row.Slice(o, f), _itemSlots.AsSpan(i * _iw + s, _if[k].Width), _ifOff[k]); o += f; s += _if[k].Width; }
        }
        var W0 = _tower.Weights(Parameters, 0);
        int itemFieldRow = 2 * _m + f * _uf.Length;
        Blas.Sgemm(false, false, n, o0, _m, 1f, xi, iCols, W0.Slice(_m * o0), o0, 0f, itemPart, o0);
        if (_if.Length > 0)
            Blas.Sgemm(false, false, n, o0, f * _if.Length, 1f, xi.AsSpan(_m), iCols, W0.Slice(itemFieldRow * o0), o0, 1f, itemPart, o0);
        _tower.AddFirstBias(Parameters, itemPart, n);
        // user side: X_u (B, uCols) = mlp.user | user fields, then X_u W_0[user rows] (B, o0)
        var xu = new float[B * uCols];
        for (int b = 0; b < B; b++)
        {
            var row = xu.AsSpan(b * uCols, uCols);
            int u = users[b];
            Parameters.AsSpan(_mlpU + u * _m, _m).CopyTo(row);
            int o = _m, s = 0;
            for (int k = 0; k < _uf.Length; k++) { PoolField(row.Slice(o, f), _userSlots.AsSpan(u * _uw + s, _uf[k].Width), _ufOff[k]); o += f; s += _uf[k].Width; }
        }
        var userPart = new float[B * o0];
        Blas.Sgemm(false, false, B, o0, _m, 1f, xu, uCols, W0, o0, 0f, userPart, o0);
        if (_uf.Length > 0)
            Blas.Sgemm(false, false, B, o0, f * _uf.Length, 1f, xu.AsSpan(_m), uCols, W0.Slice(2 * _m * o0), o0, 1f, userPart, o0);
        var hidden = _tower.ItemBuffers(n);
        var gw = new float[f];
        var gmf = new float[n];
        var w = Parameters.AsSpan(_outW, 2 * f);
        float bias = Parameters[_outB];
        var Q = Parameters.AsSpan(_gmfI + f, n * f);     // items 1..n
        for (int b = 0; b < B; b++)
        {
            int u = users[b];
            var top = _tower.OverItems(Parameters, itemPart, userPart.AsSpan(b * o0, o0), n, hidden);
            // GMF: q_i . (p_u * w_g) for every item at once; MLP: x_L,i . w_m
            var p = Parameters.AsSpan(_gmfU + u * f, f);
            for (int c = 0; c < f; c++) gw[c] = p[c] * w[c];
            Blas.Sgemm(false, false, n, 1, f, 1f, Q, f, gw, 1, 0f, gmf, 1);
            Blas.Sgemm(false, false, n, 1, f, 1f, top, f, w.Slice(f), 1, 1f, gmf, 1);
            var row = scores.Slice(b * _rows, _rows);
            row[0] = float.NegativeInfinity;
            for (int i = 0; i < n; i++) row[i + 1] = gmf[i] + bias;
        }
    }

    public void Dispose() { }
}
