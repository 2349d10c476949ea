// Scores every item for a batch of histories with the trained model (eval mode), through the one input rule of Contracts.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Model;

namespace Bert4Rec.Training.Training;

public sealed class ModelScorer(ITrainableModel model) : IItemScorer
{
    public ModelScorer(SequenceModel model) : this(new NativeModel(model)) { }

    // reused between calls (the evaluator calls from one thread at a time): a batch's logits are tens of MB on large catalogs
    private int[] _ids = [];
    private float[] _z = [], _logits = [];

    public int ItemCount => model.Config.ItemCount;
    public int PreferredBatchSize => model.MaxBatch;

    public void Score(IReadOnlyList<int[]> histories, Span<float> scores)
    {
        int N = model.Config.MaxLength, V = model.Config.VocabSize, n = ItemCount, d = model.Config.Hidden;
        int B = histories.Count;
        if (B > model.MaxBatch) throw new ArgumentException($"{B} histories exceed the model's batch capacity {model.MaxBatch}", nameof(histories));
        if (scores.Length < B * (n + 1)) throw new ArgumentException($"scores holds {scores.Length} floats, {B} rows need {B * (n + 1)}", nameof(scores));
        if (_ids.Length < B * N) { _ids = new int[B * N]; _z = new float[B * d]; _logits = new float[B * V]; }
        var ids = _ids.AsSpan(0, B * N);
        for (int b = 0; b < B; b++) ModelInput.Fill(histories[b], model.Config, ids.Slice(b * N, N));
        model.PredictLast(ids, B, _z.AsSpan(0, B * d), _logits.AsSpan(0, B * V));
        for (int b = 0; b < B; b++) _logits.AsSpan(b * V, n + 1).CopyTo(scores.Slice(b * (n + 1), n + 1));
    }
}

/// <summary>The evaluation scorer of a model of any kind.</summary>
public static class ItemScorers
{
    public static IItemScorer For(IParameterModel model) => model switch
    {
        ITrainableModel m => new ModelScorer(m),
        IPointwiseModel p => new PointwiseScorer(p),
        TwoTowerModel t => new TwoTowerScorer(t),
        _ => throw new ArgumentException($"no scorer for {model.GetType().Name}"),
    };
}
