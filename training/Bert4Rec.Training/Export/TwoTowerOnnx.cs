// Two-Tower -> ONNX (opset 17, standard operators): stage one's graph. The user tower runs in the graph (the mean embedding
// of the history's non-pad items beside each user field's pooled embedding, the dense stack, L2 normalisation); the item
// tower's outputs for every item are a constant of the graph (item_vectors, (n+1, d), row 0 the pad), computed by the
// trainer's own item tower at export, so FAISS indexes exactly the vectors the graph scores with. Inputs (declared in the
// manifest): item_ids int64 [batch, L] (the last L history items, left-padded with 0), user_features int64 [batch, user width]
// when the model has user fields (value ids; 1 = OOV), candidate_ids int64 [batch, C]. Outputs: scores [batch, C] = u . v_c,
// user_vector [batch, d] = u.
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Onnx;
using Bert4Rec.Training.Model;
using Google.Protobuf;
using DT = Bert4Rec.Contracts.Onnx.OnnxTensor.Types.DataType;

namespace Bert4Rec.Training.Export;

public static class TwoTowerOnnx
{
    /// <summary>The initializer holding the item tower's vectors, (n+1, d): what `index` puts into FAISS.</summary>
    public const string ItemVectors = OnnxWeights.ItemVectorsName;

    public static IReadOnlyList<(string Name, string Type, string[] Dims)> Inputs(ModelConfig cfg) => ModelIo.FeatureModelInputs(cfg);

    public static OnnxModel Build(ModelConfig cfg, float[] parameters, int[]? itemSlots, string producerVersion = "1.0")
    {
        if (cfg.Kind != ModelKind.TwoTower) throw new ArgumentException($"TwoTowerOnnx exports two-tower, not {cfg.Kind.Name()}");
        var layout = new ParameterLayout(cfg);
        if (parameters.Length != layout.TotalSize) throw new ArgumentException($"parameters has {parameters.Length} floats; the layout needs {layout.TotalSize}");
        foreach (var x in parameters) if (!float.IsFinite(x)) throw new ArgumentException("parameters contain NaN or infinity; refusing to export");
        var uf = FeatureShape.Parse(cfg.UserFeatures);
        int d = cfg.Hidden, uw = uf.Sum(x => x.Width), iw = FeatureShape.Parse(cfg.ItemFeatures).Sum(x => x.Width);
        if (iw > 0 && (itemSlots == null || itemSlots.Length != (cfg.ItemCount + 1) * iw))
            throw new ArgumentException($"the item feature table must hold {(cfg.ItemCount + 1) * iw} ids ({cfg.ItemCount + 1} rows of width {iw})");
        // the item tower, run by the trainer's code (a row of pads stands in for the user table, which it never reads)
        float[] items;
        using (var model = new TwoTowerModel(cfg, uw > 0 ? new int[uw] : null, iw > 0 ? itemSlots : null, Math.Min(1024, cfg.ItemCount), threads: 1))
        {
            parameters.CopyTo(model.Parameters, 0);
            items = model.ItemVectors();
        }
        var g = new OnnxGraphBuilder(cfg.Kind.Name());
        foreach (var t in layout.Tensors.Where(t => t.Name == "item_emb" || t.Name.StartsWith("user", StringComparison.Ordinal)))
            g.Initializer(t.Name, layout.Slice(parameters, t.Name), t.Shape.Select(s => (long)s).ToArray());
        g.Initializer(ItemVectors, items, cfg.ItemCount + 1, d);
        // the user tower: [history mean | user fields] -> dense stack (ReLU between layers) -> h / sqrt(|h|^2 + eps)
        var cols = new List<string> { g.MeanOfRows("item_emb", ModelIo.ItemIds, 1) };
        int o = 0;
        for (int k = 0; k < uf.Length; k++)
        {
            string slots = g.Node("Slice", [ModelIo.UserFeatures, g.Int64s(o), g.Int64s(o + uf[k].Width), g.Int64s(1)]);
            cols.Add(g.MeanOfRows($"user_feat.{k}", slots, 1));
            o += uf[k].Width;
        }
        string h = cols.Count == 1 ? cols[0] : g.Node("Concat", cols, null, "", OnnxGraphBuilder.Int("axis", 1));
        for (int l = 0; l < cfg.Layers; l++)
        {
            h = g.Node("Add", [g.Node("MatMul", [h, $"user.{l}.w"]), $"user.{l}.b"]);
            if (l < cfg.Layers - 1) h = g.Node("Relu", [h]);
        }
        string squares = g.Node("ReduceSum", [g.Node("Mul", [h, h]), g.Int64s(1)], null, "", OnnxGraphBuilder.Int("keepdims", 1));
        string u = g.Node("Div", [h, g.Node("Sqrt", [g.Node("Add", [squares, g.Scalar(TwoTowerModel.NormEpsilon)])])], ModelIo.UserVector);
        // scores: v_c [B,C,d] . u [B,d,1]
        string v = g.Node("Gather", [ItemVectors, ModelIo.CandidateIds], null, "", OnnxGraphBuilder.Int("axis", 0));
        g.Node("Squeeze", [g.Node("MatMul", [v, g.Node("Unsqueeze", [u, g.Int64s(2)])]), g.Int64s(2)], ModelIo.Scores);

        return FeatureModelGraph.Finish(g, cfg,
            [OnnxGraphBuilder.Value(ModelIo.Scores, DT.Float, "batch", "candidates"), OnnxGraphBuilder.Value(ModelIo.UserVector, DT.Float, "batch", d)], producerVersion,
            $"two-tower: {cfg.ItemCount} items, d={d}, {cfg.Layers} dense layers per tower, history of {cfg.MaxLength}, user fields [{cfg.UserFeatures}], item fields [{cfg.ItemFeatures}]",
            ("item_count", cfg.ItemCount.ToString()), ("hidden", cfg.Hidden.ToString()), ("layers", cfg.Layers.ToString()),
            ("max_length", cfg.MaxLength.ToString()), ("user_features", cfg.UserFeatures), ("item_features", cfg.ItemFeatures));
    }

    /// <summary>Writes the Two-Tower graph atomically.</summary>
    public static void Export(ModelConfig cfg, float[] parameters, int[]? itemSlots, string onnxPath, string producerVersion = "1.0") =>
        AtomicFile.WriteAllBytes(onnxPath, Build(cfg, parameters, itemSlots, producerVersion).ToByteArray());
}
