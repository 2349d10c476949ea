// `bert4rec bench train`: training throughput at the paper's ML-1m shape on synthetic batches shaped like the PyTorch
// reference's (lengths uniform in [N/4, N]; BERT4Rec: mask probability 0.2; SASRec: a next-item target at every
// non-pad position), optionally with the reference run beside it (../shared/bench for BERT4Rec, Reference/ for SASRec).
using System.Diagnostics;
using System.Text.Json;
using System.CommandLine;
using Bert4Rec.Contracts;
using Bert4Rec.Torch;
using Bert4Rec.Training.Model;
using Bert4Rec.Training.Optim;

namespace Bert4Rec.Benchmarks;

internal static class TrainBench
{
    public static Command Build()
    {
        var modelOpt = Flags.Choice("--model", "the model kind", "bert4rec", ModelKinds.All.Select(k => k.Name()).ToArray());
        var stepsOpt = Flags.Int("--steps", "timed optimizer steps (after 2 warm-up steps)", 20, 1);
        var batchOpt = Flags.OptionalInt("--batch", "sequences per step (default 256; 128 for sasrec/gru4rec)", 1);
        var seqOpt = Flags.Int("--seq", "sequence length N", 200, 2);
        var itemsOpt = Flags.Int("--items", "catalog size n", 3416, 1);
        var hiddenOpt = Flags.Int("--hidden", "hidden size d", 64, 2);
        var layersOpt = Flags.OptionalInt("--layers", "blocks (default 2; 1 for gru4rec)", 1);
        var headsOpt = Flags.OptionalInt("--heads", "attention heads (default 2; 1 for sasrec/gru4rec)", 1);
        var threadsOpt = Flags.Int("--threads", "compute threads", 2, 1);
        var maskOpt = Flags.Double("--mask", "bert4rec: mask probability", 0.2, 0.01, 1);
        var torchOpt = Flags.Flag("--torch", "run the PyTorch reference beside it (full CE only)");
        // the sampled objectives (issue 16): --loss sampled-ce|gbce --negatives K (uniform draws, one set per step)
        var lossOpt = Flags.Choice("--loss", "training loss", "ce", "ce", "sampled-ce", "gbce");
        var negativesOpt = Flags.Int("--negatives", "sampled losses: negatives per step", 1024, 1);
        var groupsOpt = Flags.Int("--groups", "torchsharp: force G length groups per step", 1, 1, 64);
        var engineFlags = new EngineChoice.Options();
        var c = new Command("train", "training tokens/s and peak RSS on generated batches (ML-1m shape by default)")
            { modelOpt, stepsOpt, batchOpt, seqOpt, itemsOpt, hiddenOpt, layersOpt, headsOpt, threadsOpt, maskOpt, torchOpt, lossOpt, negativesOpt, groupsOpt };
        engineFlags.AddTo(c);
        c.SetAction(a =>
        {
            var kind = ModelKinds.Parse(a.GetValue(modelOpt)!);
            bool causal = kind != ModelKind.Bert4Rec;
            // SASRec's reference config: batch 128, one head, dropout 0.2 (DESIGN.md)
            int batch = a.GetValue(batchOpt) ?? (causal ? 128 : 256), layers = a.GetValue(layersOpt) ?? (kind == ModelKind.Gru4Rec ? 1 : 2), heads = a.GetValue(headsOpt) ?? (causal ? 1 : 2);
            string loss = a.GetValue(lossOpt)!;
            bool torch = a.GetValue(torchOpt);
            if (torch && loss != "ce") throw new UsageException("--torch: the PyTorch references train with full cross-entropy; drop --loss");
            var engine = engineFlags.Read(a);
            return Run(kind, a.GetValue(stepsOpt), batch, a.GetValue(seqOpt), a.GetValue(itemsOpt), a.GetValue(hiddenOpt), layers, heads, a.GetValue(threadsOpt),
                a.GetValue(maskOpt), torch, loss, a.GetValue(negativesOpt), engine, a.GetValue(groupsOpt));
        });
        return c;
    }

    private static int Run(ModelKind kind, int steps, int batch, int seq, int items, int hidden, int layers, int heads, int threads, double mask, bool torch,
                           string loss, int negatives, EngineChoice engine, int groups)
    {
        bool causal = kind != ModelKind.Bert4Rec;
        float dropout = causal ? 0.2f : 0.1f;
        var cfg = new ModelConfig { Kind = kind, ItemCount = items, Hidden = hidden, Heads = heads, Layers = layers, MaxLength = seq, HiddenDropout = dropout, AttentionDropout = dropout };
        var factory = engine.Factory(kind, w => Console.Error.WriteLine("bench train: warning: " + w)) ?? NativeModel.Create;
        using var model = factory(cfg, batch, threads);
        if (model is TorchSequenceModel tm && groups > 1) { tm.GroupCount = groups; tm.GroupBelowDensity = 1.01; }   // forced
        model.InitializeParameters(0);
        var opt = new AdamW(model.Layout);
        var sampler = loss == "ce" ? null
            : new Bert4Rec.Training.Training.NegativeSampler(items, negatives, popularity: false,
                loss == "gbce" ? SampledLossKind.Gbce : SampledLossKind.SampledCe, 0.75f, Array.Empty<int[]>());
        var rng = new Random(0);
        var ids = new int[batch * seq];
        var labels = new int[batch * seq];
        long tokens = 0;
        void MakeBatch()
        {
            Array.Clear(ids); Array.Clear(labels);
            for (int b = 0; b < batch; b++)
            {
                int len = rng.Next(seq / 4, seq + 1);
                for (int t = seq - len; t < seq; t++)
                {
                    int item = rng.Next(1, items + 1);
                    if (causal) { ids[b * seq + t] = item; labels[b * seq + t] = rng.Next(1, items + 1); }
                    else if (rng.NextDouble() < mask) { labels[b * seq + t] = item; ids[b * seq + t] = cfg.MaskId; }
                    else ids[b * seq + t] = item;
                }
            }
        }
        void Step(ulong s)
        {
            MakeBatch();
            model.TrainStep(ids, labels, batch, s, sampler?.Draw((int)s));
            GradientClipping.ClipGlobalNorm(model.Gradients, 5.0);
            opt.Update(model.Parameters, model.Gradients, 1e-4f);
        }
        Step(1); Step(2);   // warm-up
        var stepTimes = new List<double>();
        var total = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++)
        {
            MakeBatch();
            var sw = Stopwatch.StartNew();
            model.TrainStep(ids, labels, batch, (ulong)(i + 3), sampler?.Draw(i + 3));
            GradientClipping.ClipGlobalNorm(model.Gradients, 5.0);
            opt.Update(model.Parameters, model.Gradients, 1e-4f);
            stepTimes.Add(sw.Elapsed.TotalMilliseconds);
            tokens += batch * seq;
        }
        double secs = stepTimes.Sum() / 1000;
        double tps = tokens / secs;
        long peak = PeakRssBytes();
        Console.WriteLine($"train (ours, {kind.Name()}, {engine.Label} engine, {(loss == "ce" ? "full CE" : $"{loss} over {negatives} negatives")}): {steps} steps, batch {batch}x{seq}, d={hidden}, {layers} layers, {heads} heads, {items} items, {threads} threads" + (model is TorchSequenceModel && groups > 1 ? $", {groups} length groups forced" : ""));
        Console.WriteLine($"  {tps:N0} tokens/s, step p50 {Median(stepTimes):F1} ms, peak RSS {peak / 1048576.0:F0} MiB");
        var result = new Dictionary<string, object> { ["engine"] = kind.Name() + (engine.IsTorch ? "-" + engine.Label : "-csharp"), ["train_tokens_per_s"] = Math.Round(tps), ["step_ms_p50"] = Math.Round(Median(stepTimes), 1), ["peak_rss_mib"] = peak / 1048576, ["loss"] = loss, ["negatives"] = loss == "ce" ? items : negatives, ["items"] = items };
        if (torch)
        {
            var torchResult = causal
                ? RunScript(Path.Combine(AppContext.BaseDirectory, "Reference", "ref_sasrec_torch.py"), $"--steps {steps} --batch {batch} --seq {seq} --items {items} --threads {threads} --hidden {hidden} --layers {layers} --heads {heads} --dropout {dropout}")
                : RunTorch(steps, batch, seq, items, threads);
            if (torchResult is { } tr && tr.TryGetProperty("train_tokens_per_s", out var tt))
            {
                double t = tt.GetDouble();
                Console.WriteLine($"  PyTorch reference: {t:N0} tokens/s; ratio ours/PyTorch = {tps / t:F2}x");
                result["torch_train_tokens_per_s"] = t;
                result["ratio_vs_torch"] = Math.Round(tps / t, 2);
            }
        }
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(result));
        return 0;
    }

    internal static double Median(List<double> xs) { var s = xs.OrderBy(x => x).ToList(); return s[s.Count / 2]; }

    internal static long PeakRssBytes()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        return Environment.WorkingSet;
    }

    /// <summary>Runs ../shared/bench/ref_bert4rec_torch.py (beside the repository) and returns its RESULT json, or null with a message.</summary>
    internal static JsonElement? RunTorch(int steps, int batch, int seq, int items, int threads)
    {
        string? script = FindReference();
        if (script == null) { Console.WriteLine("  PyTorch reference: ../shared/bench/ref_bert4rec_torch.py not found beside the repository"); return null; }
        return RunScript(script, $"--steps {steps} --batch {batch} --seq {seq} --items {items} --threads {threads}");
    }

    /// <summary>Runs a PyTorch reference script with Debian's python3 and returns its RESULT json, or null with a message.</summary>
    internal static JsonElement? RunScript(string script, string arguments)
    {
        if (!File.Exists(script)) { Console.WriteLine($"  PyTorch reference: {script} not found"); return null; }
        var psi = new ProcessStartInfo("/usr/bin/python3", $"{script} {arguments}")
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        foreach (var line in output.Split('\n'))
        {
            if (!line.StartsWith("RESULT ", StringComparison.Ordinal)) { if (line.Length > 0) Console.WriteLine("  torch> " + line); continue; }
            return JsonDocument.Parse(line[7..]).RootElement.Clone();
        }
        Console.WriteLine($"  PyTorch reference failed (exit {p.ExitCode}); is Debian's python3-torch installed (apt-get install python3-torch)? {err.Split('\n').LastOrDefault(l => l.Length > 0)}");
        return null;
    }

    private static string? FindReference()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var p = Path.Combine(dir.FullName, "shared", "bench", "ref_bert4rec_torch.py");
            if (File.Exists(p) && dir.GetDirectories(".git").Length == 0) return p;
            var q = Path.Combine(dir.FullName, "..", "shared", "bench", "ref_bert4rec_torch.py");
            if (Directory.Exists(Path.Combine(dir.FullName, ".git")) && File.Exists(q)) return Path.GetFullPath(q);
        }
        return null;
    }
}
