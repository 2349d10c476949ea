// Two-Tower as stage one: parity of the exported graph (the user tower, and scores over the item tower's vectors) under ONNX
// Runtime with the trainer's towers, with and without feature fields; and `index` putting the item tower's vectors into FAISS,
// whose top items for a user vector are the trainer's.
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Bundle;
using Bert4Rec.Inference.OnnxRuntime;
using Bert4Rec.Retrieval;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Export;
using Bert4Rec.Training.Model;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Inference.Tests.Export;

public class TwoTowerParityTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-twotower-parity-");
    public void Dispose() => _dir.Delete(true);

    private const int Items = 30, Users = 5, L = 6;

    // user fields: categorical (vocab 4), multi-hot width 2 (vocab 6); item field: multi-hot width 3 (vocab 7)
    private static (ModelConfig Cfg, int[]? UserSlots, int[]? ItemSlots, TwoTowerModel Model) Build(bool features, int seed)
    {
        var cfg = new ModelConfig
        {
            Kind = ModelKind.TwoTower, ItemCount = Items, Hidden = 8, Layers = 2, Heads = 1, MaxLength = L,
            UserFeatures = features ? "4x1,6x2" : "", ItemFeatures = features ? "7x3" : "",
        };
        var rng = new Random(seed);
        int[]? userSlots = features ? Enumerable.Range(0, Users).SelectMany(_ => new[] { rng.Next(1, 4), rng.Next(1, 6), rng.Next(0, 6) }).ToArray() : null;
        int[]? itemSlots = features ? Enumerable.Range(0, Items + 1).SelectMany(i => i == 0 ? new[] { 0, 0, 0 } : [rng.Next(1, 7), rng.Next(0, 7), 0]).ToArray() : null;
        var model = new TwoTowerModel(cfg, userSlots, itemSlots, 64, 0.1f, null, 1);
        model.InitializeParameters((ulong)seed);
        for (int i = 0; i < model.Parameters.Length; i++) model.Parameters[i] += (float)(rng.NextDouble() - 0.5) * 0.6f;
        return (cfg, userSlots, itemSlots, model);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Onnx_user_vectors_and_scores_equal_the_trainer(bool features)
    {
        var (cfg, userSlots, itemSlots, model) = Build(features, 4);
        using var _ = model;
        string path = Path.Combine(_dir.FullName, "two-tower.onnx");
        TwoTowerOnnx.Export(cfg, model.Parameters, itemSlots, path);
        using var s = new InferenceSession(path, new SessionOptions { IntraOpThreads = 1 });
        Assert.Equal(TwoTowerOnnx.Inputs(cfg).Select(x => x.Name), s.Inputs.Select(i => i.Name));

        // a padded history, an empty one, a full one, one longer than L (the last L count)
        int[][] histories = [[3, 9, 4], [], [1, 2, 3, 4, 5, 6], [7, 7, 8, 9, 10, 11, 12, 13, 14, 30]];
        int[] users = [0, 3, 4, 1];
        int B = histories.Length, C = 7, d = cfg.Hidden, uw = features ? 3 : 0;
        var rows = new int[B * L];
        for (int b = 0; b < B; b++) model.HistoryRow(histories[b], rows.AsSpan(b * L, L));
        var rng = new Random(9);
        var cands = Enumerable.Range(0, B * C).Select(_ => (long)rng.Next(1, Items + 1)).ToArray();
        var inputs = new List<NamedTensor> { NamedTensor.Int64(ModelIo.ItemIds, rows.Select(x => (long)x).ToArray(), B, L) };
        if (features)
        {
            var uf = new long[B * uw];
            for (int b = 0; b < B; b++) for (int k = 0; k < uw; k++) uf[b * uw + k] = userSlots![users[b] * uw + k];
            inputs.Add(NamedTensor.Int64(ModelIo.UserFeatures, uf, B, uw));
        }
        inputs.Add(NamedTensor.Int64(ModelIo.CandidateIds, cands, B, C));
        var scores = new float[B * C];
        var onnxU = new float[B * d];
        s.Run(inputs.ToArray(), new[] { NamedTensor.Float(ModelIo.Scores, scores, B, C), NamedTensor.Float(ModelIo.UserVector, onnxU, B, d) });

        var u = new float[B * d];
        model.UserVectors(users, rows, u);
        var all = new float[B * (Items + 1)];
        new TwoTowerScorer(model).Score(users.Select((x, b) => new EvaluationCase(x, histories[b], 1)).ToList(), all);
        double maxDiff = 0;
        for (int k = 0; k < B * d; k++) maxDiff = Math.Max(maxDiff, Math.Abs(onnxU[k] - u[k]));
        for (int k = 0; k < B * C; k++) maxDiff = Math.Max(maxDiff, Math.Abs(scores[k] - all[k / C * (Items + 1) + cands[k]]));
        Assert.True(maxDiff <= 1e-4, $"max |ORT - trainer| = {maxDiff:E2}");
        Assert.True(scores.Max() - scores.Min() > 0.1, "the test needs scores that differ");

        // a changed user-tower weight is caught
        model.Layout.Slice(model.Parameters, "user.1.b")[0] += 0.05f;
        model.UserVectors(users, rows, u);
        Assert.True(Enumerable.Range(0, B * d).Max(k => Math.Abs(onnxU[k] - u[k])) > 1e-3);
    }

    [Fact]
    public void Index_puts_the_item_tower_vectors_into_faiss()
    {
        var (cfg, userSlots, itemSlots, model) = Build(true, 7);
        using var _ = model;
        string bundle = Path.Combine(_dir.FullName, "bundle");
        var vocab = new Vocabulary(Enumerable.Range(1, Items).Select(i => $"item{i}").ToArray());
        // the user tower reads user fields, so the bundle carries the users and their table (categorical vocab 4, multi-hot 6x2)
        var table = new Bert4Rec.Training.Features.FeatureTable(
            [new() { Name = "c", Kind = Bert4Rec.Training.Features.FeatureKind.Categorical, Width = 1, Values = ["x", "y"] },
             new() { Name = "m", Kind = Bert4Rec.Training.Features.FeatureKind.MultiHot, Width = 2, Values = ["a", "b", "c", "d"] }], Users, userSlots!);
        BundleWriter.Write(bundle, cfg, model.Parameters, vocab, "test", itemFeatureSlots: itemSlots,
                           users: new BundleUsers(Enumerable.Range(0, Users).Select(u => $"u{u}").ToArray(), table));
        var manifest = BundleManifests.Read(bundle);
        Assert.Equal([ModelIo.ItemIds, ModelIo.UserFeatures, ModelIo.CandidateIds], manifest.Model.Inputs.Select(i => i.Name));
        Assert.Contains("Flat", BundleIndexer.Build(bundle, "Flat", new SearchParameters(64, 8), 40));
        manifest = BundleManifests.Read(bundle);
        Assert.Equal(cfg.Hidden, manifest.Index.Dimension);
        using var index = BundleIndexer.Open(bundle, manifest, manifest.Files.Single(f => f.Role == BundleLayout.RoleIndex), cfg.Hidden, Items, long.MaxValue);

        // the top items FAISS returns for a user's vector are the trainer's exact ranking by u . v
        var row = new int[L];
        model.HistoryRow([4, 11, 20], row);
        var u = new float[cfg.Hidden];
        model.UserVectors([2], row, u);
        var v = model.ItemVectors();
        var exact = Enumerable.Range(1, Items).Select(i => (Item: i, Score: Enumerable.Range(0, cfg.Hidden).Sum(c => u[c] * v[i * cfg.Hidden + c])))
            .OrderByDescending(x => x.Score).Take(10).ToList();
        var found = index.Search(u, 1, 10)[0];
        Assert.Equal(exact.Select(x => (long)x.Item), found.Select(x => x.Id));
        for (int k = 0; k < 10; k++) Assert.Equal(exact[k].Score, found[k].Score, 4);
    }

    [Fact]
    public void A_missing_item_feature_table_is_refused()
    {
        var (cfg, _, _, model) = Build(true, 2);
        using var _m = model;
        Assert.Throws<ArgumentException>(() => TwoTowerOnnx.Build(cfg, model.Parameters, null));
        Assert.Throws<ArgumentException>(() => TwoTowerOnnx.Build(cfg, new float[3], null));
    }
}
