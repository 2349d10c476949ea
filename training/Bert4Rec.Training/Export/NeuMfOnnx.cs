// NeuMF -> ONNX (opset 17, standard operators): the eval-mode forward of NeuMfModel for a batch of known users and their
// candidates. Inputs (declared in the manifest): user_index int64 [batch], candidate_ids int64 [batch, C] and, when the model
// has user fields, user_features int64 [batch, user width] (value ids of the dataset's user feature table; 1 = OOV). The item
// feature table is a constant of the graph (item_features_table). Output: scores [batch, C], the logits.
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Onnx;
using Google.Protobuf;
using DT = Bert4Rec.Contracts.Onnx.OnnxTensor.Types.DataType;

namespace Bert4Rec.Training.Export;

public static class NeuMfOnnx
{
    public const string ItemFeatureTable = "item_features_table";

    /// <summary>The graph's inputs, in order, as the manifest declares them (name, element type, dims).</summary>
    public static IReadOnlyList<(string Name, string Type, string[] Dims)> Inputs(ModelConfig cfg) => ModelIo.FeatureModelInputs(cfg);

    public static OnnxModel Build(ModelConfig cfg, float[] parameters, int[]? itemSlots, string producerVersion = "1.0")
    {
        if (cfg.Kind != ModelKind.NeuMf) throw new ArgumentException($"NeuMfOnnx exports neumf, not {cfg.Kind.Name()}");
        var layout = new ParameterLayout(cfg);
        if (parameters.Length != layout.TotalSize) throw new ArgumentException($"parameters has {parameters.Length} floats; the layout needs {layout.TotalSize}");
        foreach (var x in parameters) if (!float.IsFinite(x)) throw new ArgumentException("parameters contain NaN or infinity; refusing to export");
        var uf = FeatureShape.Parse(cfg.UserFeatures);
        var itf = FeatureShape.Parse(cfg.ItemFeatures);
        int f = cfg.Hidden, m = cfg.MlpEmbedding, uw = uf.Sum(x => x.Width), iw = itf.Sum(x => x.Width);
        int in0 = 2 * m + f * (uf.Length + itf.Length);
        if (iw > 0 && (itemSlots == null || itemSlots.Length != (cfg.ItemCount + 1) * iw))
            throw new ArgumentException($"the item feature table must hold {(cfg.ItemCount + 1) * iw} ids ({cfg.ItemCount + 1} rows of width {iw})");
        var g = new OnnxGraphBuilder(cfg.Kind.Name());
        foreach (var t in layout.Tensors)
            g.Initializer(t.Name, layout.Slice(parameters, t.Name), t.Shape.Select(s => (long)s).ToArray());
        var axis0 = OnnxGraphBuilder.Int("axis", 0);
        string Gather(string table, string ids) => g.Node("Gather", [table, ids], null, "", axis0);
        string Cols(string x, long from, long to, int axis) => g.Node("Slice", [x, g.Int64s(from), g.Int64s(to), g.Int64s(axis)]);
        // the mean of a field's non-pad embedding rows: slots [..., w] -> [..., f]
        string Pool(string table, string slots, int axis) => g.MeanOfRows(table, slots, axis);
        // GMF: p_u [B,1,f] * q_c [B,C,f]
        string p = g.Node("Unsqueeze", [Gather("gmf.user", ModelIo.UserIndex), g.Int64s(1)]);
        string gmf = g.Node("Mul", [p, Gather("gmf.item", ModelIo.CandidateIds)]);
        // the first layer split as the trainer's scoring: user columns [B,uCols] W_0[user rows] + item columns [B,C,iCols] W_0[item rows]
        var userCols = new List<string> { Gather("mlp.user", ModelIo.UserIndex) };
        int o = 0;
        for (int k = 0; k < uf.Length; k++) { userCols.Add(Pool($"user_feat.{k}", Cols(ModelIo.UserFeatures, o, o + uf[k].Width, 1), 1)); o += uf[k].Width; }
        var itemCols = new List<string> { Gather("mlp.item", ModelIo.CandidateIds) };
        if (iw > 0)
        {
            var table = new long[itemSlots!.Length];
            for (int i = 0; i < table.Length; i++) table[i] = itemSlots[i];
            string slots = Gather(g.Initializer(ItemFeatureTable, table, cfg.ItemCount + 1, iw), ModelIo.CandidateIds);   // [B,C,iw]
            o = 0;
            for (int k = 0; k < itf.Length; k++) { itemCols.Add(Pool($"item_feat.{k}", Cols(slots, o, o + itf[k].Width, 2), 2)); o += itf[k].Width; }
        }
        string Concat(List<string> xs, int axis) => xs.Count == 1 ? xs[0] : g.Node("Concat", xs, null, "", OnnxGraphBuilder.Int("axis", axis));
        string w0 = "mlp.0.w";
        string w0User = uf.Length == 0 ? Cols(w0, 0, m, 0) : g.Node("Concat", [Cols(w0, 0, m, 0), Cols(w0, 2 * m, 2 * m + f * uf.Length, 0)], null, "", axis0);
        string w0Item = itf.Length == 0 ? Cols(w0, m, 2 * m, 0) : g.Node("Concat", [Cols(w0, m, 2 * m, 0), Cols(w0, 2 * m + f * uf.Length, in0, 0)], null, "", axis0);
        string userPart = g.Node("Unsqueeze", [g.Node("MatMul", [Concat(userCols, 1), w0User]), g.Int64s(1)]);                 // [B,1,o0]
        string itemPart = g.Node("MatMul", [Concat(itemCols, 2), w0Item]);                                                        // [B,C,o0]
        string h = g.Node("Relu", [g.Node("Add", [g.Node("Add", [itemPart, userPart]), "mlp.0.b"])]);
        for (int l = 1; l < cfg.Layers; l++)
            h = g.Node("Relu", [g.Node("Add", [g.Node("MatMul", [h, $"mlp.{l}.w"]), $"mlp.{l}.b"])]);
        string logit = g.Node("Add", [g.Node("MatMul", [g.Node("Concat", [gmf, h], null, "", OnnxGraphBuilder.Int("axis", 2)), "out.w"]), "out.b"]); // [B,C,1]
        g.Node("Squeeze", [logit, g.Int64s(2)], ModelIo.Scores);

        return FeatureModelGraph.Finish(g, cfg, [OnnxGraphBuilder.Value(ModelIo.Scores, DT.Float, "batch", "candidates")], producerVersion,
            $"neumf: {cfg.UserCount} users, {cfg.ItemCount} items, f={f}, {cfg.Layers} MLP layers, user fields [{cfg.UserFeatures}], item fields [{cfg.ItemFeatures}]",
            ("item_count", cfg.ItemCount.ToString()), ("user_count", cfg.UserCount.ToString()), ("hidden", cfg.Hidden.ToString()),
            ("layers", cfg.Layers.ToString()), ("user_features", cfg.UserFeatures), ("item_features", cfg.ItemFeatures));
    }

    /// <summary>Writes the NeuMF graph atomically.</summary>
    public static void Export(ModelConfig cfg, float[] parameters, int[]? itemSlots, string onnxPath, string producerVersion = "1.0") =>
        AtomicFile.WriteAllBytes(onnxPath, Build(cfg, parameters, itemSlots, producerVersion).ToByteArray());
}
