// Trained weights -> model.onnx (opset 17, standard operators): the eval-mode forward of DESIGN.md with inputs
// item_ids [batch, N] and candidate_ids [batch, C], outputs scores [batch, C] and user_vector [batch, d+1].
// Initializers carry the parameter layout's names, so tools (and OnnxWeights) find tok_emb and out_bias by name.
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Onnx;
using Google.Protobuf;
using DT = Bert4Rec.Contracts.Onnx.OnnxTensor.Types.DataType;

namespace Bert4Rec.Training.Export;

/// <summary>How the exported graph computes attention: standard ONNX ops, or ONNX Runtime's fused contrib operator.</summary>
public enum AttentionForm { Standard, MultiHeadAttention }

public static class OnnxExporter
{
    public const int Opset = 17;
    public const string ItemIds = ModelIo.ItemIds, CandidateIds = ModelIo.CandidateIds, Scores = ModelIo.Scores, UserVector = ModelIo.UserVector;

    public const string TopK = ModelIo.TopK, ItemScores = ModelIo.ItemScores, TopScores = ModelIo.TopScores, TopItems = ModelIo.TopItems;

    /// <summary>
    /// The two-stage serving graph (fullCatalog false): item_ids, candidate_ids -> scores, user_vector.
    /// The full-catalog graph (fullCatalog true), for small catalogs and evaluation through ONNX Runtime:
    /// item_ids [batch, N], k int64 [1] -> item_scores [batch, n] (logits of items 1..n), top_scores [batch, k],
    /// top_items int64 [batch, k] (item indices 1..n, best first).
    /// </summary>
    /// <remarks>
    /// NeuMF has its own graph (<see cref="NeuMfOnnx"/>: user_index, candidate_ids[, user_features] -> scores), which needs the
    /// item feature table (<paramref name="itemFeatureSlots"/>) when the model has item fields; so have DeepFM
    /// (<see cref="DeepFmOnnx"/>, which also reads history) and Two-Tower
    /// (<see cref="TwoTowerOnnx"/>: item_ids[, user_features], candidate_ids -> scores, user_vector).
    /// </remarks>
    public static OnnxModel Build(ModelConfig cfg, float[] parameters, string producerVersion = "1.0", bool fullCatalog = false,
                                  AttentionForm attention = AttentionForm.Standard, int[]? itemFeatureSlots = null)
    {
        if (cfg.Kind is ModelKind.NeuMf or ModelKind.DeepFm)
            return fullCatalog || attention != AttentionForm.Standard
                ? throw new NotSupportedException($"{cfg.Kind.Name()} has one graph form: no full-catalog graph and no fused attention")
                : cfg.Kind == ModelKind.DeepFm ? DeepFmOnnx.Build(cfg, parameters, itemFeatureSlots, producerVersion)
                : NeuMfOnnx.Build(cfg, parameters, itemFeatureSlots, producerVersion);
        if (cfg.Kind == ModelKind.TwoTower)
            return fullCatalog || attention != AttentionForm.Standard
                ? throw new NotSupportedException("two-tower has one graph form: no full-catalog graph and no fused attention")
                : TwoTowerOnnx.Build(cfg, parameters, itemFeatureSlots, producerVersion);
        var layout = new ParameterLayout(cfg);
        if (parameters.Length != layout.TotalSize) throw new ArgumentException($"parameters has {parameters.Length} floats; the layout needs {layout.TotalSize}");
        foreach (var x in parameters) if (!float.IsFinite(x)) throw new ArgumentException("parameters contain NaN or infinity; refusing to export");
        int d = cfg.Hidden, H = cfg.Heads, N = cfg.MaxLength;
        var g = new OnnxGraphBuilder(cfg.Kind.Name());
        foreach (var t in layout.Tensors)
            g.Initializer(t.Name, layout.Slice(parameters, t.Name), t.Shape.Select(s => (long)s).ToArray());
        // item_ids [B,N] -> z [B,d], the state at the prediction position
        string z = cfg.Kind switch
        {
            ModelKind.Bert4Rec => Bert4RecEncoder(g, cfg, attention),
            ModelKind.SasRec => attention == AttentionForm.Standard ? SasRecEncoder(g, cfg)
                : throw new NotSupportedException("the fused attention form is implemented for BERT4Rec only"),
            ModelKind.Gru4Rec => attention == AttentionForm.Standard ? Gru4RecEncoder(g, cfg)
                : throw new NotSupportedException("the fused attention form is implemented for BERT4Rec only"),
            _ => throw new NotSupportedException($"no ONNX encoder for {cfg.Kind.Name()}"),
        };
        if (fullCatalog)
        {
            // logits over items 1..n: rows 1..n of E (a constant-folded slice) and of b_O
            string items = g.Node("Slice", ["tok_emb", g.Int64s(1), g.Int64s(cfg.ItemCount + 1), g.Int64s(0)]);
            string bias = g.Node("Slice", ["out_bias", g.Int64s(1), g.Int64s(cfg.ItemCount + 1), g.Int64s(0)]);
            string all = g.Node("Add", [g.Node("MatMul", [z, g.Node("Transpose", [items], null, "", OnnxGraphBuilder.Ints("perm", 1, 0))]), bias], ItemScores);
            var top = g.NodeMulti("TopK", [all, TopK], 2, "", OnnxGraphBuilder.Int("axis", 1), OnnxGraphBuilder.Int("largest", 1), OnnxGraphBuilder.Int("sorted", 1));
            g.Node("Identity", [top[0]], TopScores);
            g.Node("Add", [top[1], g.Int64s(1)], TopItems);
            g.Graph.Input.Add(OnnxGraphBuilder.Value(ItemIds, DT.Int64, "batch", N));
            g.Graph.Input.Add(OnnxGraphBuilder.Value(TopK, DT.Int64, 1));
            g.Graph.Output.Add(OnnxGraphBuilder.Value(ItemScores, DT.Float, "batch", cfg.ItemCount));
            g.Graph.Output.Add(OnnxGraphBuilder.Value(TopScores, DT.Float, "batch", "k"));
            g.Graph.Output.Add(OnnxGraphBuilder.Value(TopItems, DT.Int64, "batch", "k"));
            var fm = attention == AttentionForm.MultiHeadAttention ? g.ToModel(Opset, producerVersion, ("com.microsoft", 1)) : g.ToModel(Opset, producerVersion);
            fm.DocString = $"{cfg.Kind.Name()} full-catalog: {cfg.ItemCount} items, d={d}, {cfg.Layers} layers, {H} heads, N={N}";
            AddMetadata(fm, cfg);
            return fm;
        }
        // user_vector = [z, 1]
        string ones = g.Node("Add", [g.Node("Mul", [g.Node("ReduceSum", [z, g.Int64s(1)], null, "", OnnxGraphBuilder.Int("keepdims", 1)), g.Scalar(0f)]), g.Scalar(1f)]);
        g.Node("Concat", [z, ones], UserVector, "", OnnxGraphBuilder.Int("axis", 1));
        // scores = E[c] . z + b_O[c]
        string candE = g.Node("Gather", ["tok_emb", CandidateIds], null, "", OnnxGraphBuilder.Int("axis", 0));
        string dot = g.Node("Squeeze", [g.Node("MatMul", [candE, g.Node("Unsqueeze", [z, g.Int64s(2)])]), g.Int64s(2)]);
        g.Node("Add", [dot, g.Node("Gather", ["out_bias", CandidateIds], null, "", OnnxGraphBuilder.Int("axis", 0))], Scores);

        g.Graph.Input.Add(OnnxGraphBuilder.Value(ItemIds, DT.Int64, "batch", N));
        g.Graph.Input.Add(OnnxGraphBuilder.Value(CandidateIds, DT.Int64, "batch", "candidates"));
        g.Graph.Output.Add(OnnxGraphBuilder.Value(Scores, DT.Float, "batch", "candidates"));
        g.Graph.Output.Add(OnnxGraphBuilder.Value(UserVector, DT.Float, "batch", d + 1));
        var model = attention == AttentionForm.MultiHeadAttention ? g.ToModel(Opset, producerVersion, ("com.microsoft", 1)) : g.ToModel(Opset, producerVersion);
        model.DocString = $"{cfg.Kind.Name()}: {cfg.ItemCount} items, d={d}, {cfg.Layers} layers, {H} heads, N={N}";
        AddMetadata(model, cfg);
        return model;
    }

    /// <summary>The model kind (<see cref="OnnxWeights.KindKey"/>) and shape as metadata, so a model file alone says how to build its input rows.</summary>
    private static void AddMetadata(OnnxModel model, ModelConfig cfg)
    {
        model.MetadataProps.Add(new StringEntry { Key = OnnxWeights.KindKey, Value = cfg.Kind.Name() });
        foreach (var (k, val) in new[] { ("item_count", cfg.ItemCount), ("hidden", cfg.Hidden), ("heads", cfg.Heads), ("layers", cfg.Layers), ("max_length", cfg.MaxLength) })
            model.MetadataProps.Add(new StringEntry { Key = k, Value = val.ToString(System.Globalization.CultureInfo.InvariantCulture) });
    }

    private static string LayerNorm(OnnxGraphBuilder g, ModelConfig cfg, string x, string p) =>
        g.Node("LayerNormalization", [x, p + ".g", p + ".b"], null, "", OnnxGraphBuilder.Int("axis", -1), OnnxGraphBuilder.Float("epsilon", cfg.LayerNormEpsilon));

    private static string Dense(OnnxGraphBuilder g, string x, string w, string b) => g.Node("Add", [g.Node("MatMul", [x, w]), b]);

    /// <summary>Scaled dot-product attention of q [B,Lq,d] over k, v [B,N,d] with an additive mask broadcastable to
    /// [B,H,Lq,N]; returns the context [B,Lq,d].</summary>
    private static string Attend(OnnxGraphBuilder g, ModelConfig cfg, string q0, string k0, string v0, string mask)
    {
        int H = cfg.Heads, dh = cfg.HeadSize;
        string headShape = g.Int64s(0, 0, H, dh), flatShape = g.Int64s(0, 0, cfg.Hidden);
        string q = g.Node("Transpose", [g.Node("Reshape", [q0, headShape])], null, "", OnnxGraphBuilder.Ints("perm", 0, 2, 1, 3));
        string kT = g.Node("Transpose", [g.Node("Reshape", [k0, headShape])], null, "", OnnxGraphBuilder.Ints("perm", 0, 2, 3, 1));
        string v = g.Node("Transpose", [g.Node("Reshape", [v0, headShape])], null, "", OnnxGraphBuilder.Ints("perm", 0, 2, 1, 3));
        string s = g.Node("Add", [g.Node("Mul", [g.Node("MatMul", [q, kT]), g.Scalar(1f / MathF.Sqrt(dh))]), mask]);
        string probs = g.Node("Softmax", [s], null, "", OnnxGraphBuilder.Int("axis", -1));
        return g.Node("Reshape", [g.Node("Transpose", [g.Node("MatMul", [probs, v])], null, "", OnnxGraphBuilder.Ints("perm", 0, 2, 1, 3)), flatShape]);
    }

    /// <summary>BERT4Rec: bidirectional post-LN encoder, then z = LN_out(GELU(h W_P + b_P)) at the last position ([MASK]).</summary>
    private static string Bert4RecEncoder(OnnxGraphBuilder g, ModelConfig cfg, AttentionForm attention)
    {
        int d = cfg.Hidden, H = cfg.Heads, dh = cfg.HeadSize, N = cfg.MaxLength;
        var lastAxis = OnnxGraphBuilder.Int("axis", -1);
        string LN(string x, string p) => LayerNorm(g, cfg, x, p);
        string Linear(string x, string w, string b) => Dense(g, x, w, b);
        string Gelu(string x)
        {
            string e = g.Node("Erf", [g.Node("Mul", [x, g.Scalar(0.70710678118654752f)])]);
            return g.Node("Mul", [g.Node("Mul", [x, g.Scalar(0.5f)]), g.Node("Add", [e, g.Scalar(1f)])]);
        }

        // embeddings
        string emb = g.Node("Gather", ["tok_emb", ItemIds], null, "", OnnxGraphBuilder.Int("axis", 0));
        string h = LN(g.Node("Add", [emb, "pos_emb"]), "ln_emb");
        // additive key mask: -10000 at [PAD] keys, shape [B,1,1,N]
        string isPad = g.Node("Cast", [g.Node("Equal", [ItemIds, g.Int64s(0)])], null, "", OnnxGraphBuilder.Int("to", (long)DT.Float));
        string keyMask = g.Node("Unsqueeze", [g.Node("Mul", [isPad, g.Scalar(-10000f)]), g.Int64s(1, 2)]);
        // for the fused operator: 1 = attend, 0 = [PAD] (gets mask_filter_value, -10000, added)
        string keyKeep = attention == AttentionForm.MultiHeadAttention
            ? g.Node("Cast", [g.Node("Not", [g.Node("Equal", [ItemIds, g.Int64s(0)])])], null, "", OnnxGraphBuilder.Int("to", (long)DT.Int32))
            : "";
        string headShape = g.Int64s(0, 0, H, dh), flatShape = g.Int64s(0, 0, d);
        string splitSizes = g.Int64s(d, d, d);
        float scale = 1f / MathF.Sqrt(dh);
        // Every layer but the last runs over all positions. Only the last position feeds the output, so the last layer
        // computes keys and values for all positions but the query, attention, projection and feed-forward for position
        // N-1 alone (an exact shortcut that removes most of the last layer's work).
        for (int l = 0; l < cfg.Layers; l++)
        {
            string p = $"layers.{l}.";
            bool lastLayer = l == cfg.Layers - 1;
            string q0, k0, v0, residual;
            if (!lastLayer)
            {
                string qkv = Linear(h, p + "attn.qkv.w", p + "attn.qkv.b");
                var parts = g.NodeMulti("Split", [qkv, splitSizes], 3, "", OnnxGraphBuilder.Int("axis", 2));
                (q0, k0, v0, residual) = (parts[0], parts[1], parts[2], h);
            }
            else
            {
                // column slices of the fused weights are constant-folded by ONNX Runtime at load time
                string wq = g.Node("Slice", [p + "attn.qkv.w", g.Int64s(0), g.Int64s(d), g.Int64s(1)]);
                string wkv = g.Node("Slice", [p + "attn.qkv.w", g.Int64s(d), g.Int64s(3 * d), g.Int64s(1)]);
                string bq = g.Node("Slice", [p + "attn.qkv.b", g.Int64s(0), g.Int64s(d), g.Int64s(0)]);
                string bkv = g.Node("Slice", [p + "attn.qkv.b", g.Int64s(d), g.Int64s(3 * d), g.Int64s(0)]);
                residual = g.Node("Slice", [h, g.Int64s(N - 1), g.Int64s(N), g.Int64s(1)]);          // [B,1,d]
                q0 = Linear(residual, wq, bq);
                var kv = g.NodeMulti("Split", [Linear(h, wkv, bkv), g.Int64s(d, d)], 2, "", OnnxGraphBuilder.Int("axis", 2));
                (k0, v0) = (kv[0], kv[1]);
            }
            string ctx;
            if (attention == AttentionForm.MultiHeadAttention)
            {
                ctx = g.Node("MultiHeadAttention", [q0, k0, v0, "", keyKeep], null, "com.microsoft",
                    OnnxGraphBuilder.Int("num_heads", H), OnnxGraphBuilder.Float("mask_filter_value", -10000f), OnnxGraphBuilder.Float("scale", scale));
            }
            else
            {
                string q = g.Node("Transpose", [g.Node("Reshape", [q0, headShape])], null, "", OnnxGraphBuilder.Ints("perm", 0, 2, 1, 3));
                string kT = g.Node("Transpose", [g.Node("Reshape", [k0, headShape])], null, "", OnnxGraphBuilder.Ints("perm", 0, 2, 3, 1));
                string v = g.Node("Transpose", [g.Node("Reshape", [v0, headShape])], null, "", OnnxGraphBuilder.Ints("perm", 0, 2, 1, 3));
                string s = g.Node("Add", [g.Node("Mul", [g.Node("MatMul", [q, kT]), g.Scalar(scale)]), keyMask]);
                string probs = g.Node("Softmax", [s], null, "", lastAxis);
                ctx = g.Node("Reshape", [g.Node("Transpose", [g.Node("MatMul", [probs, v])], null, "", OnnxGraphBuilder.Ints("perm", 0, 2, 1, 3)), flatShape]);
            }
            string a = LN(g.Node("Add", [residual, Linear(ctx, p + "attn.out.w", p + "attn.out.b")]), p + "ln1");
            string f = Linear(Gelu(Linear(a, p + "ffn.w1", p + "ffn.b1")), p + "ffn.w2", p + "ffn.b2");
            h = LN(g.Node("Add", [a, f]), p + "ln2");
        }
        // h is [B,1,d]: the last position ([MASK]) -> output transform
        string last = g.Node("Squeeze", [h, g.Int64s(1)]);
        return LN(Gelu(Linear(last, "head.w", "head.b")), "ln_out");
    }

    /// <summary>
    /// SASRec: h0 = (E[x] sqrt(d) + P) * nonpad; pre-LN blocks with causal attention (queries from LN_a(h), keys and values
    /// from h, pad keys masked) and a ReLU feed-forward, each block's output times nonpad; z = LN_last(h) at the last position.
    /// The last block runs its query, feed-forward and LayerNorms at the last position only (exact: nothing after it reads
    /// the other positions, and the last query may see every key, so it needs no causal mask).
    /// </summary>
    private static string SasRecEncoder(OnnxGraphBuilder g, ModelConfig cfg)
    {
        int d = cfg.Hidden, N = cfg.MaxLength;
        var floatType = OnnxGraphBuilder.Int("to", (long)DT.Float);
        string isPad = g.Node("Equal", [ItemIds, g.Int64s(0)]);
        string nonpad = g.Node("Unsqueeze", [g.Node("Cast", [g.Node("Not", [isPad])], null, "", floatType), g.Int64s(2)]);       // [B,N,1]
        string keyMask = g.Node("Unsqueeze", [g.Node("Mul", [g.Node("Cast", [isPad], null, "", floatType), g.Scalar(-10000f)]), g.Int64s(1, 2)]);  // [B,1,1,N]
        var causal = new float[N * N];
        for (int i = 0; i < N; i++) for (int j = i + 1; j < N; j++) causal[i * N + j] = -10000f;
        string fullMask = g.Node("Add", [keyMask, g.Initializer("causal_mask", causal, N, N)]);                                  // [B,1,N,N]
        string emb = g.Node("Gather", ["tok_emb", ItemIds], null, "", OnnxGraphBuilder.Int("axis", 0));
        string h = g.Node("Mul", [g.Node("Add", [g.Node("Mul", [emb, g.Scalar(MathF.Sqrt(d))]), "pos_emb"]), nonpad]);
        string lastNonpad = g.Node("Slice", [nonpad, g.Int64s(N - 1), g.Int64s(N), g.Int64s(1)]);                                // [B,1,1]
        for (int l = 0; l < cfg.Layers; l++)
        {
            string p = $"layers.{l}.";
            bool lastLayer = l == cfg.Layers - 1;
            string qIn = LayerNorm(g, cfg, lastLayer ? g.Node("Slice", [h, g.Int64s(N - 1), g.Int64s(N), g.Int64s(1)]) : h, p + "ln_attn");
            var kv = g.NodeMulti("Split", [Dense(g, h, p + "attn.kv.w", p + "attn.kv.b"), g.Int64s(d, d)], 2, "", OnnxGraphBuilder.Int("axis", 2));
            string ctx = Attend(g, cfg, Dense(g, qIn, p + "attn.q.w", p + "attn.q.b"), kv[0], kv[1], lastLayer ? keyMask : fullMask);
            string h1 = g.Node("Add", [qIn, Dense(g, ctx, p + "attn.out.w", p + "attn.out.b")]);
            string f = LayerNorm(g, cfg, h1, p + "ln_ffn");
            string ffn = Dense(g, g.Node("Relu", [Dense(g, f, p + "ffn.w1", p + "ffn.b1")]), p + "ffn.w2", p + "ffn.b2");
            h = g.Node("Mul", [g.Node("Add", [f, ffn]), lastLayer ? lastNonpad : nonpad]);
        }
        return LayerNorm(g, cfg, g.Node("Squeeze", [h, g.Int64s(1)]), "ln_last");
    }

    /// <summary>
    /// GRU4Rec: z = the GRU state after the row's last item, from h_0 = 0 over its real items only. The ONNX `GRU` operator
    /// reads sequence_lens as right padding, so each left-padded row is first rotated left by its pad count (position t
    /// reads (t + pads) mod N) and Y_h is taken at the real length. An all-pad row runs one step (sequence_lens is clamped
    /// to 1: the ONNX spec leaves Y_h of a zero length open; ONNX Runtime happens to give 0) and is then replaced by
    /// h_0 = 0, the trainer's empty-history state.
    /// W, R and B are transposes and a concatenation of the layout's (in,out) tensors, which ONNX Runtime folds at load.
    /// </summary>
    private static string Gru4RecEncoder(OnnxGraphBuilder g, ModelConfig cfg)
    {
        int d = cfg.Hidden, N = cfg.MaxLength;
        var int64Type = OnnxGraphBuilder.Int("to", (long)DT.Int64);
        string len = g.Node("ReduceSum", [g.Node("Cast", [g.Node("Not", [g.Node("Equal", [ItemIds, g.Int64s(0)])])], null, "", int64Type), g.Int64s(1)],
            null, "", OnnxGraphBuilder.Int("keepdims", 0));                                                                     // [B]
        var positions = new long[N];
        for (int t = 0; t < N; t++) positions[t] = t;
        string pads = g.Node("Unsqueeze", [g.Node("Sub", [g.Int64s(N), len]), g.Int64s(1)]);                                   // [B,1]
        string index = g.Node("Mod", [g.Node("Add", [g.Initializer("gru_positions", positions, 1, N), pads]), g.Int64s(N)]);    // [B,N]
        string rotated = g.Node("GatherElements", [ItemIds, index], null, "", OnnxGraphBuilder.Int("axis", 1));                  // right-padded
        string x = g.Node("Transpose", [g.Node("Gather", ["tok_emb", rotated], null, "", OnnxGraphBuilder.Int("axis", 0))], null, "",
            OnnxGraphBuilder.Ints("perm", 1, 0, 2));                                                                            // [N,B,d]
        string FromInOut(string w) => g.Node("Unsqueeze", [g.Node("Transpose", [w], null, "", OnnxGraphBuilder.Ints("perm", 1, 0)), g.Int64s(0)]);
        string W = FromInOut("gru.w_ih"), R = FromInOut("gru.w_hh");                                                           // [1,3d,d], rows z|r|h
        string B = g.Node("Unsqueeze", [g.Node("Concat", ["gru.b_ih", "gru.b_hh"], null, "", OnnxGraphBuilder.Int("axis", 0)), g.Int64s(0)]); // [1,6d]
        string seqLens = g.Node("Cast", [g.Node("Max", [len, g.Int64s(1)])], null, "", OnnxGraphBuilder.Int("to", (long)DT.Int32));
        var gru = new OnnxNode { OpType = "GRU", Name = "GRU_gru4rec" };
        gru.Input.AddRange([x, W, R, B, seqLens]);
        gru.Output.AddRange(["", "gru_y_h"]);                                                                                   // Y unused
        gru.Attribute.AddRange([OnnxGraphBuilder.Int("hidden_size", d), OnnxGraphBuilder.Int("linear_before_reset", 1)]);
        g.Graph.Node.Add(gru);
        string last = g.Node("Squeeze", ["gru_y_h", g.Int64s(0)]);                                                              // [B,d]
        string hasItems = g.Node("Unsqueeze", [g.Node("Greater", [len, g.Int64s(0)]), g.Int64s(1)]);                           // [B,1]
        return g.Node("Where", [hasItems, last, g.Scalar(0f)]);
    }

    /// <summary>Writes model.onnx atomically.</summary>
    public static void Export(ModelConfig cfg, float[] parameters, string onnxPath, string producerVersion = "1.0", bool fullCatalog = false,
                              AttentionForm attention = AttentionForm.Standard, int[]? itemFeatureSlots = null) =>
        AtomicFile.WriteAllBytes(onnxPath, Build(cfg, parameters, producerVersion, fullCatalog, attention, itemFeatureSlots).ToByteArray());
}
