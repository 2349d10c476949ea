// `bert4rec serve (--bundle DIR | --model-root DIR) [...]`: runs the ranking service; SIGTERM or SIGINT drains it
// (readiness off at once, requests in flight finish within the grace period) and the process exits 0.
using System.Runtime.InteropServices;
using Bert4Rec.Contracts;
using Bert4Rec.Inference.OnnxRuntime;
using SessionOptions = Bert4Rec.Inference.OnnxRuntime.SessionOptions;
using Bert4Rec.Service;

const string usage = "usage: bert4rec serve (--bundle DIR | --model-root DIR [--version NAME] [--poll 10s] [--canary NAME [--canary-share 0.1]]) [--urls http://127.0.0.1:8080] [--grpc-urls http://127.0.0.1:8081 (\"\" = off)] " +
    "[--admin-urls http://127.0.0.1:8082 (\"\" = off)] [--admin-token-file FILE (or env BERT4REC_ADMIN_TOKEN)] [--max-history 2000] [--max-k 1000] [--max-candidates 10000] [--max-batch 256] [--max-body-bytes 1048576] " +
    "[--max-concurrent 64] [--request-timeout 10s] [--drain-delay 2s (default: none)] [--grace 10s] [--provider cpu|cuda|auto] [--threads 1] [--log info|warning] [--log-format json|text] [--access-log] [--otlp-endpoint URL (traces; default: none) [--otlp-protocol grpc|http]]";
try
{
    var a = new CommandLine(args);
    if (a.Flag("help")) { Console.WriteLine(usage); return 0; }
    string? bundle = a.String("bundle"), root = a.String("model-root");
    if ((bundle == null) == (root == null)) throw new UsageException("give --bundle DIR or --model-root DIR");
    string? canary = a.String("canary");
    bool shareGiven = a.String("canary-share") != null;
    double canaryShare = a.Double("canary-share", 0.1, 0, 1);
    if (canary != null && root == null) throw new UsageException("--canary needs --model-root (it names a second version folder under it)");
    if (shareGiven && canary == null) throw new UsageException("--canary-share needs --canary NAME");
    string? tokenFile = a.String("admin-token-file");
    string? token = tokenFile != null ? ReadToken(tokenFile) : Environment.GetEnvironmentVariable("BERT4REC_ADMIN_TOKEN");
    var o = new ServiceOptions
    {
        BundlePath = bundle, ModelRoot = root, Version = a.String("version"), Canary = canary, CanaryShare = canaryShare,
        PollInterval = root != null ? a.Duration("poll") ?? TimeSpan.FromSeconds(10) : TimeSpan.Zero,
        Urls = a.String("urls", "http://127.0.0.1:8080"), GrpcUrls = a.String("grpc-urls", "http://127.0.0.1:8081"),
        AdminUrls = a.String("admin-urls", "http://127.0.0.1:8082"), AdminToken = string.IsNullOrWhiteSpace(token) ? null : token.Trim(),
        MaxHistory = a.Int("max-history", 2000, 1), MaxK = a.Int("max-k", 1000, 1), MaxCandidates = a.Int("max-candidates", 10000, 1), MaxBatch = a.Int("max-batch", 256, 1, 100_000),
        MaxBodyBytes = a.Long("max-body-bytes", 1 << 20, 1024), MaxConcurrent = a.Int("max-concurrent", 64, 1),
        RequestTimeout = a.Duration("request-timeout") ?? TimeSpan.FromSeconds(10), ShutdownGrace = a.Duration("grace") ?? TimeSpan.FromSeconds(10),
        DrainDelay = a.Duration("drain-delay") ?? TimeSpan.Zero,
        Provider = SessionOptions.ProviderFlag(a),
        IntraOpThreads = a.Int("threads", 1, 0), LogLevel = a.Choice("log", Microsoft.Extensions.Logging.LogLevel.Information,
            ("info", Microsoft.Extensions.Logging.LogLevel.Information), ("warning", Microsoft.Extensions.Logging.LogLevel.Warning)),
        JsonLogs = a.Choice("log-format", true, ("json", true), ("text", false)), AccessLog = a.Flag("access-log"),
        OtlpEndpoint = a.String("otlp-endpoint") is string otlp ? (Uri.TryCreate(otlp, UriKind.Absolute, out var u) && u.Scheme is "http" or "https" ? u : throw new UsageException($"--otlp-endpoint: '{otlp}' is not an http(s) URL")) : null,
        OtlpProtocol = a.Choice("otlp-protocol", OpenTelemetry.Exporter.OtlpExportProtocol.Grpc, ("grpc", OpenTelemetry.Exporter.OtlpExportProtocol.Grpc), ("http", OpenTelemetry.Exporter.OtlpExportProtocol.HttpProtobuf)),
    };
    a.EnsureAllUsed();
    await using var svc = await ServiceHost.StartAsync(o);
    // both signals drain the same way (the host's own handlers only ask the application to stop)
    using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; svc.App.Lifetime.StopApplication(); });
    using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; svc.App.Lifetime.StopApplication(); });
    if (svc.Holder.CanaryName != null) Console.WriteLine($"bert4rec serve: canary {svc.Holder.CanaryName} answers {svc.Holder.CanaryShare:P1} of user keys (user_key field or X-User-Key header)");
    Console.WriteLine($"bert4rec serve: {svc.Holder.CurrentName} on {svc.Address} (HTTP/1.1: POST /v1/recommend, /v1/recommend:batch, /v1/rerank; GET /v1/model, /healthz, /readyz, /metrics)");
    if (svc.GrpcAddress != null) Console.WriteLine($"bert4rec serve: gRPC on {svc.GrpcAddress} (HTTP/2: bert4rec.v1.Ranking Recommend, RecommendBatch, Rerank, GetModel; grpc.health.v1.Health)");
    if (svc.AdminAddress != null) Console.WriteLine($"bert4rec serve: admin on {svc.AdminAddress} (POST /admin/reload, /admin/canary, bearer token{(o.AdminToken == null ? " not configured: refused" : "")})");
    await svc.Stopping;
    var clock = System.Diagnostics.Stopwatch.StartNew();
    Console.WriteLine($"bert4rec serve: draining ({svc.InFlight} requests in flight, grace {o.ShutdownGrace.TotalSeconds:0.#} s)");
    await svc.StopAsync();
    Console.WriteLine($"bert4rec serve: stopped after {clock.Elapsed.TotalMilliseconds:F0} ms");
    return 0;
}
catch (UsageException e) { Console.Error.WriteLine($"bert4rec serve: {e.Message}\n{usage}"); return 2; }
catch (Exception e) when (e is BundleException or IOException or InvalidDataException or OnnxRuntimeException or ArgumentException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"bert4rec serve: cannot start: {e.Message}");
    return 1;
}
catch (Exception e)
{
    Console.Error.WriteLine($"bert4rec serve: error: {e.GetType().Name}: {e.Message}");
    return 1;
}

static string ReadToken(string path)
{
    // a mounted secret is often a symlink (Kubernetes): follow it, then require a small regular file
    string target = new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path;
    try { return System.Text.Encoding.UTF8.GetString(SafeFiles.ReadAllBytes(target, 4096)).Trim(); }
    catch (UnsafeFileException e) { throw new UsageException($"--admin-token-file: {e.Reason}"); }
}
