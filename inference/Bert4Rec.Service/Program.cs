// `bert4rec serve --bundle DIR [--urls http://127.0.0.1:8080]`: runs the ranking service until Ctrl+C.
using Bert4Rec.Contracts;
using Bert4Rec.Inference.OnnxRuntime;
using SessionOptions = Bert4Rec.Inference.OnnxRuntime.SessionOptions;
using Bert4Rec.Service;

const string usage = "usage: bert4rec serve --bundle DIR [--urls http://127.0.0.1:8080] [--grpc-urls http://127.0.0.1:8081 (\"\" = off)] [--max-history 2000] [--max-k 1000] [--max-candidates 10000] [--max-body-bytes 1048576] [--provider cpu|cuda|auto] [--threads 1] [--log info|warning] [--log-format json|text]";
try
{
    var a = new CommandLine(args);
    if (a.Flag("help")) { Console.WriteLine(usage); return 0; }
    var o = new ServiceOptions
    {
        BundlePath = a.Required("bundle"), Urls = a.String("urls", "http://127.0.0.1:8080"), GrpcUrls = a.String("grpc-urls", "http://127.0.0.1:8081"),
        MaxHistory = a.Int("max-history", 2000, 1), MaxK = a.Int("max-k", 1000, 1), MaxCandidates = a.Int("max-candidates", 10000, 1),
        MaxBodyBytes = a.Long("max-body-bytes", 1 << 20, 1024), Provider = SessionOptions.ProviderFlag(a),
        IntraOpThreads = a.Int("threads", 1, 0), LogLevel = a.Choice("log", Microsoft.Extensions.Logging.LogLevel.Information,
            ("info", Microsoft.Extensions.Logging.LogLevel.Information), ("warning", Microsoft.Extensions.Logging.LogLevel.Warning)),
        JsonLogs = a.Choice("log-format", true, ("json", true), ("text", false)),
    };
    a.EnsureAllUsed();
    await using var svc = await ServiceHost.StartAsync(o);
    Console.WriteLine($"bert4rec serve: {o.BundlePath} on {svc.Address} (HTTP/1.1: POST /v1/recommend, /v1/recommend:batch, /v1/rerank, /admin/reload; GET /v1/model, /healthz, /readyz, /metrics)");
    if (svc.GrpcAddress != null) Console.WriteLine($"bert4rec serve: gRPC on {svc.GrpcAddress} (HTTP/2: bert4rec.v1.Ranking Recommend, RecommendBatch, Rerank, GetModel; grpc.health.v1.Health)");
    var done = new TaskCompletionSource();
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; done.TrySetResult(); };
    AppDomain.CurrentDomain.ProcessExit += (_, _) => done.TrySetResult();
    // SIGTERM reaches the host's console lifetime (not ProcessExit): it stops the application, and this ends Main
    svc.App.Lifetime.ApplicationStopping.Register(() => done.TrySetResult());
    await done.Task;
    return 0;
}
catch (UsageException e) { Console.Error.WriteLine($"bert4rec serve: {e.Message}\n{usage}"); return 2; }
catch (Exception e) when (e is BundleException or IOException or InvalidDataException or OnnxRuntimeException or ArgumentException)
{
    Console.Error.WriteLine($"bert4rec serve: cannot start: {e.Message}");
    return 1;
}
