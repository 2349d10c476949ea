// Reranker: scores a batch of histories (item indices) against per-row candidate lists in one ONNX Runtime run and
// returns each row's candidates ordered by the model's score.
using Bert4Rec.Contracts;
using Bert4Rec.Inference.OnnxRuntime;

namespace Bert4Rec.Inference;

/// <summary>One scored candidate: an item index (1..n) and its logit.</summary>
public readonly record struct RankedItem(long Item, float Score);

public sealed class Reranker
{
    private readonly InferenceSession _session;
    private readonly int _n, _d, _items;
    private readonly ModelConfig _config;

    /// <param name="session">a session over a bundle's model.onnx</param>
    /// <param name="config">the bundle's model config (its kind fixes the input rule)</param>
    public Reranker(InferenceSession session, ModelConfig config)
    {
        _session = session;
        var ids = session.Input(ModelIo.ItemIds);
        var user = session.Output(ModelIo.UserVector);
        if (ids.Dimensions.Length != 2 || ids.Dimensions[1] < 2) throw new ArgumentException($"{session.ModelPath}: item_ids must be [batch, N]");
        _n = (int)ids.Dimensions[1];
        _d = (int)user.Dimensions[1] - 1;
        if (_n != config.MaxLength || _d != config.Hidden) throw new ArgumentException($"{session.ModelPath}: item_ids [batch, {_n}] and d {_d} do not match the config's N {config.MaxLength} and d {config.Hidden}");
        _items = config.ItemCount;
        _config = config;
    }

    /// <summary>
    /// Low level: item_ids (batch, N) and candidate_ids (batch, C) as laid out for the graph; writes scores (batch, C) and
    /// user vectors (batch, d+1).
    /// </summary>
    public void Score(long[] itemIds, long[] candidateIds, int batch, int c, Span<float> scores, Span<float> userVectors)
    {
        if (itemIds.Length != batch * _n) throw new ArgumentException($"itemIds has {itemIds.Length} ids; batch {batch} x N {_n} needs {batch * _n}");
        if (candidateIds.Length != batch * c) throw new ArgumentException($"candidateIds has {candidateIds.Length} ids; batch {batch} x C {c} needs {batch * c}");
        foreach (var x in candidateIds)
            if (x < 1 || x > _items) throw new ArgumentException($"candidate {x} is not an item index in 1..{_items}");
        var s = new float[batch * c];
        var u = new float[batch * (_d + 1)];
        _session.Run(new[] { NamedTensor.Int64(ModelIo.ItemIds, itemIds, batch, _n), NamedTensor.Int64(ModelIo.CandidateIds, candidateIds, batch, c) },
                     new[] { NamedTensor.Float(ModelIo.Scores, s, batch, c), NamedTensor.Float(ModelIo.UserVector, u, batch, _d + 1) });
        s.CopyTo(scores);
        u.CopyTo(userVectors);
    }

    /// <summary>
    /// Scores each history's candidates (lists may differ in length; an empty list gives an empty result) and returns them
    /// best first. Histories are item indices, oldest first, turned into rows by the model kind's input rule (ModelInput).
    /// </summary>
    public RankedItem[][] Rerank(IReadOnlyList<IReadOnlyList<int>> histories, IReadOnlyList<IReadOnlyList<long>> candidates)
    {
        if (histories.Count != candidates.Count) throw new ArgumentException($"{histories.Count} histories but {candidates.Count} candidate lists");
        int B = histories.Count;
        var result = new RankedItem[B][];
        if (B == 0) return result;
        int C = Math.Max(1, candidates.Max(l => l.Count));
        var ids = new long[B * _n];
        var cands = new long[B * C];
        for (int b = 0; b < B; b++)
        {
            ModelInput.Row(histories[b], _config).CopyTo(ids, b * _n);
            for (int j = 0; j < C; j++) cands[b * C + j] = j < candidates[b].Count ? candidates[b][j] : 1;   // padding, dropped below
        }
        var scores = new float[B * C];
        Score(ids, cands, B, C, scores, new float[B * (_d + 1)]);
        for (int b = 0; b < B; b++)
            result[b] = Enumerable.Range(0, candidates[b].Count)
                .Select(j => new RankedItem(candidates[b][j], scores[b * C + j]))
                .OrderByDescending(r => r.Score).ThenBy(r => r.Item).ToArray();
        return result;
    }
}
