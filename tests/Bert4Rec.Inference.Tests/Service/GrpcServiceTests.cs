// The gRPC face of the ranking service through a real Kestrel on loopback and Grpc.Net.Client: the same results as the
// HTTP endpoints and the in-process recommender, bad requests as INVALID_ARGUMENT naming the field, the standard health
// service, and a hot reload under gRPC load with no failed call.
using System.Net.Http.Headers;
using Bert4Rec.Contracts.Service;
using Bert4Rec.Inference.Recommendation;
using Bert4Rec.Service;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Bert4Rec.Inference.Tests.Service;

public class GrpcServiceTests(BundleFixture fx) : IClassFixture<BundleFixture>
{
    private static ServiceOptions Options(string bundle) =>
        new() { BundlePath = bundle, Urls = "http://127.0.0.1:0", GrpcUrls = "http://127.0.0.1:0", MaxHistory = 50, MaxK = 20 };

    private static RecommendRequest Req(int k, params string[] history)
    {
        var r = new RecommendRequest { K = k };
        r.History.AddRange(history);
        return r;
    }

    private static async Task<T> HttpProto<T>(HttpClient http, string path, IMessage req, MessageParser<T> parser) where T : IMessage<T>
    {
        var c = new ByteArrayContent(req.ToByteArray());
        c.Headers.ContentType = new MediaTypeHeaderValue(ServiceHost.Protobuf);
        var resp = await http.PostAsync(path, c);
        resp.EnsureSuccessStatusCode();
        return parser.ParseFrom(await resp.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Grpc_results_equal_the_http_endpoints_and_the_in_process_recommender()
    {
        string bundle = fx.MakeBundle("g1", 11);
        await using var svc = await ServiceHost.StartAsync(Options(bundle));
        Assert.NotNull(svc.GrpcAddress);
        Assert.NotEqual(svc.Address, svc.GrpcAddress);
        using var channel = GrpcChannel.ForAddress(svc.GrpcAddress!);
        var client = new Ranking.RankingClient(channel);
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };

        var req = Req(5, "item3", "item7", "nope");
        var g = await client.RecommendAsync(req);
        var h = await HttpProto(http, "/v1/recommend", req, RecommendResponse.Parser);
        Assert.Equal(h, g);                                   // protobuf equality: ids, scores, unknown ids, version
        Assert.Equal(5, g.Items.Count);
        Assert.Equal(new[] { "nope" }, g.UnknownIds);
        using (var b = ModelBundle.Load(bundle))
        {
            var direct = new Recommender(b).Recommend(new[] { "item3", "item7" }, 5);
            Assert.Equal(direct.Items.Select(i => i.ItemId), g.Items.Select(i => i.ItemId));
            Assert.Equal(direct.Items.Select(i => i.Score), g.Items.Select(i => i.Score));
        }

        var batch = new BatchRecommendRequest();
        batch.Requests.Add(req);
        batch.Requests.Add(Req(3, "item1"));
        Assert.Equal(await HttpProto(http, "/v1/recommend:batch", batch, BatchRecommendResponse.Parser), await client.RecommendBatchAsync(batch));

        var rr = new RerankRequest { K = 2 };
        rr.History.Add("item1");
        rr.Candidates.AddRange(new[] { "item5", "item6", "item9", "zzz" });
        var gr = await client.RerankAsync(rr);
        Assert.Equal(await HttpProto(http, "/v1/rerank", rr, RerankResponse.Parser), gr);
        Assert.Contains("zzz", gr.UnknownCandidateIds);

        var info = await client.GetModelAsync(new GetModelRequest());
        Assert.Equal(40, info.ItemCount);
        Assert.Equal("CPU", info.ExecutionProvider);
        Assert.Equal(JsonParser.Default.Parse<ModelInfo>(await http.GetStringAsync("/v1/model")), info);

        // each port speaks its own protocol: no HTTP API (nor admin) on the gRPC port
        using (var h2 = new HttpClient { BaseAddress = new Uri(svc.GrpcAddress!), DefaultRequestVersion = System.Net.HttpVersion.Version20,
                                         DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact })
            Assert.Equal(System.Net.HttpStatusCode.NotFound, (await h2.GetAsync("/v1/model")).StatusCode);

        var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
        Assert.Contains("bert4rec_requests_total{endpoint=\"recommend\",protocol=\"grpc\",status=\"200\",arm=\"primary\"} 1\n", await http.GetStringAsync("/metrics"));
    }

    [Fact]
    public async Task Bad_grpc_requests_are_invalid_argument_naming_the_field_and_the_service_keeps_serving()
    {
        string bundle = fx.MakeBundle("g2", 12);
        await using var svc = await ServiceHost.StartAsync(Options(bundle));
        using var channel = GrpcChannel.ForAddress(svc.GrpcAddress!);
        var client = new Ranking.RankingClient(channel);
        async Task<string> Bad(Func<Task> call)
        {
            var e = await Assert.ThrowsAsync<RpcException>(call);
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
            string field = e.Trailers.GetValue(RankingGrpcService.FieldTrailer)!;
            Assert.StartsWith(field + ":", e.Status.Detail);
            Assert.DoesNotContain("   at ", e.Status.Detail);      // no stack trace
            return field;
        }
        Assert.Equal("k", await Bad(async () => await client.RecommendAsync(Req(500, "item1"))));
        Assert.Equal("history", await Bad(async () => await client.RecommendAsync(Req(5, Enumerable.Repeat("item1", 60).ToArray()))));
        Assert.Equal("history[1]", await Bad(async () => await client.RecommendAsync(Req(5, "item1", ""))));
        Assert.Equal("candidates", await Bad(async () => await client.RecommendAsync(new RecommendRequest { K = 5, Candidates = -1 })));
        Assert.Equal("requests", await Bad(async () => await client.RecommendBatchAsync(new BatchRecommendRequest())));
        var batch = new BatchRecommendRequest();
        batch.Requests.Add(Req(5, "item1"));
        batch.Requests.Add(Req(99, "item1"));
        Assert.Equal("requests[1].k", await Bad(async () => await client.RecommendBatchAsync(batch)));
        Assert.Equal("candidates", await Bad(async () => await client.RerankAsync(new RerankRequest { K = 1 })));
        var rr = new RerankRequest { K = -1 };
        rr.Candidates.Add("item1");
        Assert.Equal("k", await Bad(async () => await client.RerankAsync(rr)));
        // a message over the size limit is refused by gRPC itself
        var huge = Req(5);
        huge.History.Add(new string('x', 2 << 20));
        var tooBig = await Assert.ThrowsAsync<RpcException>(async () => await client.RecommendAsync(huge));
        Assert.Equal(StatusCode.ResourceExhausted, tooBig.StatusCode);
        Assert.Equal(5, (await client.RecommendAsync(Req(5, "item1"))).Items.Count);
        // counted as 4xx (the caller's fault), not 5xx; the message over the size limit never reached the service
        Assert.Equal(4, svc.Metrics.Errors("recommend", RequestMetrics.Grpc, 4));
        Assert.Equal(2, svc.Metrics.Errors("recommend_batch", RequestMetrics.Grpc, 4));
        Assert.Equal(2, svc.Metrics.Errors("rerank", RequestMetrics.Grpc, 4));
        Assert.Equal(0, svc.Metrics.Errors("recommend", RequestMetrics.Grpc, 5));
    }

    [Fact]
    public async Task A_hot_reload_under_grpc_load_fails_no_call()
    {
        string a = fx.MakeBundle("g3", 13), b = fx.MakeBundle("g4", 14);
        await using var svc = await ServiceHost.StartAsync(Options(a) with
        {
            BundlePath = null, ModelRoot = fx.Dir.FullName, Version = "g3", AdminUrls = "http://127.0.0.1:0", AdminToken = "t0ken",
        });
        using var channel = GrpcChannel.ForAddress(svc.GrpcAddress!);
        var client = new Ranking.RankingClient(channel);
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        string v1 = (await client.GetModelAsync(new GetModelRequest())).ModelVersion;
        int failures = 0, ok = 0;
        var versions = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        string? firstError = null;
        using var stop = new CancellationTokenSource();
        var clients = Enumerable.Range(0, 8).Select(c => Task.Run(async () =>
        {
            var rng = new Random(c);
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var r = await client.RecommendAsync(Req(5, $"item{rng.Next(1, 41)}", $"item{rng.Next(1, 41)}"));
                    if (r.Items.Count == 5) Interlocked.Increment(ref ok); else Interlocked.Increment(ref failures);
                    versions.TryAdd(r.ModelVersion, 0);
                }
                catch (RpcException e) { Interlocked.Increment(ref failures); firstError ??= e.Status.ToString(); }
            }
        })).ToArray();
        await Task.Delay(300);
        using var admin = new HttpClient { BaseAddress = new Uri(svc.AdminAddress!) };
        admin.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "t0ken");
        var reload = await admin.PostAsync("/admin/reload", new StringContent(JsonFormatter.Default.Format(new ReloadRequest { Version = Path.GetFileName(b) }), System.Text.Encoding.UTF8, "application/json"));
        Assert.True(reload.IsSuccessStatusCode, await reload.Content.ReadAsStringAsync());
        await Task.Delay(300);
        stop.Cancel();
        await Task.WhenAll(clients);
        Assert.True(failures == 0, $"{failures} failed calls, first: {firstError}");
        Assert.True(ok > 20, $"only {ok} calls completed");
        string v2 = (await client.GetModelAsync(new GetModelRequest())).ModelVersion;
        Assert.NotEqual(v1, v2);
        Assert.Contains(v1, versions.Keys);
        Assert.Contains(v2, versions.Keys);
    }

    [Fact]
    public void Listen_urls_are_checked_and_name_their_flag()
    {
        Assert.Equal(2, ServiceHost.ParseUrls("http://127.0.0.1:8080; http://*:9000", "--urls").Count);
        Assert.Equal(System.Net.IPAddress.Loopback, ServiceHost.ParseUrls("http://localhost:1", "--urls")[0].Address);
        var e = Assert.Throws<ArgumentException>(() => ServiceHost.ParseUrls("https://127.0.0.1:8081", "--grpc-urls"));
        Assert.StartsWith("--grpc-urls:", e.Message);
        Assert.Throws<ArgumentException>(() => ServiceHost.ParseUrls("http://127.0.0.1", "--urls"));
        Assert.Throws<ArgumentException>(() => ServiceHost.ParseUrls("http://example.com:80", "--urls"));
    }
}
