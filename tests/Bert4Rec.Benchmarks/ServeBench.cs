// `bert4rec bench serve`: a bounded load generator against the service on loopback (fixed duration and concurrency; HTTP
// with binary protobuf and/or JSON, and/or gRPC) with a hot reload in the middle of each protocol's run; throughput,
// p50/p99/p999 latency and errors per protocol. --metrics off serves without recording request metrics, to measure what
// recording them costs (run it once each way: the target is under 3 % throughput).
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.CommandLine;
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Service;
using Bert4Rec.Retrieval;
using Bert4Rec.Service;
using Bert4Rec.Training.Export;
using Bert4Rec.Training.Model;
using Google.Protobuf;
using Grpc.Net.Client;

namespace Bert4Rec.Benchmarks;

internal static class ServeBench
{
    public static Command Build()
    {
        var protocolOpt = Flags.Choice("--protocol", "which protocols to load", "both", "http", "grpc", "both");
        var formatOpt = Flags.Choice("--format", "HTTP bodies: json, protobuf, or both alternately", "both", "json", "protobuf", "both");
        var concurrencyOpt = Flags.Int("--concurrency", "requests in flight", 8, 1, 256);
        var durationOpt = Flags.Int("--duration", "seconds of load per protocol", 60, 1, 600);
        var bundleOpt = Flags.String("--bundle", "a bundle to serve (default: a generated one)", helpName: "DIR");
        var itemsOpt = Flags.Int("--items", "generated bundle: catalog size", 3416, 10);
        var seqOpt = Flags.Int("--seq", "generated bundle: sequence length N", 200, 2);
        var historyOpt = Flags.Int("--history", "items per request's history", 50, 1);
        var metricsOpt = Flags.OnOff("--metrics", "the service's metrics on or off (their cost on throughput; default on)");
        var c = new Command("serve", "loopback load on the service with a hot reload (throughput, p50/p99, errors)")
            { protocolOpt, formatOpt, concurrencyOpt, durationOpt, bundleOpt, itemsOpt, seqOpt, historyOpt, metricsOpt };
        c.SetAction(a => Run(a.GetValue(durationOpt), a.GetValue(concurrencyOpt), a.GetValue(historyOpt), a.GetValue(formatOpt)!, a.GetValue(protocolOpt)!,
            a.GetValue(bundleOpt), a.GetValue(itemsOpt), a.GetValue(seqOpt), a.IsOn(metricsOpt) ?? true));
        return c;
    }

    private static int Run(int duration, int concurrency, int historyLen, string format, string protocol, string? bundleArg, int items, int seq, bool metrics)
    {
        string tmp = Directory.CreateTempSubdirectory("b4r-bench-serve-").FullName;
        try
        {
            string b1 = bundleArg ?? MakeBundle(Path.Combine(tmp, "b1"), items, seq, 1);
            string b2 = bundleArg ?? MakeBundle(Path.Combine(tmp, "b2"), items, seq, 2);
            return RunAsync(b1, b2, duration, concurrency, historyLen, format, protocol, metrics).GetAwaiter().GetResult();
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

    private sealed record Phase(string Protocol, double Rps, double P50, double P99, double P999, long Errors, int Requests, double Seconds, bool ReloadOk, long ReloadMs, string? FirstError);

    private static async Task<int> RunAsync(string b1, string b2, int duration, int concurrency, int historyLen, string format, string protocol, bool metrics)
    {
        // the two bundles are versions under one model root (their common folder); reload names a version
        string token = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions
        {
            ModelRoot = Path.GetDirectoryName(Path.GetFullPath(b1).TrimEnd('/')), Version = Path.GetFileName(Path.GetFullPath(b1).TrimEnd('/')),
            Urls = "http://127.0.0.1:0", GrpcUrls = "http://127.0.0.1:0", AdminUrls = "http://127.0.0.1:0", AdminToken = token,
            MaxConcurrent = Math.Max(64, concurrency * 2), Metrics = metrics,
        });
        using var admin = new HttpClient { BaseAddress = new Uri(svc.AdminAddress!) };
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        // requests name the bundle's own raw ids; when a model reads the user (a stage-two ranker, a Two-Tower stage one) each
        // also names a known user, so both models run on its stored features
        string[] itemIds, userIds;
        string stageOne, stageTwo;
        using (var lease = svc.Holder.Acquire())
        {
            itemIds = lease.Bundle.Vocabulary.RawIds.ToArray();
            userIds = lease.Bundle.Users?.UserIds.ToArray() ?? [];
            stageOne = lease.Bundle.Config.Kind.Name();
            stageTwo = lease.Bundle.StageTwo?.Config.Kind.Name() ?? "";
        }
        int n = itemIds.Length;
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency }) { BaseAddress = new Uri(svc.Address) };
        using var channel = GrpcChannel.ForAddress(svc.GrpcAddress!, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true } });
        var grpc = new Ranking.RankingClient(channel);
        var protocols = protocol == "both" ? new[] { "http", "grpc" } : new[] { protocol };
        Console.WriteLine($"serve bench: HTTP {svc.Address}, gRPC {svc.GrpcAddress}, {n} items, stage one {stageOne}{(stageTwo.Length > 0 ? $", stage two {stageTwo}" : "")}{(userIds.Length > 0 ? $", requests over {userIds.Length} known users" : "")}, {duration}s per protocol ({string.Join(" then ", protocols)}), " +
                          $"concurrency {concurrency}, HTTP format {format}, history {historyLen}, metrics {(metrics ? "on" : "off")}, a hot reload at half time of each");
        var phases = new List<Phase>();
        string next = b2;
        foreach (var p in protocols)
        {
            var ph = await RunPhaseAsync(p, http, admin, grpc, svc, Path.GetFileName(Path.GetFullPath(next).TrimEnd('/')), itemIds, userIds, duration, concurrency, historyLen, format);
            next = next == b2 ? b1 : b2;
            phases.Add(ph);
            Console.WriteLine($"  {p}: {ph.Requests:N0} recommendations in {ph.Seconds:F1}s = {ph.Rps:N0}/s; latency p50 {ph.P50:F2} ms, p99 {ph.P99:F2} ms, p999 {ph.P999:F2} ms; " +
                              $"errors {ph.Errors}" + (ph.FirstError != null ? $" (first: {ph.FirstError})" : "") +
                              $"; hot reload {(ph.ReloadOk ? "accepted" : "REFUSED")} in {ph.ReloadMs} ms");
        }
        if (metrics)
            Console.WriteLine($"  service counted {svc.Metrics.Count("recommend") - svc.Metrics.Count("recommend", RequestMetrics.Grpc):N0} HTTP requests ({svc.Metrics.Errors("recommend") - svc.Metrics.Errors("recommend", RequestMetrics.Grpc)} errors), " +
                              $"{svc.Metrics.Count("recommend", RequestMetrics.Grpc):N0} gRPC calls ({svc.Metrics.Errors("recommend", RequestMetrics.Grpc)} errors)");
        var result = new Dictionary<string, object> { ["protocol"] = protocol, ["concurrency"] = concurrency, ["format"] = format, ["metrics"] = metrics ? "on" : "off", ["errors"] = phases.Sum(x => x.Errors), ["stage_one"] = stageOne, ["stage_two"] = stageTwo };
        foreach (var ph in phases)
            result[ph.Protocol] = new
            {
                recommendations_per_s = Math.Round(ph.Rps), p50_ms = Math.Round(ph.P50, 3), p99_ms = Math.Round(ph.P99, 3), p999_ms = Math.Round(ph.P999, 3),
                errors = ph.Errors, requests = ph.Requests, seconds = Math.Round(ph.Seconds, 1), reload_ok = ph.ReloadOk, reload_ms = ph.ReloadMs,
            };
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(result));
        return phases.All(x => x.Errors == 0 && x.ReloadOk) ? 0 : 1;
    }

    /// <summary>One protocol's load for <paramref name="duration"/> seconds, reloading <paramref name="reloadTo"/> at half time.</summary>
    private static async Task<Phase> RunPhaseAsync(string protocol, HttpClient http, HttpClient admin, Ranking.RankingClient grpc, RunningService svc, string reloadTo,
                                                   string[] itemIds, string[] userIds, int duration, int concurrency, int historyLen, string format)
    {
        var latencies = new List<double>[concurrency];
        long errors = 0;
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
                for (int h = 0; h < historyLen; h++) req.History.Add(itemIds[rng.Next(itemIds.Length)]);
                if (userIds.Length > 0) req.UserId = userIds[rng.Next(userIds.Length)];
                long t0 = Stopwatch.GetTimestamp();
                try
                {
                    int count;
                    if (protocol == "grpc") count = (await grpc.RecommendAsync(req)).Items.Count;
                    else
                    {
                        bool proto = format == "protobuf" || (format == "both" && (i++ & 1) == 0);
                        HttpContent content;
                        if (proto) { content = new ByteArrayContent(req.ToByteArray()); content.Headers.ContentType = new MediaTypeHeaderValue(ServiceHost.Protobuf); }
                        else content = new StringContent(JsonFormatter.Default.Format(req), Encoding.UTF8, "application/json");
                        using var resp = await http.PostAsync("/v1/recommend", content);
                        var body = await resp.Content.ReadAsByteArrayAsync();
                        if (!resp.IsSuccessStatusCode) { Interlocked.Increment(ref errors); firstError ??= Encoding.UTF8.GetString(body); continue; }
                        count = proto ? RecommendResponse.Parser.ParseFrom(body).Items.Count : JsonParser.Default.Parse<RecommendResponse>(Encoding.UTF8.GetString(body)).Items.Count;
                    }
                    if (count != 10) { Interlocked.Increment(ref errors); firstError ??= $"{count} items"; continue; }
                }
                catch (Exception e) { Interlocked.Increment(ref errors); firstError ??= e.Message; continue; }
                lat.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
        })).ToList();
        await Task.Delay(TimeSpan.FromSeconds(duration / 2.0));
        var rsw = Stopwatch.StartNew();
        var reload = await admin.PostAsync("/admin/reload", new StringContent(JsonFormatter.Default.Format(new ReloadRequest { Version = reloadTo }), Encoding.UTF8, "application/json"));
        long reloadMs = (long)rsw.Elapsed.TotalMilliseconds;
        await Task.WhenAll(workers);
        double secs = clock.Elapsed.TotalSeconds;
        var all = latencies.SelectMany(l => l).OrderBy(x => x).ToList();
        double P(double q) => all.Count == 0 ? double.NaN : all[Math.Min(all.Count - 1, (int)(all.Count * q))];
        return new Phase(protocol, all.Count / secs, P(0.5), P(0.99), P(0.999), errors, all.Count, secs, reload.IsSuccessStatusCode, reloadMs, firstError);
    }
}
