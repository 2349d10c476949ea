// DeepFM -> ONNX (opset 17, standard operators): the eval-mode forward of DeepFmModel for a batch of known users, their history
// windows and their candidates. Inputs (declared in the manifest): user_index int64 [batch], candidate_ids int64 [batch, C],
// user_features int64 [batch, user width] when the model has user fields, item_ids int64 [batch, MaxLength] (the history's
// latest items, left-padded with 0: the sequential models' input row). The item feature table is a constant of the graph. Output: scores [batch, C], the logits. The graph
// splits the fields as the trainer's all-items scoring: user side once per row, item side per candidate, and
// FM(all) = FM(user side) + FM(item side) + S_user . S_item.
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Onnx;
using Google.Protobuf;

namespace Bert4Rec.Training.Export;

public static class DeepFmOnnx
{
    /// <summary>The graph's inputs, in order, as the manifest declares them (name, element type, dims).</summary>
    public static IReadOnlyList<(string Name, string Type, string[] Dims)> Inputs(ModelConfig cfg) => ModelIo.FeatureModelInputs(cfg);

    public static OnnxModel Build(ModelConfig cfg, float[] parameters, int[]? itemSlots, string producerVersion = "1.0")
    {
        var g = NeuMfOnnx.Start(cfg, ModelKind.DeepFm, parameters, itemSlots);
        var fields = DeepFmFields.Of(cfg);
        int k = cfg.Hidden, H = cfg.MaxLength;
        var axis0 = OnnxGraphBuilder.Int("axis", 0);
        var keep = OnnxGraphBuilder.Int("keepdims", 1);
        string Cols(string x, long from, long to, int axis) => g.Node("Slice", [x, g.Int64s(from), g.Int64s(to), g.Int64s(axis)]);
        string itemSlotsOnCandidates = FeatureShape.Parse(cfg.ItemFeatures).Length > 0
            ? g.Node("Gather", [NeuMfOnnx.ItemTable(g, cfg, itemSlots!), ModelIo.CandidateIds], null, "", axis0)    // [B,C,iw]
            : "";
        // each field's ids: user side [B, width], item side [B, C, width]; its embedding [.., k] and first-order weight [.., 1]
        var userE = new List<string>(); var userW = new List<string>(); var itemE = new List<string>(); var itemW = new List<string>();
        int userAt = 0, itemAt = 0;
        foreach (var f in fields)
        {
            string ids;
            if (f.Name == DeepFmFields.User) ids = ModelIo.UserIndex;                                       // [B]
            else if (f.Name == DeepFmFields.Item) ids = ModelIo.CandidateIds;                               // [B,C]
            else if (f.Name == DeepFmFields.LastItem) ids = g.Node("Squeeze", [Cols(ModelIo.ItemIds, H - 1, H, 1), g.Int64s(1)]);
            else if (f.Name == DeepFmFields.RecentItems) ids = ModelIo.ItemIds;
            else if (f.UserSide) { ids = Cols(ModelIo.UserFeatures, userAt, userAt + f.Width, 1); userAt += f.Width; }
            else { ids = Cols(itemSlotsOnCandidates, itemAt, itemAt + f.Width, 2); itemAt += f.Width; }
            string weights = g.Node("Unsqueeze", [$"{f.Name}.w", g.Int64s(1)]);                            // (Vocab, 1)
            string e, w;
            if (f.Pooled)
            {
                int axis = f.UserSide ? 1 : 2;
                e = NeuMfOnnx.PoolRows(g, $"{f.Name}.emb", ids, axis);
                w = NeuMfOnnx.PoolRows(g, weights, ids, axis);
            }
            else
            {
                e = g.Node("Gather", [$"{f.Name}.emb", ids], null, "", axis0);
                w = g.Node("Gather", [weights, ids], null, "", axis0);
            }
            (f.UserSide ? userE : itemE).Add(e);
            (f.UserSide ? userW : itemW).Add(w);
        }
        string Concat(List<string> xs, int axis) => xs.Count == 1 ? xs[0] : g.Node("Concat", xs, null, "", OnnxGraphBuilder.Int("axis", axis));
        string Sum(List<string> xs) => xs.Count == 1 ? xs[0] : g.Node("Sum", xs);
        string SquaredNorm(string x, int axis) => g.Node("ReduceSum", [g.Node("Mul", [x, x]), g.Int64s(axis)], null, "", keep);
        // within one side: first-order sum + 1/2 (|S|^2 - sum_f |e_f|^2), where sum_f |e_f|^2 = |concatenated e|^2
        (string X, string S, string Const) Side(List<string> e, List<string> w, int axis)
        {
            string x = Concat(e, axis), s = Sum(e);
            string fm = g.Node("Mul", [g.Node("Sub", [SquaredNorm(s, axis), SquaredNorm(x, axis)]), g.Scalar(0.5f)]);
            return (x, s, g.Node("Add", [Sum(w), fm]));
        }
        var (xu, su, userConst) = Side(userE, userW, 1);     // [B, FU k], [B, k], [B, 1]
        var (xi, si, itemConst) = Side(itemE, itemW, 2);     // [B, C, FI k], [B, C, k], [B, C, 1]
        string suRow = g.Node("Unsqueeze", [su, g.Int64s(1)]);                                                  // [B,1,k]
        string cross = g.Node("ReduceSum", [g.Node("Mul", [si, suRow]), g.Int64s(2)], null, "", keep);        // [B,C,1]
        // the deep part, first layer split into user rows and item rows of W_0
        int uCols = userE.Count * k;
        string userPart = g.Node("Unsqueeze", [g.Node("MatMul", [xu, Cols("mlp.0.w", 0, uCols, 0)]), g.Int64s(1)]);    // [B,1,o0]
        string itemPart = g.Node("MatMul", [xi, Cols("mlp.0.w", uCols, fields.Count * k, 0)]);                          // [B,C,o0]
        string h = g.Node("Relu", [g.Node("Add", [g.Node("Add", [itemPart, userPart]), "mlp.0.b"])]);
        for (int l = 1; l < cfg.Layers; l++)
            h = g.Node("Relu", [g.Node("Add", [g.Node("MatMul", [h, $"mlp.{l}.w"]), $"mlp.{l}.b"])]);
        string deep = g.Node("MatMul", [h, "out.w"]);                                                          // [B,C,1]
        string logit = g.Node("Sum", [deep, cross, itemConst, g.Node("Unsqueeze", [userConst, g.Int64s(1)]), "out.b"]);
        g.Node("Squeeze", [logit, g.Int64s(2)], ModelIo.Scores);
        return NeuMfOnnx.Finish(g, cfg, producerVersion,
            $"deepfm: {cfg.UserCount} users, {cfg.ItemCount} items, k={k}, {cfg.Layers} deep layers, history {H}, user fields [{cfg.UserFeatures}], item fields [{cfg.ItemFeatures}]");
    }

    /// <summary>Writes the DeepFM graph atomically.</summary>
    public static void Export(ModelConfig cfg, float[] parameters, int[]? itemSlots, string onnxPath, string producerVersion = "1.0") =>
        AtomicFile.WriteAllBytes(onnxPath, Build(cfg, parameters, itemSlots, producerVersion).ToByteArray());
}
