// Canary / A-B serving through a real Kestrel: two versions under one model root, a deterministic split by a stable hash
// of the caller's user key (field or header; none = primary) close to the configured share, the arm named in every
// response (JSON, protobuf, gRPC) and counted per arm in /metrics, and the swap rules (a bad canary refused while the old
// state keeps serving, promotion by reload, the poller never promoting a canary on its own).
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Bert4Rec.Contracts.Service;
using Bert4Rec.Inference.Recommendation;
using Bert4Rec.Service;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace Bert4Rec.Inference.Tests.Service;

public sealed class CanaryTests(BundleFixture fx) : IClassFixture<BundleFixture>
{
    private const string Token = "canary-t0ken";

    private static StringContent Json(IMessage m) => new(JsonFormatter.Default.Format(m), Encoding.UTF8, "application/json");

    /// <summary>A model root holding versions "1" and "2" (different weights) and, if asked, a corrupt version "bad".</summary>
    private string Root(string tag, bool withBad = false)
    {
        string root = Path.Combine(fx.Dir.FullName, "root-" + tag);
        Directory.CreateDirectory(root);
        Directory.Move(fx.MakeBundle($"{tag}-v1", 41), Path.Combine(root, "1"));
        Directory.Move(fx.MakeBundle($"{tag}-v2", 42), Path.Combine(root, "2"));
        if (withBad)
        {
            string bad = Path.Combine(root, "bad");
            Directory.Move(fx.MakeBundle($"{tag}-bad", 43), bad);
            var onnx = Path.Combine(bad, "model.onnx");
            var bytes = File.ReadAllBytes(onnx);
            bytes[bytes.Length / 2] ^= 0x5A;       // its hash no longer matches the manifest
            File.WriteAllBytes(onnx, bytes);
        }
        return root;
    }

    private static ServiceOptions Options(string root, string? canary = null, double share = 0.1) => new()
    {
        ModelRoot = root, Version = "1", Canary = canary, CanaryShare = share, Urls = "http://127.0.0.1:0",
        GrpcUrls = "http://127.0.0.1:0", AdminUrls = "http://127.0.0.1:0", AdminToken = Token,
    };

    private static RecommendRequest Req(string? key, params string[] history)
    {
        var r = new RecommendRequest { K = 5, UserKey = key ?? "" };
        r.History.AddRange(history);
        return r;
    }

    private static async Task<(RecommendResponse Body, string? ArmHeader)> Recommend(HttpClient http, RecommendRequest req, string? headerKey = null)
    {
        using var msg = new HttpRequestMessage(HttpMethod.Post, "/v1/recommend") { Content = Json(req) };
        if (headerKey != null) msg.Headers.Add("X-User-Key", headerKey);
        var resp = await http.SendAsync(msg);
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        var arm = resp.Headers.TryGetValues("X-Model-Arm", out var v) ? v.Single() : null;
        return (JsonParser.Default.Parse<RecommendResponse>(await resp.Content.ReadAsStringAsync()), arm);
    }

    private static long MetricValue(string metrics, string series)
    {
        var line = metrics.Split('\n').SingleOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal));
        return line == null ? 0 : long.Parse(line[(series.Length + 1)..]);
    }

    [Fact]
    public void The_split_point_is_a_pinned_stable_hash()
    {
        // SHA-256 of the UTF-8 key, first 8 bytes big-endian over 2^64 (computed independently with Python's hashlib)
        Assert.Equal(0.7764059241441005, BundleHolder.SplitPoint("user-1"), 12);
        Assert.Equal(0.1712650529798836, BundleHolder.SplitPoint("alice"), 12);
    }

    [Fact]
    public async Task The_split_is_deterministic_close_to_the_share_and_named_in_responses_and_metrics()
    {
        const double share = 0.2;
        await using var svc = await ServiceHost.StartAsync(Options(Root("split"), "2", share));
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        var info = JsonParser.Default.Parse<ModelInfo>(await http.GetStringAsync("/v1/model"));
        Assert.Equal("1", info.Version);
        Assert.Equal("2", info.CanaryVersion);
        Assert.Equal(share, info.CanaryShare);

        const int users = 400;
        var arms = new Dictionary<string, string>();
        var modelVersion = new Dictionary<string, string>();
        for (int u = 0; u < users; u++)
        {
            string key = $"user-{u}";
            // half the keys in the request field, half in the X-User-Key header
            var (body, header) = u % 2 == 0 ? await Recommend(http, Req(key, "item3", "item9")) : await Recommend(http, Req(null, "item3", "item9"), key);
            string expected = BundleHolder.SplitPoint(key) < share ? "canary" : "primary";
            Assert.Equal(expected, body.Arm);
            Assert.Equal(body.Arm, header);
            Assert.Equal(body.Arm == "canary" ? "2" : "1", body.Version);
            Assert.Equal(5, body.Items.Count);
            arms[key] = body.Arm;
            modelVersion[body.Arm] = body.ModelVersion;
        }
        int canary = arms.Values.Count(a => a == "canary");
        // 400 keys at 20 %: 80 expected, sd 8; the split is deterministic, so this bound cannot flake
        Assert.InRange(canary, (int)(users * share) - 30, (int)(users * share) + 30);
        Assert.NotEqual(modelVersion["canary"], modelVersion["primary"]);

        // the same key always lands on the same arm, whichever way it is given; the field wins over the header
        for (int u = 0; u < 40; u++)
        {
            string key = $"user-{u}";
            Assert.Equal(arms[key], (await Recommend(http, Req(null, "item1"), key)).Body.Arm);
        }
        string canaryKey = arms.First(a => a.Value == "canary").Key, primaryKey = arms.First(a => a.Value == "primary").Key;
        Assert.Equal("canary", (await Recommend(http, Req(canaryKey, "item1"), primaryKey)).Body.Arm);
        // no key: the primary
        for (int i = 0; i < 20; i++) Assert.Equal("primary", (await Recommend(http, Req(null, $"item{i + 1}"))).Body.Arm);

        // the canary's answer is version 2's own
        var (cBody, _) = await Recommend(http, Req(canaryKey, "item3", "item9"));
        using (var b2 = ModelBundle.Load(Path.Combine(fx.Dir.FullName, "root-split", "2")))
            Assert.Equal(new Recommender(b2).Recommend(["item3", "item9"], 5).Items.Select(i => i.ItemId), cBody.Items.Select(i => i.ItemId));

        // per-arm counts in /metrics equal what the callers saw
        string metrics = await http.GetStringAsync("/metrics");
        long canaryAnswers = canary + arms.Take(40).Count(a => a.Value == "canary") + 2;     // + the field-wins call and the answer above
        Assert.Equal(canaryAnswers, MetricValue(metrics, "bert4rec_arm_requests_total{endpoint=\"recommend\",protocol=\"http-json\",arm=\"canary\",version=\"2\"}"));
        Assert.Equal(users + 40 + 20 + 2 - canaryAnswers, MetricValue(metrics, "bert4rec_arm_requests_total{endpoint=\"recommend\",protocol=\"http-json\",arm=\"primary\",version=\"1\"}"));
    }

    [Fact]
    public async Task Protobuf_grpc_rerank_and_batch_name_the_arm_and_each_batch_item_follows_its_key()
    {
        await using var svc = await ServiceHost.StartAsync(Options(Root("proto"), "2", 0.5));
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        var keys = Enumerable.Range(0, 40).Select(i => $"k{i}").ToArray();
        string Expected(string key) => BundleHolder.SplitPoint(key) < 0.5 ? "canary" : "primary";
        Assert.Contains(keys, k => Expected(k) == "canary");
        Assert.Contains(keys, k => Expected(k) == "primary");

        // binary protobuf
        var c = new ByteArrayContent(Req(keys[0], "item2").ToByteArray());
        c.Headers.ContentType = new MediaTypeHeaderValue(ServiceHost.Protobuf);
        var p = RecommendResponse.Parser.ParseFrom(await (await http.PostAsync("/v1/recommend", c)).Content.ReadAsByteArrayAsync());
        Assert.Equal(Expected(keys[0]), p.Arm);

        // gRPC: the field, or the x-user-key metadata
        using var channel = GrpcChannel.ForAddress(svc.GrpcAddress!);
        var client = new Ranking.RankingClient(channel);
        foreach (var key in keys.Take(10))
        {
            Assert.Equal(Expected(key), (await client.RecommendAsync(Req(key, "item2"))).Arm);
            Assert.Equal(Expected(key), (await client.RecommendAsync(Req(null, "item2"), new Metadata { { "x-user-key", key } })).Arm);
        }
        Assert.Equal("primary", (await client.RecommendAsync(Req(null, "item2"))).Arm);

        // rerank
        var rr = new RerankRequest { History = { "item1" }, Candidates = { "item4", "item5" }, UserKey = keys[1] };
        var rerank = JsonParser.Default.Parse<RerankResponse>(await (await http.PostAsync("/v1/rerank", Json(rr))).Content.ReadAsStringAsync());
        Assert.Equal(Expected(keys[1]), rerank.Arm);
        Assert.Equal(Expected(keys[1]) == "canary" ? "2" : "1", rerank.Version);

        // a batch: each item on its own key's arm, answers equal to the single ones
        var batch = new BatchRecommendRequest();
        foreach (var key in keys) batch.Requests.Add(Req(key, "item3", "item5"));
        var br = await http.PostAsync("/v1/recommend:batch", Json(batch));
        Assert.Equal(HttpStatusCode.OK, br.StatusCode);
        Assert.False(br.Headers.Contains("X-Model-Arm"));       // mixed arms: only the items say
        var bresp = JsonParser.Default.Parse<BatchRecommendResponse>(await br.Content.ReadAsStringAsync());
        for (int i = 0; i < keys.Length; i++)
        {
            Assert.Equal(Expected(keys[i]), bresp.Responses[i].Arm);
            var single = (await Recommend(http, Req(keys[i], "item3", "item5"))).Body;
            Assert.Equal(single.Items.Select(x => x.ItemId), bresp.Responses[i].Items.Select(x => x.ItemId));
            Assert.Equal(single.ModelVersion, bresp.Responses[i].ModelVersion);
        }
        string metrics = await http.GetStringAsync("/metrics");
        Assert.Equal(keys.Count(k => Expected(k) == "canary"),
            MetricValue(metrics, "bert4rec_arm_requests_total{endpoint=\"recommend_batch\",protocol=\"http-json\",arm=\"canary\",version=\"2\"}"));
        Assert.Equal(20, MetricValue(metrics, "bert4rec_arm_requests_total{endpoint=\"recommend\",protocol=\"grpc\",arm=\"canary\",version=\"2\"}")
            + MetricValue(metrics, "bert4rec_arm_requests_total{endpoint=\"recommend\",protocol=\"grpc\",arm=\"primary\",version=\"1\"}") - 1);

        // a user key over the limit names its field or header
        var longKey = new string('x', BundleHolder.MaxUserKeyLength + 1);
        var e1 = await http.PostAsync("/v1/recommend", Json(Req(longKey, "item1")));
        Assert.Equal(HttpStatusCode.BadRequest, e1.StatusCode);
        Assert.Equal("user_key", JsonParser.Default.Parse<ErrorResponse>(await e1.Content.ReadAsStringAsync()).Field);
        using var m2 = new HttpRequestMessage(HttpMethod.Post, "/v1/recommend") { Content = Json(Req(null, "item1")) };
        m2.Headers.Add("X-User-Key", longKey);
        var e2 = await http.SendAsync(m2);
        Assert.Equal(HttpStatusCode.BadRequest, e2.StatusCode);
        Assert.Equal("X-User-Key", JsonParser.Default.Parse<ErrorResponse>(await e2.Content.ReadAsStringAsync()).Field);
        batch.Requests[3].UserKey = longKey;
        var e3 = await http.PostAsync("/v1/recommend:batch", Json(batch));
        Assert.Equal("requests[3].user_key", JsonParser.Default.Parse<ErrorResponse>(await e3.Content.ReadAsStringAsync()).Field);
    }

    [Fact]
    public async Task Admin_canary_refuses_bad_versions_keeps_the_old_state_and_promotion_ends_the_split()
    {
        await using var svc = await ServiceHost.StartAsync(Options(Root("admin", withBad: true)));
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        using var admin = new HttpClient { BaseAddress = new Uri(svc.AdminAddress!) };
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        // keys that the split sends to the canary at share 0.5
        var canaryKeys = Enumerable.Range(0, 100).Select(i => $"u{i}").Where(k => BundleHolder.SplitPoint(k) < 0.5).Take(5).ToArray();
        async Task<string> ArmOf(string key) => (await Recommend(http, Req(key, "item1"))).Body.Version;
        async Task<(HttpStatusCode, string)> SetCanary(string version, double share, HttpClient? client = null)
        {
            var r = await (client ?? admin).PostAsync("/admin/canary", Json(new CanaryRequest { Version = version, Share = share }));
            string body = await r.Content.ReadAsStringAsync();
            return (r.StatusCode, r.IsSuccessStatusCode ? "" : JsonParser.Default.Parse<ErrorResponse>(body).Field);
        }

        Assert.Equal("1", await ArmOf(canaryKeys[0]));                                  // no canary yet
        Assert.Equal(HttpStatusCode.Conflict, (await SetCanary("bad", 0.5)).Item1);     // corrupt: refused
        Assert.Null(svc.Holder.CanaryName);
        Assert.Equal("1", await ArmOf(canaryKeys[0]));
        using (var anonymous = new HttpClient { BaseAddress = new Uri(svc.AdminAddress!) })
            Assert.Equal(HttpStatusCode.Unauthorized, (await SetCanary("2", 0.5, anonymous)).Item1);
        Assert.Equal((HttpStatusCode.BadRequest, "share"), await SetCanary("2", 1.5));
        Assert.Equal((HttpStatusCode.BadRequest, "share"), await SetCanary("2", -0.1));
        Assert.Equal((HttpStatusCode.BadRequest, "version"), await SetCanary("1", 0.5));      // the primary itself
        Assert.Equal((HttpStatusCode.BadRequest, "version"), await SetCanary("../1", 0.5));   // a path
        Assert.Equal((HttpStatusCode.NotFound, "version"), await SetCanary("nope", 0.5));
        Assert.Null(svc.Holder.CanaryName);

        Assert.Equal(HttpStatusCode.OK, (await SetCanary("2", 0.5)).Item1);
        foreach (var k in canaryKeys) Assert.Equal("2", await ArmOf(k));
        // a bad canary while one is serving: refused, the old canary keeps its share
        Assert.Equal(HttpStatusCode.Conflict, (await SetCanary("bad", 0.5)).Item1);
        Assert.Equal("2", svc.Holder.CanaryName);
        foreach (var k in canaryKeys) Assert.Equal("2", await ArmOf(k));
        // share 0: loaded but answers nobody; share back up: the same keys return
        Assert.Equal(HttpStatusCode.OK, (await SetCanary("2", 0)).Item1);
        foreach (var k in canaryKeys) Assert.Equal("1", await ArmOf(k));
        Assert.Equal(HttpStatusCode.OK, (await SetCanary("2", 0.5)).Item1);
        foreach (var k in canaryKeys) Assert.Equal("2", await ArmOf(k));

        // promotion: reload names the canary; it becomes the primary and the split ends
        var rel = await admin.PostAsync("/admin/reload", Json(new ReloadRequest { Version = "2" }));
        Assert.Equal(HttpStatusCode.OK, rel.StatusCode);
        var info = JsonParser.Default.Parse<ModelInfo>(await http.GetStringAsync("/v1/model"));
        Assert.Equal("2", info.Version);
        Assert.Equal("", info.CanaryVersion);
        Assert.Equal(0, info.CanaryShare);
        foreach (var k in canaryKeys)
        {
            var (body, _) = await Recommend(http, Req(k, "item1"));
            Assert.Equal(("primary", "2"), (body.Arm, body.Version));
        }
        // ending a canary: an empty version
        Assert.Equal(HttpStatusCode.OK, (await SetCanary("1", 0.3)).Item1);
        Assert.Equal("1", svc.Holder.CanaryName);
        Assert.Equal(HttpStatusCode.OK, (await SetCanary("", 0)).Item1);
        Assert.Null(svc.Holder.CanaryName);
        Assert.Equal(HttpStatusCode.OK, (await SetCanary("1", 0.3)).Item1);
        var empty = await admin.PostAsync("/admin/canary", new ByteArrayContent([]) { Headers = { ContentType = new MediaTypeHeaderValue(ServiceHost.Protobuf) } });
        Assert.Equal(HttpStatusCode.OK, empty.StatusCode);       // the empty protobuf message: no version, the canary ends
        Assert.Null(svc.Holder.CanaryName);
        foreach (var k in canaryKeys) Assert.Equal("primary", (await Recommend(http, Req(k, "item1"))).Body.Arm);
    }

    [Fact]
    public async Task Start_refuses_a_bad_canary_and_the_poller_never_promotes_one()
    {
        string root = Root("start", withBad: true);
        var e = await Assert.ThrowsAsync<Bert4Rec.Contracts.BundleException>(() => ServiceHost.StartAsync(Options(root, "bad", 0.1)));
        Assert.Contains("model.onnx", e.Message);
        var same = await Assert.ThrowsAsync<Bert4Rec.Contracts.BundleException>(() => ServiceHost.StartAsync(Options(root, "1", 0.1)));
        Assert.Contains("--canary", same.Message);
        var single = await Assert.ThrowsAsync<Bert4Rec.Contracts.BundleException>(() => ServiceHost.StartAsync(new ServiceOptions
            { BundlePath = Path.Combine(root, "1"), Canary = "2", Urls = "http://127.0.0.1:0" }));
        Assert.Contains("--canary", single.Message);

        // "bad" sorts after "2" but is refused; with the poller on, the canary "2" (a newer version than "1") stays a canary
        File.Delete(Path.Combine(root, "bad", "manifest.pb"));      // not a complete version any more
        await using var svc = await ServiceHost.StartAsync(Options(root, "2", 0.3) with { PollInterval = TimeSpan.FromMilliseconds(50) });
        await Task.Delay(400);
        Assert.Equal("1", svc.Holder.CurrentName);
        Assert.Equal("2", svc.Holder.CanaryName);
        Assert.Equal(0, svc.Metrics.Reloads);
    }
}
