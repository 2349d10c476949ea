// What the trainer needs for pointwise models (NeuMF): each training interaction as a positive with K sampled negatives,
// and a scorer that ranks every item for an evaluation case's user.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Features;
using Bert4Rec.Training.Model;

namespace Bert4Rec.Training.Training;

/// <summary>Positives with uniformly sampled negatives the user has not interacted with in training (the NCF paper's rule;
/// 4 per positive there).</summary>
public sealed class PointwiseExamples
{
    private readonly int[][] _train;
    private readonly HashSet<int>[] _seen;
    private readonly int _items;
    public int Negatives { get; }

    public PointwiseExamples(int[][] trainSequences, int itemCount, int negatives)
    {
        if (negatives < 1) throw new ArgumentOutOfRangeException(nameof(negatives), negatives, "must be >= 1");
        _train = trainSequences; _items = itemCount; Negatives = negatives;
        _seen = trainSequences.Select(s => new HashSet<int>(s)).ToArray();
    }

    /// <summary>Writes the positive (user, train[user][position]) and its negatives at <paramref name="at"/> (1 + Negatives
    /// examples); the negatives come from <paramref name="rng"/>. A user who has seen every item gets uniform negatives.</summary>
    public void Fill(int user, int position, Random rng, Span<int> users, Span<int> items, Span<float> labels, int at)
    {
        users[at] = user; items[at] = _train[user][position]; labels[at] = 1f;
        var seen = _seen[user];
        bool any = seen.Count < _items;
        for (int k = 1; k <= Negatives; k++)
        {
            int j;
            do j = 1 + rng.Next(_items); while (any && seen.Contains(j));
            users[at + k] = user; items[at + k] = j; labels[at + k] = 0f;
        }
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
        model.ScoreItems(users, scores[..(users.Length * (ItemCount + 1))]);
    }
}

/// <summary>Builds pointwise models from a split (the user count and feature tables come with the data).</summary>
public static class PointwiseModels
{
    /// <summary>The model config of a NeuMF training over <paramref name="split"/>: its users, and its feature fields when
    /// <paramref name="features"/> (and the data has them).</summary>
    public static ModelConfig Config(TrainingConfig cfg, LeaveOneOutSplit split) => cfg.ToModelConfig(split.ItemCount) with
    {
        UserCount = split.TrainSequences.Length,
        UserFeatures = cfg.Features ? split.UserFeatures?.Shape ?? "" : "",
        ItemFeatures = cfg.Features ? split.ItemFeatures?.Shape ?? "" : "",
    };

    public static NeuMfModel Create(ModelConfig config, LeaveOneOutSplit split, int maxBatch, int threads) =>
        new(config, config.UserFeatures.Length > 0 ? split.UserFeatures?.Slots : null, config.ItemFeatures.Length > 0 ? split.ItemFeatures?.Slots : null,
            maxBatch, threads);

    /// <summary>The feature tables a config uses (null where it has no fields on that side).</summary>
    public static (FeatureTable? Users, FeatureTable? Items) Tables(ModelConfig config, LeaveOneOutSplit split) =>
        (config.UserFeatures.Length > 0 ? split.UserFeatures : null, config.ItemFeatures.Length > 0 ? split.ItemFeatures : null);
}
