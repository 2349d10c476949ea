// `bert4rec demo`: the whole pipeline on the embedded synthetic dataset: generate, train, evaluate against the
// baselines, export, index, serve on loopback, query over HTTP, print, stop.
using System.CommandLine;
using System.Diagnostics;
using System.Net.Http.Headers;
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Service;
using Bert4Rec.Service;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Export;
using Bert4Rec.Training.Model;
using Bert4Rec.Training.Training;
using Google.Protobuf;

namespace Bert4Rec.Cli;

internal sealed class DemoVerb : IVerb
{
    public Command Build()
    {
        var outDir = Flags.String("--out", "artifacts folder", "runs/demo", "DIR");
        var kind = Flags.Choice("--model", "the model kind to train", "bert4rec", "bert4rec", "sasrec", "gru4rec");
        var epochs = Flags.Int("--epochs", "training epochs", 10, 1);
        var users = Flags.Int("--users", "synthetic users", 2000, 50);
        var items = Flags.Int("--items", "synthetic items", 500, 20);
        var threads = Flags.Int("--threads", "compute threads (0 = one per core)", 0, 0);
        var c = new Command("demo", "generate data, train, evaluate, export, index, serve and query, end to end") { outDir, kind, epochs, users, items, threads };
        c.SetAction(r => Run(r.GetValue(outDir)!, r.GetValue(kind)!, r.GetValue(epochs), r.GetValue(users), r.GetValue(items), r.GetValue(threads)));
        return c;
    }

    private static int Run(string outDir, string kind, int epochs, int users, int items, int threads)
    {
        var total = Stopwatch.StartNew();
        var clock = Stopwatch.StartNew();
        void Stage(string s) { Console.WriteLine($"\n== {s}"); clock.Restart(); }
        void Done() => Console.WriteLine($"   ({clock.Elapsed.TotalSeconds:F1}s)");

        Stage("1. synthetic dataset (seeded; planted item-to-item transitions and taste clusters over power-law popularity)");
        var data = SyntheticDataset.Generate(new SyntheticOptions { Users = users, Items = items });
        string dataDir = Path.Combine(outDir, "data");
        data.Save(dataDir);
        Console.WriteLine($"   {data.Statistics}");
        var split = LeaveOneOut.Split(data);
        Done();

        Stage("2. baselines on the test split");
        var pop = SequenceDataset.Popularity(split.TrainSequences, split.ItemCount);
        var full = new EvaluationOptions { Protocol = EvaluationProtocol.Full };
        var p100 = new EvaluationOptions { Protocol = EvaluationProtocol.Pop100, ItemPopularity = pop };
        foreach (var (name, scorer) in new (string, IItemScorer)[] { ("pop", new PopularityScorer(split.TrainSequences, split.ItemCount)), ("markov", new MarkovScorer(split.TrainSequences, split.ItemCount)) })
        {
            Console.WriteLine($"   {name,-8} {Evaluator.Evaluate(scorer, split.Test, full)}");
            Console.WriteLine($"   {name,-8} {Evaluator.Evaluate(scorer, split.Test, p100)}");
        }
        Done();

        Stage($"3. train {kind} (preset synthetic, {epochs} epochs)");
        string runDir = Path.Combine(outDir, "run");
        if (Directory.Exists(runDir)) Directory.Delete(runDir, true);
        Directory.CreateDirectory(runDir);
        data.Items.Save(Path.Combine(runDir, SequenceDataset.VocabFile));
        var cfg = TrainingConfig.FromPreset("synthetic", kind) with { Epochs = epochs, Threads = threads, Patience = 0 };
        var state = new Trainer(cfg, split, runDir, m => Console.WriteLine("   " + m)).Run();
        Done();

        Stage($"4. evaluate {cfg.Model} on the test split");
        var mcfg = cfg.ToModelConfig(split.ItemCount);
        var metrics = new Dictionary<string, double>();
        using (var model = SequenceModels.Create(mcfg, 256, threads))
        {
            state.BestParameters!.CopyTo(model.Parameters, 0);
            foreach (var o in new[] { full, p100 })
            {
                var m = Evaluator.Evaluate(new ModelScorer(model), split.Test, o);
                Console.WriteLine($"   {cfg.Model} {m}");
                foreach (var (k, v) in m.ToDictionary()) metrics[$"test.{m.Protocol}.{k}"] = v;
            }
        }
        Done();

        Stage("5. export the bundle (model.onnx, vocab.txt, manifest) and build the FAISS index");
        string bundle = Path.Combine(outDir, "bundle");
        BundleWriter.Write(bundle, mcfg, state.BestParameters!, data.Items, "bert4rec demo", metrics, Path.Combine(runDir, Trainer.CheckpointFile));
        Console.WriteLine("   " + Retrieval.BundleIndexer.Build(bundle, "auto", new Retrieval.SearchParameters(256, 32)));
        Console.WriteLine($"   {string.Join(", ", Directory.GetFiles(bundle).Select(f => $"{Path.GetFileName(f)} ({new FileInfo(f).Length / 1024.0:F0} KiB)"))}");
        Done();

        Stage("6. serve on loopback and ask for recommendations over HTTP");
        ServeAndQuery(bundle, data, split).GetAwaiter().GetResult();
        Done();
        Console.WriteLine($"\ndemo finished in {total.Elapsed.TotalSeconds:F1}s; artifacts in {outDir}");
        Console.WriteLine("RESULT " + System.Text.Json.JsonSerializer.Serialize(new { seconds = Math.Round(total.Elapsed.TotalSeconds, 1), ndcg10_full = metrics["test.full.ndcg@10"], hr10_pop100 = metrics["test.pop100.hr@10"] }));
        return 0;
    }

    private static async Task ServeAndQuery(string bundle, SequenceDataset data, LeaveOneOutSplit split)
    {
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = bundle, Urls = "http://127.0.0.1:0" });
        Console.WriteLine($"   service listening on {svc.Address}");
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        foreach (var c in split.Test.Take(3))
        {
            var req = new RecommendRequest { K = 5 };
            req.History.AddRange(c.History.TakeLast(8).Select(i => data.Items.RawId(i)));
            using var content = new StringContent(JsonFormatter.Default.Format(req), System.Text.Encoding.UTF8, "application/json");
            var resp = await http.PostAsync("/v1/recommend", content);
            string body = await resp.Content.ReadAsStringAsync();
            if (!resp.IsSuccessStatusCode) throw new InvalidOperationException($"service answered {(int)resp.StatusCode}: {body}");
            var r = JsonParser.Default.Parse<RecommendResponse>(body);
            string target = data.Items.RawId(c.Target);
            Console.WriteLine($"   user {data.UserIds[c.User]}: recent [{string.Join(", ", req.History.TakeLast(4))}] -> " +
                $"{string.Join(", ", r.Items.Select(i => $"{i.ItemId}{(i.ItemId == target ? "*" : "")} ({i.Score:F2})"))}   (held-out next item: {target})");
        }
        // the same request as binary protobuf
        var preq = new RecommendRequest { K = 3 };
        preq.History.AddRange(split.Test[0].History.TakeLast(8).Select(i => data.Items.RawId(i)));
        using var pc = new ByteArrayContent(preq.ToByteArray());
        pc.Headers.ContentType = new MediaTypeHeaderValue(ServiceHost.Protobuf);
        var presp = await http.PostAsync("/v1/recommend", pc);
        var pr = RecommendResponse.Parser.ParseFrom(await presp.Content.ReadAsByteArrayAsync());
        Console.WriteLine($"   binary protobuf request: {pr.Items.Count} items, model {pr.ModelVersion}");
        Console.WriteLine($"   /metrics: {svc.Metrics.Count("recommend")} recommend requests, {svc.Metrics.Errors("recommend")} errors");
    }
}
