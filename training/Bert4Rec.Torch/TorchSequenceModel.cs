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
    private readonly Tensor _flat;
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
        _flat = torch.zeros(Layout.TotalSize, ScalarType.Float32, device).requires_grad_(true);
        foreach (var t in Layout.Tensors)
            _views[t.Name] = _flat.narrow(0, t.Offset, t.Size).view(t.Shape.Select(x => (long)x).ToArray());
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

    /// <summary>Final hidden states (B,N,d) of ids (B,N); <paramref name="pad"/> is ids == 0 (B,N).</summary>
    protected abstract Tensor Encode(Tensor ids, Tensor pad, bool train);
    /// <summary>z (M,d) from final hidden rows (M,d). Default: z = h.</summary>
    protected virtual Tensor Head(Tensor h) => h;

    // ---------------------------------------------------------------- steps

    private void Upload()
    {
        using var _ = torch.no_grad();
        using var host = torch.tensor(Parameters);
        _flat.copy_(host);
    }

    private Tensor Ids(ReadOnlySpan<int> inputIds, int batch)
    {
        if (batch < 1 || batch > MaxBatch) throw new ArgumentOutOfRangeException(nameof(batch), batch, $"batch must be in 1..{MaxBatch}");
        if (inputIds.Length != batch * _n) throw new ArgumentException($"inputIds has {inputIds.Length} ids; batch {batch} x length {_n} needs {batch * _n}");
        if (_ids.Length < batch * _n) _ids = new long[MaxBatch * _n];
        for (int b = 0; b < batch; b++)
        {
            bool real = false;
            for (int t = 0; t < _n; t++)
            {
                int id = inputIds[b * _n + t];
                if (id == ModelConfig.PadId)
                {
                    if (real) throw new ArgumentException($"row {b}: [PAD] at position {t} after a real token (sequences must be left-padded)");
                }
                else if (id < 0 || id >= _vocab) throw new ArgumentException($"row {b}, position {t}: id {id} is outside the vocabulary 0..{_vocab - 1}");
                else real = true;
                _ids[b * _n + t] = id;
            }
        }
        return torch.tensor(_ids.AsMemory(0, batch * _n), [batch, _n], ScalarType.Int64).to(Device);
    }

    public float TrainStep(ReadOnlySpan<int> inputIds, ReadOnlySpan<int> labels, int batch, ulong dropoutSeed)
    {
        using var scope = torch.NewDisposeScope();
        var ids = Ids(inputIds, batch);
        if (labels.Length != batch * _n) throw new ArgumentException($"labels has {labels.Length} entries; batch {batch} x length {_n} needs {batch * _n}");
        var where = new List<long>();
        var targets = new List<long>();
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < _n; t++)
            {
                int y = labels[b * _n + t];
                if (y == 0) continue;
                if (y < 0 || y > _items) throw new ArgumentException($"label {y} at row {b}, position {t} is not an item index in 1..{_items}");
                if (inputIds[b * _n + t] == ModelConfig.PadId) throw new ArgumentException($"label at row {b}, position {t} falls on a [PAD] position");
                where.Add(b * _n + t);
                targets.Add(y - 1);
            }
        Upload();
        if (_flat.grad is { } g0) g0.zero_();
        if (where.Count == 0) { Array.Clear(Gradients); return 0f; }
        torch.manual_seed(unchecked((long)dropoutSeed));
        if (Device.type == DeviceType.CUDA) torch.cuda.manual_seed(unchecked((long)dropoutSeed));
        var h = Encode(ids, ids.eq(0), train: true);
        var rows = h.reshape(-1, _d).index_select(0, torch.tensor(where.ToArray(), ScalarType.Int64).to(Device));
        var z = Head(rows);
        var logits = z.matmul(P("tok_emb").narrow(0, 1, _items).t()).add(P("out_bias").narrow(0, 1, _items));
        var loss = torch.nn.functional.cross_entropy(logits, torch.tensor(targets.ToArray(), ScalarType.Int64).to(Device));
        loss.backward();
        var grad = _flat.grad ?? throw new InvalidOperationException("autograd left no gradient");
        using (var host = grad.cpu()) host.data<float>().CopyTo(Gradients, 0, 0);
        return loss.item<float>();
    }

    public void PredictLast(ReadOnlySpan<int> inputIds, int batch, Span<float> z, Span<float> logits)
    {
        if (z.Length != batch * _d) throw new ArgumentException($"z has {z.Length} floats; needs batch {batch} x d {_d}");
        if (!logits.IsEmpty && logits.Length != (long)batch * _vocab) throw new ArgumentException($"logits has {logits.Length} floats; needs batch {batch} x V {_vocab}");
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var ids = Ids(inputIds, batch);
        Upload();
        var h = Encode(ids, ids.eq(0), train: false);
        var zt = Head(h.select(1, _n - 1).contiguous());
        using (var host = zt.cpu()) host.data<float>().CopyTo(z, 0, 0);
        if (logits.IsEmpty) return;
        var lt = zt.matmul(P("tok_emb").t()).add(P("out_bias"));
        using (var host = lt.cpu()) host.data<float>().CopyTo(logits, 0, 0);
    }

    /// <summary>y = x @ W + b with the layout's (in,out) matrices.</summary>
    protected Tensor Linear(Tensor x, string w, string b) => x.matmul(P(w)).add(P(b));

    protected Tensor LayerNorm(Tensor x, string g, string b) =>
        torch.nn.functional.layer_norm(x, [_d], P(g), P(b), Config.LayerNormEpsilon);

    public virtual void Dispose()
    {
        foreach (var v in _views.Values) v.Dispose();
        _flat.Dispose();
        GC.SuppressFinalize(this);
    }
}
