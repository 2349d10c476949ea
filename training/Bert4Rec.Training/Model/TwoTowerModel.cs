// Two-Tower retrieval (Yi et al., RecSys 2019) on the native engine. User tower: the mean embedding of the user's last L
// history items (L = MaxLength) beside the pooled embedding of each user field, through a dense stack to d, L2-normalised.
// Item tower: the item's id embedding beside its pooled fields, through its own dense stack to d, L2-normalised. Training:
// a batch of (user, history prefix, next item) examples; each example's softmax runs over the batch's target items, logit
// s_ij = u_i . v_j / tau - log Q(item_j) (the sampling-bias correction: Q is an item's probability of being a batch's target,
// its training-set frequency), other examples with the same target item masked out. Hand-written backward. Scores for
// ranking and retrieval: u . v (tau and log Q only shape training). Layout: ParameterLayout's Two-Tower table.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Kernels;

namespace Bert4Rec.Training.Model;

public sealed class TwoTowerModel : IParameterModel
{
    /// <summary>Added under the square root of the L2 norm so that an all-zero tower output has a gradient.</summary>
    public const float NormEpsilon = 1e-12f;

    public ModelConfig Config { get; }
    public ParameterLayout Layout { get; }
    public float[] Parameters { get; }
    public float[] Gradients { get; }
    public int MaxBatch { get; }
    /// <summary>tau: the training logits are cosines divided by it.</summary>
    public float Temperature { get; }

    private readonly int _d, _L, _rows, _uw, _iw, _emb;
    private readonly (int Vocab, int Width)[] _uf, _if;
    private readonly int[] _userSlots, _itemSlots, _ufOff, _ifOff;
    private readonly float[] _logQ;
    private readonly DenseStack _user, _item;
    // per step: normalised outputs (B,d), their norms (B), the (B,B) logits then probabilities, and the towers' output gradients
    private readonly float[] _u, _v, _un, _vn, _s;

    /// <param name="userSlots">(users, user width) feature ids of each user, or null when the config has no user fields.</param>
    /// <param name="itemSlots">(ItemCount + 1, item width) feature ids of each item (row 0 unused), or null without item fields.</param>
    /// <param name="logQ">log Q(i) for items 0..n (entry 0 unused), subtracted from the training logits; null = no correction.</param>
    public TwoTowerModel(ModelConfig config, int[]? userSlots, int[]? itemSlots, int maxBatch, float temperature = 0.05f, float[]? logQ = null, int threads = 0)
    {
        config.Validate();
        if (config.Kind != ModelKind.TwoTower) throw new ArgumentException($"TwoTowerModel needs a two-tower config, got {config.Kind.Name()}");
        if (maxBatch < 1) throw new ArgumentOutOfRangeException(nameof(maxBatch), maxBatch, "must be >= 1");
        if (!(temperature > 0) || !float.IsFinite(temperature)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "must be > 0");
        Config = config;
        Layout = new ParameterLayout(config);
        Parameters = new float[Layout.TotalSize];
        Gradients = new float[Layout.TotalSize];
        MaxBatch = maxBatch;
        Temperature = temperature;
        _d = config.Hidden; _L = config.MaxLength; _rows = config.ItemCount + 1;
        _uf = FeatureShape.Parse(config.UserFeatures);
        _if = FeatureShape.Parse(config.ItemFeatures);
        _uw = _uf.Sum(x => x.Width); _iw = _if.Sum(x => x.Width);
        if (_uw > 0 && (userSlots == null || userSlots.Length % _uw != 0))
            throw new ArgumentException($"user feature slots: {userSlots?.Length ?? 0} ids are not whole rows of width {_uw}");
        _userSlots = FeatureShape.CheckSlots(userSlots, _uf, _uw > 0 ? userSlots!.Length / _uw : 0, "user");
        _itemSlots = FeatureShape.CheckSlots(itemSlots, _if, _rows, "item");
        if (logQ != null && logQ.Length != _rows) throw new ArgumentException($"logQ has {logQ.Length} entries, the items 0..{_rows - 1} need {_rows}");
        if (logQ != null && logQ.Any(x => !float.IsFinite(x))) throw new ArgumentException("logQ holds NaN or infinity");
        _logQ = logQ ?? new float[_rows];
        int Off(string name) => checked((int)Layout[name].Offset);
        _emb = Off("item_emb");
        _ufOff = Enumerable.Range(0, _uf.Length).Select(k => Off($"user_feat.{k}")).ToArray();
        _ifOff = Enumerable.Range(0, _if.Length).Select(k => Off($"item_feat.{k}")).ToArray();
        int[] Sizes(int fields) => [_d * (1 + fields), .. Enumerable.Repeat(_d, config.Layers)];
        _user = new DenseStack(Layout, "user", Sizes(_uf.Length), reluLast: false, maxBatch);
        _item = new DenseStack(Layout, "item", Sizes(_if.Length), reluLast: false, maxBatch);
        _u = new float[maxBatch * _d]; _v = new float[maxBatch * _d];
        _un = new float[maxBatch]; _vn = new float[maxBatch];
        _s = new float[maxBatch * maxBatch];
        Blas.SetThreads(threads > 0 ? threads : Environment.ProcessorCount);
    }

    /// <summary>Rows of the user feature table this model was built with (0 without user fields: any user index is accepted).</summary>
    public int UserRows => _uw > 0 ? _userSlots.Length / _uw : 0;

    /// <summary>Embeddings N(0, 0.1); dense weights Glorot-uniform; biases 0.</summary>
    public void InitializeParameters(ulong seed)
    {
        FeatureFields.Initialize(Layout, Parameters, seed, 0.1);
        Parameters.AsSpan(_emb, _d).Clear();   // the pad item
    }

    // ---------------------------------------------------------------- the towers

    private void CheckUsers(ReadOnlySpan<int> users, ReadOnlySpan<int> histories, int count)
    {
        if (count < 0 || count > MaxBatch) throw new ArgumentOutOfRangeException(nameof(count), count, $"must be in 0..{MaxBatch}");
        if (users.Length < count) throw new ArgumentException($"{count} examples need {count} users");
        if (histories.Length < count * _L) throw new ArgumentException($"{count} examples need {count} history rows of {_L} items");
        for (int b = 0; b < count; b++)
        {
            if (_uw > 0 && (uint)users[b] >= (uint)UserRows) throw new ArgumentOutOfRangeException(nameof(users), users[b], $"user index outside 0..{UserRows - 1}");
            foreach (int i in histories.Slice(b * _L, _L))
                if ((uint)i >= (uint)_rows) throw new ArgumentOutOfRangeException(nameof(histories), i, $"history item outside 0..{_rows - 1} (0 = pad)");
        }
    }

    private void CheckItems(ReadOnlySpan<int> items, int count)
    {
        if (count < 0 || count > MaxBatch) throw new ArgumentOutOfRangeException(nameof(count), count, $"must be in 0..{MaxBatch}");
        if (items.Length < count) throw new ArgumentException($"{count} examples need {count} items");
        for (int b = 0; b < count; b++)
            if (items[b] < 1 || items[b] >= _rows) throw new ArgumentOutOfRangeException(nameof(items), items[b], $"item index outside 1..{_rows - 1}");
    }

    /// <summary>out = h / sqrt(|h|^2 + eps) per row of d; the norms into <paramref name="norms"/>.</summary>
    private void Normalize(ReadOnlySpan<float> h, Span<float> output, Span<float> norms, int count)
    {
        int d = _d;
        for (int b = 0; b < count; b++)
        {
            var row = h.Slice(b * d, d);
            double ss = NormEpsilon;
            for (int c = 0; c < d; c++) ss += (double)row[c] * row[c];
            float s = (float)Math.Sqrt(ss);
            norms[b] = s;
            for (int c = 0; c < d; c++) output[b * d + c] = row[c] / s;
        }
    }

    /// <summary>dh = (du - y (y . du)) / s per row, y the normalised output and s its norm.</summary>
    private void NormalizeBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> norms, ReadOnlySpan<float> dy, Span<float> dh, int count)
    {
        int d = _d;
        for (int b = 0; b < count; b++)
        {
            double dot = 0;
            for (int c = 0; c < d; c++) dot += (double)y[b * d + c] * dy[b * d + c];
            for (int c = 0; c < d; c++) dh[b * d + c] = (float)((dy[b * d + c] - y[b * d + c] * dot) / norms[b]);
        }
    }

    /// <summary>User tower forward into _u (normalised) for <paramref name="count"/> examples.</summary>
    private void UserForward(ReadOnlySpan<int> users, ReadOnlySpan<int> histories, int count)
    {
        int d = _d, w = _user.InputSize;
        var x0 = _user.Acts[0];
        for (int b = 0; b < count; b++)
        {
            var row = x0.AsSpan(b * w, w);
            FeatureFields.Pool(Parameters.AsSpan(_emb), d, histories.Slice(b * _L, _L), row);
            int o = d, s = 0;
            for (int k = 0; k < _uf.Length; k++)
            {
                FeatureFields.Pool(Parameters.AsSpan(_ufOff[k]), d, _userSlots.AsSpan(users[b] * _uw + s, _uf[k].Width), row[o..]);
                o += d; s += _uf[k].Width;
            }
        }
        _user.Forward(Parameters, count);
        Normalize(_user.Acts[^1], _u, _un, count);
    }

    /// <summary>Item tower forward into _v (normalised) for <paramref name="count"/> items.</summary>
    private void ItemForward(ReadOnlySpan<int> items, int count)
    {
        int d = _d, w = _item.InputSize;
        var x0 = _item.Acts[0];
        for (int b = 0; b < count; b++)
        {
            var row = x0.AsSpan(b * w, w);
            int i = items[b];
            Parameters.AsSpan(_emb + i * d, d).CopyTo(row);
            int o = d, s = 0;
            for (int k = 0; k < _if.Length; k++)
            {
                FeatureFields.Pool(Parameters.AsSpan(_ifOff[k]), d, _itemSlots.AsSpan(i * _iw + s, _if[k].Width), row[o..]);
                o += d; s += _if[k].Width;
            }
        }
        _item.Forward(Parameters, count);
        Normalize(_item.Acts[^1], _v, _vn, count);
    }

    // ---------------------------------------------------------------- training

    /// <summary>The in-batch softmax over the targets: _s holds the probabilities afterwards; returns the summed loss.</summary>
    private double BatchSoftmax(ReadOnlySpan<int> targets, int count)
    {
        int B = count, d = _d;
        var S = _s.AsSpan(0, B * B);
        Blas.Sgemm(false, true, B, B, d, 1f / Temperature, _u.AsSpan(0, B * d), d, _v.AsSpan(0, B * d), d, 0f, S, B);
        double loss = 0;
        for (int i = 0; i < B; i++)
        {
            var row = S.Slice(i * B, B);
            double max = double.NegativeInfinity;
            for (int j = 0; j < B; j++)
            {
                // the same item as this example's target, elsewhere in the batch, is not a negative
                if (j != i && targets[j] == targets[i]) { row[j] = float.NegativeInfinity; continue; }
                row[j] -= _logQ[targets[j]];
                max = Math.Max(max, row[j]);
            }
            double sum = 0;
            for (int j = 0; j < B; j++) sum += Math.Exp(row[j] - max);
            double logZ = max + Math.Log(sum);
            loss += logZ - row[i];
            for (int j = 0; j < B; j++) row[j] = (float)Math.Exp(row[j] - logZ);
        }
        return loss;
    }

    /// <summary>
    /// One training step over <paramref name="count"/> examples: example b is user <paramref name="users"/>[b] (a row of the
    /// user feature table; ignored without user fields), its history row (L item ids, 0 = pad, order irrelevant) and its next
    /// item. Mean in-batch softmax cross-entropy with the log-Q correction; backward into <see cref="Gradients"/>.
    /// </summary>
    public float TrainStep(ReadOnlySpan<int> users, ReadOnlySpan<int> histories, ReadOnlySpan<int> targets, int count)
    {
        CheckUsers(users, histories, count);
        CheckItems(targets, count);
        Array.Clear(Gradients);
        if (count == 0) return 0f;
        int B = count, d = _d;
        UserForward(users, histories, count);
        ItemForward(targets, count);
        double loss = BatchSoftmax(targets, count);
        // dS = (P - I) / B; dU = dS V / tau; dV = dS^T U / tau
        var S = _s.AsSpan(0, B * B);
        for (int i = 0; i < B; i++) S[i * B + i] -= 1f;
        float scale = 1f / (B * Temperature);
        var du = _user.Grads[^1].AsSpan(0, B * d);
        var dv = _item.Grads[^1].AsSpan(0, B * d);
        Blas.Sgemm(false, false, B, d, B, scale, S, B, _v.AsSpan(0, B * d), d, 0f, du, d);
        Blas.Sgemm(true, false, B, d, B, scale, S, B, _u.AsSpan(0, B * d), d, 0f, dv, d);
        NormalizeBackward(_u, _un, du, du, count);
        NormalizeBackward(_v, _vn, dv, dv, count);
        _user.Backward(Parameters, Gradients, count);
        _item.Backward(Parameters, Gradients, count);
        // the towers' inputs back to their embedding rows
        var gEmb = Gradients.AsSpan(_emb);
        for (int b = 0; b < B; b++)
        {
            var row = _user.Grads[0].AsSpan(b * _user.InputSize, _user.InputSize);
            FeatureFields.PoolBackward(gEmb, d, histories.Slice(b * _L, _L), row);
            int o = d, s = 0;
            for (int k = 0; k < _uf.Length; k++)
            {
                FeatureFields.PoolBackward(Gradients.AsSpan(_ufOff[k]), d, _userSlots.AsSpan(users[b] * _uw + s, _uf[k].Width), row[o..]);
                o += d; s += _uf[k].Width;
            }
            row = _item.Grads[0].AsSpan(b * _item.InputSize, _item.InputSize);
            int i = targets[b];
            var ge = gEmb.Slice(i * d, d);
            for (int c = 0; c < d; c++) ge[c] += row[c];
            o = d; s = 0;
            for (int k = 0; k < _if.Length; k++)
            {
                FeatureFields.PoolBackward(Gradients.AsSpan(_ifOff[k]), d, _itemSlots.AsSpan(i * _iw + s, _if[k].Width), row[o..]);
                o += d; s += _if[k].Width;
            }
        }
        return (float)(loss / B);
    }

    /// <summary>The step's mean loss without touching the gradients (for gradient checks).</summary>
    public double EvalLoss(ReadOnlySpan<int> users, ReadOnlySpan<int> histories, ReadOnlySpan<int> targets, int count)
    {
        CheckUsers(users, histories, count);
        CheckItems(targets, count);
        if (count == 0) return 0;
        UserForward(users, histories, count);
        ItemForward(targets, count);
        return BatchSoftmax(targets, count) / count;
    }

    // ---------------------------------------------------------------- vectors and scores

    /// <summary>The user tower's normalised vectors (users.Length, d) for users and their history rows (L items each).</summary>
    public void UserVectors(ReadOnlySpan<int> users, ReadOnlySpan<int> histories, Span<float> vectors)
    {
        int total = users.Length, d = _d;
        if (vectors.Length < total * d) throw new ArgumentException($"vectors holds {vectors.Length} floats, {total} users need {total * d}");
        for (int start = 0; start < total; start += MaxBatch)
        {
            int c = Math.Min(MaxBatch, total - start);
            var h = histories.Slice(start * _L);
            CheckUsers(users.Slice(start, c), h, c);
            UserForward(users.Slice(start, c), h, c);
            _u.AsSpan(0, c * d).CopyTo(vectors.Slice(start * d, c * d));
        }
    }

    /// <summary>The item tower's normalised vector of every item, (n + 1, d) with row 0 (the pad) zero: what the FAISS index holds.</summary>
    public float[] ItemVectors()
    {
        int d = _d, n = _rows - 1;
        var result = new float[_rows * d];
        var ids = new int[Math.Min(MaxBatch, n)];
        for (int start = 1; start <= n; start += MaxBatch)
        {
            int c = Math.Min(MaxBatch, n + 1 - start);
            for (int k = 0; k < c; k++) ids[k] = start + k;
            ItemForward(ids, c);
            _v.AsSpan(0, c * d).CopyTo(result.AsSpan(start * d, c * d));
        }
        return result;
    }

    /// <summary>The history row of L item ids a history (oldest first) gives the user tower: its last L items, left-padded.</summary>
    public void HistoryRow(ReadOnlySpan<int> history, Span<int> row) => ModelInput.Fill(history, Config, row);

    public void Dispose() { }
}
