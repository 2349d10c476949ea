// The service's telemetry through a real Kestrel: a Prometheus scrape after a mix of good and bad requests over every
// protocol (per-status counts, histogram buckets, model info, process and runtime series), metrics off, a recommend
// request's trace with its stages (in-memory exporter), and OTLP export to a collector on loopback.
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Bert4Rec.Contracts.Service;
using Bert4Rec.Service;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using OpenTelemetry;
using OpenTelemetry.Trace;
using static Bert4Rec.Inference.Tests.Service.ServiceTests;

namespace Bert4Rec.Inference.Tests.Service;

public class TelemetryTests(BundleFixture fx) : IClassFixture<BundleFixture>
{
    /// <summary>Prometheus text exposition: each sample line's series (name and labels as written) to its value.</summary>
    private static Dictionary<string, double> Samples(string text)
    {
        var d = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#') continue;
            int sp = line.LastIndexOf(' ');
            d[line[..sp]] = double.Parse(line[(sp + 1)..], CultureInfo.InvariantCulture);
        }
        return d;
    }

    [Fact]
    public async Task A_scrape_after_mixed_load_counts_each_status_apart_and_has_every_histogram_bucket()
    {
        string bundle = fx.MakeBundle("t1", 21);
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = bundle, Urls = "http://127.0.0.1:0", GrpcUrls = "http://127.0.0.1:0", MaxK = 20 });
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        using var channel = GrpcChannel.ForAddress(svc.GrpcAddress!);
        var grpc = new Ranking.RankingClient(channel);
        async Task Expect(HttpStatusCode status, HttpContent body) => Assert.Equal(status, (await http.PostAsync("/v1/recommend", body)).StatusCode);
        for (int i = 0; i < 12; i++) await Expect(HttpStatusCode.OK, Json(Req(5, $"item{i + 1}")));
        for (int i = 0; i < 7; i++) await Expect(HttpStatusCode.OK, Proto(Req(5, $"item{i + 1}")));
        for (int i = 0; i < 5; i++) await Expect(HttpStatusCode.BadRequest, Json(Req(500, "item1")));
        for (int i = 0; i < 3; i++) await Expect(HttpStatusCode.UnsupportedMediaType, new StringContent("{}", Encoding.UTF8, "text/plain"));
        for (int i = 0; i < 4; i++) await grpc.RecommendAsync(Req(3, "item2"));
        for (int i = 0; i < 2; i++) Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(async () => await grpc.RecommendAsync(Req(500)))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/v1/model")).StatusCode);
        string version = svc.Holder.CurrentName!;
        // no version loaded any more: every ranking request is a 5xx (503), counted apart from the 4xx
        svc.Holder.Dispose();
        for (int i = 0; i < 3; i++) await Expect(HttpStatusCode.ServiceUnavailable, Json(Req(5, "item1")));

        var scrape = await http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, scrape.StatusCode);
        Assert.Equal("text/plain", scrape.Content.Headers.ContentType!.MediaType);
        string text = await scrape.Content.ReadAsStringAsync();
        var s = Samples(text);
        string Req_(string protocol, int status, string arm) => $"bert4rec_requests_total{{endpoint=\"recommend\",protocol=\"{protocol}\",status=\"{status}\",arm=\"{arm}\"}}";
        Assert.Equal(12, s[Req_("http-json", 200, "primary")]);
        Assert.Equal(7, s[Req_("http-protobuf", 200, "primary")]);
        Assert.Equal(5, s[Req_("http-json", 400, "")]);
        Assert.Equal(3, s[Req_("http-json", 415, "")]);
        Assert.Equal(4, s[Req_("grpc", 200, "primary")]);
        Assert.Equal(2, s[Req_("grpc", 400, "")]);
        Assert.Equal(3, s[Req_("http-json", 503, "")]);
        Assert.Equal(1, s["bert4rec_requests_total{endpoint=\"model\",protocol=\"http-json\",status=\"200\",arm=\"\"}"]);
        Assert.Equal(37, s.Where(x => x.Key.StartsWith("bert4rec_requests_total{", StringComparison.Ordinal)).Sum(x => x.Value));
        Assert.Equal(10, svc.Metrics.Errors("recommend", statusClass: 4));
        Assert.Equal(3, svc.Metrics.Errors("recommend", statusClass: 5));
        Assert.Equal(23, s.Where(x => x.Key.StartsWith("bert4rec_arm_requests_total{endpoint=\"recommend\"", StringComparison.Ordinal) && x.Key.Contains($"version=\"{version}\"")).Sum(x => x.Value));

        Assert.Contains("# TYPE bert4rec_requests_total counter\n", text);
        Assert.Contains("# TYPE bert4rec_request_duration_seconds histogram\n", text);
        foreach (var (protocol, arm, count) in new[] { ("http-json", "primary", 12), ("http-protobuf", "primary", 7), ("grpc", "primary", 4), ("http-json", "", 11), ("grpc", "", 2) })
        {
            string labels = $"endpoint=\"recommend\",protocol=\"{protocol}\",arm=\"{arm}\"";
            double previous = 0;
            foreach (var le in RequestMetrics.DurationBuckets.Select(b => b.ToString(CultureInfo.InvariantCulture)).Append("+Inf"))
            {
                double cumulative = s[$"bert4rec_request_duration_seconds_bucket{{{labels},le=\"{le}\"}}"];
                Assert.True(cumulative >= previous, $"{labels} le={le}: {cumulative} < {previous}");
                previous = cumulative;
            }
            Assert.Equal(count, previous);
            Assert.Equal(count, s[$"bert4rec_request_duration_seconds_count{{{labels}}}"]);
            Assert.True(s[$"bert4rec_request_duration_seconds_sum{{{labels}}}"] > 0);
        }
        // the served version (the gauge is read at the scrape: nothing is served now) and the process and runtime series
        Assert.DoesNotContain("bert4rec_model_info{", text);
        Assert.True(s["process_cpu_seconds_total"] > 0);
        Assert.Contains(s.Keys, k => k.StartsWith("dotnet_collection_count_total{", StringComparison.Ordinal));
        Assert.Contains(s.Keys, k => k.StartsWith("system_runtime_dotnet_thread_pool_thread_count", StringComparison.Ordinal));
        Assert.Contains(s.Keys, k => k.StartsWith("system_runtime_dotnet_gc_collections", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Model_info_names_each_served_version_and_metrics_off_records_nothing()
    {
        string a = fx.MakeBundle("t2", 22);
        await using (var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = a, Urls = "http://127.0.0.1:0" }))
        {
            using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
            string modelVersion;
            using (var lease = svc.Holder.Acquire()) modelVersion = lease.Bundle.Version;
            var s = Samples(await http.GetStringAsync("/metrics"));
            Assert.Equal(1, s[$"bert4rec_model_info{{arm=\"primary\",version=\"t2\",model_version=\"{modelVersion}\"}}"]);
            Assert.Equal(0, s["bert4rec_requests_in_flight"]);
        }
        await using (var off = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = a, Urls = "http://127.0.0.1:0", Metrics = false }))
        {
            using var http = new HttpClient { BaseAddress = new Uri(off.Address) };
            Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/recommend", Json(Req(3, "item1")))).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/metrics")).StatusCode);
            Assert.Equal(0, off.Metrics.Count("recommend"));
        }
    }

    [Fact]
    public async Task A_recommend_requests_trace_lists_its_stages_with_durations()
    {
        string bundle = fx.MakeBundle("t3", 23);
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddSource(ServiceTracing.Sources).AddAspNetCoreInstrumentation().AddInMemoryExporter(spans).Build();
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = bundle, Urls = "http://127.0.0.1:0" });
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        var trace = ActivityTraceId.CreateRandom();
        var msg = new HttpRequestMessage(HttpMethod.Post, "/v1/recommend") { Content = Json(Req(5, "item3", "item7", "nope")) };
        msg.Headers.Add("traceparent", $"00-{trace.ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-01");
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(msg)).StatusCode);
        // the spans end as the response is written, ASP.NET Core's server span last (after the client may already have the
        // response): wait (bounded) until the request's own span and its parent server span are both exported
        List<Activity> Mine() { lock (spans) return spans.Where(a => a.TraceId == trace).ToList(); }
        bool Complete(List<Activity> m) =>
            m.FirstOrDefault(a => a.Source.Name == ServiceTracing.SourceName) is { } r && m.Any(a => a.SpanId == r.ParentSpanId);
        for (int i = 0; i < 100 && !Complete(Mine()); i++) await Task.Delay(50);
        var mine = Mine();
        var request = Assert.Single(mine, a => a.Source.Name == ServiceTracing.SourceName);
        Assert.Equal("recommend", request.DisplayName);
        Assert.Equal("primary", request.GetTagItem("bert4rec.arm"));
        Assert.Equal("http-json", request.GetTagItem("bert4rec.protocol"));
        Assert.Equal("t3", request.GetTagItem("bert4rec.version"));
        // its parent is ASP.NET Core's server span, itself the caller's (traceparent) child
        Assert.Contains(mine, a => a.SpanId == request.ParentSpanId && a.Kind == ActivityKind.Server);
        var stages = mine.Where(a => a.ParentSpanId == request.SpanId).OrderBy(a => a.StartTimeUtc).ToList();
        Assert.Equal(new[] { "vocabulary", "model_run", "faiss_search", "scoring" }, stages.Select(a => a.DisplayName));
        Assert.All(stages, a => Assert.True(a.Duration >= TimeSpan.Zero && a.StartTimeUtc >= request.StartTimeUtc && a.StartTimeUtc + a.Duration <= request.StartTimeUtc + request.Duration,
            $"{a.DisplayName}: {a.Duration} outside its request"));
        Assert.True(stages.Single(a => a.DisplayName == "model_run").Duration > TimeSpan.Zero);
        Assert.Equal(200, stages.Single(a => a.DisplayName == "faiss_search").GetTagItem("bert4rec.candidates"));
    }

    [Fact]
    public async Task Traces_go_to_the_configured_otlp_endpoint_and_nowhere_by_default()
    {
        // a collector on loopback that keeps what the exporter posts (OTLP over HTTP/protobuf)
        var posts = new List<(string Path, string? Type, byte[] Body)>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var collector = builder.Build();
        collector.MapPost("/{**path}", async (HttpContext ctx) =>
        {
            using var ms = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(ms);
            lock (posts) posts.Add((ctx.Request.Path.Value!, ctx.Request.ContentType, ms.ToArray()));
            return Results.Ok();
        });
        await collector.StartAsync();
        var endpoint = new Uri(collector.Urls.First());

        string bundle = fx.MakeBundle("t4", 24);
        await using (var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = bundle, Urls = "http://127.0.0.1:0", OtlpEndpoint = endpoint, OtlpProtocol = OpenTelemetry.Exporter.OtlpExportProtocol.HttpProtobuf }))
        {
            using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
            Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/recommend", Json(Req(5, "item3")))).StatusCode);
        }   // stopping the host flushes the exporters
        List<(string Path, string? Type, byte[] Body)> got;
        lock (posts) got = posts.ToList();
        var traces = got.Where(p => p.Path == "/v1/traces").ToList();
        Assert.NotEmpty(traces);
        Assert.All(traces, p => Assert.Equal("application/x-protobuf", p.Type));
        // span names are plain strings in the protobuf body
        string all = string.Concat(traces.Select(p => Encoding.UTF8.GetString(p.Body)));
        foreach (var name in new[] { "recommend", "vocabulary", "model_run", "faiss_search", "scoring", "bert4rec-serve" }) Assert.Contains(name, all);
        Assert.Contains(got, p => p.Path == "/v1/metrics" && p.Body.Length > 0);

        // without an endpoint nothing is exported
        lock (posts) posts.Clear();
        await using (var quiet = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = bundle, Urls = "http://127.0.0.1:0" }))
        {
            using var http = new HttpClient { BaseAddress = new Uri(quiet.Address) };
            Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/recommend", Json(Req(5, "item3")))).StatusCode);
        }
        lock (posts) Assert.Empty(posts);
    }
}
