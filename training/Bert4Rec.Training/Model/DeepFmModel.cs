// DeepFM (Guo et al., IJCAI 2017) on the native engine. Fields (DeepFmFields): user id, user features, the last history item,
// the mean of the latest MaxLength history items, item id, item features; each field one k-dim embedding e_f (a multi-slot
// field: the mean of its non-pad rows) and one first-order weight w_f, shared by both parts as in the paper:
//   logit = b + sum_f w_f + 1/2 (|sum_f e_f|^2 - sum_f |e_f|^2)  [FM, O(kF)]  + MLP([e_1 | ... | e_F]) . out.w  [deep]
// binary cross-entropy over positives and sampled negatives, hand-written backward. Layout: ParameterLayout's DeepFM table.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Kernels;

namespace Bert4Rec.Training.Model;

public sealed class DeepFmModel : IPointwiseModel
{
    public ModelConfig Config { get; }
    public ParameterLayout Layout { get; }
    public float[] Parameters { get; }
    public float[] Gradients { get; }
    public int MaxBatch { get; }
    public int HistoryLength => Config.MaxLength;

    private readonly int _k, _L, _F, _in0, _users, _rows, _H, _idWidth, _userFieldCount, _uw, _iw;
    private readonly DeepFmField[] _fields;
    private readonly int[] _emb, _w, _idAt;             // per field: table offsets, and where its ids start in an example's id row
    private readonly int _outW, _outB;
    private readonly int[] _userSlots, _itemSlots;
    // per step (B examples): _ids (B, idWidth) every field's ids; the deep part's Acts[0] = x0 (B, F k) the field embeddings
    // side by side, layer l's output m >> l; _sum (B, k) = sum_f e_f; _z (B) the logits
    private readonly int[] _ids;
    private readonly ReluTower _tower;
    private readonly float[] _sum, _z;

    /// <param name="userSlots">(UserCount, user width) feature ids of each user, or null when the config has no user fields.</param>
    /// <param name="itemSlots">(ItemCount + 1, item width) feature ids of each item (row 0 unused), or null without item fields.</param>
    public DeepFmModel(ModelConfig config, int[]? userSlots, int[]? itemSlots, int maxBatch, int threads = 0)
    {
        config.Validate();
        if (config.Kind != ModelKind.DeepFm) throw new ArgumentException($"DeepFmModel needs a deepfm config, got {config.Kind.Name()}");
        if (maxBatch < 1) throw new ArgumentOutOfRangeException(nameof(maxBatch), maxBatch, "must be >= 1");
        Config = config;
        Layout = new ParameterLayout(config);
        Parameters = new float[Layout.TotalSize];
        Gradients = new float[Layout.TotalSize];
        MaxBatch = maxBatch;
        _k = config.Hidden; _L = config.Layers; _users = config.UserCount; _rows = config.ItemCount + 1; _H = config.MaxLength;
        _fields = DeepFmFields.Of(config).ToArray();
        _F = _fields.Length; _in0 = _F * _k;
        _userFieldCount = _fields.Count(f => f.UserSide);
        var uf = FeatureShape.Parse(config.UserFeatures);
        var itf = FeatureShape.Parse(config.ItemFeatures);
        _uw = uf.Sum(x => x.Width); _iw = itf.Sum(x => x.Width);
        _userSlots = FeatureShape.CheckSlots(userSlots, uf, _users, "user");
        _itemSlots = FeatureShape.CheckSlots(itemSlots, itf, _rows, "item");
        int Off(string name) => checked((int)Layout[name].Offset);
        _emb = _fields.Select(f => Off($"{f.Name}.emb")).ToArray();
        _w = _fields.Select(f => Off($"{f.Name}.w")).ToArray();
        _idAt = new int[_F];
        for (int f = 1; f < _F; f++) _idAt[f] = _idAt[f - 1] + _fields[f - 1].Width;
        _idWidth = _idAt[^1] + _fields[^1].Width;
        _outW = Off("out.w"); _outB = Off("out.b");
        _ids = new int[maxBatch * _idWidth];
        _tower = new ReluTower(Layout, _in0, Enumerable.Range(0, _L).Select(l => config.MlpEmbedding >> l).ToArray(), maxBatch);
        _sum = new float[maxBatch * _k]; _z = new float[maxBatch];
        Blas.SetThreads(threads > 0 ? threads : Environment.ProcessorCount);
    }

    /// <summary>Embeddings and first-order weights N(0, 0.01); MLP and output weights Glorot-uniform; biases 0.</summary>
    public void InitializeParameters(ulong seed) =>
        ReluTower.Initialize(Layout, Parameters, seed, t => t.Name.StartsWith("mlp.", StringComparison.Ordinal) || t.Name == "out.w");

    // ---------------------------------------------------------------- fields

    /// <summary>Writes one example's id row: user | user feature slots | last history item | latest H items | item | item slots.</summary>
    private void FillIds(Span<int> row, int u, ReadOnlySpan<int> history, int i)
    {
        int o = 0;
        row[o++] = u;
        _userSlots.AsSpan(u * _uw, _uw).CopyTo(row[o..]); o += _uw;
        row[o++] = history.Length > 0 ? history[^1] : 0;
        row.Slice(o, _H).Clear();
        int keep = Math.Min(history.Length, _H);
        history[^keep..].CopyTo(row.Slice(o + _H - keep, keep)); o += _H;
        row[o++] = i;
        _itemSlots.AsSpan(i * _iw, _iw).CopyTo(row[o..]);
    }

    /// <summary>Field f's embedding into <paramref name="e"/> (k) and its first-order weight, from its ids.</summary>
    private float Embed(int f, ReadOnlySpan<int> ids, Span<float> e)
    {
        e.Clear();
        var field = _fields[f];
        int count = 0;
        double w = 0;
        foreach (int id in ids)
        {
            if (field.Pooled && id == 0) continue;
            count++;
            w += Parameters[_w[f] + id];
            var row = Parameters.AsSpan(_emb[f] + id * _k, _k);
            for (int c = 0; c < _k; c++) e[c] += row[c];
        }
        if (count > 1) { for (int c = 0; c < _k; c++) e[c] /= count; w /= count; }
        return (float)w;
    }

    private void EmbedBackward(int f, ReadOnlySpan<int> ids, ReadOnlySpan<float> de, float dw)
    {
        var field = _fields[f];
        int count = 0;
        foreach (int id in ids) if (!field.Pooled || id != 0) count++;
        if (count == 0) return;
        float scale = 1f / count;
        foreach (int id in ids)
        {
            if (field.Pooled && id == 0) continue;
            Gradients[_w[f] + id] += dw * scale;
            var g = Gradients.AsSpan(_emb[f] + id * _k, _k);
            for (int c = 0; c < _k; c++) g[c] += de[c] * scale;
        }
    }

    /// <summary>Fields from..to-1 of one id row into <paramref name="x"/> ((to-from) k) and their sum into <paramref name="sum"/>
    /// (k); returns the first-order sum plus the FM's pairwise term among these fields.</summary>
    private float EmbedFields(ReadOnlySpan<int> ids, int from, int to, Span<float> x, Span<float> sum)
    {
        sum.Clear();
        double first = 0, squares = 0;
        for (int f = from; f < to; f++)
        {
            var e = x.Slice((f - from) * _k, _k);
            first += Embed(f, ids.Slice(_idAt[f], _fields[f].Width), e);
            for (int c = 0; c < _k; c++) { sum[c] += e[c]; squares += (double)e[c] * e[c]; }
        }
        double s2 = 0;
        for (int c = 0; c < _k; c++) s2 += (double)sum[c] * sum[c];
        return (float)(first + 0.5 * (s2 - squares));
    }

    // ---------------------------------------------------------------- forward and backward over examples

    private void CheckExamples(ReadOnlySpan<int> users, ReadOnlySpan<int> histories, ReadOnlySpan<int> items, int count)
    {
        if (count < 0 || count > MaxBatch) throw new ArgumentOutOfRangeException(nameof(count), count, $"must be in 0..{MaxBatch}");
        if (users.Length < count || items.Length < count) throw new ArgumentException($"{count} examples need {count} users and items");
        if (histories.Length != 0 && histories.Length < count * _H)
            throw new ArgumentException($"histories holds {histories.Length} ids; {count} examples need {count} x {_H} (or none)");
        for (int b = 0; b < count; b++)
        {
            if ((uint)users[b] >= (uint)_users) throw new ArgumentOutOfRangeException(nameof(users), users[b], $"user index outside 0..{_users - 1}");
            if (items[b] < 1 || items[b] >= _rows) throw new ArgumentOutOfRangeException(nameof(items), items[b], $"item index outside 1..{_rows - 1}");
        }
        for (int k = 0; k < Math.Min(histories.Length, count * _H); k++)
            if ((uint)histories[k] >= (uint)_rows) throw new ArgumentOutOfRangeException(nameof(histories), histories[k], $"history item outside 0..{_rows - 1} (0 = pad)");
    }

    /// <summary>An example's history window (H items, the latest last, left-padded with 0), or none.</summary>
    private ReadOnlySpan<int> Window(ReadOnlySpan<int> histories, int b) => histories.Length == 0 ? default : histories.Slice(b * _H, _H);

    /// <summary>Logits of <paramref name="count"/> examples into _z, keeping the ids and activations for the backward.</summary>
    private void Forward(ReadOnlySpan<int> users, ReadOnlySpan<int> histories, ReadOnlySpan<int> items, int count)
    {
        var x0 = _tower.Acts[0];
        var first = _z;
        for (int b = 0; b < count; b++)
        {
            var ids = _ids.AsSpan(b * _idWidth, _idWidth);
            FillIds(ids, users[b], Window(histories, b), items[b]);
            // a padded window's zeros are pads: the history fields skip them, so only the real items count
            first[b] = EmbedFields(ids, 0, _F, x0.AsSpan(b * _in0, _in0), _sum.AsSpan(b * _k, _k));
        }
        _tower.Forward(Parameters, count);
        var w = Parameters.AsSpan(_outW, _k);
        float bias = Parameters[_outB];
        var xL = _tower.Acts[_L];
        for (int b = 0; b < count; b++)
        {
            double z = bias + first[b];
            for (int c = 0; c < _k; c++) z += xL[b * _k + c] * w[c];
            _z[b] = (float)z;
        }
    }

    public float TrainStep(ReadOnlySpan<int> users, ReadOnlySpan<int> items, ReadOnlySpan<float> labels, int count) =>
        TrainStep(users, default, items, labels, count);

    public float TrainStep(ReadOnlySpan<int> users, ReadOnlySpan<int> histories, ReadOnlySpan<int> items, ReadOnlySpan<float> labels, int count)
    {
        CheckExamples(users, histories, items, count);
        if (labels.Length < count) throw new ArgumentException($"{count} examples need {count} labels");
        Array.Clear(Gradients);
        if (count == 0) return 0f;
        Forward(users, histories, items, count);
        int k = _k;
        double loss = 0;
        var w = Parameters.AsSpan(_outW, k);
        var dw = Gradients.AsSpan(_outW, k);
        var dxL = _tower.DActs[_L];
        var dz = new float[count];
        for (int b = 0; b < count; b++)
        {
            loss += ReluTower.Bce(_z[b], labels[b]);
            float d = dz[b] = (float)((1.0 / (1.0 + Math.Exp(-_z[b])) - labels[b]) / count);
            Gradients[_outB] += d;
            for (int c = 0; c < k; c++) { dw[c] += d * _tower.Acts[_L][b * k + c]; dxL[b * k + c] = d * w[c]; }
        }
        _tower.Backward(Parameters, Gradients, count);
        // each field: de_f = (deep part's column block) + dz (S - e_f) for the FM, dw_f = dz, back to the rows it pooled
        var de = new float[k];
        for (int b = 0; b < count; b++)
        {
            var ids = _ids.AsSpan(b * _idWidth, _idWidth);
            var sum = _sum.AsSpan(b * k, k);
            for (int f = 0; f < _F; f++)
            {
                var e = _tower.Acts[0].AsSpan(b * _in0 + f * k, k);
                var dDeep = _tower.DActs[0].AsSpan(b * _in0 + f * k, k);
                for (int c = 0; c < k; c++) de[c] = dDeep[c] + dz[b] * (sum[c] - e[c]);
                EmbedBackward(f, ids.Slice(_idAt[f], _fields[f].Width), de, dz[b]);
            }
        }
        return (float)(loss / count);
    }

    /// <summary>The mean binary cross-entropy of the examples without touching the gradients (for gradient checks).</summary>
    public double EvalLoss(ReadOnlySpan<int> users, ReadOnlySpan<int> histories, ReadOnlySpan<int> items, ReadOnlySpan<float> labels, int count)
    {
        CheckExamples(users, histories, items, count);
        Forward(users, histories, items, count);
        double loss = 0;
        for (int b = 0; b < count; b++) loss += ReluTower.Bce(_z[b], labels[b]);
        return count == 0 ? 0 : loss / count;
    }

    /// <summary>The logits of (user, history window, item) examples, for tests, reranking and the exporter's parity check.</summary>
    public void Logits(ReadOnlySpan<int> users, ReadOnlySpan<int> histories, ReadOnlySpan<int> items, Span<float> logits)
    {
        int count = users.Length;
        for (int start = 0; start < count; start += MaxBatch)
        {
            int c = Math.Min(MaxBatch, count - start);
            var h = histories.Length == 0 ? default : histories.Slice(start * _H, c * _H);
            CheckExamples(users.Slice(start, c), h, items.Slice(start, c), c);
            Forward(users.Slice(start, c), h, items.Slice(start, c), c);
            _z.AsSpan(0, c).CopyTo(logits.Slice(start, c));
        }
    }

    // ---------------------------------------------------------------- scoring every item

    public void ScoreItems(ReadOnlySpan<int> users, Span<float> scores) => ScoreItems(users, default, scores);

    /// <summary>
    /// Logits of every item for each (user, history window). The fields split into a user side U and an item side I, so
    /// FM(U ∪ I) = FM(U) + FM(I) + S_U . S_I and the first layer x0 W_0 = x_U W_0[U rows] + x_I W_0[I rows]: the item side
    /// is computed once per call for all items, each user adds its own; the rest of the deep part runs over the n items per user.
    /// </summary>
    public void ScoreItems(ReadOnlySpan<int> users, ReadOnlySpan<int> histories, Span<float> scores)
    {
        int B = users.Length, n = _rows - 1, k = _k, o0 = _tower.Outputs[0];
        if (scores.Length < B * _rows) throw new ArgumentException($"scores holds {scores.Length} floats, {B} users need {B * _rows}");
        if (histories.Length != 0 && histories.Length != B * _H) throw new ArgumentException($"histories holds {histories.Length} ids; {B} users need {B} x {_H} (or none)");
        foreach (int u in users) if ((uint)u >= (uint)_users) throw new ArgumentOutOfRangeException(nameof(users), u, $"user index outside 0..{_users - 1}");
        foreach (int h in histories) if ((uint)h >= (uint)_rows) throw new ArgumentOutOfRangeException(nameof(histories), h, $"history item outside 0..{_rows - 1} (0 = pad)");
        if (B == 0) return;
        int fu = _userFieldCount, uCols = fu * k, iCols = (_F - fu) * k;
        var W0 = _tower.Weights(Parameters, 0);
        var idRow = new int[_idWidth];
        // item side: x_I (n, iCols), S_I (n, k), first-order + FM within I (n); x_I W_0[I rows] + b_0 (n, o0)
        var xi = new float[n * iCols];
        var si = new float[n * k];
        var itemConst = new float[n];
        for (int i = 1; i <= n; i++)
        {
            FillIds(idRow, 0, default, i);
            itemConst[i - 1] = EmbedFields(idRow, fu, _F, xi.AsSpan((i - 1) * iCols, iCols), si.AsSpan((i - 1) * k, k));
        }
        var itemPart = new float[n * o0];
        Blas.Sgemm(false, false, n, o0, iCols, 1f, xi, iCols, W0.Slice(uCols * o0), o0, 0f, itemPart, o0);
        _tower.AddFirstBias(Parameters, itemPart, n);
        // user side: x_U (B, uCols), S_U (B, k), first-order + FM within U; x_U W_0[U rows] (B, o0)
        var xu = new float[B * uCols];
        var su = new float[B * k];
        var userConst = new float[B];
        for (int b = 0; b < B; b++)
        {
            FillIds(idRow, users[b], Window(histories, b), 1);
            userConst[b] = EmbedFields(idRow, 0, fu, xu.AsSpan(b * uCols, uCols), su.AsSpan(b * k, k));
        }
        var userPart = new float[B * o0];
        Blas.Sgemm(false, false, B, o0, uCols, 1f, xu, uCols, W0, o0, 0f, userPart, o0);
        var hidden = _tower.ItemBuffers(n);
        var z = new float[n];
        var w = Parameters.AsSpan(_outW, k);
        float bias = Parameters[_outB];
        for (int b = 0; b < B; b++)
        {
            var top = _tower.OverItems(Parameters, itemPart, userPart.AsSpan(b * o0, o0), n, hidden);
            // the cross-side FM term S_I S_U and the deep part's output x_L out.w, for every item at once
            Blas.Sgemm(false, false, n, 1, k, 1f, si, k, su.AsSpan(b * k, k), 1, 0f, z, 1);
            Blas.Sgemm(false, false, n, 1, k, 1f, top, k, w, 1, 1f, z, 1);
            var row = scores.Slice(b * _rows, _rows);
            row[0] = float.NegativeInfinity;
            float c0 = bias + userConst[b];
            for (int i = 0; i < n; i++) row[i + 1] = z[i] + itemConst[i] + c0;
        }
    }

    public void Dispose() { }
}
