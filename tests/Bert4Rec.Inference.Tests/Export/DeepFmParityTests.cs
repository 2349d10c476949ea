// Parity of the exported DeepFM graph under ONNX Runtime with the trainer's eval-mode logits, with and without feature fields,
// over full, partial and empty history windows.
using Bert4Rec.Contracts;
using Bert4Rec.Inference.OnnxRuntime;
using Bert4Rec.Training.Export;
using Bert4Rec.Training.Model;

namespace Bert4Rec.Inference.Tests.Export;

public class DeepFmParityTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-deepfm-parity-");
    public void Dispose() => _dir.Delete(true);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Onnx_scores_equal_the_trainer_logits(bool features)
    {
        // 5 users, 12 items, history window 4; user fields: categorical (vocab 4), multi-hot width 2 (vocab 6); item fields:
        // multi-hot width 3 (vocab 7), categorical (vocab 5)
        var cfg = new ModelConfig
        {
            Kind = ModelKind.DeepFm, ItemCount = 12, UserCount = 5, Hidden = 8, Layers = 3, Heads = 1, MaxLength = 4,
            UserFeatures = features ? "4x1,6x2" : "", ItemFeatures = features ? "7x3,5x1" : "",
        };
        var rng = new Random(4);
        int[]? userSlots = features ? Enumerable.Range(0, 5).SelectMany(_ => new[] { rng.Next(1, 4), rng.Next(1, 6), rng.Next(0, 6) }).ToArray() : null;
        int[]? itemSlots = features ? Enumerable.Range(0, 13).SelectMany(i => i == 0 ? new[] { 0, 0, 0, 0 } : [rng.Next(1, 7), rng.Next(0, 7), 0, rng.Next(1, 5)]).ToArray() : null;
        using var model = new DeepFmModel(cfg, userSlots, itemSlots, 64, 1);
        model.InitializeParameters(3);
        for (int i = 0; i < model.Parameters.Length; i++) model.Parameters[i] += (float)(rng.NextDouble() - 0.5) * 0.6f;
        string path = Path.Combine(_dir.FullName, "deepfm.onnx");
        DeepFmOnnx.Export(cfg, model.Parameters, itemSlots, path);
        using var s = new InferenceSession(path, new SessionOptions { IntraOpThreads = 1 });
        Assert.Equal(DeepFmOnnx.Inputs(cfg).Select(x => x.Name), s.Inputs.Select(i => i.Name));
        Assert.Equal(ModelIo.ItemIds, s.Inputs[^1].Name);

        int B = 4, C = 6, uw = features ? 3 : 0, H = 4;
        var users = new long[] { 0, 3, 4, 1 };
        // a full window, a partial one, an empty one (no history), a window with a repeated item
        var history = new long[] { 3, 7, 1, 12, 0, 0, 5, 9, 0, 0, 0, 0, 2, 2, 11, 2 };
        var cands = Enumerable.Range(0, B * C).Select(_ => (long)rng.Next(1, 13)).ToArray();
        var scores = NeuMfParityTests.Score(s, users, cands, C, userSlots, uw, [NamedTensor.Int64(ModelIo.ItemIds, history, B, H)]);
        var logits = new float[B * C];
        var windows = Enumerable.Range(0, B * C).SelectMany(x => history.Skip(x / C * H).Take(H).Select(v => (int)v)).ToArray();
        model.Logits(Enumerable.Range(0, B * C).Select(x => (int)users[x / C]).ToArray(), windows, cands.Select(c => (int)c).ToArray(), logits);
        NeuMfParityTests.AssertParity(scores, logits);

        // a changed weight is caught
        model.Parameters[^1] += 0.01f;
        model.Logits([(int)users[0]], windows.AsSpan(0, H), [(int)cands[0]], logits.AsSpan(0, 1));
        Assert.True(Math.Abs(logits[0] - scores[0]) > 5e-3);
    }

    [Fact]
    public void Bad_exports_are_refused_and_the_manifest_declares_the_history_input()
    {
        var cfg = new ModelConfig { Kind = ModelKind.DeepFm, ItemCount = 3, UserCount = 2, Hidden = 4, Layers = 1, Heads = 1, MaxLength = 3, ItemFeatures = "5x1" };
        var layout = new ParameterLayout(cfg);
        Assert.Throws<ArgumentException>(() => DeepFmOnnx.Build(cfg, new float[layout.TotalSize], null));
        Assert.Throws<ArgumentException>(() => DeepFmOnnx.Build(cfg, new float[3], [0, 1, 2, 3]));
        var nan = new float[layout.TotalSize]; nan[7] = float.NaN;
        Assert.Throws<ArgumentException>(() => DeepFmOnnx.Build(cfg, nan, [0, 1, 2, 3]));
        Assert.Throws<ArgumentException>(() => DeepFmOnnx.Build(cfg with { Kind = ModelKind.NeuMf }, new float[layout.TotalSize], [0, 1, 2, 3]));
        Assert.Throws<NotSupportedException>(() => OnnxExporter.Build(cfg, new float[layout.TotalSize], fullCatalog: true, itemFeatureSlots: [0, 1, 2, 3]));
        var shape = BundleManifests.ToShape(cfg with { UserFeatures = "4x1,5x2" });
        Assert.Equal([ModelIo.UserIndex, ModelIo.CandidateIds, ModelIo.UserFeatures, ModelIo.ItemIds], shape.Inputs.Select(i => i.Name));
        Assert.Equal(["batch", "3"], shape.Inputs[3].Dims);
        Assert.Equal(cfg, BundleManifests.ToConfig(BundleManifests.ToShape(cfg)));
    }
}
