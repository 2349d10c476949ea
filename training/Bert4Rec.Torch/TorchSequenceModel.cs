// What the TorchSharp models of the family share: the parameters live in ONE flat libtorch tensor laid out by ParameterLayout
// (each named tensor is a view into it, so autograd leaves every gradient in one flat buffer of the same layout), the
// trainer's float[] buffers are copied in before and out after each step (AdamW, clipping, checkpoints and export stay the
// C# ones), the output identity logit(v) = z . E[v] + b_O[v] and the cross-entropy over items 1..n at labelled positions.
// A kind supplies the encoder (ids (B,N) -> final hidden (B,N,d)) and the head (hidden rows -> z).
using Bert4Rec.Contracts;
using Bert4Rec.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Bert4Rec.Torch;

public abstract class TorchSequenceModel : ITrainableModel
{
    public ModelConfig Config { get; }
    public ParameterLayout Layout { get; }
    public float[] Parameters { get; }
    public float[] Gradients { get; }
    public int MaxBatch { get; }
    public Device Device { get; }
    public int Threads { get; }

    protected readonly int _d, _n, _items, _vocab;
    // one leaf tensor per named parameter: views of one flat leaf would make autograd materialise a zero-filled buffer of
    // the whole layout for every view's gradient (14 MB per view and backward at Beauty's 54k items)
    private readonly Dictionary<string, Tensor> _views = new(StringComparer.Ordinal);
    private long[] _ids = [];

    protected TorchSequenceModel(ModelConfig config, int maxBatch, int threads, Device device)
    {
        config.Validate();
        if (maxBatch < 1) throw new ArgumentOutOfRangeException(nameof(maxBatch), maxBatch, "must be >= 1");
        Config = config;
        Layout = new ParameterLayout(config);
        MaxBatch = maxBatch;
        Threads = threads > 0 ? threads : Environment.ProcessorCount;
        Device = device;
        Parameters = new float[Layout.TotalSize];
        Gradients = new float[Layout.TotalSize];
        _d = config.Hidden; _n = config.MaxLength; _items = config.ItemCount; _vocab = config.VocabSize;
        TorchEngine.EnsureLoaded();
        torch.set_num_threads(Threads);
        foreach (var t in Layout.Tensors)
            _views[t.Name] = torch.zeros(t.Shape.Select(x => (long)x).ToArray(), ScalarType.Float32, device).requires_grad_(true);
    }

    /// <summary>The live view of a named parameter (shape as in the layout: matrices (in,out), so y = x @ W).</summary>
    protected Tensor P(string name) => _views.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"no parameter named '{name}'");

    /// <summary>The native engine's initialisation of the same kind and seed, bit for bit (TorchSharp 0.107's trunc_normal_
    /// fills a constant; and one initialisation for both engines makes their runs comparable from step 0).</summary>
    public void InitializeParameters(ulong seed)
    {
        using var native = SequenceModels.Create(Config, 1, Threads);
        native.InitializeParameters(seed);
        native.Parameters.CopyTo(Parameters, 0);
    }

    // ---------------------------------------------------------------- what a kind supplies

    /// <summary>Final hidden states (B,L,d) of ids (B,L), the last L columns of the rows (positions
    /// <paramref name="firstPosition"/> .. N-1); <paramref name="pad"/> is ids == 0 (B,L).</summary>
    protected abstract Tensor Encode(Tensor ids, Tensor pad, int firstPosition, bool train);
    /// <summary>z (M,d) from final hidden rows (M,d). Default: z = h.</summary>
    protected virtual Tensor Head(Tensor h) => h;

    // ---------------------------------------------------------------- steps

    /// <summary>
    /// The trainer's parameters into the leaves. On the CPU each leaf's own memory is written directly: no host tensor, no
    /// views and no copy_ through the autograd dispatcher. (The copy_ route, from views of one host tensor, failed on Amazon
    /// Beauty at the end of the first epoch, after 640 steps, inside libtorch's forward-mode AD check: "forward view info
    /// can only exist for forward views"; synthetic runs never showed it.) Other devices copy from a host tensor per leaf.
    /// </summary>
    private void Upload()
    {
        using var _ = torch.no_grad();
        foreach (var t in Layout.Tensors)
        {
            var leaf = _views[t.Name];
            if (Device.type == DeviceType.CPU) leaf.bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(Layout.Slice(Parameters, t.Name));
            else
                using (var host = torch.tensor(Layout.Slice(Parameters, t.Name).ToArray(), leaf.shape, ScalarType.Float32))
                    leaf.copy_(host);
        }
    }

    /// <summary>Checks the rows (left-padded, ids in the vocabulary) and returns each row's number of real tokens.</summary>
    private int[] RowLengths(ReadOnlySpan<int> inputIds, int batch)
    {
        if (batch < 1 || batch > MaxBatch) throw new ArgumentOutOfRangeException(nameof(batch), batch, $"batch must be in 1..{MaxBatch}");
        if (inputIds.Length != batch * _n) throw new ArgumentException($"inputIds has {inputIds.Length} ids; batch {batch} x length {_n} needs {batch * _n}");
        var lengths = new int[batch];
        for (int b = 0; b < batch; b++)
        {
            int first = -1;
            for (int t = 0; t < _n; t++)
            {
                int id = inputIds[b * _n + t];
                if (id == ModelConfig.PadId)
                {
                    if (first >= 0) throw new ArgumentException($"row {b}: [PAD] at position {t} after a real token (sequences must be left-padded)");
                }
                else if (id < 0 || id >= _vocab) throw new ArgumentException($"row {b}, position {t}: id {id} is outside the vocabulary 0..{_vocab - 1}");
                else if (first < 0) first = t;
            }
            lengths[b] = first < 0 ? 0 : _n - first;
        }
        return lengths;
    }

    /// <summary>
    /// The rows in groups of similar length, shortest first, each group cut to its longest row (at least one column): the
    /// leading columns dropped are [PAD] in every row of the group, and [PAD]s change nothing for real tokens (masked keys;
    /// a carried GRU state of 0), so the result is the full-width one while the work follows the real lengths.
    /// </summary>
    private List<(int[] Rows, int Width)> Groups(int[] lengths)
    {
        var order = Enumerable.Range(0, lengths.Length).OrderBy(b => lengths[b]).ThenBy(b => b).ToArray();
        int widest = Math.Max(1, lengths.Max());
        double dense = lengths.Sum() / ((double)lengths.Length * widest);
        int groups = dense < GroupBelowDensity ? Math.Clamp(lengths.Length / MinGroupRows, 1, GroupCount) : 1;
        var list = new List<(int[], int)>();
        for (int g = 0; g < groups; g++)
        {
            int lo = g * order.Length / groups, hi = (g + 1) * order.Length / groups;
            if (hi <= lo) continue;
            var rows = order[lo..hi];
            list.Add((rows, Math.Max(1, rows.Max(b => lengths[b]))));
        }
        return list;
    }

    /// <summary>
    /// Length groups, off by default: a batch whose real tokens fill less than <see cref="GroupBelowDensity"/> of batch x its
    /// longest row would run as up to <see cref="GroupCount"/> groups of at least <see cref="MinGroupRows"/> rows. Measured
    /// slower every time, because each group's backward pays the full output layer and embedding gradient again: batch 256 x
    /// 200, lengths uniform in [50, 200] (`bench train --engine torchsharp --groups G`), 1, 2, 4 groups: 12.6k, 9.3k, 5.9k
    /// tokens/s (peak RSS 2.1, 1.4, 0.84 GB); Amazon Beauty (N 50, 54k items, 8.8 items a user): 4 groups 401 real tokens/s.
    /// </summary>
    public int GroupCount { get; set; } = 4;
    public double GroupBelowDensity { get; set; } = 0;
    public int MinGroupRows { get; set; } = 64;

    /// <summary>ids (rows, width) of the given rows' last <paramref name="width"/> columns, on the device.</summary>
    private Tensor GroupIds(ReadOnlySpan<int> inputIds, int[] rows, int width)
    {
        if (_ids.Length < rows.Length * width) _ids = new long[MaxBatch * _n];
        for (int r = 0; r < rows.Length; r++)
            for (int c = 0; c < width; c++) _ids[r * width + c] = inputIds[rows[r] * _n + _n - width + c];
        return torch.tensor(_ids.AsMemory(0, rows.Length * width), [rows.Length, width], ScalarType.Int64).to(Device);
    }

    public float TrainStep(ReadOnlySpan<int> inputIds, ReadOnlySpan<int> labels, int batch, ulong dropoutSeed) =>
        TrainStep(inputIds, labels, batch, dropoutSeed, null);

    /// <summary>
    /// The summed loss of prediction rows z (m,d) with 1-based targets: full cross-entropy over items 1..n, or the sampled
    /// objective's loss over its candidates (shared by the rows; log-Q subtracted from every logit when given; a candidate
    /// equal to a row's target takes no part in that row), the same sums as the native engine's kernels.
    /// </summary>
    private Tensor SummedLoss(Tensor z, long[] targets, SampledObjective? o)
    {
        var emb = P("tok_emb");
        var bias = P("out_bias");
        if (o == null)
        {
            var logits = z.matmul(emb.narrow(0, 1, _items).t()).add(bias.narrow(0, 1, _items));
            var zeroBased = torch.tensor(targets.Select(t => t - 1).ToArray(), ScalarType.Int64).to(Device);
            return torch.nn.functional.cross_entropy(logits, zeroBased, reduction: nn.Reduction.Sum);
        }
        o.CheckCandidates(_items);
        var cand = torch.tensor(o.Candidates.Select(c => (long)c).ToArray(), ScalarType.Int64).to(Device);
        var tg = torch.tensor(targets, ScalarType.Int64).to(Device);
        var pos = z.mul(emb.index_select(0, tg)).sum(1).add(bias.index_select(0, tg));             // (m)
        var neg = z.matmul(emb.index_select(0, cand).t()).add(bias.index_select(0, cand));         // (m,K)
        if (o.LogQ != null)
        {
            var logQ = torch.tensor(o.LogQ).to(Device);
            pos = pos.sub(logQ.index_select(0, tg));
            neg = neg.sub(logQ.index_select(0, cand));
        }
        var hit = tg.unsqueeze(1).eq(cand.unsqueeze(0));
        if (o.Kind == SampledLossKind.Gbce)
        {
            // -beta log sigma(pos) - sum over the row's other candidates of log(1 - sigma(neg)), as softplus terms
            var positives = torch.nn.functional.softplus(pos.neg()).sum().mul(o.Beta);
            return positives.add(torch.nn.functional.softplus(neg).masked_fill(hit, 0).sum());
        }
        var all = torch.cat([pos.unsqueeze(1), neg.masked_fill(hit, float.NegativeInfinity)], 1);
        return all.logsumexp(1).sub(pos).sum();
    }

    public float TrainStep(ReadOnlySpan<int> inputIds, ReadOnlySpan<int> labels, int batch, ulong dropoutSeed, SampledObjective? sampled)
    {
        var lengths = RowLengths(inputIds, batch);
        int M = SequenceModel.CountLabels(labels, batch, _n, _items, lengths);
        Upload();
        foreach (var v in _views.Values) v.grad = null;
        if (M == 0) { Array.Clear(Gradients); return 0f; }
        torch.manual_seed(unchecked((long)dropoutSeed));
        if (Device.type == DeviceType.CUDA) torch.cuda.manual_seed(unchecked((long)dropoutSeed));
        double loss = 0;
        // one forward/backward per length group; each adds its share (sum of its cross-entropies / M) into the one gradient
        foreach (var (rows, width) in Groups(lengths))
        {
            var where = new List<long>();
            var targets = new List<long>();
            for (int r = 0; r < rows.Length; r++)
                for (int c = 0; c < width; c++)
                {
                    int y = labels[rows[r] * _n + _n - width + c];
                    if (y == 0) continue;
                    where.Add(r * width + c);
                    targets.Add(y);
                }
            if (where.Count == 0) continue;
            using var scope = torch.NewDisposeScope();
            var ids = GroupIds(inputIds, rows, width);
            var h = Encode(ids, ids.eq(0), _n - width, train: true);
            var picked = h.reshape(-1, _d).index_select(0, torch.tensor(where.ToArray(), ScalarType.Int64).to(Device));
            var part = SummedLoss(Head(picked), targets.ToArray(), sampled).div(M);
            part.backward();
            loss += part.item<float>();
        }
        foreach (var t in Layout.Tensors)
        {
            using var grad = _views[t.Name].grad;
            if (grad is null) { Layout.Slice(Gradients, t.Name).Clear(); continue; }   // a parameter the step did not reach
            using var host = grad.cpu().contiguous();
            host.data<float>().CopyTo(Layout.Slice(Gradients, t.Name), 0, 0);
        }
        return (float)loss;
    }

    public void PredictLast(ReadOnlySpan<int> inputIds, int batch, Span<float> z, Span<float> logits)
    {
        var lengths = RowLengths(inputIds, batch);
        if (z.Length != batch * _d) throw new ArgumentException($"z has {z.Length} floats; needs batch {batch} x d {_d}");
        if (!logits.IsEmpty && logits.Length != (long)batch * _vocab) throw new ArgumentException($"logits has {logits.Length} floats; needs batch {batch} x V {_vocab}");
        using var _ = torch.no_grad();
        Upload();
        float[] zBuf = new float[batch * _d];
        float[] lBuf = logits.IsEmpty ? [] : new float[batch * _vocab];
        foreach (var (rows, width) in Groups(lengths))
        {
            using var scope = torch.NewDisposeScope();
            var ids = GroupIds(inputIds, rows, width);
            var h = Encode(ids, ids.eq(0), _n - width, train: false);
            var zt = Head(h.select(1, width - 1).contiguous());
            using (var host = zt.cpu())
            {
                var acc = host.data<float>();
                for (int r = 0; r < rows.Length; r++) acc.CopyTo(zBuf.AsSpan(rows[r] * _d, _d), 0, (long)r * _d);
            }
            if (logits.IsEmpty) continue;
            var lt = zt.matmul(P("tok_emb").t()).add(P("out_bias"));
            using (var host = lt.cpu())
            {
                var acc = host.data<float>();
                for (int r = 0; r < rows.Length; r++) acc.CopyTo(lBuf.AsSpan(rows[r] * _vocab, _vocab), 0, (long)r * _vocab);
            }
        }
        zBuf.CopyTo(z);
        if (!logits.IsEmpty) lBuf.CopyTo(logits);
    }

    /// <summary>y = x @ W + b with the layout's (in,out) matrices.</summary>
    protected Tensor Linear(Tensor x, string w, string b) => x.matmul(P(w)).add(P(b));

    protected Tensor LayerNorm(Tensor x, string g, string b) =>
        torch.nn.functional.layer_norm(x, [_d], P(g), P(b), Config.LayerNormEpsilon);

    public virtual void Dispose()
    {
        foreach (var v in _views.Values) v.Dispose();
        GC.SuppressFinalize(this);
    }
}
