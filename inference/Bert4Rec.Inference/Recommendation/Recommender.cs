// Two-stage recommendation over a bundle: history -> vocabulary -> user_vector (ONNX Runtime) -> FAISS top-K candidates
// -> exact candidate scores (user_vector . [E, b_O], what the graph's `scores` output computes) -> seen items dropped -> top-k.
// Rerank scores caller-supplied candidates through the graph's `scores` output.
using Bert4Rec.Contracts;
using Bert4Rec.Inference.OnnxRuntime;
using Bert4Rec.Retrieval;

namespace Bert4Rec.Inference.Recommendation;

public sealed record ScoredItem(string ItemId, float Score);
/// <summary>Ranked items; unknown history ids (dropped) and, for rerank, unknown candidate ids (not scored, each once).</summary>
public sealed record RecommendationResult(IReadOnlyList<ScoredItem> Items, IReadOnlyList<string> UnknownIds)
{
    public IReadOnlyList<string> UnknownCandidateIds { get; init; } = [];
}

public sealed class Recommender(ModelBundle bundle)
{
    public ModelBundle Bundle => bundle;

    private (List<int> Known, List<string> Unknown) Map(IReadOnlyList<string> history)
    {
        var known = new List<int>(history.Count);
        var unknown = new List<string>();
        foreach (var id in history)
            if (id != null && bundle.Vocabulary.TryGetIndex(id, out int i)) known.Add(i);
            else unknown.Add(id ?? "");
        return (known, unknown);
    }

    /// <summary>The query vector [z, 1] (d+1 floats) of a history of item indices.</summary>
    public float[] UserVector(IReadOnlyList<int> history)
    {
        var cfg = bundle.Config;
        var row = ModelInput.Row(history, cfg);
        var user = new float[cfg.Hidden + 1];
        bundle.Session.Run(new[] { NamedTensor.Int64(ModelIo.ItemIds, row, 1, cfg.MaxLength), NamedTensor.Int64(ModelIo.CandidateIds, new long[] { 1 }, 1, 1) },
                           new[] { NamedTensor.Float(ModelIo.Scores, new float[1], 1, 1), NamedTensor.Float(ModelIo.UserVector, user, 1, cfg.Hidden + 1) });
        return user;
    }

    public RecommendationResult Recommend(IReadOnlyList<string> history, int k, int candidates = 200, bool includeSeen = false, SearchParameters? search = null)
    {
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be >= 1");
        var index = bundle.Index ?? throw new InvalidOperationException($"bundle {bundle.Path} has no index");
        var (known, unknown) = Map(history);
        var user = UserVector(known);
        int K = Math.Max(k, candidates);
        var exclude = includeSeen ? null : new[] { (IReadOnlyCollection<long>)known.Select(i => (long)i).ToHashSet() };
        var found = index.Search(user, 1, K, search, exclude)[0];
        int dim = bundle.Config.Hidden + 1;
        var w = bundle.ItemVectors;
        var scored = new List<ScoredItem>(found.Length);
        foreach (var nb in found)
        {
            int v = (int)nb.Id;
            float s = System.Numerics.Tensors.TensorPrimitives.Dot(user, w.AsSpan((v - 1) * dim, dim));
            scored.Add(new ScoredItem(bundle.Vocabulary.RawId(v), s));
        }
        var top = scored.OrderByDescending(x => x.Score).ThenBy(x => x.ItemId, StringComparer.Ordinal).Take(k).ToList();
        return new RecommendationResult(top, unknown);
    }

    /// <summary>
    /// Scores the caller's candidates with the model (ONNX `scores`), best first, each distinct candidate once; unknown
    /// history ids and unknown candidate ids are reported apart, not scored.
    /// </summary>
    public RecommendationResult Rerank(IReadOnlyList<string> history, IReadOnlyList<string> candidates, int k = 0)
    {
        var (known, unknown) = Map(history);
        var (allCands, unknownCands) = Map(candidates.Distinct(StringComparer.Ordinal).ToList());
        var cands = allCands.Distinct().ToList();
        if (cands.Count == 0) return new RecommendationResult([], unknown) { UnknownCandidateIds = unknownCands };
        var cfg = bundle.Config;
        var row = ModelInput.Row(known, cfg);
        var scores = new float[cands.Count];
        bundle.Session.Run(new[] { NamedTensor.Int64(ModelIo.ItemIds, row, 1, cfg.MaxLength), NamedTensor.Int64(ModelIo.CandidateIds, cands.Select(c => (long)c).ToArray(), 1, cands.Count) },
                           new[] { NamedTensor.Float(ModelIo.Scores, scores, 1, cands.Count), NamedTensor.Float(ModelIo.UserVector, new float[cfg.Hidden + 1], 1, cfg.Hidden + 1) });
        var ranked = cands.Select((c, i) => new ScoredItem(bundle.Vocabulary.RawId(c), scores[i]))
            .OrderByDescending(x => x.Score).ThenBy(x => x.ItemId, StringComparer.Ordinal);
        return new RecommendationResult((k > 0 ? ranked.Take(k) : ranked).ToList(), unknown) { UnknownCandidateIds = unknownCands };
    }
}
