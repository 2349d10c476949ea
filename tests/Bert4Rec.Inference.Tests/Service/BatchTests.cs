// /v1/recommend:batch through Kestrel: one ONNX Runtime run and one FAISS search call for a uniform batch, answers equal
// to the single answers, and the batch limits (400 naming the field).
using System.Net;
using System.Text;
using Bert4Rec.Contracts.Service;
using Bert4Rec.Inference.Recommendation;
using Bert4Rec.Service;
using Google.Protobuf;

namespace Bert4Rec.Inference.Tests.Service;

public class BatchTests(BundleFixture fx) : IClassFixture<BundleFixture>
{
    private static StringContent Json(IMessage m) => new(JsonFormatter.Default.Format(m), Encoding.UTF8, "application/json");

    private static RecommendRequest Req(Random rng, int i)
    {
        var r = new RecommendRequest { K = 1 + rng.Next(8), Candidates = i % 3 == 0 ? 0 : 10 + rng.Next(30), IncludeSeen = i % 4 == 0 };
        for (int h = rng.Next(0, 14); h > 0; h--) r.History.Add(rng.Next(10) == 0 ? $"unknown{h}" : $"item{1 + rng.Next(40)}");
        return r;
    }

    private static void AssertSame(RecommendResponse single, RecommendResponse inBatch, string what)
    {
        Assert.True(single.Items.Select(x => x.ItemId).SequenceEqual(inBatch.Items.Select(x => x.ItemId)),
            $"{what}: single [{string.Join(",", single.Items.Select(x => x.ItemId))}] batch [{string.Join(",", inBatch.Items.Select(x => x.ItemId))}]");
        for (int j = 0; j < single.Items.Count; j++) Assert.Equal(single.Items[j].Score, inBatch.Items[j].Score, 1e-4f);
        Assert.Equal(single.UnknownIds, inBatch.UnknownIds);
        Assert.Equal(single.ModelVersion, inBatch.ModelVersion);
    }

    [Fact]
    public async Task Batch_answers_equal_the_single_answers()
    {
        string bundle = fx.MakeBundle("batch-eq", 5);
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = bundle, Urls = "http://127.0.0.1:0" });
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        var rng = new Random(7);
        var batch = new BatchRecommendRequest();
        for (int i = 0; i < 40; i++) batch.Requests.Add(Req(rng, i));
        var b = await http.PostAsync("/v1/recommend:batch", Json(batch));
        Assert.Equal(HttpStatusCode.OK, b.StatusCode);
        var br = JsonParser.Default.Parse<BatchRecommendResponse>(await b.Content.ReadAsStringAsync());
        Assert.Equal(batch.Requests.Count, br.Responses.Count);
        for (int i = 0; i < batch.Requests.Count; i++)
        {
            var s = await http.PostAsync("/v1/recommend", Json(batch.Requests[i]));
            Assert.Equal(HttpStatusCode.OK, s.StatusCode);
            var sr = JsonParser.Default.Parse<RecommendResponse>(await s.Content.ReadAsStringAsync());
            Assert.Equal(batch.Requests[i].K == 0 ? 10 : batch.Requests[i].K, br.Responses[i].Items.Count);
            AssertSame(sr, br.Responses[i], $"requests[{i}]");
        }
    }

    [Fact]
    public void A_uniform_batch_is_one_onnx_run_and_one_faiss_search()
    {
        string bundle = fx.MakeBundle("batch-once", 6);
        using var b = ModelBundle.Load(bundle);
        var rec = new Recommender(b);
        var rng = new Random(3);
        var queries = Enumerable.Range(0, 32).Select(i => new RecommendQuery(
            Enumerable.Range(0, 1 + i % 9).Select(_ => $"item{1 + rng.Next(40)}").ToArray(), 5, 20, IncludeSeen: i % 2 == 0)).ToArray();
        long runs = b.Session.Runs, searches = b.Index!.Searches;
        var batch = rec.RecommendBatch(queries);
        Assert.Equal(1, b.Session.Runs - runs);
        Assert.Equal(1, b.Index.Searches - searches);
        // and the same answers one by one (32 runs, 32 searches)
        for (int i = 0; i < queries.Length; i++)
        {
            var one = rec.Recommend(queries[i].History, queries[i].K, queries[i].Candidates, queries[i].IncludeSeen);
            Assert.Equal(one.Items.Select(x => x.ItemId), batch[i].Items.Select(x => x.ItemId));
            for (int j = 0; j < one.Items.Count; j++) Assert.Equal(one.Items[j].Score, batch[i].Items[j].Score, 1e-4f);
        }
        Assert.Equal(1 + queries.Length, b.Session.Runs - runs);
        // mixed K: one search call per distinct K, still one ONNX Runtime run
        runs = b.Session.Runs; searches = b.Index.Searches;
        rec.RecommendBatch([queries[0], queries[1] with { Candidates = 30 }, queries[2] with { K = 40, Candidates = 40 }]);
        Assert.Equal(1, b.Session.Runs - runs);
        Assert.Equal(3, b.Index.Searches - searches);
    }

    [Fact]
    public async Task Batch_limits_answer_400_naming_the_field()
    {
        string bundle = fx.MakeBundle("batch-limits", 7);
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = bundle, Urls = "http://127.0.0.1:0", MaxBatch = 4, MaxK = 20 });
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        async Task<string> Field(BatchRecommendRequest req)
        {
            var r = await http.PostAsync("/v1/recommend:batch", Json(req));
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            var e = JsonParser.Default.Parse<ErrorResponse>(await r.Content.ReadAsStringAsync());
            Assert.Equal("INVALID_ARGUMENT", e.Code);
            return e.Field;
        }
        var rng = new Random(1);
        Assert.Equal("requests", await Field(new BatchRecommendRequest()));
        var tooMany = new BatchRecommendRequest();
        for (int i = 0; i < 5; i++) tooMany.Requests.Add(Req(rng, i));
        Assert.Equal("requests", await Field(tooMany));
        var badK = new BatchRecommendRequest();
        for (int i = 0; i < 3; i++) badK.Requests.Add(new RecommendRequest { K = 3, History = { "item1" } });
        badK.Requests[2].K = 21;
        Assert.Equal("requests[2].k", await Field(badK));
        badK.Requests[2].K = 3;
        badK.Requests[1].History.Add("");
        Assert.Equal("requests[1].history[1]", await Field(badK));
        badK.Requests[1].History.RemoveAt(1);
        badK.Requests[0].Candidates = -1;
        Assert.Equal("requests[0].candidates", await Field(badK));
        // at the limit it answers
        badK.Requests[0].Candidates = 0;
        badK.Requests.Add(new RecommendRequest { History = { "item2" } });
        var ok = await http.PostAsync("/v1/recommend:batch", Json(badK));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal(4, JsonParser.Default.Parse<BatchRecommendResponse>(await ok.Content.ReadAsStringAsync()).Responses.Count);
    }
}
