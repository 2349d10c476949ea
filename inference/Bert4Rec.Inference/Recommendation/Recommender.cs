// Two-stage recommendation over a bundle: history (+ user) -> vocabulary -> user_vector (ONNX Runtime: a sequential model's
// [z, 1], or a Two-Tower's user tower fed the user's features) -> FAISS top-K candidates -> exact candidate scores
// (user_vector . w_v, what the graph's `scores` output computes) -> seen items dropped -> top-k.
// With a stage-two ranker in the bundle, the candidates are rescored by it (for users it can rank).
// Rerank scores caller-supplied candidates through the graph's `scores` output (or the stage-two ranker's). Each stage is a trace span (ActivitySource
// "Bert4Rec.Inference": vocabulary, model_run, faiss_search, scoring), free when nothing listens.
using System.Diagnostics;
using Bert4Rec.Contracts;
using Bert4Rec.Inference.OnnxRuntime;
using Bert4Rec.Retrieval;

namespace Bert4Rec.Inference.Recommendation;

public sealed record ScoredItem(string ItemId, float Score);
/// <summary>Ranked items; unknown history ids (dropped) and, for rerank, unknown candidate ids (not scored, each once).</summary>
public sealed record RecommendationResult(IReadOnlyList<ScoredItem> Items, IReadOnlyList<string> UnknownIds)
{
    public IReadOnlyList<string> UnknownCandidateIds { get; init; } = [];
    /// <summary>Which model ordered the items (and whose scores they carry): <see cref="Recommender.StageOne"/> or
    /// <see cref="Recommender.StageTwoRanked"/>.</summary>
    public string RankedBy { get; init; } = Recommender.StageOne;
}

/// <summary>One recommendation query: raw-id history, k results, K FAISS candidates, seen items kept or dropped, and the
/// user (id and features) for a bundle's stage-two ranker.</summary>
public sealed record RecommendQuery(IReadOnlyList<string> History, int K, int Candidates = 200, bool IncludeSeen = false, UserContext? User = null);

public sealed class Recommender(ModelBundle bundle)
{
    public ModelBundle Bundle => bundle;

    /// <summary>What <see cref="RecommendationResult.RankedBy"/> says: stage one's exact scores, or the stage-two ranker's.</summary>
    public const string StageOne = "stage_one", StageTwoRanked = "stage_two";

    /// <summary>The users of a batch encoded for the bundle's models (null when none reads a user); a bad feature throws before
    /// any model runs, a <see cref="UserFeatureException"/> naming the field and the index of its query.</summary>
    private EncodedUser[]? EncodeUsers(IReadOnlyList<UserContext?> users)
    {
        if (bundle.Users is not { } enc) return null;
        var encoded = new EncodedUser[users.Count];
        for (int i = 0; i < encoded.Length; i++)
        {
            try { encoded[i] = enc.Encode(users[i] ?? UserContext.Anonymous); }
            catch (UserFeatureException e) { throw new UserFeatureException(e.Field, e.Message) { Query = i }; }
        }
        return encoded;
    }

    /// <summary>The stages' trace source; a span exists only while a listener (e.g. an OpenTelemetry tracer) samples it.</summary>
    public static readonly ActivitySource Tracing = new("Bert4Rec.Inference");

    private (List<int> Known, List<string> Unknown) Map(IReadOnlyList<string> history)
    {
        var known = new List<int>(history.Count);
        var unknown = new List<string>();
        foreach (var id in history)
            if (id != null && bundle.Vocabulary.TryGetIndex(id, out int i)) known.Add(i);
            else unknown.Add(id ?? "");
        return (known, unknown);
    }

    /// <summary>The query vector (<see cref="ModelBundle.Dimension"/> floats) of a history of item indices and a user.</summary>
    public float[] UserVector(IReadOnlyList<int> history, UserContext? user = null) =>
        UserVectors([history], EncodeUsers([user]));

    /// <summary>
    /// The query vectors of many histories, row-major (B x <see cref="ModelBundle.Dimension"/> floats), from one ONNX Runtime
    /// run with batch B: a sequential model's [z, 1]; a Two-Tower's user tower over each history and its user (encoded by
    /// the bundle's <see cref="UserEncoder"/>; null = anonymous users).
    /// </summary>
    public float[] UserVectors(IReadOnlyList<IReadOnlyList<int>> histories, IReadOnlyList<EncodedUser>? users = null)
    {
        var cfg = bundle.Config;
        int B = histories.Count, dim = bundle.Dimension;
        var user = new float[B * dim];
        if (B == 0) return user;
        if (users == null && bundle.Users is { } enc) users = Enumerable.Repeat(enc.Encode(UserContext.Anonymous), B).ToArray();
        var cands = Enumerable.Repeat<IReadOnlyList<int>>([1], B).ToArray();     // the graph needs a candidate per row; its score is not used
        bundle.Session.Run(GraphInputs.Feed(bundle.Inputs, cfg, users, histories, cands, 1),
                           new[] { NamedTensor.Float(ModelIo.Scores, new float[B], B, 1), NamedTensor.Float(ModelIo.UserVector, user, B, dim) });
        return user;
    }

    public RecommendationResult Recommend(IReadOnlyList<string> history, int k, int candidates = 200, bool includeSeen = false, SearchParameters? search = null) =>
        RecommendBatch([new RecommendQuery(history, k, candidates, includeSeen)], search)[0];

    /// <summary>
    /// Recommends for many histories at once: one ONNX Runtime run with batch dimension B for the user vectors, then one
    /// FAISS search call with all the queries that ask for the same number of candidates (one call when the batch is
    /// uniform), then the exact scores. With an exact (Flat) index each answer equals what <see cref="Recommend"/> gives
    /// for that query alone (to ONNX Runtime's float rounding); an approximate index searches as wide as the group's longest
    /// seen-item list needs, so its answers can differ slightly.
    /// </summary>
    public RecommendationResult[] RecommendBatch(IReadOnlyList<RecommendQuery> queries, SearchParameters? search = null)
    {
        var index = bundle.Index ?? throw new InvalidOperationException($"bundle {bundle.Path} has no index");
        foreach (var q in queries)
            if (q.K < 1) throw new ArgumentOutOfRangeException(nameof(queries), q.K, "k must be >= 1");
        int B = queries.Count, dim = bundle.Dimension;
        (List<int> Known, List<string> Unknown)[] mapped;
        EncodedUser[]? users;
        using (Tracing.StartActivity("vocabulary")?.SetTag("bert4rec.queries", B))
        {
            mapped = queries.Select(q => Map(q.History)).ToArray();
            users = EncodeUsers(queries.Select(q => q.User).ToArray());
        }
        float[] user;
        using (Tracing.StartActivity("model_run")?.SetTag("bert4rec.batch", B).SetTag("bert4rec.execution_provider", bundle.Session.ActiveProvider))
            user = UserVectors(mapped.Select(m => (IReadOnlyList<int>)m.Known).ToArray(), users);
        var results = new RecommendationResult[B];
        var w = bundle.ItemVectors;
        // queries asking for the same K share one search call (a different K could change an approximate index's answers)
        foreach (var group in Enumerable.Range(0, B).GroupBy(b => Math.Max(queries[b].K, queries[b].Candidates)))
        {
            int[] rows = group.ToArray();
            int K = group.Key;
            var qv = new float[rows.Length * dim];
            for (int j = 0; j < rows.Length; j++) user.AsSpan(rows[j] * dim, dim).CopyTo(qv.AsSpan(j * dim, dim));
            var exclude = rows.Select(b => queries[b].IncludeSeen ? (IReadOnlyCollection<long>)Array.Empty<long>() : mapped[b].Known.Select(i => (long)i).ToHashSet()).ToArray();
            Neighbor[][] found;
            using (Tracing.StartActivity("faiss_search")?.SetTag("bert4rec.queries", rows.Length).SetTag("bert4rec.candidates", K).SetTag("bert4rec.index", index.Factory))
                found = index.Search(qv, rows.Length, K, search, exclude.Any(e => e.Count > 0) ? exclude : null);
            // stage two rescores the candidates of the rows it can rank (all at once); the others keep stage one's exact scores
            var ranked = new float[rows.Length][];
            if (bundle.StageTwo is { } two)
            {
                int[] rankable = Enumerable.Range(0, rows.Length).Where(j => two.CanRank(users![rows[j]])).ToArray();
                using (Tracing.StartActivity("stage_two")?.SetTag("bert4rec.queries", rankable.Length).SetTag("bert4rec.stage_two", two.Config.Kind.Name()))
                {
                    var scores = two.Score(rankable.Select(j => users![rows[j]]).ToArray(), rankable.Select(j => (IReadOnlyList<int>)mapped[rows[j]].Known).ToArray(),
                                           rankable.Select(j => (IReadOnlyList<int>)found[j].Select(nb => (int)nb.Id).ToArray()).ToArray());
                    for (int r = 0; r < rankable.Length; r++) ranked[rankable[r]] = scores[r];
                }
            }
            using var scoring = Tracing.StartActivity("scoring")?.SetTag("bert4rec.queries", rows.Length);
            for (int j = 0; j < rows.Length; j++)
            {
                int b = rows[j];
                var u = user.AsSpan(b * dim, dim);
                var scored = new List<ScoredItem>(found[j].Length);
                for (int c = 0; c < found[j].Length; c++)
                {
                    int v = (int)found[j][c].Id;
                    float s = ranked[j]?[c] ?? System.Numerics.Tensors.TensorPrimitives.Dot(u, w.AsSpan((v - 1) * dim, dim));
                    scored.Add(new ScoredItem(bundle.Vocabulary.RawId(v), s));
                }
                var top = scored.OrderByDescending(x => x.Score).ThenBy(x => x.ItemId, StringComparer.Ordinal).Take(queries[b].K).ToList();
                results[b] = new RecommendationResult(top, mapped[b].Unknown) { RankedBy = ranked[j] != null ? StageTwoRanked : StageOne };
            }
        }
        return results;
    }

    /// <summary>
    /// Scores the caller's candidates with the model (ONNX `scores`), best first, each distinct candidate once; unknown
    /// history ids and unknown candidate ids are reported apart, not scored.
    /// </summary>
    public RecommendationResult Rerank(IReadOnlyList<string> history, IReadOnlyList<string> candidates, int k = 0, UserContext? user = null)
    {
        List<int> known, allCands;
        List<string> unknown, unknownCands;
        EncodedUser[]? encoded;
        using (Tracing.StartActivity("vocabulary")?.SetTag("bert4rec.candidates", candidates.Count))
        {
            (known, unknown) = Map(history);
            (allCands, unknownCands) = Map(candidates.Distinct(StringComparer.Ordinal).ToList());
            encoded = EncodeUsers([user]);
        }
        var cands = allCands.Distinct().ToList();
        if (cands.Count == 0) return new RecommendationResult([], unknown) { UnknownCandidateIds = unknownCands };
        var cfg = bundle.Config;
        float[] scores;
        string rankedBy = StageOne;
        if (bundle.StageTwo is { } two && two.CanRank(encoded![0]))
        {
            using (Tracing.StartActivity("stage_two")?.SetTag("bert4rec.candidates", cands.Count).SetTag("bert4rec.stage_two", two.Config.Kind.Name()))
                scores = two.Score(encoded, [known], [cands])[0];
            rankedBy = StageTwoRanked;
        }
        else scores = StageOneScores(known, cands, encoded?[0]);
        using var ranking = Tracing.StartActivity("ranking");
        var ranked = cands.Select((c, i) => new ScoredItem(bundle.Vocabulary.RawId(c), scores[i]))
            .OrderByDescending(x => x.Score).ThenBy(x => x.ItemId, StringComparer.Ordinal);
        return new RecommendationResult((k > 0 ? ranked.Take(k) : ranked).ToList(), unknown) { UnknownCandidateIds = unknownCands, RankedBy = rankedBy };
    }

    /// <summary>Stage one's scores (the serving graph's `scores`) of candidates for one history and its encoded user.</summary>
    private float[] StageOneScores(List<int> known, List<int> cands, EncodedUser? user)
    {
        var scores = new float[cands.Count];
        using (Tracing.StartActivity("model_run")?.SetTag("bert4rec.candidates", cands.Count).SetTag("bert4rec.execution_provider", bundle.Session.ActiveProvider))
            bundle.Session.Run(GraphInputs.Feed(bundle.Inputs, bundle.Config, user is { } u ? [u] : null, [known], [cands], cands.Count),
                               new[] { NamedTensor.Float(ModelIo.Scores, scores, 1, cands.Count), NamedTensor.Float(ModelIo.UserVector, new float[bundle.Dimension], 1, bundle.Dimension) });
        return scores;
    }
}
