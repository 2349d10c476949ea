// Leave-one-out evaluation with both protocols of the literature: full ranking over all items (seen items excluded by
// default) and the paper's 100 popularity-sampled negatives. Ties count against the target (conservative).
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;

namespace Bert4Rec.Training.Evaluation;

/// <summary>Scores every item for a batch of histories.</summary>
public interface IItemScorer
{
    int ItemCount { get; }
    int PreferredBatchSize { get; }
    /// <summary>scores is (histories.Count, ItemCount + 1) row-major; column i is item i's score; column 0 is ignored.
    /// Called from one thread at a time; implementations may use threads inside.</summary>
    void Score(IReadOnlyList<int[]> histories, Span<float> scores);

    /// <summary>The same for evaluation cases; a scorer that needs more than the history (the user, for NeuMF) reads it here.</summary>
    void Score(IReadOnlyList<EvaluationCase> cases, Span<float> scores) => Score(cases.Select(c => c.History).ToList(), scores);
}

/// <summary>Full: every item. Pop100: 100 negatives sampled by popularity (BERT4Rec's protocol). Uniform100: 100 negatives
/// sampled uniformly (the NCF paper's protocol, He et al. 2017); negatives never include an item of the user's history.</summary>
public enum EvaluationProtocol { Full, Pop100, Uniform100 }

public sealed record EvaluationOptions
{
    public EvaluationProtocol Protocol { get; init; } = EvaluationProtocol.Full;
    /// <summary>Full protocol: drop the items of the user's history from the ranking (the target is always kept).</summary>
    public bool ExcludeSeen { get; init; } = true;
    public int Seed { get; init; } = 42;
    /// <summary>Pop100: interaction counts per item index (entry 0 unused) to sample negatives by.</summary>
    public int[]? ItemPopularity { get; init; }
    public int Negatives { get; init; } = 100;
}

public static class Evaluator
{
    /// <summary>Floats of scores one evaluation batch holds at most (64 MB).</summary>
    private const int ScoreBufferFloats = 1 << 24;

    public static string Label(EvaluationOptions o) => o.Protocol switch
    {
        EvaluationProtocol.Full => o.ExcludeSeen ? "full" : "full+seen",
        EvaluationProtocol.Uniform100 => $"uniform{o.Negatives}",
        _ => $"pop{o.Negatives}",
    };

    public static RankingMetrics Evaluate(IItemScorer scorer, IReadOnlyList<EvaluationCase> cases, EvaluationOptions options) =>
        RankingMetrics.FromRanks(Label(options), Ranks(scorer, cases, options));

    /// <summary>The target's 1-based rank for every case, in the order of <paramref name="cases"/>: the per-user results that
    /// <see cref="Evaluate"/> averages, for paired comparisons of two models on the same users.</summary>
    public static int[] Ranks(IItemScorer scorer, IReadOnlyList<EvaluationCase> cases, EvaluationOptions options)
    {
        int n = scorer.ItemCount;
        if (options.Protocol == EvaluationProtocol.Pop100)
        {
            if (options.ItemPopularity == null || options.ItemPopularity.Length != n + 1)
                throw new ArgumentException($"pop100 needs ItemPopularity with {n + 1} entries");
        }
        double[]? cum = options.Protocol switch
        {
            EvaluationProtocol.Pop100 => Cumulative(options.ItemPopularity!),
            EvaluationProtocol.Uniform100 => Cumulative(Enumerable.Repeat(1, n + 1).ToArray()),
            _ => null,
        };
        var ranks = new int[cases.Count];
        // the scorer's batch, cut so that the score buffer stays near 64 MB: at a million items a batch of 128 rows would be
        // 485 MB here and as much again in the model's logits (Beauty's 54k items keep the full batch)
        int bs = Math.Max(1, Math.Min(scorer.PreferredBatchSize, ScoreBufferFloats / (n + 1)));
        var scores = new float[bs * (n + 1)];
        var batch = new List<EvaluationCase>(bs);
        for (int start = 0; start < cases.Count; start += bs)
        {
            int count = Math.Min(bs, cases.Count - start);
            batch.Clear();
            for (int i = 0; i < count; i++)
            {
                var c = cases[start + i];
                if (c.Target < 1 || c.Target > n) throw new ArgumentException($"case of user {c.User}: target {c.Target} outside 1..{n}");
                batch.Add(c);
            }
            var span = scores.AsSpan(0, count * (n + 1));
            scorer.Score(batch, span);
            Parallel.For(0, count, i =>
            {
                var c = batch[i];   // the case already read (a split's cases are made when read)
                var row = scores.AsSpan(i * (n + 1), n + 1);
                ranks[start + i] = options.Protocol == EvaluationProtocol.Full
                    ? FullRank(row, c, options.ExcludeSeen)
                    : SampledRank(row, c, SampleNegatives(c, cum!, options.Negatives, options.Seed));
            });
        }
        return ranks;
    }

    /// <summary>1 + number of competing items scoring at least as high as the target (ties count against it).</summary>
    public static int FullRank(ReadOnlySpan<float> row, EvaluationCase c, bool excludeSeen)
    {
        float t = row[c.Target];
        int better = 0;
        for (int i = 1; i < row.Length; i++)
            if (i != c.Target && row[i] >= t) better++;
        if (excludeSeen)
        {
            // remove seen items that were counted (each distinct item once)
            var seen = new HashSet<int>(c.History);
            seen.Remove(c.Target);
            foreach (int s in seen) if (s >= 1 && s < row.Length && row[s] >= t) better--;
        }
        if (float.IsNaN(t)) return row.Length;   // a NaN target ranks last
        return better + 1;
    }

    public static int SampledRank(ReadOnlySpan<float> row, EvaluationCase c, int[] negatives)
    {
        float t = row[c.Target];
        int better = 0;
        foreach (int i in negatives) if (row[i] >= t) better++;
        if (float.IsNaN(t)) return negatives.Length + 1;
        return better + 1;
    }

    /// <summary>
    /// <paramref name="count"/> distinct negatives drawn with probability proportional to popularity from items that are
    /// neither in the history nor the target; seeded by (seed, user) so the draw does not depend on batching or threads.
    /// </summary>
    public static int[] SampleNegatives(EvaluationCase c, double[] cumulativePopularity, int count, int seed)
    {
        int n = cumulativePopularity.Length - 1;
        var banned = new HashSet<int>(c.History) { c.Target };
        int available = n - banned.Count(i => i >= 1 && i <= n);
        count = Math.Min(count, Math.Max(0, available));
        var rng = new Random(Kernels.Elementwise.StableSeed(seed, c.User, 0x5eed));
        var chosen = new HashSet<int>();
        var result = new int[count];
        int k = 0, tries = 0;
        double total = cumulativePopularity[^1];
        while (k < count && tries < count * 200)
        {
            tries++;
            double x = rng.NextDouble() * total;
            int i = Array.BinarySearch(cumulativePopularity, x);
            i = i >= 0 ? i + 1 : ~i;
            if (i < 1 || i > n || banned.Contains(i) || !chosen.Add(i)) continue;
            result[k++] = i;
        }
        // items with zero popularity can only be reached uniformly: fill any remainder deterministically
        for (int i = 1; k < count && i <= n; i++)
            if (!banned.Contains(i) && chosen.Add(i)) result[k++] = i;
        return result;
    }

    private static double[] Cumulative(int[] popularity)
    {
        var c = new double[popularity.Length];
        double s = 0;
        for (int i = 1; i < popularity.Length; i++) { s += Math.Max(0, popularity[i]); c[i] = s; }
        return c;
    }
}

/// <summary>Most-popular baseline: every user gets the train popularity ranking.</summary>
public sealed class PopularityScorer(SequenceView trainSequences, int itemCount) : IItemScorer
{
    private readonly int[] _counts = SequenceDataset.Popularity(trainSequences, itemCount);
    public int ItemCount => itemCount;
    public int PreferredBatchSize => 256;
    public void Score(IReadOnlyList<int[]> histories, Span<float> scores)
    {
        for (int b = 0; b < histories.Count; b++)
            for (int i = 0; i <= itemCount; i++) scores[b * (itemCount + 1) + i] = _counts[i];
    }
}

/// <summary>First-order Markov baseline: P(next | last item) from train transitions, popularity breaking ties and filling gaps.</summary>
public sealed class MarkovScorer : IItemScorer
{
    private readonly Dictionary<int, Dictionary<int, int>> _next = new();
    private readonly int[] _counts;
    private readonly double _popScale;
    public int ItemCount { get; }
    public int PreferredBatchSize => 256;

    public MarkovScorer(SequenceView trainSequences, int itemCount)
    {
        ItemCount = itemCount;
        _counts = SequenceDataset.Popularity(trainSequences, itemCount);
        for (int u = 0; u < trainSequences.Count; u++)
        {
            var s = trainSequences[u];
            for (int t = 1; t < s.Length; t++)
            {
                if (!_next.TryGetValue(s[t - 1], out var m)) _next[s[t - 1]] = m = new Dictionary<int, int>();
                m[s[t]] = m.GetValueOrDefault(s[t]) + 1;
            }
        }
        _popScale = 1.0 / (1.0 + _counts.Max());
    }

    public void Score(IReadOnlyList<int[]> histories, Span<float> scores)
    {
        int w = ItemCount + 1;
        for (int b = 0; b < histories.Count; b++)
        {
            var row = scores.Slice(b * w, w);
            for (int i = 0; i < w; i++) row[i] = (float)(_counts[i] * _popScale);   // < 1: only breaks ties
            var h = histories[b];
            if (h.Length == 0 || !_next.TryGetValue(h[^1], out var m)) continue;
            foreach (var (item, c) in m) row[item] += c;
        }
    }
}
