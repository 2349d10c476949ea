// What the trainer and evaluation need for Two-Tower: the model over a split (its feature tables, the log-Q correction from
// training frequencies), the batches of (user, history prefix, next item) examples, and a scorer that ranks every item by
// u . v with the item vectors computed once.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Model;

namespace Bert4Rec.Training.Training;

public static class TwoTowers
{
    /// <summary>The model config of a Two-Tower training over <paramref name="split"/>: its feature fields when the config's
    /// <see cref="TrainingConfig.Features"/> is on (and the data has them).</summary>
    public static ModelConfig Config(TrainingConfig cfg, LeaveOneOutSplit split) => cfg.ToModelConfig(split.ItemCount) with
    {
        UserFeatures = cfg.Features ? split.UserFeatures?.Shape ?? "" : "",
        ItemFeatures = cfg.Features ? split.ItemFeatures?.Shape ?? "" : "",
    };

    /// <summary>log Q(i): the probability that a batch's target is item i, its share of the training interactions (every training
    /// interaction is one example). Items never seen count once, so the log stays finite; entry 0 is unused.</summary>
    public static float[] LogQ(SequenceView trainSequences, int itemCount)
    {
        var counts = SequenceDataset.Popularity(trainSequences, itemCount);
        double total = 0;
        for (int i = 1; i <= itemCount; i++) total += Math.Max(1, counts[i]);
        var logQ = new float[itemCount + 1];
        for (int i = 1; i <= itemCount; i++) logQ[i] = (float)Math.Log(Math.Max(1, counts[i]) / total);
        return logQ;
    }

    /// <summary>A Two-Tower model over the split's feature tables, with the log-Q correction of its training sequences.</summary>
    public static TwoTowerModel Create(TrainingConfig cfg, ModelConfig config, LeaveOneOutSplit split, int maxBatch) =>
        new(config, config.UserFeatures.Length > 0 ? split.UserFeatures?.Slots : null, config.ItemFeatures.Length > 0 ? split.ItemFeatures?.Slots : null,
            maxBatch, cfg.Temperature, LogQ(split.TrainSequences, split.ItemCount), cfg.Threads);

    /// <summary>Example <paramref name="at"/> of a batch: user <paramref name="user"/>, the items before
    /// <paramref name="position"/> of its training sequence as the history row, and the item at it as the target.</summary>
    public static void Fill(ReadOnlySpan<int> sequence, int user, int position, ModelConfig config, Span<int> users, Span<int> histories, Span<int> targets, int at)
    {
        int L = config.MaxLength;
        users[at] = user;
        ModelInput.Fill(sequence[..position], config, histories.Slice(at * L, L));
        targets[at] = sequence[position];
    }
}

/// <summary>Scores every item by u . v for evaluation cases (the user's feature row and history); the item vectors are computed
/// once, on first use, so build a new scorer after the weights change.</summary>
public sealed class TwoTowerScorer(TwoTowerModel model, int preferredBatch = 256) : IItemScorer
{
    private float[]? _items;
    public int ItemCount => model.Config.ItemCount;
    public int PreferredBatchSize => preferredBatch;

    public void Score(IReadOnlyList<int[]> histories, Span<float> scores)
    {
        if (model.Config.UserFeatures.Length > 0)
            throw new NotSupportedException("two-tower with user fields scores users, not bare histories: evaluate it with the cases' users");
        Score(histories.Select(h => new EvaluationCase(0, h, 1)).ToList(), scores);
    }

    public void Score(IReadOnlyList<EvaluationCase> cases, Span<float> scores)
    {
        int B = cases.Count, d = model.Config.Hidden, L = model.Config.MaxLength, w = ItemCount + 1;
        if (scores.Length < B * w) throw new ArgumentException($"scores holds {scores.Length} floats, {B} cases need {B * w}");
        if (B == 0) return;
        _items ??= model.ItemVectors();
        var users = new int[B];
        var rows = new int[B * L];
        for (int b = 0; b < B; b++)
        {
            users[b] = cases[b].User;
            model.HistoryRow(cases[b].History, rows.AsSpan(b * L, L));
        }
        var u = new float[B * d];
        model.UserVectors(users, rows, u);
        Kernels.Blas.Sgemm(false, true, B, w, d, 1f, u, d, _items, d, 0f, scores[..(B * w)], w);
        for (int b = 0; b < B; b++) scores[b * w] = float.NegativeInfinity;
    }
}
