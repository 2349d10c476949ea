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
}
