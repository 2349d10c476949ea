// Scores every item for a batch of histories with the trained model (eval mode): history -> last N-1 items + [MASK].
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Model;

namespace Bert4Rec.Training.Training;

public sealed class ModelScorer(Bert4RecModel model) : IItemScorer
{
    public int ItemCount => model.Config.ItemCount;
    public int PreferredBatchSize => model.MaxBatch;

    public void Score(IReadOnlyList<int[]> histories, Span<float> scores)
    {
        int N = model.Config.MaxLength, V = model.Config.VocabSize, n = ItemCount, d = model.Config.Hidden;
        int B = histories.Count;
        var ids = new int[B * N];
        for (int b = 0; b < B; b++) InputBuilder.ForPrediction(histories[b], N, model.Config.MaskId, ids.AsSpan(b * N, N));
        var z = new float[B * d];
        var logits = new float[B * V];
        model.PredictLast(ids, B, z, logits);
        for (int b = 0; b < B; b++) logits.AsSpan(b * V, n + 1).CopyTo(scores.Slice(b * (n + 1), n + 1));
    }
}
