// The ONNX input and output names of the bundle's graphs: the exporter writes them, the loader checks them, the
// recommender, the reranker and evaluation through ONNX Runtime feed and read them. One place, so they cannot drift.
namespace Bert4Rec.Contracts;

public static class ModelIo
{
    /// <summary>Serving graph (model.onnx): item_ids int64 [batch, N], candidate_ids int64 [batch, C] -> scores float
    /// [batch, C], user_vector float [batch, d+1].</summary>
    public const string ItemIds = "item_ids", CandidateIds = "candidate_ids", Scores = "scores", UserVector = "user_vector";

    /// <summary>Full-catalog graph (model_full.onnx): item_ids, k int64 [1] -> item_scores [batch, n], top_scores [batch, k],
    /// top_items int64 [batch, k].</summary>
    public const string TopK = "k", ItemScores = "item_scores", TopScores = "top_scores", TopItems = "top_items";

    /// <summary>NeuMF's graph: user_index int64 [batch], candidate_ids int64 [batch, C] and, with user fields, user_features
    /// int64 [batch, user width] -> scores float [batch, C].</summary>
    public const string UserIndex = "user_index", UserFeatures = "user_features";

    /// <summary>The inputs of a feature model's graph, in order, as the bundle manifest declares them: name, element type, dims
    /// (a number, or a symbolic name).</summary>
    public static IReadOnlyList<(string Name, string Type, string[] Dims)> FeatureModelInputs(ModelConfig cfg)
    {
        string Dim(int v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);
        int uw = FeatureShape.Parse(cfg.UserFeatures).Sum(f => f.Width);
        if (cfg.Kind == ModelKind.TwoTower)
        {
            // the user tower reads the history and the user's fields, never a user id
            var tower = new List<(string, string, string[])> { (ItemIds, "int64", ["batch", Dim(cfg.MaxLength)]) };
            if (uw > 0) tower.Add((UserFeatures, "int64", ["batch", Dim(uw)]));
            tower.Add((CandidateIds, "int64", ["batch", "candidates"]));
            return tower;
        }
        var list = new List<(string, string, string[])> { (UserIndex, "int64", ["batch"]), (CandidateIds, "int64", ["batch", "candidates"]) };
        if (uw > 0) list.Add((UserFeatures, "int64", ["batch", Dim(uw)]));
        // DeepFM's history fields read the serving graph's row: the latest MaxLength items, left-padded (ModelInput.Fill)
        if (cfg.Kind == ModelKind.DeepFm) list.Add((ItemIds, "int64", ["batch", Dim(cfg.MaxLength)]));
        return list;
    }
}
