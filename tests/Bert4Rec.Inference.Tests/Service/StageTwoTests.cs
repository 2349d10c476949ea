// A two-model bundle (a sequential stage one and a NeuMF stage two with user and item fields) through the recommender and
// a real Kestrel: stage two reorders stage one's candidates with the trainer's own logits, a request's user features
// replace the stored ones, an unknown user keeps stage one's order, and bad features are refused naming the field.
using System.Net;
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Service;
using Bert4Rec.Inference.Recommendation;
using Bert4Rec.Retrieval;
using Bert4Rec.Service;
using Bert4Rec.Training.Export;
using Bert4Rec.Training.Features;
using Bert4Rec.Training.Model;
using Google.Protobuf;
using static Bert4Rec.Inference.Tests.Service.ServiceTests;

namespace Bert4Rec.Inference.Tests.Service;

public sealed class TwoModelFixture : IDisposable
{
    public DirectoryInfo Dir { get; } = Directory.CreateTempSubdirectory("b4r-stage2-");
    public const int Items = 40, Users = 6;
    public string[] UserIds { get; } = Enumerable.Range(0, Users).Select(u => $"user{u}").ToArray();
    public ModelConfig StageTwoConfig { get; }
    public float[] StageTwoParameters { get; }
    public int[] ItemSlots { get; }
    public FeatureTable UserTable { get; }
    public string TwoModel { get; }
    public string OneModel { get; }

    public TwoModelFixture()
    {
        var fields = UserFields();
        var rng = new Random(7);
        var slots = Enumerable.Range(0, Users).SelectMany(_ => new[] { rng.Next(2, 5), rng.Next(1, 4), rng.Next(2, 5), rng.Next(0, 2) == 0 ? 0 : 2 }).ToArray();
        UserTable = new FeatureTable(fields, Users, slots);
        ItemSlots = Enumerable.Range(0, Items + 1).Select(i => i == 0 ? 0 : rng.Next(1, 4)).ToArray();
        StageTwoConfig = new ModelConfig
        {
            Kind = ModelKind.NeuMf, ItemCount = Items, UserCount = Users, Hidden = 8, Layers = 2, Heads = 1,
            UserFeatures = UserTable.Shape, ItemFeatures = "4x1",
        };
        using var neumf = new NeuMfModel(StageTwoConfig, UserTable.Slots, ItemSlots, 64, 1);
        neumf.InitializeParameters(5);
        for (int i = 0; i < neumf.Parameters.Length; i++) neumf.Parameters[i] += (float)(rng.NextDouble() - 0.5) * 0.8f;
        StageTwoParameters = neumf.Parameters.ToArray();

        var cfg = new ModelConfig { Kind = ModelKind.SasRec, ItemCount = Items, Hidden = 16, Heads = 2, Layers = 1, MaxLength = 10 };
        using var m = SequenceModels.Create(cfg, 2, 1);
        m.InitializeParameters(9);
        var vocab = new Vocabulary(Enumerable.Range(1, Items).Select(i => $"item{i}").ToArray());
        TwoModel = Path.Combine(Dir.FullName, "two");
        OneModel = Path.Combine(Dir.FullName, "one");
        BundleWriter.Write(TwoModel, cfg, m.Parameters, vocab, "test", stageTwo: new StageTwoModel(StageTwoConfig, StageTwoParameters, ItemSlots, UserIds, UserTable));
        BundleWriter.Write(OneModel, cfg, m.Parameters, vocab, "test");
        foreach (var b in new[] { TwoModel, OneModel }) BundleIndexer.Build(b, "Flat", new SearchParameters(64, 8), 40);
    }

    /// <summary>The user fields of the two-model tests: age (numeric, buckets &lt;20, 20..40, &gt;=40, ids 2..4), gender
    /// (categorical M, F: ids 2, 3), genres (multi-hot a, b, c: ids 2..4, width 2).</summary>
    internal static FeatureField[] UserFields() =>
    [
        new() { Name = "age", Kind = FeatureKind.Numeric, Width = 1, Values = ["<20", "20-40", ">=40"], Boundaries = [20, 40] },
        new() { Name = "gender", Kind = FeatureKind.Categorical, Width = 1, Values = ["M", "F"] },
        new() { Name = "genres", Kind = FeatureKind.MultiHot, Width = 2, Values = ["a", "b", "c"] },
    ];

    /// <summary>The trainer's logits for one user row of value ids (the stored row, or one a request changed).</summary>
    public float[] Logits(int user, int[] userRow, int[] items)
    {
        var slots = UserTable.Slots.ToArray();
        userRow.CopyTo(slots.AsSpan(user * UserTable.Width));
        using var neumf = new NeuMfModel(StageTwoConfig, slots, ItemSlots, 64, 1);
        StageTwoParameters.CopyTo(neumf.Parameters, 0);
        var logits = new float[items.Length];
        neumf.Logits(Enumerable.Repeat(user, items.Length).ToArray(), items, logits);
        return logits;
    }

    public void Dispose() => Dir.Delete(true);
}

public class StageTwoTests(TwoModelFixture fx) : IClassFixture<TwoModelFixture>
{
    private static RecommendRequest User(RecommendRequest r, string id, params (string, string)[] features)
    {
        r.UserId = id;
        foreach (var (k, v) in features) r.UserFeatures[k] = v;
        return r;
    }

    /// <summary>The top k of every unseen item by the trainer's logits for a user row.</summary>
    private List<(string Id, float Score)> Expected(int user, int[] row, string[] history, int k)
    {
        var items = Enumerable.Range(1, TwoModelFixture.Items).Where(i => !history.Contains($"item{i}")).ToArray();
        var logits = fx.Logits(user, row, items);
        return items.Select((i, j) => ($"item{i}", logits[j])).OrderByDescending(x => x.Item2).ThenBy(x => x.Item1, StringComparer.Ordinal).Take(k).ToList();
    }

    [Fact]
    public async Task Stage_two_orders_stage_one_candidates_by_the_trainers_logits_over_json_and_protobuf()
    {
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = fx.TwoModel, Urls = "http://127.0.0.1:0" });
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        string[] history = ["item3", "item7"];
        var stored = fx.UserTable.Row(2).ToArray();

        // a known user with its stored features; candidates (200) cover every unseen item, so the answer is NeuMF's top 5
        var j = JsonParser.Default.Parse<RecommendResponse>(await (await http.PostAsync("/v1/recommend", Json(User(Req(5, history), "user2")))).Content.ReadAsStringAsync());
        var p = RecommendResponse.Parser.ParseFrom(await (await http.PostAsync("/v1/recommend", Proto(User(Req(5, history), "user2")))).Content.ReadAsByteArrayAsync());
        var want = Expected(2, stored, history, 5);
        Assert.Equal("stage_two", j.RankedBy);
        Assert.Equal(want.Select(x => x.Id), j.Items.Select(i => i.ItemId));
        Assert.Equal(j.Items.Select(i => i.ItemId), p.Items.Select(i => i.ItemId));
        for (int i = 0; i < 5; i++) Assert.True(Math.Abs(want[i].Score - j.Items[i].Score) <= 1e-4, $"item {i}: {j.Items[i].Score} vs trainer {want[i].Score}");

        // the request's features replace the stored ones field by field: age 55 -> bucket >=40 (id 4), gender F (id 3),
        // genres "c|a" -> ids 4, 2; the scores follow the changed row
        var changed = new[] { 4, 3, 4, 2 };
        var r = JsonParser.Default.Parse<RecommendResponse>(await (await http.PostAsync("/v1/recommend",
            Json(User(Req(5, history), "user2", ("age", "55"), ("gender", "F"), ("genres", "c|a"))))).Content.ReadAsStringAsync());
        var wantChanged = Expected(2, changed, history, 5);
        Assert.False(changed.SequenceEqual(stored));
        for (int i = 0; i < 5; i++) Assert.True(Math.Abs(wantChanged[i].Score - r.Items[i].Score) <= 1e-4);
        Assert.Equal(wantChanged.Select(x => x.Id), r.Items.Select(i => i.ItemId));
        // an unknown value is the field's OOV bucket (id 1)
        var oov = JsonParser.Default.Parse<RecommendResponse>(await (await http.PostAsync("/v1/recommend",
            Json(User(Req(5, history), "user2", ("gender", "X"))))).Content.ReadAsStringAsync());
        var oovRow = stored.ToArray();
        oovRow[1] = 1;
        Assert.Equal(Expected(2, oovRow, history, 5).Select(x => x.Id), oov.Items.Select(i => i.ItemId));

        // NeuMF needs a known user: an unknown or absent one keeps stage one's order, as the one-model bundle gives it
        await using var one = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = fx.OneModel, Urls = "http://127.0.0.1:0" });
        using var http1 = new HttpClient { BaseAddress = new Uri(one.Address) };
        var baseline = JsonParser.Default.Parse<RecommendResponse>(await (await http1.PostAsync("/v1/recommend", Json(Req(5, history)))).Content.ReadAsStringAsync());
        foreach (var req in new[] { User(Req(5, history), "nobody", ("age", "30")), Req(5, history) })
        {
            var u = JsonParser.Default.Parse<RecommendResponse>(await (await http.PostAsync("/v1/recommend", Json(req))).Content.ReadAsStringAsync());
            Assert.Equal("stage_one", u.RankedBy);
            Assert.Equal(baseline.Items.Select(i => i.ItemId), u.Items.Select(i => i.ItemId));
        }
        // the one-model bundle ignores a user (nothing reads it) and says so
        var ignored = JsonParser.Default.Parse<RecommendResponse>(await (await http1.PostAsync("/v1/recommend", Json(User(Req(5, history), "user2", ("age", "x"))))).Content.ReadAsStringAsync());
        Assert.Equal("stage_one", ignored.RankedBy);

        // rerank: the caller's candidates, scored by stage two
        var rr = new RerankRequest { UserId = "user2" };
        rr.History.AddRange(history);
        rr.Candidates.AddRange(["item1", "item2", "item9", "zzz"]);
        var rres = RerankResponse.Parser.ParseFrom(await (await http.PostAsync("/v1/rerank", Proto(rr))).Content.ReadAsByteArrayAsync());
        Assert.Equal("stage_two", rres.RankedBy);
        var logits = fx.Logits(2, stored, [1, 2, 9]);
        var order = new[] { ("item1", logits[0]), ("item2", logits[1]), ("item9", logits[2]) }.OrderByDescending(x => x.Item2).ToArray();
        Assert.Equal(order.Select(x => x.Item1), rres.Items.Select(i => i.ItemId));
        Assert.Equal(["zzz"], rres.UnknownCandidateIds);

        var info = JsonParser.Default.Parse<ModelInfo>(await http.GetStringAsync("/v1/model"));
        Assert.Equal("neumf", info.StageTwoKind);
        Assert.Equal(["age", "gender", "genres"], info.UserFeatureFields);
    }

    [Fact]
    public async Task Bad_user_features_are_refused_naming_the_field_and_the_service_keeps_serving()
    {
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = fx.TwoModel, Urls = "http://127.0.0.1:0" });
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        async Task Refused(IMessage req, string path, string field)
        {
            var resp = await http.PostAsync(path, Json(req));
            Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
            var err = JsonParser.Default.Parse<ErrorResponse>(await resp.Content.ReadAsStringAsync());
            Assert.Equal(field, err.Field);
            Assert.DoesNotContain("/", err.Message);
        }
        await Refused(User(Req(5, "item1"), "user1", ("height", "180")), "/v1/recommend", "user_features.height");
        await Refused(User(Req(5, "item1"), "user1", ("age", "old")), "/v1/recommend", "user_features.age");
        await Refused(User(Req(5, "item1"), "user1", ("genres", "a|b|c")), "/v1/recommend", "user_features.genres");
        await Refused(User(Req(5, "item1"), new string('u', 300)), "/v1/recommend", "user_id");
        await Refused(User(Req(5, "item1"), "user1", ("age", new string('1', 2000))), "/v1/recommend", "user_features.age");
        var batch = new BatchRecommendRequest { Requests = { Req(3, "item1"), User(Req(3, "item2"), "user1", ("age", "old")) } };
        await Refused(batch, "/v1/recommend:batch", "requests[1].user_features.age");
        var rr = new RerankRequest { UserId = "user1", Candidates = { "item1" }, UserFeatures = { ["zip"] = "1" } };
        await Refused(rr, "/v1/rerank", "user_features.zip");
        // protobuf callers get the same answer, and good requests still work
        var bad = await http.PostAsync("/v1/recommend", Proto(User(Req(5, "item1"), "user1", ("age", "old"))));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var ok = await http.PostAsync("/v1/recommend", Json(User(Req(5, "item1"), "user1", ("age", "30"))));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public void The_loader_refuses_a_changed_stage_two_file_naming_it()
    {
        foreach (string file in new[] { BundleLayout.Users, BundleLayout.UserFeatures, BundleLayout.StageTwoModel })
        {
            string copy = Path.Combine(fx.Dir.FullName, "tamper-" + file);
            CopyDir(fx.TwoModel, copy);
            var bytes = File.ReadAllBytes(Path.Combine(copy, file));
            bytes[bytes.Length / 2] ^= 0x20;
            File.WriteAllBytes(Path.Combine(copy, file), bytes);
            var e = Assert.Throws<BundleException>(() => ModelBundle.Load(copy));
            Assert.Equal(file, e.FileName);
        }
        // a stage-two file listed without a stage_two model is refused too
        string stray = Path.Combine(fx.Dir.FullName, "stray");
        CopyDir(fx.TwoModel, stray);
        var m = BundleManifests.Read(stray);
        m.StageTwo = null;
        BundleManifests.Write(stray, m);
        Assert.Contains("no stage_two", Assert.Throws<BundleException>(() => ModelBundle.Load(stray)).Message);
    }

    internal static void CopyDir(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)), true);
    }
}
