// The service under hostile callers and bad files: every reload attack of issue 15 (symlinks out of the bundle, devices,
// FIFOs, sparse files, NaN weights, paths instead of version names) refused fast with no file content, hash or path in
// the reply; the admin token; draining; the concurrency limit; content negotiation; bounded fuzzing of every request type.
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Bundle;
using Bert4Rec.Contracts.Service;
using Bert4Rec.Service;
using Google.Protobuf;

namespace Bert4Rec.Inference.Tests.Service;

public sealed partial class HostileCallerTests(BundleFixture fx, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<BundleFixture>
{
    private const string Token = "s3cret-t0ken";

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mkfifo(string path, uint mode);          // int mkfifo(const char*, mode_t)

    private static StringContent Json(IMessage m) => new(JsonFormatter.Default.Format(m), Encoding.UTF8, "application/json");

    private async Task<RunningService> Start(string root, string version, int maxConcurrent = 64) =>
        await ServiceHost.StartAsync(new ServiceOptions
        {
            ModelRoot = root, Version = version, Urls = "http://127.0.0.1:0", AdminUrls = "http://127.0.0.1:0", AdminToken = Token,
            MaxConcurrent = maxConcurrent,
        });

    private static HttpClient Admin(RunningService svc, string? token = Token)
    {
        var h = new HttpClient { BaseAddress = new Uri(svc.AdminAddress!) };
        if (token != null) h.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return h;
    }

    /// <summary>A copy of a good bundle as a new version under <paramref name="root"/>, for tampering.</summary>
    private static string CopyVersion(string good, string root, string name)
    {
        string dir = Path.Combine(root, name);
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(good)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    private static void Rewrite(string dir, Action<BundleManifest> edit)
    {
        var m = BundleManifests.Read(dir);
        edit(m);
        File.Delete(Path.Combine(dir, BundleLayout.Manifest));
        File.Delete(Path.Combine(dir, BundleLayout.ManifestJson));
        BundleManifests.Write(dir, m);
    }

    /// <summary>Sets one value of a weight that is not an item vector to NaN (what a diverged run would export unchecked).</summary>
    private static void Poison(string onnx)
    {
        var model = Bert4Rec.Contracts.Onnx.OnnxWeights.ReadModel(onnx);
        var t = model.Graph.Initializer.First(i => i.DataType == 1 && i.Name is not ("tok_emb" or "out_bias") && (i.FloatData.Count > 0 || i.RawData.Length >= 4));
        if (t.FloatData.Count > 0) t.FloatData[0] = float.NaN;
        else { var raw = t.RawData.ToByteArray(); BitConverter.GetBytes(float.NaN).CopyTo(raw, 0); t.RawData = ByteString.CopyFrom(raw); }
        File.WriteAllBytes(onnx, model.ToByteArray());
    }

    private static BundleFile Entry(BundleManifest m, string role) => m.Files.First(f => f.Role == role);

    [Fact]
    public async Task Every_reload_attack_is_refused_fast_without_content_hash_or_path_and_the_old_version_keeps_serving()
    {
        if (!OperatingSystem.IsLinux()) return;
        string root = Directory.CreateTempSubdirectory("b4r-root-").FullName;
        string secretDir = Directory.CreateTempSubdirectory("b4r-secret-").FullName;
        try
        {
            string good = fx.MakeBundle("hostile-good", 21);
            CopyVersion(good, root, "1");
            string secret = Path.Combine(secretDir, "secret.txt");
            File.WriteAllText(secret, "TOPSECRETLINE with spaces\nmore\n");
            File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            string secretHash = BundleManifests.Sha256(secret);

            var attacks = new List<(string Name, HttpStatusCode Expect)>();
            // vocab.txt -> a private file outside the bundle, the manifest edited to its size and hash
            string v = CopyVersion(good, root, "symlink-out");
            File.Delete(Path.Combine(v, "vocab.txt"));
            File.CreateSymbolicLink(Path.Combine(v, "vocab.txt"), secret);
            Rewrite(v, m => { var e = Entry(m, BundleLayout.RoleVocabulary); e.Sha256 = secretHash; e.SizeBytes = new FileInfo(secret).Length; });
            attacks.Add(("symlink-out", HttpStatusCode.Conflict));
            // vocab.txt -> /dev/zero
            v = CopyVersion(good, root, "vocab-devzero");
            File.Delete(Path.Combine(v, "vocab.txt"));
            File.CreateSymbolicLink(Path.Combine(v, "vocab.txt"), "/dev/zero");
            Rewrite(v, m => Entry(m, BundleLayout.RoleVocabulary).SizeBytes = 1000);
            attacks.Add(("vocab-devzero", HttpStatusCode.Conflict));
            // manifest.pb -> /dev/zero
            v = CopyVersion(good, root, "manifest-devzero");
            File.Delete(Path.Combine(v, BundleLayout.Manifest));
            File.CreateSymbolicLink(Path.Combine(v, BundleLayout.Manifest), "/dev/zero");
            attacks.Add(("manifest-devzero", HttpStatusCode.Conflict));
            // FIFOs as manifest.pb and as model.onnx
            v = CopyVersion(good, root, "manifest-fifo");
            File.Delete(Path.Combine(v, BundleLayout.Manifest));
            Assert.Equal(0, mkfifo(Path.Combine(v, BundleLayout.Manifest), 0x180));
            attacks.Add(("manifest-fifo", HttpStatusCode.Conflict));
            v = CopyVersion(good, root, "model-fifo");
            File.Delete(Path.Combine(v, BundleLayout.Model));
            Assert.Equal(0, mkfifo(Path.Combine(v, BundleLayout.Model), 0x180));
            attacks.Add(("model-fifo", HttpStatusCode.Conflict));
            // a sparse model.onnx far larger than the model's shape allows
            v = CopyVersion(good, root, "model-sparse");
            using (var fs = new FileStream(Path.Combine(v, BundleLayout.Model), FileMode.Create)) fs.SetLength(1_500_000_000);
            Rewrite(v, m => Entry(m, BundleLayout.RoleModel).SizeBytes = 1_500_000_000);
            attacks.Add(("model-sparse", HttpStatusCode.Conflict));
            // NaN weights with the hashes recomputed (a bundle written from NaN parameters)
            v = CopyVersion(good, root, "nan-weights");
            Poison(Path.Combine(v, BundleLayout.Model));
            Rewrite(v, m => { var e = Entry(m, BundleLayout.RoleModel); var d = BundleManifests.Describe(v, e.Role, e.Name); e.Sha256 = d.Sha256; e.SizeBytes = d.SizeBytes; });
            attacks.Add(("nan-weights", HttpStatusCode.Conflict));
            // names that are paths, and versions that do not exist
            attacks.Add(("../" + Path.GetFileName(secretDir), HttpStatusCode.BadRequest));
            attacks.Add((good, HttpStatusCode.BadRequest));
            attacks.Add(("/etc", HttpStatusCode.BadRequest));
            attacks.Add(("nope", HttpStatusCode.NotFound));
            // a version folder that is a symlink to a good bundle elsewhere
            Directory.CreateSymbolicLink(Path.Combine(root, "linked"), good);
            attacks.Add(("linked", HttpStatusCode.NotFound));

            await using var svc = await Start(root, "1");
            using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
            using var admin = Admin(svc);
            string v1 = JsonParser.Default.Parse<ModelInfo>(await http.GetStringAsync("/v1/model")).ModelVersion;
            await admin.PostAsync("/admin/reload", Json(new ReloadRequest { Version = "warm-up" }));     // JIT the refusal path once
            var times = new List<double>();
            foreach (var (name, expect) in attacks)
            {
                var clock = Stopwatch.StartNew();
                var r = await admin.PostAsync("/admin/reload", Json(new ReloadRequest { Version = name }));
                string body = await r.Content.ReadAsStringAsync();
                double ms = clock.Elapsed.TotalMilliseconds;
                Assert.True(expect == r.StatusCode, $"{name}: {r.StatusCode} {body}");
                // a hang or a full read would take seconds; the figure itself is reported (a shared CI core can stall once)
                Assert.True(ms < 2000, $"{name}: refused after {ms:F0} ms");
                times.Add(ms);
                output.WriteLine($"{name}: {(int)r.StatusCode} in {ms:F1} ms: {body}");
                foreach (var leak in new[] { "TOPSECRET", secretHash, root, secretDir, fx.Dir.FullName, "/dev/zero", "/tmp" })
                    Assert.DoesNotContain(leak, body);
                var err = JsonParser.Default.Parse<ErrorResponse>(body);
                Assert.NotEmpty(err.RequestId);
                Assert.Equal(v1, JsonParser.Default.Parse<ModelInfo>(await http.GetStringAsync("/v1/model")).ModelVersion);
            }
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/readyz")).StatusCode);
            times.Sort();
            Assert.True(times[times.Count / 2] < 100, $"median refusal {times[times.Count / 2]:F0} ms");
        }
        finally
        {
            Directory.Delete(root, true);
            Directory.Delete(secretDir, true);
        }
    }

    [Fact]
    public async Task Admin_needs_its_own_listener_and_the_token_and_a_chunked_body_is_read()
    {
        string root = Directory.CreateTempSubdirectory("b4r-root-").FullName;
        try
        {
            string good = fx.MakeBundle("admin-good", 23);
            CopyVersion(good, root, "1");
            CopyVersion(good, root, "2");
            await using var svc = await Start(root, "1");
            using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
            Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsync("/admin/reload", Json(new ReloadRequest { Version = "2" }))).StatusCode);
            using (var none = Admin(svc, null)) Assert.Equal(HttpStatusCode.Unauthorized, (await none.PostAsync("/admin/reload", Json(new ReloadRequest()))).StatusCode);
            using (var wrong = Admin(svc, "guess")) Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.PostAsync("/admin/reload", Json(new ReloadRequest()))).StatusCode);
            using var admin = Admin(svc);
            Assert.Equal(HttpStatusCode.NotFound, (await admin.PostAsync("/v1/recommend", Json(new RecommendRequest { K = 1 }))).StatusCode);
            var chunked = new HttpRequestMessage(HttpMethod.Post, "/admin/reload") { Content = Json(new ReloadRequest { Version = "2" }) };
            chunked.Headers.TransferEncodingChunked = true;
            var r = await admin.SendAsync(chunked);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal("2", JsonParser.Default.Parse<ModelInfo>(await r.Content.ReadAsStringAsync()).Version);
            var info = JsonParser.Default.Parse<ModelInfo>(await http.GetStringAsync("/v1/model"));
            Assert.Equal("2", info.Version);
            Assert.Equal(new[] { "1", "2" }, info.Versions);
        }
        finally { Directory.Delete(root, true); }
    }

    /// <summary>A request body that sends its first half at once and the rest when told.</summary>
    private sealed class SlowContent(byte[] bytes, Task release) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(bytes.AsMemory(0, bytes.Length / 2));
            await stream.FlushAsync();
            await release;
            await stream.WriteAsync(bytes.AsMemory(bytes.Length / 2));
        }
        protected override bool TryComputeLength(out long length) { length = bytes.Length; return true; }
    }

    [Fact]
    public async Task Stopping_turns_readiness_off_at_once_and_lets_a_request_in_flight_finish()
    {
        string bundle = fx.MakeBundle("drain", 24);
        var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = bundle, Urls = "http://127.0.0.1:0", MaxConcurrent = 1 });
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        var release = new TaskCompletionSource();
        var body = new SlowContent(Encoding.UTF8.GetBytes(JsonFormatter.Default.Format(new RecommendRequest { K = 3, History = { "item1" } })), release.Task);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        var inFlight = http.PostAsync("/v1/recommend", body);
        while (svc.InFlight == 0) await Task.Delay(5);
        // the concurrency limit: a second ranking request while the first holds the only slot
        var over = await http.PostAsync("/v1/recommend", Json(new RecommendRequest { K = 3 }));
        Assert.Equal((HttpStatusCode)429, over.StatusCode);
        Assert.Equal("1", over.Headers.RetryAfter!.ToString());
        svc.App.Lifetime.StopApplication();            // what SIGTERM and SIGINT do
        var ready = await http.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        var stop = svc.StopAsync();
        await Task.Delay(100);
        release.SetResult();
        var r = await inFlight;
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal(3, JsonParser.Default.Parse<RecommendResponse>(await r.Content.ReadAsStringAsync()).Items.Count);
        await stop;
        await svc.DisposeAsync();
    }

    [Fact]
    public async Task Content_negotiation_follows_q_values_and_exact_media_types_and_health_answers_head()
    {
        string bundle = fx.MakeBundle("neg", 25);
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = bundle, Urls = "http://127.0.0.1:0" });
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        async Task<HttpResponseMessage> Post(string contentType, string? accept, IMessage m, string path = "/v1/recommend")
        {
            var c = new ByteArrayContent(contentType.Contains("json") ? Encoding.UTF8.GetBytes(JsonFormatter.Default.Format(m)) : m.ToByteArray());
            c.Headers.TryAddWithoutValidation("Content-Type", contentType);
            var req = new HttpRequestMessage(HttpMethod.Post, path) { Content = c };
            if (accept != null) req.Headers.TryAddWithoutValidation("Accept", accept);
            return await http.SendAsync(req);
        }
        var q = new RecommendRequest { K = 2, History = { "item1" } };
        Assert.Equal("application/json", (await Post("application/json", "application/x-protobuf;q=0, application/json", q)).Content.Headers.ContentType!.MediaType);
        Assert.Equal(ServiceHost.Protobuf, (await Post("application/json", "application/json;q=0.5, application/x-protobuf", q)).Content.Headers.ContentType!.MediaType);
        Assert.Equal(ServiceHost.Protobuf, (await Post(ServiceHost.Protobuf, "*/*", q)).Content.Headers.ContentType!.MediaType);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await Post("application/x-protobufXYZ", null, q)).StatusCode);
        Assert.Equal(HttpStatusCode.NotAcceptable, (await Post("application/json", "text/html", q)).StatusCode);
        // unknown fields: ignored in both encodings
        var extra = new StringContent("{\"k\": 2, \"history\": [\"item1\"], \"noSuchField\": 1}", Encoding.UTF8, "application/json");
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/recommend", extra)).StatusCode);
        var withUnknown = q.ToByteArray().Concat(new byte[] { 0xF8, 0x06, 0x01 }).ToArray();   // field 111, varint 1
        var pc = new ByteArrayContent(withUnknown);
        pc.Headers.ContentType = new MediaTypeHeaderValue(ServiceHost.Protobuf);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/recommend", pc)).StatusCode);
        foreach (var path in new[] { "/healthz", "/readyz" })
            Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, path))).StatusCode);
        // rerank: duplicates scored once, unknown history and candidates reported apart
        var rr = new RerankRequest { History = { "item1", "ghost" }, Candidates = { "item2", "item2", "item3", "zzz", "zzz" } };
        var rres = JsonParser.Default.Parse<RerankResponse>(await (await Post("application/json", null, rr, "/v1/rerank")).Content.ReadAsStringAsync());
        Assert.Equal(2, rres.Items.Count);
        Assert.Equal(new[] { "ghost" }, rres.UnknownIds);
        Assert.Equal(new[] { "zzz" }, rres.UnknownCandidateIds);
        // errors carry a code, the field and a request id, never exception text
        var bad = await Post(ServiceHost.Protobuf, null, new RecommendRequest(), "/v1/rerank");
        Assert.Equal(ServiceHost.Protobuf, bad.Content.Headers.ContentType!.MediaType);      // errors in the request's encoding
        var err = ErrorResponse.Parser.ParseFrom(await bad.Content.ReadAsByteArrayAsync());
        Assert.Equal("body", err.Field);
        Assert.Equal(bad.Headers.GetValues("X-Request-Id").Single(), err.RequestId);
    }

    [Fact]
    public async Task Bounded_fuzz_of_every_request_type_in_both_encodings_gets_200_or_4xx_and_the_service_keeps_serving()
    {
        string bundle = fx.MakeBundle("fuzz", 26);
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions { BundlePath = bundle, Urls = "http://127.0.0.1:0", MaxHistory = 64, MaxK = 50, MaxCandidates = 64, MaxBatch = 8 });
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        var rng = new Random(15);
        string Id() => rng.Next(4) switch { 0 => $"item{rng.Next(0, 60)}", 1 => "", 2 => new string((char)rng.Next(1, 0x3000), rng.Next(1, 5)), _ => $"item{rng.Next(1, 41)}" };
        RecommendRequest Rec() { var r = new RecommendRequest { K = rng.Next(-3, 70), Candidates = rng.Next(-3, 80), IncludeSeen = rng.Next(2) == 0 }; for (int i = rng.Next(0, 80); i > 0; i--) r.History.Add(Id()); return r; }
        var seeds = new (string Path, Func<IMessage> Make)[]
        {
            ("/v1/recommend", Rec),
            ("/v1/recommend:batch", () => { var b = new BatchRecommendRequest(); for (int i = rng.Next(0, 10); i > 0; i--) b.Requests.Add(Rec()); return b; }),
            ("/v1/rerank", () => { var r = new RerankRequest { K = rng.Next(-2, 60) }; for (int i = rng.Next(0, 20); i > 0; i--) r.History.Add(Id()); for (int i = rng.Next(0, 80); i > 0; i--) r.Candidates.Add(Id()); return r; }),
        };
        int requests = 0;
        foreach (var (path, make) in seeds)
            foreach (bool proto in new[] { true, false })
                for (int i = 0; i < 60; i++)
                {
                    byte[] bytes = proto ? make().ToByteArray() : Encoding.UTF8.GetBytes(JsonFormatter.Default.Format(make()));
                    int mode = rng.Next(3);       // 0: as made, 1: mutated bytes, 2: random bytes
                    if (mode == 1 && bytes.Length > 0) for (int j = rng.Next(1, 6); j > 0; j--) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
                    if (mode == 2) { bytes = new byte[rng.Next(0, 200)]; rng.NextBytes(bytes); }
                    var c = new ByteArrayContent(bytes);
                    c.Headers.ContentType = new MediaTypeHeaderValue(proto ? ServiceHost.Protobuf : "application/json");
                    var r = await http.PostAsync(path, c);
                    requests++;
                    int s = (int)r.StatusCode;
                    string text = await r.Content.ReadAsStringAsync();
                    Assert.True(s == 200 || s == 400, $"{path} {(proto ? "protobuf" : "JSON")} mode {mode}: {s} {text}");
                    Assert.DoesNotContain("Exception", text);
                }
        Assert.DoesNotContain("status=\"500\"", await svc.Metrics.ScrapeAsync());
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/recommend", Json(new RecommendRequest { K = 3, Candidates = 10, History = { "item1" } }))).StatusCode);
        Assert.Equal(360, requests);
    }
}
