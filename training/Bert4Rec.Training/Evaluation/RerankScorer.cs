// Two stages as one scorer: stage one (any IItemScorer: a sequential model, a baseline, a retrieval model) picks each case's
// top-K unseen items; stage two (DeepFM, or any other scorer) rescores those candidates. The reranked list is the candidates in
// stage two's order, then every other item in stage one's order, so the evaluator's ranks are the ranks in that list.
using Bert4Rec.Training.Data;

namespace Bert4Rec.Training.Evaluation;

public sealed class RerankScorer : IItemScorer
{
    private readonly IItemScorer _one, _two;
    private readonly int _k;
    private float[] _first = [];
    private long _cases, _hits;

    /// <param name="candidates">K: how many of stage one's items stage two reorders (items of the history never count).</param>
    public RerankScorer(IItemScorer stageOne, IItemScorer stageTwo, int candidates)
    {
        if (stageOne.ItemCount != stageTwo.ItemCount)
            throw new ArgumentException($"stage one scores {stageOne.ItemCount} items, stage two {stageTwo.ItemCount}: both must score the same catalog");
        if (candidates < 1) throw new ArgumentOutOfRangeException(nameof(candidates), candidates, "must be >= 1");
        _one = stageOne; _two = stageTwo; _k = candidates;
    }

    public int ItemCount => _one.ItemCount;
    public int PreferredBatchSize => Math.Max(1, Math.Min(_one.PreferredBatchSize, _two.PreferredBatchSize));
    public int Candidates => _k;

    /// <summary>The share of the scored cases whose target was among stage one's candidates (stage one's recall@K); NaN before any.</summary>
    public double StageOneRecall => _cases == 0 ? double.NaN : (double)_hits / _cases;

    public void Score(IReadOnlyList<int[]> histories, Span<float> scores)
    {
        var first = FirstBuffer(histories.Count);
        _one.Score(histories, first);
        _two.Score(histories, scores);
        for (int b = 0; b < histories.Count; b++) Merge(first.AsSpan(b * (ItemCount + 1), ItemCount + 1), scores.Slice(b * (ItemCount + 1), ItemCount + 1), histories[b], -1);
    }

    public void Score(IReadOnlyList<EvaluationCase> cases, Span<float> scores)
    {
        var first = FirstBuffer(cases.Count);
        _one.Score(cases, first);
        _two.Score(cases, scores);
        for (int b = 0; b < cases.Count; b++)
            Merge(first.AsSpan(b * (ItemCount + 1), ItemCount + 1), scores.Slice(b * (ItemCount + 1), ItemCount + 1), cases[b].History, cases[b].Target);
    }

    private float[] FirstBuffer(int rows)
    {
        int size = rows * (ItemCount + 1);
        if (_first.Length < size) _first = new float[size];
        return _first;
    }

    /// <summary>Rewrites <paramref name="second"/> (stage two's row) into the reranked list's scores: the K best unseen items
    /// by <paramref name="first"/> keep stage two's scores; every other item scores below all of them, in stage one's order.</summary>
    private void Merge(ReadOnlySpan<float> first, Span<float> second, int[] history, int target)
    {
        int n = ItemCount;
        var seen = new HashSet<int>(history);
        var pool = new List<int>(n);
        for (int i = 1; i <= n; i++) if (!seen.Contains(i) && !float.IsNaN(first[i])) pool.Add(i);
        var firstRow = first.ToArray();
        // stage one's order, the lower index first on a tie, so the candidate set does not depend on the sort
        pool.Sort((a, b) => firstRow[b] != firstRow[a] ? firstRow[b].CompareTo(firstRow[a]) : a.CompareTo(b));
        int k = Math.Min(_k, pool.Count);
        var isCandidate = new bool[n + 1];
        float floor = float.PositiveInfinity;
        for (int j = 0; j < k; j++)
        {
            int i = pool[j];
            isCandidate[i] = true;
            if (!float.IsFinite(second[i])) second[i] = float.MinValue / 4;   // a candidate stays above every other item
            floor = Math.Min(floor, second[i]);
        }
        if (target > 0) { _cases++; if (isCandidate[target]) _hits++; }
        // the rest: below the lowest candidate, stage one's order kept through its rank
        var rank = new int[n + 1];
        for (int j = 0; j < pool.Count; j++) rank[pool[j]] = j;
        float below = (k > 0 ? floor : 0f) - 1f;
        for (int i = 1; i <= n; i++)
        {
            if (isCandidate[i]) continue;
            second[i] = seen.Contains(i) || float.IsNaN(first[i]) ? float.NegativeInfinity : below - (rank[i] - k + 1) * Step(below);
        }
        second[0] = float.NegativeInfinity;
    }

    /// <summary>A decrement that stays distinguishable at the magnitude of <paramref name="x"/>.</summary>
    private static float Step(float x) => Math.Max(1e-3f, Math.Abs(x) * 1e-6f);
}
