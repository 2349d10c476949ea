// Parity of the exported ONNX model under ONNX Runtime with the trainer's eval-mode forward pass.
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Onnx;
using Bert4Rec.Inference.OnnxRuntime;
using Bert4Rec.Training.Export;
using Bert4Rec.Training.Model;

namespace Bert4Rec.Inference.Tests.Export;

public class OnnxParityTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-parity-");
    public void Dispose() => _dir.Delete(true);

    internal static SequenceModel RandomModel(ModelConfig cfg, int seed, float noise = 0.3f)
    {
        var m = SequenceModels.Create(cfg, 8, 2);
        m.InitializeParameters((ulong)seed);
        var rng = new Random(seed);
        for (int i = 0; i < m.Parameters.Length; i++) m.Parameters[i] += (float)(rng.NextDouble() - 0.5) * noise;
        return m;
    }

    [Theory]
    [InlineData(ModelKind.Bert4Rec, AttentionForm.Standard)]
    [InlineData(ModelKind.Bert4Rec, AttentionForm.MultiHeadAttention)]
    [InlineData(ModelKind.SasRec, AttentionForm.Standard)]
    [InlineData(ModelKind.Gru4Rec, AttentionForm.Standard)]
    public void Onnx_scores_and_user_vector_equal_the_trainer_forward_for_padded_empty_and_full_rows(ModelKind kind, AttentionForm form)
    {
        var cfg = new ModelConfig { Kind = kind, ItemCount = 50, Hidden = 16, Heads = 2, Layers = kind == ModelKind.Gru4Rec ? 1 : 2, MaxLength = 12 };
        using var model = RandomModel(cfg, 3);
        string path = Path.Combine(_dir.FullName, $"model-{kind}-{form}.onnx");
        OnnxExporter.Export(cfg, model.Parameters, path, attention: form);
        using var s = new InferenceSession(path, new SessionOptions { IntraOpThreads = 1 });

        int N = cfg.MaxLength, B = 3, C = 7, V = cfg.VocabSize, d = cfg.Hidden;
        var rng = new Random(9);
        var histories = new[] { new[] { 5, 9, 11 }, Array.Empty<int>(), Enumerable.Range(0, 30).Select(_ => rng.Next(1, 51)).ToArray() };
        var ids = new int[B * N];
        for (int b = 0; b < B; b++) ModelInput.Fill(histories[b], cfg, ids.AsSpan(b * N, N));
        var cands = Enumerable.Range(0, B * C).Select(_ => (long)rng.Next(1, 51)).ToArray();

        var z = new float[B * d];
        var logits = new float[B * V];
        model.PredictLast(ids, B, z, logits);

        var scores = new float[B * C];
        var user = new float[B * (d + 1)];
        s.Run(new[] { NamedTensor.Int64(ModelIo.ItemIds, ids.Select(x => (long)x).ToArray(), B, N), NamedTensor.Int64(ModelIo.CandidateIds, cands, B, C) },
              new[] { NamedTensor.Float(ModelIo.Scores, scores, B, C), NamedTensor.Float(ModelIo.UserVector, user, B, d + 1) });
        double maxDiff = 0;
        for (int b = 0; b < B; b++)
        {
            for (int c = 0; c < d; c++) maxDiff = Math.Max(maxDiff, Math.Abs(user[b * (d + 1) + c] - z[b * d + c]));
            Assert.Equal(1f, user[b * (d + 1) + d]);
            for (int k = 0; k < C; k++) maxDiff = Math.Max(maxDiff, Math.Abs(scores[b * C + k] - logits[b * V + cands[b * C + k]]));
        }
        Assert.True(maxDiff <= 1e-4, $"max |ORT - trainer| = {maxDiff:E2}");

        // user_vector . [E, b_O] equals scores, and the FAISS vectors read back from the file are those rows
        var (w, n, dim) = OnnxWeights.ReadItemVectors(path);
        Assert.Equal(cfg.ItemCount, n);
        Assert.Equal(d + 1, dim);
        for (int b = 0; b < B; b++)
            for (int k = 0; k < C; k++)
            {
                double dot = 0;
                for (int c = 0; c <= d; c++) dot += user[b * (d + 1) + c] * w[(cands[b * C + k] - 1) * dim + c];
                Assert.Equal(scores[b * C + k], dot, 4);
            }

        // identical rankings over all items
        var all = Enumerable.Range(1, n).Select(i => (long)i).ToArray();
        var full = new float[n];
        s.Run(new[] { NamedTensor.Int64(ModelIo.ItemIds, ids.AsSpan(2 * N, N).ToArray().Select(x => (long)x).ToArray(), 1, N), NamedTensor.Int64(ModelIo.CandidateIds, all, 1, n) },
              new[] { NamedTensor.Float(ModelIo.Scores, full, 1, n), NamedTensor.Float(ModelIo.UserVector, new float[d + 1], 1, d + 1) });
        var ortRank = Enumerable.Range(1, n).OrderByDescending(i => full[i - 1]).Take(10);
        var ourRank = Enumerable.Range(1, n).OrderByDescending(i => logits[2 * V + i]).Take(10);
        Assert.Equal(ourRank, ortRank);
    }

    [Fact]
    public void Gru4Rec_onnx_keeps_parity_on_a_batch_of_only_empty_histories_and_on_one_item_histories()
    {
        var cfg = new ModelConfig { Kind = ModelKind.Gru4Rec, ItemCount = 20, Hidden = 8, Heads = 1, Layers = 1, MaxLength = 6 };
        using var model = RandomModel(cfg, 5);
        string path = Path.Combine(_dir.FullName, "model-gru-edge.onnx");
        OnnxExporter.Export(cfg, model.Parameters, path);
        using var s = new InferenceSession(path, new SessionOptions { IntraOpThreads = 1 });
        int N = cfg.MaxLength, d = cfg.Hidden, V = cfg.VocabSize, C = 4;
        var cands = new long[] { 1, 5, 9, 20 };
        foreach (var histories in new[] { new[] { Array.Empty<int>(), Array.Empty<int>() }, new[] { new[] { 7 }, new[] { 20 } } })
        {
            int B = histories.Length;
            var ids = new int[B * N];
            for (int b = 0; b < B; b++) ModelInput.Fill(histories[b], cfg, ids.AsSpan(b * N, N));
            var z = new float[B * d];
            var logits = new float[B * V];
            model.PredictLast(ids, B, z, logits);
            var scores = new float[B * C];
            var user = new float[B * (d + 1)];
            s.Run(new[] { NamedTensor.Int64("item_ids", ids.Select(x => (long)x).ToArray(), B, N), NamedTensor.Int64("candidate_ids", cands.Concat(cands).ToArray(), B, C) },
                  new[] { NamedTensor.Float("scores", scores, B, C), NamedTensor.Float("user_vector", user, B, d + 1) });
            for (int b = 0; b < B; b++)
            {
                for (int c = 0; c < d; c++) Assert.Equal(z[b * d + c], user[b * (d + 1) + c], 4);
                for (int k = 0; k < C; k++) Assert.Equal(logits[b * V + cands[k]], scores[b * C + k], 4);
            }
        }
    }

    [Fact]
    public void Exporting_nonfinite_or_misshapen_weights_is_refused()
    {
        var cfg = new ModelConfig { ItemCount = 5, Hidden = 8, Heads = 2, Layers = 1, MaxLength = 4 };
        var layout = new ParameterLayout(cfg);
        Assert.Throws<ArgumentException>(() => OnnxExporter.Build(cfg, new float[layout.TotalSize - 1]));
        var p = new float[layout.TotalSize];
        p[3] = float.NaN;
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => OnnxExporter.Build(cfg, p)).Message);
    }
}

public class FullCatalogTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-full-");
    public void Dispose() => _dir.Delete(true);

    [Theory]
    [InlineData(ModelKind.Bert4Rec)]
    [InlineData(ModelKind.SasRec)]
    [InlineData(ModelKind.Gru4Rec)]
    public void Full_catalog_graph_scores_every_item_and_returns_the_trainers_top_k(ModelKind kind)
    {
        var cfg = new ModelConfig { Kind = kind, ItemCount = 30, Hidden = 16, Heads = 2, Layers = kind == ModelKind.Gru4Rec ? 1 : 2, MaxLength = 8 };
        using var model = OnnxParityTests.RandomModel(cfg, 4);
        string path = Path.Combine(_dir.FullName, $"model_full-{kind}.onnx");
        OnnxExporter.Export(cfg, model.Parameters, path, fullCatalog: true);
        Assert.Equal(kind, OnnxWeights.Kind(OnnxWeights.ReadModel(path)));       // evaluate --onnx builds its input rows by it
        using var s = new InferenceSession(path);
        int N = cfg.MaxLength, B = 2, n = cfg.ItemCount, V = cfg.VocabSize, k = 5;
        var ids = new int[B * N];
        ModelInput.Fill(new[] { 3, 4, 5 }, cfg, ids.AsSpan(0, N));
        ModelInput.Fill(Enumerable.Range(1, 20).ToArray(), cfg, ids.AsSpan(N, N));
        var all = new float[B * n]; var top = new float[B * k]; var items = new long[B * k];
        s.Run(new[] { NamedTensor.Int64(ModelIo.ItemIds, ids.Select(x => (long)x).ToArray(), B, N), NamedTensor.Int64(ModelIo.TopK, new long[] { k }, 1) },
              new[] { NamedTensor.Float(ModelIo.ItemScores, all, B, n), NamedTensor.Float(ModelIo.TopScores, top, B, k), NamedTensor.Int64(ModelIo.TopItems, items, B, k) });
        var logits = new float[B * V];
        model.PredictLast(ids, B, new float[B * cfg.Hidden], logits);
        for (int b = 0; b < B; b++)
        {
            for (int i = 1; i <= n; i++) Assert.Equal(logits[b * V + i], all[b * n + i - 1], 4);
            var want = Enumerable.Range(1, n).OrderByDescending(i => logits[b * V + i]).Take(k).Select(i => (long)i);
            Assert.Equal(want, items.AsSpan(b * k, k).ToArray());
            Assert.Equal(logits[b * V + (int)items[b * k]], top[b * k], 4);
        }
    }
}

public class TrainedParityAndRerankerTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-trained-");
    public void Dispose() => _dir.Delete(true);

    [Fact]
    public void A_briefly_trained_model_keeps_parity_and_the_batched_reranker_orders_by_the_trainers_logits()
    {
        var cfg = new ModelConfig { ItemCount = 40, Hidden = 16, Heads = 2, Layers = 2, MaxLength = 10, HiddenDropout = 0.1f, AttentionDropout = 0.1f };
        using var model = new Bert4RecModel(cfg, 16, 2);
        model.InitializeParameters(5);
        var opt = new Bert4Rec.Training.Optim.AdamW(model.Layout);
        var rng = new Random(1);
        int N = cfg.MaxLength;
        for (int step = 0; step < 30; step++)
        {
            var ids = new int[16 * N]; var labels = new int[16 * N];
            for (int b = 0; b < 16; b++)
            {
                int start = rng.Next(1, 30);
                for (int t = 2; t < N; t++)
                {
                    int item = (start + t) % 40 + 1;                  // a learnable "next item" pattern
                    if (rng.NextDouble() < 0.3) { labels[b * N + t] = item; ids[b * N + t] = cfg.MaskId; } else ids[b * N + t] = item;
                }
            }
            model.TrainStep(ids, labels, 16, (ulong)step);
            opt.Update(model.Parameters, model.Gradients, 3e-3f);
        }
        string path = Path.Combine(_dir.FullName, "model.onnx");
        OnnxExporter.Export(cfg, model.Parameters, path);
        using var s = new InferenceSession(path);
        var reranker = new Reranker(s, cfg);
        var histories = new IReadOnlyList<int>[] { new[] { 3, 4, 5, 6 }, new[] { 20 }, Enumerable.Range(10, 15).ToArray() };
        var candidates = new IReadOnlyList<long>[] { new long[] { 7, 1, 30, 8 }, new long[] { 21, 22 }, Array.Empty<long>() };
        var ranked = reranker.Rerank(histories, candidates);
        Assert.Empty(ranked[2]);
        var row = new int[N];
        var logits = new float[cfg.VocabSize];
        for (int b = 0; b < 2; b++)
        {
            ModelInput.Fill(histories[b].ToArray(), cfg, row);
            model.PredictLast(row, 1, new float[cfg.Hidden], logits);
            var want = candidates[b].OrderByDescending(c => logits[c]).ToArray();
            Assert.Equal(want, ranked[b].Select(r => r.Item));
            foreach (var r in ranked[b]) Assert.True(Math.Abs(r.Score - logits[r.Item]) <= 1e-4, $"item {r.Item}: ORT {r.Score} vs trainer {logits[r.Item]}");
        }
        Assert.Throws<ArgumentException>(() => reranker.Rerank(histories, candidates.Take(2).ToArray()));
        Assert.Throws<ArgumentException>(() => reranker.Rerank(new[] { histories[0] }, new[] { (IReadOnlyList<long>)new long[] { 99 } }));
    }
}
