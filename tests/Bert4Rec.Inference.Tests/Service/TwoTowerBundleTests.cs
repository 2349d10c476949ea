// A Two-Tower stage one served from a bundle, alone and with a DeepFM stage two, through the recommender and a real Kestrel
// (HTTP JSON, protobuf and gRPC): the user tower reads the request's user (stored features of a known user, OOV for an
// unknown one, the request's values over them), its served scores equal the trainer's towers to 1e-4, DeepFM reorders the
// Two-Tower's candidates by the trainer's logits, bad user input is refused naming the field, and the loader refuses
// changed or inconsistent user files naming them.
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
using Grpc.Core;
using Grpc.Net.Client;
using static Bert4Rec.Inference.Tests.Service.ServiceTests;

namespace Bert4Rec.Inference.Tests.Service;

public sealed class TwoTowerBundleFixture : IDisposable
{
    public DirectoryInfo Dir { get; } = Directory.CreateTempSubdirectory("b4r-tt-bundle-");
    public const int Items = 40, Users = 6, L = 6, H = 4;
    public string[] UserIds { get; } = Enumerable.Range(0, Users).Select(u => $"user{u}").ToArray();
    public FeatureTable UserTable { get; }
    public int[] ItemSlots { get; }
    public ModelConfig TowerConfig { get; }
    public float[] TowerParameters { get; }
    public ModelConfig RankerConfig { get; }
    public float[] RankerParameters { get; }
    /// <summary>Two-Tower alone, and Two-Tower -> DeepFM.</summary>
    public string Tower { get; }
    public string TowerDeepFm { get; }
    /// <summary>A request without features for an unknown user: OOV in age, gender and the first genres slot.</summary>
    public static readonly int[] OovRow = [1, 1, 1, 0];

    public TwoTowerBundleFixture()
    {
        // user fields: age, gender, genres (TwoModelFixture's); item field: kind (vocab 4)
        var rng = new Random(11);
        var slots = Enumerable.Range(0, Users).SelectMany(_ => new[] { rng.Next(2, 5), rng.Next(2, 4), rng.Next(2, 5), rng.Next(0, 2) == 0 ? 0 : 2 }).ToArray();
        UserTable = new FeatureTable(TwoModelFixture.UserFields(), Users, slots);
        ItemSlots = Enumerable.Range(0, Items + 1).Select(i => i == 0 ? 0 : rng.Next(1, 4)).ToArray();

        TowerConfig = new ModelConfig
        {
            Kind = ModelKind.TwoTower, ItemCount = Items, Hidden = 8, Layers = 2, Heads = 1, MaxLength = L,
            UserFeatures = UserTable.Shape, ItemFeatures = "4x1",
        };
        using (var tower = new TwoTowerModel(TowerConfig, UserTable.Slots, ItemSlots, 64, 0.1f, null, 1))
        {
            tower.InitializeParameters(3);
            for (int i = 0; i < tower.Parameters.Length; i++) tower.Parameters[i] += (float)(rng.NextDouble() - 0.5) * 0.8f;
            TowerParameters = tower.Parameters.ToArray();
        }
        RankerConfig = new ModelConfig
        {
            Kind = ModelKind.DeepFm, ItemCount = Items, UserCount = Users, Hidden = 8, Layers = 3, Heads = 1, MaxLength = H,
            UserFeatures = UserTable.Shape, ItemFeatures = "4x1",
        };
        using (var deepfm = new DeepFmModel(RankerConfig, UserTable.Slots, ItemSlots, 64, 1))
        {
            deepfm.InitializeParameters(5);
            for (int i = 0; i < deepfm.Parameters.Length; i++) deepfm.Parameters[i] += (float)(rng.NextDouble() - 0.5) * 0.8f;
            RankerParameters = deepfm.Parameters.ToArray();
        }
        var vocab = new Vocabulary(Enumerable.Range(1, Items).Select(i => $"item{i}").ToArray());
        Tower = Path.Combine(Dir.FullName, "tower");
        TowerDeepFm = Path.Combine(Dir.FullName, "tower-deepfm");
        var users = new BundleUsers(UserIds, UserTable);
        BundleWriter.Write(Tower, TowerConfig, TowerParameters, vocab, "test", itemFeatureSlots: ItemSlots, users: users);
        BundleWriter.Write(TowerDeepFm, TowerConfig, TowerParameters, vocab, "test", itemFeatureSlots: ItemSlots, users: users,
                           stageTwo: new StageTwoModel(RankerConfig, RankerParameters, ItemSlots, UserIds, UserTable));
        foreach (var b in new[] { Tower, TowerDeepFm }) BundleIndexer.Build(b, "Flat", new SearchParameters(64, 8), 40);
    }

    /// <summary>The user table with row <paramref name="user"/> replaced by <paramref name="row"/> (a request's features).</summary>
    private int[] Slots(int user, int[] row)
    {
        var slots = UserTable.Slots.ToArray();
        row.CopyTo(slots.AsSpan(user * UserTable.Width));
        return slots;
    }

    /// <summary>The trainer's user vector for a feature row and a history (item indices).</summary>
    public float[] TowerVector(int[] row, int[] history)
    {
        using var tower = new TwoTowerModel(TowerConfig, Slots(0, row), ItemSlots, 64, 0.1f, null, 1);
        TowerParameters.CopyTo(tower.Parameters, 0);
        var r = new int[L];
        tower.HistoryRow(history, r);
        var u = new float[TowerConfig.Hidden];
        tower.UserVectors([0], r, u);
        return u;
    }

    /// <summary>The trainer's stage-one scores u . v of every item (index 1..n; entry 0 unused) for a feature row and a history.</summary>
    public float[] TowerScores(int[] row, int[] history)
    {
        var u = TowerVector(row, history);
        using var tower = new TwoTowerModel(TowerConfig, Slots(0, row), ItemSlots, 64, 0.1f, null, 1);
        TowerParameters.CopyTo(tower.Parameters, 0);
        var v = tower.ItemVectors();
        int d = TowerConfig.Hidden;
        return Enumerable.Range(0, Items + 1).Select(i => i == 0 ? 0f : Enumerable.Range(0, d).Sum(c => u[c] * v[i * d + c])).ToArray();
    }

    /// <summary>The trainer's DeepFM logits of items for a known user with a feature row and a history.</summary>
    public float[] RankerLogits(int user, int[] row, int[] history, int[] items)
    {
        using var deepfm = new DeepFmModel(RankerConfig, Slots(user, row), ItemSlots, 64, 1);
        RankerParameters.CopyTo(deepfm.Parameters, 0);
        var window = new int[H];
        ModelInput.Fill(history, RankerConfig, window);
        var logits = new float[items.Length];
        deepfm.Logits(Enumerable.Repeat(user, items.Length).ToArray(), Enumerable.Repeat(window, items.Length).SelectMany(w => w).ToArray(), items, logits);
        return logits;
    }

    public void Dispose() => Dir.Delete(true);
}

public class TwoTowerBundleTests(TwoTowerBundleFixture fx) : IClassFixture<TwoTowerBundleFixture>
{
    private static RecommendRequest User(RecommendRequest r, string? id, params (string, string)[] features)
    {
        if (id != null) r.UserId = id;
        foreach (var (k, v) in features) r.UserFeatures[k] = v;
        return r;
    }

    private static int[] Indices(string[] history) => history.Select(h => int.Parse(h["item".Length..])).ToArray();

    /// <summary>The Two-Tower's top <paramref name="k"/> unseen items by the trainer's scores for a feature row.</summary>
    private List<(int Item, float Score)> TowerTop(int[] row, string[] history, int k)
    {
        var s = fx.TowerScores(row, Indices(history));
        return Enumerable.Range(1, TwoTowerBundleFixture.Items).Where(i => !history.Contains($"item{i}")).Select(i => (i, s[i]))
            .OrderByDescending(x => x.Item2).ThenBy(x => $"item{x.i}", StringComparer.Ordinal).Take(k).ToList();
    }

    private static void AssertItems(IEnumerable<(string Id, float Score)> want, RecommendResponse got)
    {
        var w = want.ToList();
        Assert.Equal(w.Select(x => x.Id), got.Items.Select(i => i.ItemId));
        for (int i = 0; i < w.Count; i++) Assert.True(Math.Abs(w[i].Score - got.Items[i].Score) <= 1e-4, $"{w[i].Id}: served {got.Items[i].Score}, trainer {w[i].Score}");
    }

    [Fact]
    public void Served_two_tower_vectors_and_scores_equal_the_trainers_towers()
    {
        using var b = ModelBundle.Load(fx.Tower);
        var rec = new Recommender(b);
        Assert.Equal(fx.TowerConfig.Hidden, b.Dimension);
        Assert.Equal([ModelIo.ItemIds, ModelIo.UserFeatures, ModelIo.CandidateIds], b.Inputs.Select(i => i.Name));
        // a known user, one with a request's features, an unknown one, an anonymous one; empty, short and over-long histories
        var stored = fx.UserTable.Row(3).ToArray();
        (UserContext User, int[] Row)[] users =
        [
            (new UserContext("user3"), stored),
            (new UserContext("user3", new Dictionary<string, string> { ["age"] = "12", ["genres"] = "b" }), [2, stored[1], 3, 0]),
            (new UserContext("nobody", new Dictionary<string, string> { ["gender"] = "M" }), [1, 2, 1, 0]),
            (UserContext.Anonymous, TwoTowerBundleFixture.OovRow),
        ];
        int[][] histories = [[], [5], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]];
        double maxDiff = 0;
        foreach (var (user, row) in users)
            foreach (var h in histories)
            {
                var want = fx.TowerVector(row, h);
                var got = rec.UserVector(h, user);
                maxDiff = Math.Max(maxDiff, want.Zip(got).Max(p => Math.Abs(p.First - p.Second)));
                // every item through FAISS and the exact scores: the trainer's u . v
                var hist = h.Select(i => $"item{i}").ToArray();
                var r = rec.RecommendBatch([new RecommendQuery(hist, TwoTowerBundleFixture.Items, 200, false, user)])[0];
                var top = TowerTop(row, hist, TwoTowerBundleFixture.Items);
                Assert.Equal(top.Select(x => $"item{x.Item}"), r.Items.Select(i => i.ItemId));
                maxDiff = Math.Max(maxDiff, top.Zip(r.Items).Max(p => Math.Abs(p.First.Score - p.Second.Score)));
                Assert.Equal(Recommender.StageOne, r.RankedBy);
            }
        Assert.True(maxDiff <= 1e-4, $"max |served - trainer| = {maxDiff:E2}");
        // the features matter: the stored row and the OOV row give different vectors
        Assert.True(fx.TowerVector(stored, [5]).Zip(fx.TowerVector(TwoTowerBundleFixture.OovRow, [5])).Max(p => Math.Abs(p.First - p.Second)) > 1e-2);

        // rerank through stage one's graph scores the caller's candidates with the same user
        var rr = rec.Rerank(["item5"], ["item1", "item9", "item2"], 0, new UserContext("user3"));
        var s = fx.TowerScores(stored, [5]);
        Assert.Equal(new[] { 1, 9, 2 }.OrderByDescending(i => s[i]).Select(i => $"item{i}"), rr.Items.Select(i => i.ItemId));
        foreach (var it in rr.Items) Assert.True(Math.Abs(s[int.Parse(it.ItemId[4..])] - it.Score) <= 1e-4);
    }

    [Fact]
    public async Task Two_tower_to_deepfm_over_json_protobuf_and_grpc_with_and_without_user_features()
    {
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = fx.TowerDeepFm, Urls = "http://127.0.0.1:0", GrpcUrls = "http://127.0.0.1:0" });
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        using var channel = GrpcChannel.ForAddress(svc.GrpcAddress!);
        var grpc = new Ranking.RankingClient(channel);
        string[] history = ["item3", "item7"];
        const int K = 10;

        // a known user: the Two-Tower's top 10 (its stored features), reordered by DeepFM's logits for that user
        async Task KnownUser(int user, int[] row, params (string, string)[] features)
        {
            var cands = TowerTop(row, history, K).Select(x => x.Item).ToArray();
            var logits = fx.RankerLogits(user, row, Indices(history), cands);
            var want = cands.Select((c, j) => ($"item{c}", logits[j])).OrderByDescending(x => x.Item2).ThenBy(x => x.Item1, StringComparer.Ordinal).Take(5).ToList();
            RecommendRequest Make() { var r = User(Req(5, history), $"user{user}", features); r.Candidates = K; return r; }
            var j = JsonParser.Default.Parse<RecommendResponse>(await (await http.PostAsync("/v1/recommend", Json(Make()))).Content.ReadAsStringAsync());
            var p = RecommendResponse.Parser.ParseFrom(await (await http.PostAsync("/v1/recommend", Proto(Make()))).Content.ReadAsByteArrayAsync());
            var g = await grpc.RecommendAsync(Make());
            Assert.Equal(Recommender.StageTwoRanked, j.RankedBy);
            AssertItems(want, j);
            Assert.Equal(j.Items, p.Items);
            Assert.Equal(p, g);
        }
        var stored = fx.UserTable.Row(2).ToArray();
        await KnownUser(2, stored);
        // the request's features replace the stored ones in both stages: age 55 -> bucket >=40 (id 4), gender F (id 3), genres c|a -> 4, 2
        int[] changed = [4, 3, 4, 2];
        Assert.False(changed.SequenceEqual(stored));
        await KnownUser(2, changed, ("age", "55"), ("gender", "F"), ("genres", "c|a"));
        // an unknown value is the field's OOV bucket (id 1)
        var oov = stored.ToArray();
        oov[1] = 1;
        await KnownUser(2, oov, ("gender", "X"));

        // DeepFM needs a known user: without one the Two-Tower's order and scores stand, its tower fed OOV features (and any
        // the request gives)
        foreach (var (req, row) in new[] { (Req(5, history), TwoTowerBundleFixture.OovRow), (User(Req(5, history), "nobody", ("gender", "F")), [1, 3, 1, 0]) })
        {
            var j = JsonParser.Default.Parse<RecommendResponse>(await (await http.PostAsync("/v1/recommend", Json(req))).Content.ReadAsStringAsync());
            var p = RecommendResponse.Parser.ParseFrom(await (await http.PostAsync("/v1/recommend", Proto(req))).Content.ReadAsByteArrayAsync());
            Assert.Equal(Recommender.StageOne, j.RankedBy);
            AssertItems(TowerTop(row, history, 5).Select(x => ($"item{x.Item}", x.Score)), j);
            Assert.Equal(j.Items, p.Items);
            Assert.Equal(p, await grpc.RecommendAsync(req));
        }

        // a batch answers each item as alone
        var batch = new BatchRecommendRequest { Requests = { User(Req(5, history), "user2"), Req(5, history) } };
        var br = BatchRecommendResponse.Parser.ParseFrom(await (await http.PostAsync("/v1/recommend:batch", Proto(batch))).Content.ReadAsByteArrayAsync());
        Assert.Equal([Recommender.StageTwoRanked, Recommender.StageOne], br.Responses.Select(r => r.RankedBy));
        Assert.Equal(br, await grpc.RecommendBatchAsync(batch));

        var info = JsonParser.Default.Parse<ModelInfo>(await http.GetStringAsync("/v1/model"));
        Assert.Equal(("two-tower", "deepfm"), (info.Kind, info.StageTwoKind));
        Assert.Equal(["age", "gender", "genres"], info.UserFeatureFields);
    }

    [Fact]
    public async Task Bad_user_input_is_refused_naming_the_field_over_http_and_grpc()
    {
        foreach (string bundle in new[] { fx.Tower, fx.TowerDeepFm })
        {
            await using var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = bundle, Urls = "http://127.0.0.1:0", GrpcUrls = "http://127.0.0.1:0" });
            using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
            using var channel = GrpcChannel.ForAddress(svc.GrpcAddress!);
            var grpc = new Ranking.RankingClient(channel);
            async Task Refused(IMessage req, string path, string field)
            {
                foreach (var content in new HttpContent[] { Json(req), Proto(req) })
                {
                    var resp = await http.PostAsync(path, content);
                    Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
                    var body = await resp.Content.ReadAsByteArrayAsync();
                    var err = resp.Content.Headers.ContentType?.MediaType == ServiceHost.Protobuf ? ErrorResponse.Parser.ParseFrom(body)
                        : JsonParser.Default.Parse<ErrorResponse>(System.Text.Encoding.UTF8.GetString(body));
                    Assert.Equal(field, err.Field);
                    Assert.DoesNotContain("/", err.Message);
                }
            }
            // the Two-Tower reads the features even for an unknown or absent user, so they are checked for every request
            await Refused(User(Req(5, "item1"), null, ("height", "180")), "/v1/recommend", "user_features.height");
            await Refused(User(Req(5, "item1"), "nobody", ("age", "old")), "/v1/recommend", "user_features.age");
            await Refused(User(Req(5, "item1"), "user1", ("genres", "a|b|c")), "/v1/recommend", "user_features.genres");
            await Refused(User(Req(5, "item1"), new string('u', 300)), "/v1/recommend", "user_id");
            await Refused(new BatchRecommendRequest { Requests = { Req(3, "item1"), User(Req(3, "item2"), null, ("age", "NaN?")) } }, "/v1/recommend:batch", "requests[1].user_features.age");
            await Refused(new RerankRequest { Candidates = { "item1" }, UserFeatures = { ["zip"] = "1" } }, "/v1/rerank", "user_features.zip");
            var e = await Assert.ThrowsAsync<RpcException>(async () => await grpc.RecommendAsync(User(Req(5, "item1"), null, ("age", "old"))));
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
            Assert.StartsWith("user_features.age", e.Status.Detail);
            // good requests still work, with and without a user
            Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/recommend", Json(User(Req(5, "item1"), "user1", ("age", "30"))))).StatusCode);
            Assert.Equal(5, (await grpc.RecommendAsync(Req(5, "item1"))).Items.Count);
        }
    }

    [Fact]
    public void The_loader_refuses_changed_or_inconsistent_user_files_naming_them()
    {
        foreach (string file in new[] { BundleLayout.Users, BundleLayout.UserFeatures, BundleLayout.Model })
        {
            string copy = Copy("tamper-" + file);
            var bytes = File.ReadAllBytes(Path.Combine(copy, file));
            bytes[bytes.Length / 2] ^= 0x20;
            File.WriteAllBytes(Path.Combine(copy, file), bytes);
            Assert.Equal(file, Assert.Throws<BundleException>(() => ModelBundle.Load(copy)).FileName);
        }
        // the manifest's declaration differs from the graph's inputs
        string inputs = Copy("inputs");
        var m = BundleManifests.Read(inputs);
        m.Model.Inputs.RemoveAt(2);
        BundleManifests.Write(inputs, m);
        Assert.Contains("inputs differ", Assert.Throws<BundleException>(() => ModelBundle.Load(inputs)).Reason);
        // a user tower with fields but no user table listed
        string missing = Copy("missing");
        m = BundleManifests.Read(missing);
        m.Files.Remove(m.Files.Single(f => f.Role == BundleLayout.RoleUserFeatures));
        BundleManifests.Write(missing, m);
        Assert.Contains("user_features", Assert.Throws<BundleException>(() => ModelBundle.Load(missing)).Message);
        // a ranker as stage one cannot find candidates
        string ranker = Copy("ranker");
        m = BundleManifests.Read(ranker);
        m.Model = BundleManifests.ToShape(fx.RankerConfig);
        BundleManifests.Write(ranker, m);
        Assert.Contains("cannot find", Assert.Throws<BundleException>(() => ModelBundle.Load(ranker)).Message);
        // and the writer refuses a user tower with fields but without the users
        var vocab = new Vocabulary(Enumerable.Range(1, TwoTowerBundleFixture.Items).Select(i => $"item{i}").ToArray());
        Assert.Throws<ArgumentException>(() => BundleWriter.Write(Path.Combine(fx.Dir.FullName, "no-users"), fx.TowerConfig, fx.TowerParameters, vocab, "test", itemFeatureSlots: fx.ItemSlots));
        Assert.False(Directory.Exists(Path.Combine(fx.Dir.FullName, "no-users")));
    }

    private string Copy(string name)
    {
        string to = Path.Combine(fx.Dir.FullName, name);
        StageTwoTests.CopyDir(fx.Tower, to);
        return to;
    }
}
