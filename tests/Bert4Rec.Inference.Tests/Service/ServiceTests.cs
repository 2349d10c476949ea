// End-to-end tests of the ranking service through a real Kestrel on loopback: JSON and binary protobuf, bad requests,
// unknown items, concurrent clients, hot reload (accepted and refused), and a corrupt bundle at start-up.
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Service;
using Bert4Rec.Inference.Recommendation;
using Bert4Rec.Retrieval;
using Bert4Rec.Service;
using Bert4Rec.Training.Export;
using Bert4Rec.Training.Model;
using Google.Protobuf;

namespace Bert4Rec.Inference.Tests.Service;

public sealed class BundleFixture : IDisposable
{
    public DirectoryInfo Dir { get; } = Directory.CreateTempSubdirectory("b4r-svc-");
    public ModelConfig Config { get; } = new() { ItemCount = 40, Hidden = 16, Heads = 2, Layers = 1, MaxLength = 10 };

    /// <summary>A bundle with random weights (seeded) and a Flat index.</summary>
    public string MakeBundle(string name, int seed, ModelKind kind = ModelKind.Bert4Rec)
    {
        var cfg = Config with { Kind = kind };
        using var m = SequenceModels.Create(cfg, 2, 1);
        m.InitializeParameters((ulong)seed);
        var rng = new Random(seed);
        for (int i = 0; i < m.Parameters.Length; i++) m.Parameters[i] += (float)(rng.NextDouble() - 0.5) * 0.5f;
        string dir = Path.Combine(Dir.FullName, name);
        var vocab = new Vocabulary(Enumerable.Range(1, Config.ItemCount).Select(i => $"item{i}").ToArray());
        BundleWriter.Write(dir, cfg, m.Parameters, vocab, "test");
        BundleIndexer.Build(dir, "Flat", new SearchParameters(64, 8), 40);
        return dir;
    }

    public void Dispose() => Dir.Delete(true);
}

public class ServiceTests(BundleFixture fx) : IClassFixture<BundleFixture>
{
    internal static StringContent Json(IMessage m) => new(JsonFormatter.Default.Format(m), Encoding.UTF8, "application/json");

    internal static ByteArrayContent Proto(IMessage m)
    {
        var c = new ByteArrayContent(m.ToByteArray());
        c.Headers.ContentType = new MediaTypeHeaderValue(ServiceHost.Protobuf);
        return c;
    }

    internal static RecommendRequest Req(int k, params string[] history)
    {
        var r = new RecommendRequest { K = k };
        r.History.AddRange(history);
        return r;
    }

    [Fact]
    public async Task Recommend_over_json_and_protobuf_agree_with_the_in_process_recommender()
    {
        string bundle = fx.MakeBundle("a", 1);
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = bundle, Urls = "http://127.0.0.1:0" });
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        var j = await http.PostAsync("/v1/recommend", Json(Req(5, "item3", "item7", "nope")));
        Assert.Equal(HttpStatusCode.OK, j.StatusCode);
        var jr = JsonParser.Default.Parse<RecommendResponse>(await j.Content.ReadAsStringAsync());
        var p = await http.PostAsync("/v1/recommend", Proto(Req(5, "item3", "item7", "nope")));
        Assert.Equal(ServiceHost.Protobuf, p.Content.Headers.ContentType!.MediaType);
        var pr = RecommendResponse.Parser.ParseFrom(await p.Content.ReadAsByteArrayAsync());
        Assert.Equal(jr.Items.Select(i => i.ItemId), pr.Items.Select(i => i.ItemId));
        Assert.Equal(new[] { "nope" }, jr.UnknownIds);
        Assert.Equal(5, jr.Items.Count);
        Assert.DoesNotContain(jr.Items, i => i.ItemId is "item3" or "item7");   // seen items dropped

        using var b = ModelBundle.Load(bundle);
        var direct = new Recommender(b).Recommend(new[] { "item3", "item7" }, 5);
        Assert.Equal(direct.Items.Select(i => i.ItemId), jr.Items.Select(i => i.ItemId));
        // the FAISS stage returns the model's own top items: compare with exhaustive rerank of every unseen item
        var all = Enumerable.Range(1, fx.Config.ItemCount).Select(i => $"item{i}").Where(i => i is not ("item3" or "item7")).ToArray();
        var exhaustive = new Recommender(b).Rerank(new[] { "item3", "item7" }, all, 5);
        Assert.Equal(exhaustive.Items.Select(i => i.ItemId), jr.Items.Select(i => i.ItemId));
        for (int i = 0; i < 5; i++) Assert.Equal(exhaustive.Items[i].Score, jr.Items[i].Score, 4);

        var rr = new RerankRequest { K = 2 };
        rr.History.Add("item1");
        rr.Candidates.AddRange(new[] { "item5", "item6", "item9", "zzz" });
        var rres = RerankResponse.Parser.ParseFrom(await (await http.PostAsync("/v1/rerank", Proto(rr))).Content.ReadAsByteArrayAsync());
        Assert.Equal(2, rres.Items.Count);
        Assert.Contains("zzz", rres.UnknownCandidateIds);
        Assert.Empty(rres.UnknownIds);

        var info = JsonParser.Default.Parse<ModelInfo>(await http.GetStringAsync("/v1/model"));
        Assert.Equal(40, info.ItemCount);
        Assert.Equal("Flat", info.IndexFactory);
        Assert.Equal("ok\n", await http.GetStringAsync("/healthz"));
        Assert.Equal("ready\n", await http.GetStringAsync("/readyz"));
        string scrape = await http.GetStringAsync("/metrics");
        Assert.Contains("bert4rec_requests_total{endpoint=\"recommend\",protocol=\"http-json\",status=\"200\",arm=\"primary\"} 1\n", scrape);
        Assert.Contains("bert4rec_requests_total{endpoint=\"recommend\",protocol=\"http-protobuf\",status=\"200\",arm=\"primary\"} 1\n", scrape);
    }

    [Theory]
    [InlineData(ModelKind.SasRec)]
    [InlineData(ModelKind.Gru4Rec)]
    public async Task A_bundle_of_every_model_kind_is_served_with_the_models_own_ranking(ModelKind kind)
    {
        string bundle = fx.MakeBundle($"kind-{kind}", 11, kind);
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = bundle, Urls = "http://127.0.0.1:0" });
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        var jr = JsonParser.Default.Parse<RecommendResponse>(await (await http.PostAsync("/v1/recommend", Json(Req(5, "item3", "item7")))).Content.ReadAsStringAsync());
        var pr = RecommendResponse.Parser.ParseFrom(await (await http.PostAsync("/v1/recommend", Proto(Req(5, "item3", "item7")))).Content.ReadAsByteArrayAsync());
        Assert.Equal(5, jr.Items.Count);
        Assert.Equal(jr.Items.Select(i => i.ItemId), pr.Items.Select(i => i.ItemId));
        using var b = ModelBundle.Load(bundle);
        Assert.Equal(kind, b.Config.Kind);
        var all = Enumerable.Range(1, fx.Config.ItemCount).Select(i => $"item{i}").Where(i => i is not ("item3" or "item7")).ToArray();
        var exhaustive = new Recommender(b).Rerank(new[] { "item3", "item7" }, all, 5);
        Assert.Equal(exhaustive.Items.Select(i => i.ItemId), jr.Items.Select(i => i.ItemId));
        for (int i = 0; i < 5; i++) Assert.Equal(exhaustive.Items[i].Score, jr.Items[i].Score, 4);
        // an empty history is a valid request for a kind without [MASK]: the model's state for no items
        var empty = JsonParser.Default.Parse<RecommendResponse>(await (await http.PostAsync("/v1/recommend", Json(Req(3)))).Content.ReadAsStringAsync());
        Assert.Equal(3, empty.Items.Count);
    }

    [Fact]
    public async Task Malformed_oversized_and_empty_requests_get_400_naming_the_field()
    {
        string bundle = fx.MakeBundle("b", 2);
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = bundle, Urls = "http://127.0.0.1:0", MaxHistory = 50, MaxK = 20, MaxBodyBytes = 4096 });
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        async Task<ErrorResponse> Bad(HttpContent c, string path = "/v1/recommend")
        {
            var r = await http.PostAsync(path, c);
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            return JsonParser.Default.Parse<ErrorResponse>(await r.Content.ReadAsStringAsync());
        }
        Assert.Equal("body", (await Bad(new StringContent("{not json", Encoding.UTF8, "application/json"))).Field);
        Assert.Equal("body", (await Bad(new StringContent("", Encoding.UTF8, "application/json"))).Field);
        Assert.Equal("k", (await Bad(Json(Req(500, "item1")))).Field);
        Assert.Equal("history", (await Bad(Json(Req(5, Enumerable.Range(0, 60).Select(i => "item1").ToArray())))).Field);
        Assert.Equal("history[1]", (await Bad(Json(Req(5, "item1", "")))).Field);
        var big = new StringContent(new string(' ', 10000) + "{}", Encoding.UTF8, "application/json");
        Assert.Equal("INVALID_ARGUMENT", (await Bad(big)).Code);
        var junk = new ByteArrayContent(new byte[] { 0xff, 0xff, 0xff, 0x0f, 0x01 });
        junk.Headers.ContentType = new MediaTypeHeaderValue(ServiceHost.Protobuf);
        var r = await http.PostAsync("/v1/recommend", junk);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Equal("candidates", (await Bad(Json(new RerankRequest { K = 1 }), "/v1/rerank")).Field);
        // the service still serves
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/recommend", Json(Req(3, "item1")))).StatusCode);
    }

    [Fact]
    public async Task Concurrent_clients_and_hot_reloads_see_no_failed_request_and_a_bad_bundle_is_refused()
    {
        string a = fx.MakeBundle("c1", 3), b = fx.MakeBundle("c2", 4);
        string bad = fx.MakeBundle("c3", 5);
        File.AppendAllText(Path.Combine(bad, BundleLayout.Model), "tampered");
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions { ModelRoot = fx.Dir.FullName, Version = "c1", Urls = "http://127.0.0.1:0", AdminUrls = "http://127.0.0.1:0", AdminToken = "t0ken" });
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        using var admin = new HttpClient { BaseAddress = new Uri(svc.AdminAddress!) };
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "t0ken");
        string v1 = JsonParser.Default.Parse<ModelInfo>(await http.GetStringAsync("/v1/model")).ModelVersion;
        int failures = 0, ok = 0;
        using var stop = new CancellationTokenSource();
        var clients = Enumerable.Range(0, 8).Select(c => Task.Run(async () =>
        {
            var rng = new Random(c);
            while (!stop.IsCancellationRequested)
            {
                var resp = await http.PostAsync("/v1/recommend", Proto(Req(5, $"item{rng.Next(1, 41)}", $"item{rng.Next(1, 41)}")));
                if (resp.IsSuccessStatusCode) Interlocked.Increment(ref ok); else Interlocked.Increment(ref failures);
            }
        })).ToArray();
        await Task.Delay(300);
        var reload = await admin.PostAsync("/admin/reload", Json(new ReloadRequest { Version = "c2" }));
        Assert.Equal(HttpStatusCode.OK, reload.StatusCode);
        await Task.Delay(200);
        var refused = await admin.PostAsync("/admin/reload", Json(new ReloadRequest { Version = "c3" }));
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        var why = JsonParser.Default.Parse<ErrorResponse>(await refused.Content.ReadAsStringAsync());
        Assert.Equal("model.onnx", why.Field);
        Assert.Contains("keeps serving", why.Message);
        Assert.DoesNotContain(fx.Dir.FullName, why.Message);
        await Task.Delay(200);
        stop.Cancel();
        await Task.WhenAll(clients);
        Assert.Equal(0, failures);
        Assert.True(ok > 20, $"only {ok} requests completed");
        var info = JsonParser.Default.Parse<ModelInfo>(await http.GetStringAsync("/v1/model"));
        Assert.NotEqual(v1, info.ModelVersion);
        Assert.Equal("c2", info.Version);       // the refused bundle did not replace it
        Assert.Equal("", info.BundlePath);      // no path shown to callers
        Assert.Contains("c3", info.Versions);
    }

    [Fact]
    public async Task A_corrupt_or_missing_bundle_fails_start_up_with_a_clear_message()
    {
        string bundle = fx.MakeBundle("d", 6);
        var bytes = File.ReadAllBytes(Path.Combine(bundle, BundleLayout.Vocabulary));
        bytes[0] ^= 0x20;
        File.WriteAllBytes(Path.Combine(bundle, BundleLayout.Vocabulary), bytes);
        var e = await Assert.ThrowsAsync<BundleException>(() => ServiceHost.StartAsync(new ServiceOptions { BundlePath = bundle, Urls = "http://127.0.0.1:0" }));
        Assert.Contains("vocab.txt", e.Message);
        var e2 = await Assert.ThrowsAsync<BundleException>(() => ServiceHost.StartAsync(new ServiceOptions { BundlePath = Path.Combine(fx.Dir.FullName, "missing"), Urls = "http://127.0.0.1:0" }));
        Assert.Contains("not found", e2.Message);
    }
}
