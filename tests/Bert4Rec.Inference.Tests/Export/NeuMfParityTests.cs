// Parity of the exported NeuMF graph under ONNX Runtime with the trainer's eval-mode logits, with and without feature fields.
using Bert4Rec.Contracts;
using Bert4Rec.Inference.OnnxRuntime;
using Bert4Rec.Training.Export;
using Bert4Rec.Training.Model;

namespace Bert4Rec.Inference.Tests.Export;

public class NeuMfParityTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-neumf-parity-");
    public void Dispose() => _dir.Delete(true);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Onnx_scores_equal_the_trainer_logits(bool features)
    {
        // 5 users, 12 items; user fields: categorical (vocab 4), multi-hot width 2 (vocab 6); item field: multi-hot width 3 (vocab 7)
        var cfg = new ModelConfig
        {
            Kind = ModelKind.NeuMf, ItemCount = 12, UserCount = 5, Hidden = 8, Layers = 3, Heads = 1,
            UserFeatures = features ? "4x1,6x2" : "", ItemFeatures = features ? "7x3" : "",
        };
        var rng = new Random(4);
        int[]? userSlots = features ? Enumerable.Range(0, 5).SelectMany(_ => new[] { rng.Next(1, 4), rng.Next(1, 6), rng.Next(0, 6) }).ToArray() : null;
        int[]? itemSlots = features ? Enumerable.Range(0, 13).SelectMany(i => i == 0 ? new[] { 0, 0, 0 } : [rng.Next(1, 7), rng.Next(0, 7), 0]).ToArray() : null;
        using var model = new NeuMfModel(cfg, userSlots, itemSlots, 64, 1);
        model.InitializeParameters(3);
        for (int i = 0; i < model.Parameters.Length; i++) model.Parameters[i] += (float)(rng.NextDouble() - 0.5) * 0.6f;
        string path = Path.Combine(_dir.FullName, "neumf.onnx");
        NeuMfOnnx.Export(cfg, model.Parameters, itemSlots, path);
        using var s = new InferenceSession(path, new SessionOptions { IntraOpThreads = 1 });
        Assert.Equal(NeuMfOnnx.Inputs(cfg).Select(x => x.Name), s.Inputs.Select(i => i.Name));

        int B = 4, C = 6;
        var users = new long[] { 0, 3, 4, 1 };
        var cands = Enumerable.Range(0, B * C).Select(_ => (long)rng.Next(1, 13)).ToArray();
        var scores = Score(s, users, cands, C, userSlots, features ? 3 : 0, []);
        var logits = new float[B * C];
        model.Logits(Enumerable.Range(0, B * C).Select(k => (int)users[k / C]).ToArray(), cands.Select(c => (int)c).ToArray(), logits);
        AssertParity(scores, logits);

        // a changed weight is caught
        model.Parameters[^1] += 0.01f;
        model.Logits([(int)users[0]], [(int)cands[0]], logits.AsSpan(0, 1));
        Assert.True(Math.Abs(logits[0] - scores[0]) > 5e-3);
    }

    /// <summary>The graph's scores (B, C) for users and candidates, the users' feature rows from <paramref name="userSlots"/>
    /// (width <paramref name="uw"/>; none when 0) and any further inputs.</summary>
    internal static float[] Score(InferenceSession s, long[] users, long[] cands, int C, int[]? userSlots, int uw, NamedTensor[] more)
    {
        int B = users.Length;
        var inputs = new List<NamedTensor> { NamedTensor.Int64(ModelIo.UserIndex, users, B), NamedTensor.Int64(ModelIo.CandidateIds, cands, B, C) };
        if (uw > 0)
        {
            var uf = new long[B * uw];
            for (int b = 0; b < B; b++) for (int k = 0; k < uw; k++) uf[b * uw + k] = userSlots![users[b] * uw + k];
            inputs.Add(NamedTensor.Int64(ModelIo.UserFeatures, uf, B, uw));
        }
        inputs.AddRange(more);
        var scores = new float[B * C];
        s.Run(inputs.ToArray(), new[] { NamedTensor.Float(ModelIo.Scores, scores, B, C) });
        return scores;
    }

    internal static void AssertParity(float[] scores, float[] logits)
    {
        double maxDiff = 0;
        for (int k = 0; k < scores.Length; k++) maxDiff = Math.Max(maxDiff, Math.Abs(scores[k] - logits[k]));
        Assert.True(maxDiff <= 1e-4, $"max |ORT - trainer| = {maxDiff:E2}");
        Assert.True(logits.Max() - logits.Min() > 0.1, "the test needs logits that differ");
    }

    [Fact]
    public void A_missing_item_feature_table_is_refused()
    {
        var cfg = new ModelConfig { Kind = ModelKind.NeuMf, ItemCount = 3, UserCount = 2, Hidden = 4, Layers = 1, Heads = 1, ItemFeatures = "5x1" };
        var layout = new ParameterLayout(cfg);
        Assert.Throws<ArgumentException>(() => NeuMfOnnx.Build(cfg, new float[layout.TotalSize], null));
        Assert.Throws<ArgumentException>(() => NeuMfOnnx.Build(cfg, new float[3], [0, 1, 2, 3]));
        Assert.Throws<NotSupportedException>(() => OnnxExporter.Build(cfg, new float[layout.TotalSize], fullCatalog: true, itemFeatureSlots: [0, 1, 2, 3]));
    }

    [Fact]
    public void The_manifest_declares_the_graphs_inputs_and_the_shape_round_trips()
    {
        var cfg = new ModelConfig { Kind = ModelKind.NeuMf, ItemCount = 3, UserCount = 2, Hidden = 4, Layers = 2, Heads = 1, UserFeatures = "4x1,5x2", ItemFeatures = "5x1" };
        var shape = BundleManifests.ToShape(cfg);
        Assert.Equal([ModelIo.UserIndex, ModelIo.CandidateIds, ModelIo.UserFeatures], shape.Inputs.Select(i => i.Name));
        Assert.Equal(["batch", "3"], shape.Inputs[2].Dims);
        Assert.Equal(cfg, BundleManifests.ToConfig(shape));
        Assert.DoesNotContain(BundleManifests.ToShape(cfg with { UserFeatures = "" }).Inputs, i => i.Name == ModelIo.UserFeatures);
        Assert.Empty(BundleManifests.ToShape(new ModelConfig { ItemCount = 3 }).Inputs);
    }
}
