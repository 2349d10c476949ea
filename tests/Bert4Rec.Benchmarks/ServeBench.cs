// `bert4rec bench serve`: a bounded load generator against the service on loopback (fixed duration and concurrency,
// binary protobuf and/or JSON) with a hot reload in the middle; throughput, p50/p99/p999 latency and errors.
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Service;
using Bert4Rec.Retrieval;
using Bert4Rec.Service;
using Bert4Rec.Training.Export;
using Bert4Rec.Training.Model;
using Google.Protobuf;

namespace Bert4Rec.Benchmarks;

internal static class ServeBench
{
    public static int Run(CommandLine a)
    {
        int duration = a.Int("duration", 60, 1, 600), concurrency = a.Int("concurrency", 8, 1, 256), historyLen = a.Int("history", 50, 1);
        string format = a.String("format", "both");
        string? bundleArg = a.String("bundle");
        int items = a.Int("items", 3416, 10), seq = a.Int("seq", 200, 2);
        a.EnsureAllUsed();
        if (format is not ("protobuf" or "json" or "both")) throw new UsageException($"--format: '{format}' is not protobuf, json or both");
        string tmp = Directory.CreateTempSubdirectory("b4r-bench-serve-").FullName;
        try
        {
            string b1 = bundleArg ?? MakeBundle(Path.Combine(tmp, "b1"), items, seq, 1);
            string b2 = bundleArg ?? MakeBundle(Path.Combine(tmp, "b2"), items, seq, 2);
            return RunAsync(b1, b2, duration, concurrency, historyLen, format).GetAwaiter().GetResult();
        }
        finally { Directory.Delete(tmp, true); }
    }

    private static string MakeBundle(string dir, int items, int seq, int seed)
    {
        var cfg = new ModelConfig { ItemCount = items, Hidden = 64, Heads = 2, Layers = 2, MaxLength = seq };
        using var m = new Bert4RecModel(cfg, 1, 1);
        m.InitializeParameters((ulong)seed);
        BundleWriter.Write(dir, cfg, m.Parameters, new Vocabulary(Enumerable.Range(1, items).Select(i => i.ToString()).ToArray()), "bench serve");
        BundleIndexer.Build(dir, "auto", new SearchParameters(128, 16));
        return dir;
    }

    private static async Task<int> RunAsync(string b1, string b2, int duration, int concurrency, int historyLen, string format)
    {
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = b1, Urls = "http://127.0.0.1:0" });
        var vocab = svc.Holder.Acquire();
        int n = vocab.Bundle.Config.ItemCount;
        vocab.Dispose();
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency }) { BaseAddress = new Uri(svc.Address) };
        Console.WriteLine($"serve bench: {svc.Address}, {n} items, {duration}s, concurrency {concurrency}, format {format}, history {historyLen}, hot reload at {duration / 2}s");
        var latencies = new List<double>[concurrency];
        long errors = 0, reloadMs = -1;
        string? firstError = null;
        var clock = Stopwatch.StartNew();
        var end = TimeSpan.FromSeconds(duration);
        var workers = Enumerable.Range(0, concurrency).Select(w => Task.Run(async () =>
        {
            var rng = new Random(w);
            var lat = latencies[w] = new List<double>(100_000);
            int i = 0;
            while (clock.Elapsed < end)
            {
                var req = new RecommendRequest { K = 10 };
                for (int h = 0; h < historyLen; h++) req.History.Add(rng.Next(1, n + 1).ToString());
                bool proto = format == "protobuf" || (format == "both" && (i++ & 1) == 0);
                HttpContent content;
                if (proto) { content = new ByteArrayContent(req.ToByteArray()); content.Headers.ContentType = new MediaTypeHeaderValue(ServiceHost.Protobuf); }
                else content = new StringContent(JsonFormatter.Default.Format(req), Encoding.UTF8, "application/json");
                long t0 = Stopwatch.GetTimestamp();
                try
                {
                    using var resp = await http.PostAsync("/v1/recommend", content);
                    var body = await resp.Content.ReadAsByteArrayAsync();
                    if (!resp.IsSuccessStatusCode) { Interlocked.Increment(ref errors); firstError ??= Encoding.UTF8.GetString(body); continue; }
                    int count = proto ? RecommendResponse.Parser.ParseFrom(body).Items.Count : JsonParser.Default.Parse<RecommendResponse>(Encoding.UTF8.GetString(body)).Items.Count;
                    if (count != 10) { Interlocked.Increment(ref errors); firstError ??= $"{count} items"; continue; }
                }
                catch (Exception e) { Interlocked.Increment(ref errors); firstError ??= e.Message; continue; }
                lat.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
        })).ToList();
        await Task.Delay(TimeSpan.FromSeconds(duration / 2.0));
        var rsw = Stopwatch.StartNew();
        var reload = await http.PostAsync("/admin/reload", new StringContent(JsonFormatter.Default.Format(new ReloadRequest { Bundle = b2 }), Encoding.UTF8, "application/json"));
        reloadMs = (long)rsw.Elapsed.TotalMilliseconds;
        bool reloaded = reload.IsSuccessStatusCode;
        await Task.WhenAll(workers);
        double secs = clock.Elapsed.TotalSeconds;
        var all = latencies.SelectMany(l => l).OrderBy(x => x).ToList();
        double P(double q) => all.Count == 0 ? double.NaN : all[Math.Min(all.Count - 1, (int)(all.Count * q))];
        double rps = all.Count / secs;
        Console.WriteLine($"  {all.Count:N0} recommendations in {secs:F1}s = {rps:N0}/s; latency p50 {P(0.5):F2} ms, p99 {P(0.99):F2} ms, p999 {P(0.999):F2} ms; errors {errors}" + (firstError != null ? $" (first: {firstError})" : ""));
        Console.WriteLine($"  hot reload mid-run: {(reloaded ? "accepted" : "REFUSED")} in {reloadMs} ms; service counted {svc.Metrics.Count("recommend"):N0} requests, {svc.Metrics.Errors("recommend")} errors");
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(new
        {
            recommendations_per_s = Math.Round(rps), p50_ms = Math.Round(P(0.5), 3), p99_ms = Math.Round(P(0.99), 3), p999_ms = Math.Round(P(0.999), 3),
            errors, requests = all.Count, seconds = Math.Round(secs, 1), concurrency, format, reload_ok = reloaded, reload_ms = reloadMs,
        }));
        return errors == 0 && reloaded ? 0 : 1;
    }
}
