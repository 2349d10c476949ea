// Evaluation through ONNX Runtime: an IItemScorer over the full-catalog ONNX graph (item_scores for items 1..n).
using Bert4Rec.Contracts;
using Bert4Rec.Inference.OnnxRuntime;
using Bert4Rec.Training.Evaluation;

namespace Bert4Rec.Cli;

internal sealed class OnnxItemScorer(InferenceSession session, ModelConfig cfg) : IItemScorer
{
    public int ItemCount => cfg.ItemCount;
    public int PreferredBatchSize => 256;

    public void Score(IReadOnlyList<int[]> histories, Span<float> scores)
    {
        int B = histories.Count, N = cfg.MaxLength, n = cfg.ItemCount;
        var ids = new int[B * N];
        for (int b = 0; b < B; b++) ModelInput.Fill(histories[b], cfg, ids.AsSpan(b * N, N));
        var all = new float[B * n];
        session.Run(new[] { NamedTensor.Int64(ModelIo.ItemIds, ids.Select(x => (long)x).ToArray(), B, N), NamedTensor.Int64(ModelIo.TopK, new long[] { 1 }, 1) },
                    new[] { NamedTensor.Float(ModelIo.ItemScores, all, B, n), NamedTensor.Float(ModelIo.TopScores, new float[B], B, 1), NamedTensor.Int64(ModelIo.TopItems, new long[B], B, 1) });
        for (int b = 0; b < B; b++)
        {
            scores[b * (n + 1)] = float.NegativeInfinity;
            all.AsSpan(b * n, n).CopyTo(scores.Slice(b * (n + 1) + 1, n));
        }
    }
}
