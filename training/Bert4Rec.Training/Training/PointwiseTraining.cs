// What the trainer needs for pointwise models (NeuMF, DeepFM): each training interaction as a positive with K sampled negatives,
// and a scorer that ranks every item for an evaluation case's user.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Features;
using Bert4Rec.Training.Model;

namespace Bert4Rec.Training.Training;

/// <summary>Positives with sampled negatives the user has not interacted with in training (the NCF paper's rule; 4 per
/// positive there), drawn uniformly or by training popularity; for a model that reads history (DeepFM), each example also
/// carries the positive's history window (the items before it, <see cref="ModelInput.Fill"/>'s rule).</summary>
public sealed class PointwiseExamples
{
    private readonly SequenceView _train;
    private readonly int _items;
    private readonly ModelConfig? _history;
    private readonly double[]? _popularity;
    public int Negatives { get; }
    /// <summary>History items per example (0: none).</summary>
    public int HistoryLength => _history?.MaxLength ?? 0;
    /// <summary>Where the first <see cref="HardNegatives.Count"/> negatives of each positive come from (null: all sampled).</summary>
    public HardNegatives? Hard { get; init; }

    /// <param name="history">The config whose history window the examples carry (its MaxLength), or null for none.</param>
    /// <param name="popularity">Draw negatives by training popularity (NegativeSampler's distribution) instead of uniformly.</param>
    public PointwiseExamples(SequenceView trainSequences, int itemCount, int negatives, ModelConfig? history = null, bool popularity = false)
    {
        if (negatives < 1) throw new ArgumentOutOfRangeException(nameof(negatives), negatives, "must be >= 1");
        _train = trainSequences; _items = itemCount; Negatives = negatives; _history = history;
        _popularity = popularity ? NegativeSampler.PopularityCumulative(trainSequences, itemCount) : null;
    }

    /// <summary>Writes the positive (user, train[user][position]) and its negatives at <paramref name="at"/> (1 + Negatives
    /// examples; with history, rows at..at+Negatives of <paramref name="histories"/> (HistoryLength each) hold the items before
    /// the positive); the negatives come from <paramref name="rng"/>. A user who has seen every item gets unfiltered negatives.</summary>
    public void Fill(int user, int position, Random rng, Span<int> users, Span<int> items, Span<float> labels, int at, Span<int> histories = default)
    {
        // the negatives' filter reads the user's own training sequence (a vectorised scan of the mapped view) rather than a
        // per-user set built up front, so that nothing of this grows with the log: a user with L items costs O(L) per draw
        var seen = _train[user];
        users[at] = user; items[at] = seen[position]; labels[at] = 1f;
        bool any = seen.Length < _items || seen.ToArray().Distinct().Count() < _items;
        int hard = Hard?.Count ?? 0;
        for (int k = 1; k <= Negatives; k++)
        {
            int j;
            if (k <= hard && Hard!.TryDraw(position > 0 ? seen[position - 1] : 0, seen, rng, out j)) { }
            else do j = _popularity != null ? NegativeSampler.DrawPopular(_popularity, rng) : 1 + rng.Next(_items); while (any && seen.Contains(j));
            users[at + k] = user; items[at + k] = j; labels[at + k] = 0f;
        }
        if (_history == null) return;
        int H = _history.MaxLength;
        var window = histories.Slice(at * H, H);
        ModelInput.Fill(_train[user][..position], _history, window);
        for (int k = 1; k <= Negatives; k++) window.CopyTo(histories.Slice((at + k) * H, H));
    }
}

/// <summary>
/// Hard negatives from a stage one: for each item i, stage one's top items for a history ending in i (scored as the one-item
/// history [i]; exact for a first-order Markov stage one). A positive whose history ends in i draws its hard negatives
/// uniformly from i's list, skipping items the user has seen; a positive without history, or whose list is all seen, falls
/// back to the sampled negatives.
/// </summary>
public sealed class HardNegatives
{
    private readonly int[][] _after;
    public int Count { get; }

    private HardNegatives(int[][] after, int count) { _after = after; Count = count; }

    /// <param name="pool">Stage one's top items kept per last item.</param>
    /// <param name="count">Hard negatives per positive.</param>
    public static HardNegatives AfterEachItem(IItemScorer stageOne, int pool, int count)
    {
        if (pool < 1) throw new ArgumentOutOfRangeException(nameof(pool), pool, "must be >= 1");
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "must be >= 1");
        int n = stageOne.ItemCount, bs = Math.Max(1, stageOne.PreferredBatchSize);
        var after = new int[n + 1][];
        after[0] = [];
        var scores = new float[bs * (n + 1)];
        for (int start = 1; start <= n; start += bs)
        {
            int rows = Math.Min(bs, n + 1 - start);
            var histories = Enumerable.Range(start, rows).Select(i => new[] { i }).ToList();
            stageOne.Score(histories, scores.AsSpan(0, rows * (n + 1)));
            for (int r = 0; r < rows; r++)
            {
                var row = scores.AsSpan(r * (n + 1), n + 1).ToArray();
                int last = start + r;
                after[last] = Enumerable.Range(1, n).Where(i => i != last && !float.IsNaN(row[i]))
                    .OrderByDescending(i => row[i]).ThenBy(i => i).Take(pool).ToArray();
            }
        }
        return new HardNegatives(after, count);
    }

    /// <summary>A hard negative for a positive whose history ends in <paramref name="last"/> (0 = no history), not in
    /// <paramref name="seen"/>; false when there is none to draw.</summary>
    public bool TryDraw(int last, ReadOnlySpan<int> seen, Random rng, out int item)
    {
        item = 0;
        var list = _after[last];
        if (list.Length == 0) return false;
        for (int tries = 0; tries < 4 * list.Length; tries++)
        {
            int j = list[rng.Next(list.Length)];
            if (!seen.Contains(j)) { item = j; return true; }
        }
        return false;
    }
}

/// <summary>Scores every item for the users of evaluation cases with a pointwise model.</summary>
public sealed class PointwiseScorer(IPointwiseModel model, int preferredBatch = 64) : IItemScorer
{
    public int ItemCount => model.Config.ItemCount;
    public int PreferredBatchSize => preferredBatch;

    public void Score(IReadOnlyList<int[]> histories, Span<float> scores) =>
        throw new NotSupportedException($"{model.Config.Kind.Name()} scores known users, not histories: evaluate it with the cases' users");

    public void Score(IReadOnlyList<EvaluationCase> cases, Span<float> scores)
    {
        var users = new int[cases.Count];
        for (int b = 0; b < users.Length; b++) users[b] = cases[b].User;
        int H = model.HistoryLength;
        var histories = new int[users.Length * H];
        for (int b = 0; b < users.Length && H > 0; b++) ModelInput.Fill(cases[b].History, model.Config, histories.AsSpan(b * H, H));
        model.ScoreItems(users, histories, scores[..(users.Length * (ItemCount + 1))]);
    }
}

/// <summary>Builds pointwise models from a split (the user count and feature tables come with the data).</summary>
public static class PointwiseModels
{
    /// <summary>The model config of a NeuMF or DeepFM training over <paramref name="split"/>: its users, and its feature fields when
    /// <paramref name="features"/> (and the data has them).</summary>
    public static ModelConfig Config(TrainingConfig cfg, LeaveOneOutSplit split) => cfg.ToModelConfig(split.ItemCount) with
    {
        UserCount = split.TrainSequences.Count,
        UserFeatures = cfg.Features ? split.UserFeatures?.Shape ?? "" : "",
        ItemFeatures = cfg.Features ? split.ItemFeatures?.Shape ?? "" : "",
    };

    public static IPointwiseModel Create(ModelConfig config, LeaveOneOutSplit split, int maxBatch, int threads)
    {
        var (users, items) = Tables(config, split);
        return config.Kind == ModelKind.DeepFm
            ? new DeepFmModel(config, users?.Slots, items?.Slots, maxBatch, threads)
            : new NeuMfModel(config, users?.Slots, items?.Slots, maxBatch, threads);
    }

    /// <summary>The feature tables a config uses (null where it has no fields on that side).</summary>
    public static (FeatureTable? Users, FeatureTable? Items) Tables(ModelConfig config, LeaveOneOutSplit split) =>
        (config.UserFeatures.Length > 0 ? split.UserFeatures : null, config.ItemFeatures.Length > 0 ? split.ItemFeatures : null);
}
