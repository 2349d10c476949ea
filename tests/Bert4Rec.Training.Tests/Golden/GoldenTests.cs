// Golden tests: each model kind against an independent PyTorch implementation (make_golden.py -> golden.json for BERT4Rec,
// make_golden_sasrec.py -> golden_sasrec.json, make_golden_gru4rec.py -> golden_gru4rec.json): loss, eval-mode outputs at
// the last position, and the gradient of every parameter tensor, each reported by name with its max difference.
using System.Text.Json;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Model;

namespace Bert4Rec.Training.Tests.Golden;

public class GoldenTests
{
    private static JsonElement Load(string file)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Golden", file);
        return JsonDocument.Parse(File.ReadAllText(path)).RootElement;
    }

    private static float[] Floats(JsonElement e) => e.EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();

    [Theory]
    [InlineData("golden.json")]
    [InlineData("golden_sasrec.json")]
    [InlineData("golden_gru4rec.json")]
    public void Loss_outputs_and_every_gradient_match_the_pytorch_reference(string file)
    {
        var g = Load(file);
        var c = g.GetProperty("config");
        var cfg = new ModelConfig
        {
            Kind = ModelKinds.Parse(c.TryGetProperty("Kind", out var k) ? k.GetString() : null),
            ItemCount = c.GetProperty("ItemCount").GetInt32(), Hidden = c.GetProperty("Hidden").GetInt32(), Heads = c.GetProperty("Heads").GetInt32(),
            Layers = c.GetProperty("Layers").GetInt32(), MaxLength = c.GetProperty("MaxLength").GetInt32(),
            LayerNormEpsilon = (float)c.GetProperty("LayerNormEpsilon").GetDouble(), HiddenDropout = 0, AttentionDropout = 0,
        };
        int B = g.GetProperty("batch").GetInt32();
        using var m = SequenceModels.Create(cfg, B, 2);
        foreach (var t in m.Layout.Tensors)
            Floats(g.GetProperty("params").GetProperty(t.Name)).CopyTo(m.Layout.Slice(m.Parameters, t.Name));
        var ids = g.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        var labels = g.GetProperty("labels").EnumerateArray().Select(x => x.GetInt32()).ToArray();

        float loss = m.TrainStep(ids, labels, B, 0);
        var report = new List<string> { $"{cfg.Kind.Name()} loss: ours {loss:G7} torch {g.GetProperty("loss").GetDouble():G7}" };
        bool ok = Math.Abs(loss - g.GetProperty("loss").GetDouble()) <= 1e-4 * Math.Max(1, Math.Abs(loss));
        foreach (var t in m.Layout.Tensors)
        {
            var want = Floats(g.GetProperty("grads").GetProperty(t.Name));
            var got = m.Layout.Slice(m.Gradients, t.Name).ToArray();
            double maxDiff = 0, maxRef = 0;
            for (int i = 0; i < want.Length; i++) { maxDiff = Math.Max(maxDiff, Math.Abs(want[i] - got[i])); maxRef = Math.Max(maxRef, Math.Abs(want[i])); }
            bool tensorOk = maxDiff <= 1e-5 + 1e-3 * maxRef;
            ok &= tensorOk;
            report.Add($"{(tensorOk ? "  " : "!!")} d{t.Name}: max |diff| {maxDiff:E2} (max |ref| {maxRef:E2})");
        }
        // eval-mode outputs at the last position
        var z = new float[B * cfg.Hidden];
        var logits = new float[B * cfg.VocabSize];
        m.PredictLast(ids, B, z, logits);
        double dz = Floats(g.GetProperty("z_last")).Zip(z, (a, b) => Math.Abs(a - b)).Max();
        double dl = Floats(g.GetProperty("logits_last")).Zip(logits, (a, b) => Math.Abs(a - b)).Max();
        report.Add($"z_last max |diff| {dz:E2}, logits_last max |diff| {dl:E2}");
        ok &= dz <= 1e-4 && dl <= 1e-4;
        Assert.True(ok, string.Join("\n", report));
    }
}
