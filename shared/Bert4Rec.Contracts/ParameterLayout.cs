// The layout table of the single parameter buffer: the trainer, the optimizer, checkpoints and the ONNX exporter all walk it.
namespace Bert4Rec.Contracts;

/// <summary>One named tensor inside the flat parameter buffer. Matrices are stored row-major as (in, out) so that y = x @ W.</summary>
public sealed record ParameterTensor(string Name, long Offset, int[] Shape, bool WeightDecay)
{
    public long Size
    {
        get { long s = 1; foreach (var d in Shape) s *= d; return s; }
    }
}

/// <summary>
/// Names, offsets and shapes of every parameter of a model kind, in a fixed order. BERT4Rec:
/// <code>
/// tok_emb (V,d)  pos_emb (N,d)  ln_emb.g (d)  ln_emb.b (d)
/// per layer l: layers.l.attn.qkv.w (d,3d) [columns: q | k | v, head h at h*dh..]  layers.l.attn.qkv.b (3d)
///              layers.l.attn.out.w (d,d)  layers.l.attn.out.b (d)  layers.l.ln1.g (d)  layers.l.ln1.b (d)
///              layers.l.ffn.w1 (d,4d)  layers.l.ffn.b1 (4d)  layers.l.ffn.w2 (4d,d)  layers.l.ffn.b2 (d)
///              layers.l.ln2.g (d)  layers.l.ln2.b (d)
/// head.w (d,d)  head.b (d)  ln_out.g (d)  ln_out.b (d)  out_bias (V)
/// </code>
/// SASRec (pre-LN blocks; queries from LN_a(h), keys and values from h itself, as the original):
/// <code>
/// tok_emb (V,d)  pos_emb (N,d)
/// per block l: layers.l.ln_attn.g (d)  layers.l.ln_attn.b (d)  layers.l.attn.q.w (d,d)  layers.l.attn.q.b (d)
///              layers.l.attn.kv.w (d,2d) [columns: k | v]  layers.l.attn.kv.b (2d)  layers.l.attn.out.w (d,d)  layers.l.attn.out.b (d)
///              layers.l.ln_ffn.g (d)  layers.l.ln_ffn.b (d)  layers.l.ffn.w1 (d,d)  layers.l.ffn.b1 (d)  layers.l.ffn.w2 (d,d)  layers.l.ffn.b2 (d)
/// ln_last.g (d)  ln_last.b (d)  out_bias (V)
/// </code>
/// GRU4Rec (gates in ONNX's order z | r | h; the candidate uses r * (h W_hh,h + b_hh,h), i.e. linear_before_reset = 1):
/// <code>
/// tok_emb (V,d)  gru.w_ih (d,3d)  gru.w_hh (d,3d)  gru.b_ih (3d)  gru.b_hh (3d)  out_bias (V)
/// </code>
/// NeuMF (f = Hidden, m = f * 2^(L-1), U users, n items, user fields k of vocabulary V_k, item fields j of V_j; item row 0 unused):
/// <code>
/// gmf.user (U,f)  gmf.item (n+1,f)  mlp.user (U,m)  mlp.item (n+1,m)  user_feat.k (V_k,f)  item_feat.j (V_j,f)
/// per layer l: mlp.l.w (in_l, m/2^l)  mlp.l.b (m/2^l)   in_0 = 2m + f * (user fields + item fields); input columns:
///              mlp.user | mlp.item | user fields in order | item fields in order
/// out.w (2f,1) [rows: GMF | MLP]  out.b (1)
/// </code>
/// DeepFM (k = Hidden, F fields of <see cref="DeepFmFields.Of"/>, m = k * 2^(L-1)):
/// <code>
/// per field: NAME.emb (Vocab,k)  NAME.w (Vocab)   then the deep part over the F field embeddings side by side:
/// per layer l: mlp.l.w (in_l, m/2^l)  mlp.l.b (m/2^l)   in_0 = F k;   out.w (k,1)  out.b (1) (also the FM's bias)
/// </code>
/// Two-Tower (d = Hidden, L = Layers dense layers per tower, each d wide; item row 0 is the pad, never read):
/// <code>
/// item_emb (n+1,d) [the item tower's id embedding and the user tower's history items]  user_feat.k (V_k,d)  item_feat.j (V_j,d)
/// per layer l: user.l.w (in_l,d)  user.l.b (d)   in_0 = d * (1 + user fields); columns: history mean | user fields in order
/// per layer l: item.l.w (in_l,d)  item.l.b (d)   in_0 = d * (1 + item fields); columns: item_emb | item fields in order
/// </code>
/// Weight decay applies to matrices and embeddings, never to LayerNorm parameters or biases (as the original code).
/// </summary>
public sealed class ParameterLayout
{
    private readonly Dictionary<string, ParameterTensor> _byName = new(StringComparer.Ordinal);

    public ModelConfig Config { get; }
    public IReadOnlyList<ParameterTensor> Tensors { get; }
    public long TotalSize { get; }

    public ParameterLayout(ModelConfig config)
    {
        config.Validate();
        Config = config;
        int d = config.Hidden, v = config.VocabSize, n = config.MaxLength, inner = config.InnerSize;
        var list = new List<ParameterTensor>();
        long offset = 0;
        void Add(string name, bool decay, params int[] shape)
        {
            var t = new ParameterTensor(name, offset, shape, decay);
            list.Add(t);
            _byName.Add(name, t);
            offset += t.Size;
        }
        if (config.Kind == ModelKind.DeepFm)
        {
            var fields = DeepFmFields.Of(config);
            foreach (var f in fields) { Add($"{f.Name}.emb", true, f.Vocab, d); Add($"{f.Name}.w", true, f.Vocab); }
            int inSize = fields.Count * d, m = config.MlpEmbedding;
            for (int l = 0; l < config.Layers; l++) { Add($"mlp.{l}.w", true, inSize, m >> l); Add($"mlp.{l}.b", false, m >> l); inSize = m >> l; }
            Add("out.w", true, d, 1);
            Add("out.b", false, 1);
            Tensors = list;
            TotalSize = offset;
            return;
        }
        if (config.Kind == ModelKind.NeuMf)
        {
            int users = config.UserCount, items = config.ItemCount + 1, m = config.MlpEmbedding;
            var uf = FeatureShape.Parse(config.UserFeatures);
            var itf = FeatureShape.Parse(config.ItemFeatures);
            Add("gmf.user", true, users, d);
            Add("gmf.item", true, items, d);
            Add("mlp.user", true, users, m);
            Add("mlp.item", true, items, m);
            for (int k = 0; k < uf.Length; k++) Add($"user_feat.{k}", true, uf[k].Vocab, d);
            for (int k = 0; k < itf.Length; k++) Add($"item_feat.{k}", true, itf[k].Vocab, d);
            int inSize = 2 * m + d * (uf.Length + itf.Length);
            for (int l = 0; l < config.Layers; l++)
            {
                int outSize = m >> l;
                Add($"mlp.{l}.w", true, inSize, outSize);
                Add($"mlp.{l}.b", false, outSize);
                inSize = outSize;
            }
            Add("out.w", true, 2 * d, 1);
            Add("out.b", false, 1);
            Tensors = list;
            TotalSize = offset;
            return;
        }
        if (config.Kind == ModelKind.TwoTower)
        {
            var uf = FeatureShape.Parse(config.UserFeatures);
            var itf = FeatureShape.Parse(config.ItemFeatures);
            Add("item_emb", true, config.ItemCount + 1, d);
            for (int k = 0; k < uf.Length; k++) Add($"user_feat.{k}", true, uf[k].Vocab, d);
            for (int k = 0; k < itf.Length; k++) Add($"item_feat.{k}", true, itf[k].Vocab, d);
            foreach (var (side, fields) in new[] { ("user", uf.Length), ("item", itf.Length) })
            {
                int inSize = d * (1 + fields);
                for (int l = 0; l < config.Layers; l++)
                {
                    Add($"{side}.{l}.w", true, inSize, d);
                    Add($"{side}.{l}.b", false, d);
                    inSize = d;
                }
            }
            Tensors = list;
            TotalSize = offset;
            return;
        }
        Add("tok_emb", true, v, d);
        switch (config.Kind)
        {
            case ModelKind.Bert4Rec:
                Add("pos_emb", true, n, d);
                Add("ln_emb.g", false, d);
                Add("ln_emb.b", false, d);
                for (int l = 0; l < config.Layers; l++)
                {
                    string p = $"layers.{l}.";
                    Add(p + "attn.qkv.w", true, d, 3 * d);
                    Add(p + "attn.qkv.b", false, 3 * d);
                    Add(p + "attn.out.w", true, d, d);
                    Add(p + "attn.out.b", false, d);
                    Add(p + "ln1.g", false, d);
                    Add(p + "ln1.b", false, d);
                    Add(p + "ffn.w1", true, d, inner);
                    Add(p + "ffn.b1", false, inner);
                    Add(p + "ffn.w2", true, inner, d);
                    Add(p + "ffn.b2", false, d);
                    Add(p + "ln2.g", false, d);
                    Add(p + "ln2.b", false, d);
                }
                Add("head.w", true, d, d);
                Add("head.b", false, d);
                Add("ln_out.g", false, d);
                Add("ln_out.b", false, d);
                break;
            case ModelKind.SasRec:
                Add("pos_emb", true, n, d);
                for (int l = 0; l < config.Layers; l++)
                {
                    string p = $"layers.{l}.";
                    Add(p + "ln_attn.g", false, d);
                    Add(p + "ln_attn.b", false, d);
                    Add(p + "attn.q.w", true, d, d);
                    Add(p + "attn.q.b", false, d);
                    Add(p + "attn.kv.w", true, d, 2 * d);
                    Add(p + "attn.kv.b", false, 2 * d);
                    Add(p + "attn.out.w", true, d, d);
                    Add(p + "attn.out.b", false, d);
                    Add(p + "ln_ffn.g", false, d);
                    Add(p + "ln_ffn.b", false, d);
                    Add(p + "ffn.w1", true, d, inner);
                    Add(p + "ffn.b1", false, inner);
                    Add(p + "ffn.w2", true, inner, d);
                    Add(p + "ffn.b2", false, d);
                }
                Add("ln_last.g", false, d);
                Add("ln_last.b", false, d);
                break;
            case ModelKind.Gru4Rec:
                Add("gru.w_ih", true, d, 3 * d);
                Add("gru.w_hh", true, d, 3 * d);
                Add("gru.b_ih", false, 3 * d);
                Add("gru.b_hh", false, 3 * d);
                break;
        }
        Add("out_bias", false, v);
        Tensors = list;
        TotalSize = offset;
    }

    public ParameterTensor this[string name] =>
        _byName.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"no parameter named '{name}' in the layout");

    /// <summary>The slice of <paramref name="buffer"/> (laid out by this table) that holds tensor <paramref name="name"/>.</summary>
    public Span<float> Slice(float[] buffer, string name)
    {
        var t = this[name];
        return buffer.AsSpan(checked((int)t.Offset), checked((int)t.Size));
    }

    public ReadOnlySpan<float> Slice(ReadOnlySpan<float> buffer, string name)
    {
        var t = this[name];
        return buffer.Slice(checked((int)t.Offset), checked((int)t.Size));
    }
}
