// `bert4rec serve (--bundle DIR | --model-root DIR) [...]`: runs the ranking service; SIGTERM or SIGINT drains it
// (readiness off at once, requests in flight finish within the grace period) and the process exits 0.
using System.CommandLine;
using System.Runtime.InteropServices;
using Bert4Rec.Contracts;
using Bert4Rec.Inference.OnnxRuntime;
using SessionOptions = Bert4Rec.Inference.OnnxRuntime.SessionOptions;
using Bert4Rec.Service;

var top = CommandLines.Top("bert4rec", "the online ranking service");
top.Subcommands.Add(ServeCommand.Build());
// the ./bert4rec script passes the arguments after `serve`
if (args.Length > 0 && args[0] == CommandLines.SuggestToken) return CommandLines.Run(top, args);
return CommandLines.Run(top, ["serve", .. args], expected: e => e is BundleException or IOException or InvalidDataException or OnnxRuntimeException
    or ArgumentException or UnauthorizedAccessException);

namespace Bert4Rec.Service
{
    /// <summary>`bert4rec serve`: its flags, checked while parsing, and the run until SIGTERM/SIGINT has drained it.</summary>
    public static class ServeCommand
    {
        public static Command Build()
        {
            var serve = new Command("serve", """
                run the online ranking service over a bundle (--bundle) or a model repository (--model-root)
                SIGTERM or SIGINT drains it: readiness off at once, requests in flight finish within --grace, exit 0
                """);
            var bundleOpt = Flags.String("--bundle", "serve one bundle (reload re-reads it)", helpName: "DIR");
            var rootOpt = Flags.String("--model-root", "serve version folders under DIR: the newest complete one, polled for newer", helpName: "DIR");
            var versionOpt = Flags.String("--version", "--model-root: the version to start with (default: the newest)", helpName: "NAME");
            var pollOpt = Flags.Duration("--poll", "--model-root: how often to look for a newer version (default 10s)");
            var canaryOpt = Flags.String("--canary", "--model-root: a second version answering --canary-share of user keys", helpName: "NAME");
            var shareOpt = Flags.Double("--canary-share", "--canary: the share of user keys it answers", 0.1, 0, 1);
            var urlsOpt = Flags.String("--urls", "HTTP/1.1 listener", "http://127.0.0.1:8080", "URLS");
            var grpcUrlsOpt = Flags.String("--grpc-urls", "gRPC (HTTP/2) listener (\"\" = off)", "http://127.0.0.1:8081", "URLS");
            var adminUrlsOpt = Flags.String("--admin-urls", "admin listener (\"\" = off)", "http://127.0.0.1:8082", "URLS");
            var tokenFileOpt = Flags.String("--admin-token-file", "the admin bearer token (or env BERT4REC_ADMIN_TOKEN; without one every admin request is refused)", helpName: "FILE");
            var maxHistoryOpt = Flags.Int("--max-history", "longest history accepted", 2000, 1);
            var maxKOpt = Flags.Int("--max-k", "largest k accepted", 1000, 1);
            var maxCandidatesOpt = Flags.Int("--max-candidates", "most candidates accepted", 10000, 1);
            var maxBatchOpt = Flags.Int("--max-batch", "most items in one batch request", 256, 1, 100_000);
            var maxBodyOpt = Flags.Long("--max-body-bytes", "largest request body", 1 << 20, 1024);
            var maxConcurrentOpt = Flags.Int("--max-concurrent", "ranking requests at once before 429", 64, 1);
            var timeoutOpt = Flags.Duration("--request-timeout", "a request's deadline (default 10s; 504 after it)");
            var drainOpt = Flags.Duration("--drain-delay", "keep serving this long after readiness turns off (default: none)");
            var graceOpt = Flags.Duration("--grace", "how long requests in flight may finish at shutdown (default 10s)");
            var providerOpt = SessionOptions.ProviderOption();
            var threadsOpt = Flags.Int("--threads", "ONNX Runtime intra-op threads (0 = one per core)", 1, 0);
            var logOpt = Flags.Choice("--log", "log level", "info", "info", "warning");
            var logFormatOpt = Flags.Choice("--log-format", "log lines as JSON or text", "json", "json", "text");
            var accessLogOpt = Flags.Flag("--access-log", "one log line per request");
            var otlpEndpointOpt = Flags.String("--otlp-endpoint", "export traces by OTLP to this http(s) URL (default: none)", helpName: "URL");
            var otlpProtocolOpt = Flags.Choice("--otlp-protocol", "--otlp-endpoint: the OTLP transport", OpenTelemetry.Exporter.OtlpExportProtocol.Grpc,
                ("grpc", OpenTelemetry.Exporter.OtlpExportProtocol.Grpc), ("http", OpenTelemetry.Exporter.OtlpExportProtocol.HttpProtobuf));
            foreach (var opt in new Option[] { bundleOpt, rootOpt, versionOpt, pollOpt, canaryOpt, shareOpt, urlsOpt, grpcUrlsOpt, adminUrlsOpt, tokenFileOpt, maxHistoryOpt,
                         maxKOpt, maxCandidatesOpt, maxBatchOpt, maxBodyOpt, maxConcurrentOpt, timeoutOpt, drainOpt, graceOpt, providerOpt, threadsOpt, logOpt, logFormatOpt, accessLogOpt,
                         otlpEndpointOpt, otlpProtocolOpt })
                serve.Options.Add(opt);
            serve.SetAction(async (a, _) =>
            {
                string? bundle = a.GetValue(bundleOpt), root = a.GetValue(rootOpt);
                if ((bundle == null) == (root == null)) throw new UsageException("give --bundle DIR or --model-root DIR");
                string? canary = a.GetValue(canaryOpt);
                if (canary != null && root == null) throw new UsageException("--canary needs --model-root (it names a second version folder under it)");
                if (a.Given(shareOpt) && canary == null) throw new UsageException("--canary-share needs --canary NAME");
                string? tokenFile = a.GetValue(tokenFileOpt);
                string? token = tokenFile != null ? ReadToken(tokenFile) : Environment.GetEnvironmentVariable("BERT4REC_ADMIN_TOKEN");
                var o = new ServiceOptions
                {
                    BundlePath = bundle, ModelRoot = root, Version = a.GetValue(versionOpt), Canary = canary, CanaryShare = a.GetValue(shareOpt),
                    PollInterval = root != null ? a.GetValue(pollOpt) ?? TimeSpan.FromSeconds(10) : TimeSpan.Zero,
                    Urls = a.GetValue(urlsOpt)!, GrpcUrls = a.GetValue(grpcUrlsOpt)!, AdminUrls = a.GetValue(adminUrlsOpt)!,
                    AdminToken = string.IsNullOrWhiteSpace(token) ? null : token.Trim(),
                    MaxHistory = a.GetValue(maxHistoryOpt), MaxK = a.GetValue(maxKOpt), MaxCandidates = a.GetValue(maxCandidatesOpt), MaxBatch = a.GetValue(maxBatchOpt),
                    MaxBodyBytes = a.GetValue(maxBodyOpt), MaxConcurrent = a.GetValue(maxConcurrentOpt),
                    RequestTimeout = a.GetValue(timeoutOpt) ?? TimeSpan.FromSeconds(10), ShutdownGrace = a.GetValue(graceOpt) ?? TimeSpan.FromSeconds(10),
                    DrainDelay = a.GetValue(drainOpt) ?? TimeSpan.Zero,
                    Provider = SessionOptions.ParseProvider(a.GetValue(providerOpt)!), IntraOpThreads = a.GetValue(threadsOpt),
                    LogLevel = a.GetValue(logOpt) == "warning" ? Microsoft.Extensions.Logging.LogLevel.Warning : Microsoft.Extensions.Logging.LogLevel.Information,
                    JsonLogs = a.GetValue(logFormatOpt) == "json",
                    AccessLog = a.GetValue(accessLogOpt),
                    OtlpEndpoint = a.GetValue(otlpEndpointOpt) is string otlp
                        ? (Uri.TryCreate(otlp, UriKind.Absolute, out var u) && u.Scheme is "http" or "https" ? u : throw new UsageException($"--otlp-endpoint: '{otlp}' is not an http(s) URL"))
                        : null,
                    OtlpProtocol = a.GetValue(otlpProtocolOpt),
                };
                return await RunAsync(o);
            });
            return serve;
        }

        private static async Task<int> RunAsync(ServiceOptions o)
        {
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

        private static string ReadToken(string path)
        {
            // a mounted secret is often a symlink (Kubernetes): follow it, then require a small regular file
            string target = new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path;
            try { return System.Text.Encoding.UTF8.GetString(SafeFiles.ReadAllBytes(target, 4096)).Trim(); }
            catch (UnsafeFileException e) { throw new UsageException($"--admin-token-file: {e.Reason}"); }
        }
    }
}
