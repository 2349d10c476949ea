// `bert4rec bench infer`: ONNX Runtime latency of one request (N=200, C=100, one intra-op thread) and batch throughput,
// on an ML-1m-shaped model with random weights; optionally the PyTorch reference's eager inference beside it.
using System.Diagnostics;
using System.Text.Json;
using System.CommandLine;
using Bert4Rec.Contracts;
using Bert4Rec.Inference.OnnxRuntime;
using Bert4Rec.Training.Export;
using Bert4Rec.Training.Model;

namespace Bert4Rec.Benchmarks;

internal static class InferBench
{
    public static Command Build()
    {
        var itemsOpt = Flags.Int("--items", "catalog size n", 3416, 10);
        var seqOpt = Flags.Int("--seq", "sequence length N", 200, 2);
        var candsOpt = Flags.Int("--candidates", "candidates C scored per request", 100, 1);
        var itersOpt = Flags.Int("--iterations", "timed single requests", 2000, 10);
        var hiddenOpt = Flags.Int("--hidden", "hidden size d", 64, 2);
        var layersOpt = Flags.Int("--layers", "transformer blocks", 2, 1);
        var headsOpt = Flags.Int("--heads", "attention heads", 2, 1);
        var torchOpt = Flags.Flag("--torch", "the PyTorch reference's eager inference beside it");
        var providerOpt = SessionOptions.ProviderOption();
        var c = new Command("infer", "ONNX Runtime latency of one recommend request (p50/p99) and batch throughput")
            { itemsOpt, seqOpt, candsOpt, itersOpt, hiddenOpt, layersOpt, headsOpt, torchOpt, providerOpt };
        c.SetAction(a => Run(a.GetValue(itemsOpt), a.GetValue(seqOpt), a.GetValue(candsOpt), a.GetValue(itersOpt), a.GetValue(hiddenOpt), a.GetValue(layersOpt),
            a.GetValue(headsOpt), a.GetValue(torchOpt), SessionOptions.ParseProvider(a.GetValue(providerOpt)!)));
        return c;
    }

    private static int Run(int items, int seq, int cands, int iters, int hidden, int layers, int heads, bool torch, ExecutionProvider provider)
    {
        var cfg = new ModelConfig { ItemCount = items, Hidden = hidden, Heads = heads, Layers = layers, MaxLength = seq };
        string dir = Directory.CreateTempSubdirectory("b4r-bench-infer-").FullName;
        try
        {
            using (var m = new Bert4RecModel(cfg, 1, 1))
            {
                m.InitializeParameters(1);
                foreach (var f in Enum.GetValues<AttentionForm>())
                    OnnxExporter.Export(cfg, m.Parameters, Path.Combine(dir, $"model-{f}.onnx"), attention: f);
            }
            var rng = new Random(0);
            long[] Row(int B)
            {
                var ids = new long[B * seq];
                for (int b = 0; b < B; b++)
                {
                    for (int t = 0; t < seq - 1; t++) ids[b * seq + t] = rng.Next(1, items + 1);
                    ids[b * seq + seq - 1] = cfg.MaskId;
                }
                return ids;
            }
            long[] Cands(int B) => Enumerable.Range(0, B * cands).Select(_ => (long)rng.Next(1, items + 1)).ToArray();
            var result = new Dictionary<string, object> { ["engine"] = "onnxruntime-" + InferenceSession.RuntimeVersion, ["package"] = InferenceSession.PackageName };
            var p50s = new Dictionary<AttentionForm, double>();
            foreach (var form in Enum.GetValues<AttentionForm>())
            using (var s = new InferenceSession(Path.Combine(dir, $"model-{form}.onnx"), new SessionOptions { IntraOpThreads = 1, InterOpThreads = 1, Provider = provider }))
            {
                var ids = Row(1); var c = Cands(1);
                var scores = new float[cands]; var user = new float[hidden + 1];
                var inputs = new[] { NamedTensor.Int64(ModelIo.ItemIds, ids, 1, seq), NamedTensor.Int64(ModelIo.CandidateIds, c, 1, cands) };
                var outputs = new[] { NamedTensor.Float(ModelIo.Scores, scores, 1, cands), NamedTensor.Float(ModelIo.UserVector, user, 1, hidden + 1) };
                for (int i = 0; i < 200; i++) s.Run(inputs, outputs);
                var lat = new List<double>(iters);
                for (int i = 0; i < iters; i++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    s.Run(inputs, outputs);
                    lat.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                }
                lat.Sort();
                double p50 = lat[lat.Count / 2], p99 = lat[(int)(lat.Count * 0.99)];
                result["provider"] = s.ActiveProvider;
                Console.WriteLine($"infer ({InferenceSession.PackageName} {InferenceSession.RuntimeVersion}, {s.ActiveProvider}, 1 thread, attention {form}): batch 1x{seq}, {cands} candidates: p50 {p50:F3} ms, p99 {p99:F3} ms");
                p50s[form] = p50;
                string key = form == AttentionForm.Standard ? "" : "_mha";
                result[$"infer_p50_ms{key}"] = Math.Round(p50, 3);
                result[$"infer_p99_ms{key}"] = Math.Round(p99, 3);
            }
            var best = p50s.MinBy(x => x.Value).Key;
            var other = p50s.MaxBy(x => x.Value).Key;
            Console.WriteLine($"  attention: {best} wins, p50 {p50s[other] / p50s[best]:F2}x faster than {other}");
            result["attention_winner"] = best.ToString();
            result["infer_p50_ms_best"] = Math.Round(p50s[best], 3);
            using (var s = new InferenceSession(Path.Combine(dir, $"model-{best}.onnx"), new SessionOptions { IntraOpThreads = Environment.ProcessorCount, Provider = provider }))
                foreach (int B in new[] { 32, 256 })
                {
                    var ids = Row(B); var c = Cands(B);
                    var inputs = new[] { NamedTensor.Int64(ModelIo.ItemIds, ids, B, seq), NamedTensor.Int64(ModelIo.CandidateIds, c, B, cands) };
                    var outputs = new[] { NamedTensor.Float(ModelIo.Scores, new float[B * cands], B, cands), NamedTensor.Float(ModelIo.UserVector, new float[B * (hidden + 1)], B, hidden + 1) };
                    s.Run(inputs, outputs);
                    int reps = Math.Max(3, 2000 / B);
                    var sw = Stopwatch.StartNew();
                    for (int i = 0; i < reps; i++) s.Run(inputs, outputs);
                    double rps = reps * B / sw.Elapsed.TotalSeconds;
                    Console.WriteLine($"  batch {B}: {rps:N0} sequences/s ({Environment.ProcessorCount} intra-op threads)");
                    result[$"throughput_b{B}_per_s"] = Math.Round(rps);
                }
            if (torch)
            {
                var tr = TrainBench.RunTorch(1, 8, seq, items, 1);
                if (tr is { } t && t.TryGetProperty("infer_p50_ms", out var tp))
                {
                    double torchP50 = tp.GetDouble();
                    double ours = (double)result["infer_p50_ms_best"];
                    Console.WriteLine($"  PyTorch eager (1 thread): p50 {torchP50:F3} ms, p99 {t.GetProperty("infer_p99_ms").GetDouble():F3} ms; ours is {torchP50 / ours:F1}x faster at p50");
                    result["torch_infer_p50_ms"] = torchP50;
                    result["torch_infer_p99_ms"] = t.GetProperty("infer_p99_ms").GetDouble();
                    result["speedup_vs_torch_p50"] = Math.Round(torchP50 / ours, 2);
                }
            }
            Console.WriteLine("RESULT " + JsonSerializer.Serialize(result));
            return 0;
        }
        finally { Directory.Delete(dir, true); }
    }
}
