// Ranking metrics of the sequential-recommendation literature from the target's 1-based rank: HR@k (= Recall@k with one
// target), NDCG@k, MRR; and their averages over users.
namespace Bert4Rec.Contracts;

public sealed record RankingMetrics(string Protocol, int Users, double Hr1, double Hr5, double Hr10, double Ndcg5, double Ndcg10, double Mrr)
{
    public static double Ndcg(int rank, int k) => rank <= k ? 1.0 / Math.Log2(rank + 1) : 0.0;

    /// <summary>The candidates stage one hands to stage two (DESIGN.md: FAISS top-K, default 200): the K of the stage-one recall.</summary>
    public const int StageOneK = 200;

    /// <summary>Recall@k with one target per user: the share of ranks (1-based) at most <paramref name="k"/>.</summary>
    public static double RecallAt(IReadOnlyList<int> ranks, int k) => ranks.Count == 0 ? 0 : ranks.Count(r => r <= k) / (double)ranks.Count;

    /// <summary>Averages per-user ranks (1-based) into metrics.</summary>
    public static RankingMetrics FromRanks(string protocol, IReadOnlyList<int> ranks)
    {
        if (ranks.Count == 0) return new RankingMetrics(protocol, 0, 0, 0, 0, 0, 0, 0);
        double h1 = 0, h5 = 0, h10 = 0, n5 = 0, n10 = 0, mrr = 0;
        foreach (int r in ranks)
        {
            if (r < 1) throw new ArgumentOutOfRangeException(nameof(ranks), r, "ranks are 1-based");
            if (r <= 1) h1++;
            if (r <= 5) h5++;
            if (r <= 10) h10++;
            n5 += Ndcg(r, 5);
            n10 += Ndcg(r, 10);
            mrr += 1.0 / r;
        }
        int u = ranks.Count;
        return new RankingMetrics(protocol, u, h1 / u, h5 / u, h10 / u, n5 / u, n10 / u, mrr / u);
    }

    public IReadOnlyDictionary<string, double> ToDictionary() => new Dictionary<string, double>
    {
        ["hr@1"] = Hr1, ["hr@5"] = Hr5, ["hr@10"] = Hr10, ["ndcg@5"] = Ndcg5, ["ndcg@10"] = Ndcg10, ["mrr"] = Mrr,
    };

    public override string ToString() =>
        $"{Protocol,-7} users {Users,6}  HR@1 {Hr1:F4}  HR@5 {Hr5:F4}  HR@10 {Hr10:F4}  NDCG@5 {Ndcg5:F4}  NDCG@10 {Ndcg10:F4}  MRR {Mrr:F4}";
}
