// The online ranking service: ASP.NET Core on Kestrel with JSON or binary-protobuf endpoints over HTTP/1.1 and the same
// operations as a gRPC service over HTTP/2 on its own port (with the standard grpc.health.v1 service), limits, request
// metrics (Prometheus at /metrics), traces (OpenTelemetry over OTLP when configured), an OpenAPI document, health and
// readiness, and hot reload. StartAsync runs it in-process (the CLI, the demo, the bench and the tests use it).
using System.Diagnostics;
using System.Net;
using System.Text;
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Service;
using Bert4Rec.Inference.OnnxRuntime;
using SessionOptions = Bert4Rec.Inference.OnnxRuntime.SessionOptions;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;
using Prometheus;

namespace Bert4Rec.Service;

public sealed record ServiceOptions
{
    /// <summary>One bundle folder served alone (reload re-reads it); or give <see cref="ModelRoot"/>.</summary>
    public string? BundlePath { get; init; }
    /// <summary>A folder of version folders (each a bundle; complete when its manifest is present); reload names one.</summary>
    public string? ModelRoot { get; init; }
    /// <summary>The version to serve first under <see cref="ModelRoot"/>; null = the newest complete one.</summary>
    public string? Version { get; init; }
    /// <summary>A second version under <see cref="ModelRoot"/> served beside the primary to <see cref="CanaryShare"/> of the user keys; null = none.</summary>
    public string? Canary { get; init; }
    /// <summary>The share (0..1) of user keys the canary answers, by a stable hash of the key; requests without a key go to the primary.</summary>
    public double CanaryShare { get; init; } = 0.1;
    /// <summary>HTTP/1.1 (JSON and binary protobuf) listen URLs, ';'-separated; port 0 picks a free port.</summary>
    public string Urls { get; init; } = "http://127.0.0.1:8080";
    /// <summary>gRPC (HTTP/2 without TLS) listen URLs, ';'-separated; empty (the default here) = no gRPC endpoint.
    /// `bert4rec serve` defaults to http://127.0.0.1:8081.</summary>
    public string GrpcUrls { get; init; } = "";
    /// <summary>Admin listen URLs (POST /admin/reload), ';'-separated; empty = no admin endpoint. `bert4rec serve` defaults to http://127.0.0.1:8082.</summary>
    public string AdminUrls { get; init; } = "";
    /// <summary>The bearer token admin requests must carry; null = every admin request is refused.</summary>
    public string? AdminToken { get; init; }
    /// <summary>Poll the model root this often for a newer complete version (zero = only on reload).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.Zero;
    public int MaxHistory { get; init; } = 2000;
    public int MaxK { get; init; } = 1000;
    public int MaxCandidates { get; init; } = 10000;
    public int MaxBatch { get; init; } = 256;
    public long MaxBodyBytes { get; init; } = 1 << 20;
    /// <summary>Ranking requests running at once; one more is answered 429 (gRPC RESOURCE_EXHAUSTED) with Retry-After.</summary>
    public int MaxConcurrent { get; init; } = 64;
    /// <summary>A ranking request's deadline, body reading included (a gRPC caller's shorter deadline wins).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>After a stop signal, how long the service keeps accepting requests with readiness off (so load balancers see it leave) before it stops listening.</summary>
    public TimeSpan DrainDelay { get; init; } = TimeSpan.Zero;
    /// <summary>How long a stop waits for in-flight requests before closing connections.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(10);
    public ExecutionProvider Provider { get; init; } = ExecutionProvider.Cpu;
    public int IntraOpThreads { get; init; } = 1;
    public LogLevel LogLevel { get; init; } = LogLevel.Warning;
    /// <summary>One log line per request (method, path, status, milliseconds, request id) at information level.</summary>
    public bool AccessLog { get; init; }
    /// <summary>Structured JSON log lines (one object per event) instead of single-line text.</summary>
    public bool JsonLogs { get; init; }
    /// <summary>Request metrics recorded and served at /metrics (off: nothing recorded, no /metrics; the bench compares the two).</summary>
    public bool Metrics { get; init; } = true;
    /// <summary>Where traces (and OpenTelemetry metrics) are exported over OTLP, e.g. http://127.0.0.1:4317; null = no export (the default).</summary>
    public Uri? OtlpEndpoint { get; init; }
    /// <summary>OTLP over gRPC (the default, port 4317 by convention) or HTTP/protobuf (4318; /v1/traces and /v1/metrics are appended).</summary>
    public OpenTelemetry.Exporter.OtlpExportProtocol OtlpProtocol { get; init; } = OpenTelemetry.Exporter.OtlpExportProtocol.Grpc;
}

public sealed class RunningService : IAsyncDisposable
{
    internal RunningService(WebApplication app, BundleHolder holder, string address, string? grpcAddress, string? adminAddress, RequestMetrics metrics, ServiceOptions options, Func<int> inFlight)
    { App = app; Holder = holder; Address = address; GrpcAddress = grpcAddress; AdminAddress = adminAddress; Metrics = metrics; _options = options; _inFlight = inFlight; }
    private readonly ServiceOptions _options;
    private readonly Func<int> _inFlight;
    private int _stopped;
    public WebApplication App { get; }
    public BundleHolder Holder { get; }
    public RequestMetrics Metrics { get; }
    /// <summary>The bound base address, e.g. http://127.0.0.1:40123.</summary>
    public string Address { get; }
    /// <summary>The bound gRPC base address (HTTP/2), e.g. http://127.0.0.1:40124; null when gRPC is off.</summary>
    public string? GrpcAddress { get; }
    /// <summary>The bound admin base address; null when the admin listener is off.</summary>
    public string? AdminAddress { get; }
    /// <summary>Ranking requests running now.</summary>
    public int InFlight => _inFlight();
    /// <summary>Completes when the host is asked to stop (SIGTERM, SIGINT, or <see cref="Microsoft.Extensions.Hosting.IHostApplicationLifetime.StopApplication"/>).</summary>
    public Task Stopping
    {
        get
        {
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            App.Lifetime.ApplicationStopping.Register(() => tcs.TrySetResult());
            return tcs.Task;
        }
    }

    /// <summary>
    /// Drains: readiness off at once, new requests still served for the drain delay, then Kestrel stops accepting and waits up to the grace period for the requests in
    /// flight to finish before closing connections.
    /// </summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        Holder.StartDraining();
        if (_options.DrainDelay > TimeSpan.Zero) await Task.Delay(_options.DrainDelay);
        using var grace = new CancellationTokenSource(_options.ShutdownGrace);
        await App.StopAsync(grace.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await App.DisposeAsync();
        Holder.Dispose();
        Metrics.Dispose();
    }
}

public static class ServiceHost
{
    public const string Protobuf = "application/x-protobuf";
    public const string Json = "application/json";

    /// <summary>Loads, verifies and smoke-tests the bundle (failing fast with a clear message), then starts Kestrel.</summary>
    public static async Task<RunningService> StartAsync(ServiceOptions o)
    {
        if ((o.BundlePath == null) == (o.ModelRoot == null)) throw new ArgumentException("give either a bundle or a model root");
        var holder = new BundleHolder(new SessionOptions { IntraOpThreads = o.IntraOpThreads, Provider = o.Provider }, o.ModelRoot, o.BundlePath);
        try { await holder.ReloadAsync(o.Version); }
        catch (ServiceError e) { holder.Dispose(); throw new BundleException("", e.Message, $"--version {o.Version}: {e.Message}"); }
        catch { holder.Dispose(); throw; }
        if (!string.IsNullOrEmpty(o.Canary))
        {
            try { await holder.SetCanaryAsync(o.Canary, o.CanaryShare, "--canary", "--canary-share"); }
            catch (ServiceError e) { holder.Dispose(); throw new BundleException("", e.Message, $"{(e.Field.Length > 0 ? e.Field : "--canary")} {o.Canary}: {e.Message}"); }
            catch { holder.Dispose(); throw; }
        }
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (o.JsonLogs) builder.Logging.AddJsonConsole(c => { c.TimestampFormat = "O"; c.UseUtcTimestamp = true; });
        else builder.Logging.AddSimpleConsole(c => { c.SingleLine = true; c.TimestampFormat = "HH:mm:ss "; });
        builder.Logging.SetMinimumLevel(o.LogLevel);
        // the framework's own per-request traces stay off at information; our access log is one line per request
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Grpc", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Extensions.Diagnostics.HealthChecks", LogLevel.Critical);   // readiness is reported by /readyz, not as log errors
        builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(h => h.ShutdownTimeout = o.ShutdownGrace);
        builder.Services.Configure<Microsoft.Extensions.Hosting.ConsoleLifetimeOptions>(c => c.SuppressStatusMessages = true);
        var httpEndpoints = ParseUrls(o.Urls, "--urls");
        var grpcEndpoints = string.IsNullOrWhiteSpace(o.GrpcUrls) ? [] : ParseUrls(o.GrpcUrls, "--grpc-urls");
        var adminEndpoints = string.IsNullOrWhiteSpace(o.AdminUrls) ? [] : ParseUrls(o.AdminUrls, "--admin-urls");
        if (httpEndpoints.Count == 0) throw new ArgumentException("--urls: no URL given");
        var httpListen = new List<ListenOptions>();
        var grpcListen = new List<ListenOptions>();
        var adminListen = new List<ListenOptions>();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = o.MaxBodyBytes;
            foreach (var ep in httpEndpoints) k.Listen(ep, l => { l.Protocols = HttpProtocols.Http1; httpListen.Add(l); });
            foreach (var ep in grpcEndpoints) k.Listen(ep, l => { l.Protocols = HttpProtocols.Http2; grpcListen.Add(l); });
            foreach (var ep in adminEndpoints) k.Listen(ep, l => { l.Protocols = HttpProtocols.Http1; adminListen.Add(l); });
        });
        int inFlight = 0;
        var metrics = new RequestMetrics(o.Metrics, holder.Served, () => Volatile.Read(ref inFlight));
        builder.Services.AddSingleton(holder).AddSingleton(o).AddSingleton(metrics);
        if (o.OtlpEndpoint != null) ServiceTracing.AddOtlpExport(builder.Services, o.OtlpEndpoint, o.OtlpProtocol);
        builder.Services.AddGrpc(g =>
        {
            g.MaxReceiveMessageSize = (int)Math.Min(int.MaxValue, o.MaxBodyBytes);
            g.EnableDetailedErrors = false;
        });
        builder.Services.AddGrpcHealthChecks()
            .AddCheck("bundle", () => holder.Ready ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("not ready"));
        var app = builder.Build();
        var log = app.Logger;
        app.Lifetime.ApplicationStopping.Register(holder.StartDraining);
        // each port serves its own protocol: gRPC calls only on the gRPC port, admin only on the admin port, the HTTP API on the rest
        int[]? grpcPorts = null, adminPorts = null;
        app.Use(async (ctx, next) =>
        {
            grpcPorts ??= grpcListen.Select(l => l.IPEndPoint!.Port).ToArray();
            adminPorts ??= adminListen.Select(l => l.IPEndPoint!.Port).ToArray();
            int port = ctx.Connection.LocalPort;
            bool onGrpcPort = grpcPorts.Contains(port), onAdminPort = adminPorts.Contains(port);
            bool isGrpc = ctx.Request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true;
            bool isAdmin = ctx.Request.Path.StartsWithSegments("/admin");
            if (onGrpcPort != isGrpc || (!onGrpcPort && onAdminPort != isAdmin))
            {
                ctx.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }
            string id = RequestId(ctx);
            ctx.Response.Headers["X-Request-Id"] = id;
            bool ranking = isGrpc || ctx.Request.Path.StartsWithSegments("/v1");
            if (!ranking) { await next(ctx); return; }
            if (Interlocked.Increment(ref inFlight) > o.MaxConcurrent)
            {
                Interlocked.Decrement(ref inFlight);
                metrics.Record(EndpointOf(ctx.Request.Path), isGrpc ? RequestMetrics.Grpc : RequestMetrics.HttpJson, 429, "", 0);
                ctx.Response.Headers.RetryAfter = "1";
                if (isGrpc)
                {
                    ctx.Response.ContentType = "application/grpc";
                    ctx.Response.Headers["grpc-status"] = "8";
                    ctx.Response.Headers["grpc-message"] = "too many requests in flight; retry later";
                    return;
                }
                await Write(ctx, 429, Error(new Overloaded(), id), false);
                return;
            }
            try
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
                deadline.CancelAfter(o.RequestTimeout);
                ctx.Items[DeadlineKey] = deadline.Token;
                await next(ctx);
            }
            finally { Interlocked.Decrement(ref inFlight); }
        });
        Map(app, o, holder, metrics, log);
        app.MapGrpcService<RankingGrpcService>();
        app.MapGrpcHealthChecksService();
        if (o.PollInterval > TimeSpan.Zero && o.ModelRoot != null) _ = PollAsync(holder, o.PollInterval, metrics, log, app.Lifetime.ApplicationStopping);
        await app.StartAsync();
        string address = $"http://{httpListen[0].IPEndPoint}";
        string? grpcAddress = grpcListen.Count > 0 ? $"http://{grpcListen[0].IPEndPoint}" : null;
        string? adminAddress = adminListen.Count > 0 ? $"http://{adminListen[0].IPEndPoint}" : null;
        foreach (var ep in httpEndpoints.Concat(grpcEndpoints))
            if (!IPAddress.IsLoopback(ep.Address)) log.LogWarning("listening on {Endpoint}, reachable from other machines", ep);
        foreach (var ep in adminEndpoints)
            if (!IPAddress.IsLoopback(ep.Address)) log.LogWarning("the admin endpoint listens on {Endpoint}, reachable from other machines (bearer token required)", ep);
        if (adminEndpoints.Count > 0 && string.IsNullOrEmpty(o.AdminToken)) log.LogWarning("no admin token configured: every admin request is refused");
        if (holder.CanaryName != null) log.LogInformation("canary {Canary} answers {Share:P1} of user keys", holder.CanaryName, holder.CanaryShare);
        log.LogInformation("serving {Version} on {Address} (HTTP/1.1), {GrpcAddress} (gRPC), {AdminAddress} (admin)", holder.CurrentName, address, grpcAddress ?? "no gRPC", adminAddress ?? "no admin");
        return new RunningService(app, holder, address, grpcAddress, adminAddress, metrics, o, () => Volatile.Read(ref inFlight));
    }

    private const string DeadlineKey = "bert4rec.deadline";

    /// <summary>An endpoint's metrics name from a request path (HTTP route or gRPC method); "other" for anything else.</summary>
    internal static string EndpointOf(PathString path) => path.Value switch
    {
        "/v1/recommend" or "/bert4rec.v1.Ranking/Recommend" => "recommend",
        "/v1/recommend:batch" or "/bert4rec.v1.Ranking/RecommendBatch" => "recommend_batch",
        "/v1/rerank" or "/bert4rec.v1.Ranking/Rerank" => "rerank",
        "/v1/model" or "/bert4rec.v1.Ranking/GetModel" => "model",
        _ => "other",
    };

    private static string RequestId(HttpContext ctx)
    {
        string given = ctx.Request.Headers["X-Request-Id"].ToString();
        if (given.Length is > 0 and <= 64 && given.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':')) return given;
        return ctx.TraceIdentifier;
    }

    /// <summary>Watches the model root: a newer complete version is loaded (verified, smoke-tested) and swapped in; a refused one is logged once.</summary>
    private static async Task PollAsync(BundleHolder holder, TimeSpan every, RequestMetrics metrics, ILogger log, CancellationToken stop)
    {
        var refused = new HashSet<string>();
        try
        {
            while (true)
            {
                await Task.Delay(every, stop);
                string? newest = holder.Versions().LastOrDefault();
                // the canary's version is promoted only by an operator (POST /admin/reload names it)
                if (newest == null || newest == holder.CurrentName || newest == holder.CanaryName || refused.Contains(newest)) continue;
                try
                {
                    await holder.ReloadAsync(newest);
                    metrics.Reloaded();
                    log.LogWarning("serving version {Version} (found under the model root)", newest);
                }
                catch (Exception e) when (e is BundleException or ServiceError or IOException)
                {
                    refused.Add(newest);
                    metrics.ReloadFailed();
                    log.LogError("version {Version} refused, {Current} keeps serving: {Message}", newest, holder.CurrentName, e.Message);
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>
    /// Endpoints of a ';'-separated list of http:// URLs: an IP address, localhost (IPv4 loopback), or * / + / 0.0.0.0 for
    /// every address; port 0 picks a free port.
    /// </summary>
    internal static List<IPEndPoint> ParseUrls(string urls, string flag)
    {
        var result = new List<IPEndPoint>();
        foreach (var text in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var m = System.Text.RegularExpressions.Regex.Match(text, @"^http://(?<host>\[[0-9A-Fa-f:.]+\]|[^:/\[\]]+):(?<port>[0-9]{1,5})/?$");
            if (!m.Success || !int.TryParse(m.Groups["port"].Value, out int port) || port > 65535)
                throw new ArgumentException($"{flag}: '{text}' is not a URL like http://127.0.0.1:8080 (http, a host and a port)");
            string host = m.Groups["host"].Value;
            IPAddress ip = host is "*" or "+" ? IPAddress.Any
                : host == "localhost" ? IPAddress.Loopback
                : IPAddress.TryParse(host.Trim('[', ']'), out var parsed) ? parsed
                : throw new ArgumentException($"{flag}: '{host}' is not an IP address, localhost or *");
            result.Add(new IPEndPoint(ip, port));
        }
        return result;
    }

    /// <summary>The errors a ranking request may answer besides 500.</summary>
    private static readonly int[] RankingErrors = [400, 406, 415, 429, 503, 504];

    private static void Map(WebApplication app, ServiceOptions o, BundleHolder holder, RequestMetrics metrics, ILogger log)
    {
        app.MapPost("/v1/recommend", (RequestDelegate)(ctx => Handle(ctx, "recommend", o, metrics, log, async c =>
        {
            var r = RankingRequests.Recommend(await Read(ctx, RecommendRequest.Parser, log), holder, o, metrics, c);
            ctx.Response.Headers[RankingRequests.ArmHeader] = r.Arm;
            return r;
        }))).WithName("recommend").WithMetadata(new ApiOperation("Recommends k items for a history: FAISS candidates, then the model's exact scores",
            RecommendRequest.Descriptor, RecommendResponse.Descriptor, RankingErrors));
        app.MapPost("/v1/recommend:batch", (RequestDelegate)(ctx => Handle(ctx, "recommend_batch", o, metrics, log, async c =>
        {
            var r = RankingRequests.RecommendBatch(await Read(ctx, BatchRecommendRequest.Parser, log), holder, o, metrics, c);
            // the header names the arm when every item had the same one; each item's `arm` field always does
            var arms = r.Responses.Select(x => x.Arm).Distinct().ToArray();
            if (arms.Length == 1) ctx.Response.Headers[RankingRequests.ArmHeader] = arms[0];
            return r;
        }))).WithName("recommend_batch").WithMetadata(new ApiOperation("Recommends for many histories at once (one model run per arm); each answer names its arm",
            BatchRecommendRequest.Descriptor, BatchRecommendResponse.Descriptor, RankingErrors));
        app.MapPost("/v1/rerank", (RequestDelegate)(ctx => Handle(ctx, "rerank", o, metrics, log, async c =>
        {
            var r = RankingRequests.Rerank(await Read(ctx, RerankRequest.Parser, log), holder, o, metrics, c);
            ctx.Response.Headers[RankingRequests.ArmHeader] = r.Arm;
            return r;
        }))).WithName("rerank").WithMetadata(new ApiOperation("Scores the caller's candidates with the model, best first", RerankRequest.Descriptor, RerankResponse.Descriptor, RankingErrors));
        app.MapGet("/v1/model", (RequestDelegate)(ctx => Handle(ctx, "model", o, metrics, log, _ => Task.FromResult<IMessage>(RankingRequests.Model(holder)))))
            .WithName("model").WithMetadata(new ApiOperation("The version served, its model and index settings, the versions under the model root and the canary", null, ModelInfo.Descriptor, [406, 429, 503, 504]));
        app.MapPost("/admin/reload", (RequestDelegate)(ctx => Handle(ctx, "reload", o, metrics, log, async _ =>
        {
            Authorize(ctx, o, log);
            // a body is read whatever its framing (Content-Length or chunked); none at all means "the newest version"
            var req = await ReadOptional(ctx, ReloadRequest.Parser, log);
            if (req.Bundle.Length > 0 && req.Version.Length > 0 && req.Bundle != req.Version)
                throw new RequestError("version", "give version or bundle, not both");
            string field = req.Version.Length > 0 ? "version" : "bundle";
            string version = req.Version.Length > 0 ? req.Version : req.Bundle;
            try
            {
                var (b, name) = await holder.ReloadAsync(version.Length > 0 ? version : null, field);
                log.LogWarning("reloaded: serving version {Name} ({Version})", name, b.Version);
                metrics.Reloaded();
                var info = new ModelInfo { ModelVersion = b.Version, ItemCount = b.Config.ItemCount, Version = name, CanaryVersion = holder.CanaryName ?? "", CanaryShare = holder.CanaryShare };
                info.Versions.AddRange(holder.Versions());
                return info;
            }
            catch (Exception e) when (e is BundleException or IOException or UnauthorizedAccessException)
            {
                metrics.ReloadFailed();
                log.LogError("reload of {Version} refused ({RequestId}), {Current} keeps serving: {Message}", version, ctx.Response.Headers["X-Request-Id"].ToString(), holder.CurrentName, e.Message);
                throw e is BundleException be ? new VersionRefused(be.FileName, be.Reason) : new VersionRefused("", "the version could not be read");
            }
        }))).WithName("reload").WithMetadata(new ApiOperation("Loads a version (verified and smoke-tested beside the serving one) and swaps it in; no body or no version = the newest complete one",
            ReloadRequest.Descriptor, ModelInfo.Descriptor, [400, 401, 404, 406, 409, 415, 503], Admin: true, RequestOptional: true));
        app.MapPost("/admin/canary", (RequestDelegate)(ctx => Handle(ctx, "canary", o, metrics, log, async _ =>
        {
            Authorize(ctx, o, log);
            // an empty body is the empty message (no version: the canary ends), as protobuf encodes it
            var req = await ReadOptional(ctx, CanaryRequest.Parser, log);
            try
            {
                await holder.SetCanaryAsync(req.Version, req.Share);
                if (holder.CanaryName is string c) log.LogWarning("canary: version {Canary} answers {Share:P1} of user keys beside {Primary}", c, holder.CanaryShare, holder.CurrentName);
                else log.LogWarning("canary ended: {Primary} answers every request", holder.CurrentName);
                return RankingRequests.Model(holder);
            }
            catch (Exception e) when (e is BundleException or IOException or UnauthorizedAccessException)
            {
                metrics.ReloadFailed();
                log.LogError("canary {Version} refused ({RequestId}), {Current} keeps serving: {Message}", req.Version, ctx.Response.Headers["X-Request-Id"].ToString(), holder.CanaryName ?? holder.CurrentName, e.Message);
                throw e is BundleException be ? new VersionRefused(be.FileName, be.Reason) : new VersionRefused("", "the version could not be read");
            }
        }))).WithName("canary").WithMetadata(new ApiOperation("Serves a second version to a share of the user keys (no version: the canary ends); answers the model info",
            CanaryRequest.Descriptor, ModelInfo.Descriptor, [400, 401, 404, 406, 409, 415, 503], Admin: true, RequestOptional: true));
        foreach (var (path, ok) in new[] { ("/healthz", (Func<bool>)(() => true)), ("/readyz", () => holder.Ready) })
            app.MapMethods(path, ["GET", "HEAD"], (HttpContext ctx) =>
            {
                bool up = ok();
                ctx.Response.Headers.CacheControl = "no-store";
                return Results.Text(path == "/healthz" ? "ok\n" : up ? "ready\n" : holder.Draining ? "draining\n" : "not ready\n", statusCode: up ? 200 : 503);
            }).WithName(path[1..]).WithMetadata(path == "/healthz" ? new ApiOperation("Liveness: the process answers", null, null, [], TextStatuses: [200])
                : new ApiOperation("Readiness: a version is loaded and the service is not draining", null, null, [], TextStatuses: [200, 503]));
        if (o.Metrics) app.MapMetrics("/metrics", metrics.Registry);
        // built once, at the first request (every route is mapped by then)
        var document = new Lazy<string>(() => ApiDocument.Build(app.Services.GetRequiredService<EndpointDataSource>()).ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        app.MapGet(ApiDocument.Path, () => Results.Text(document.Value, Json));
    }

    /// <summary>Admin requests carry `Authorization: Bearer TOKEN`; without a configured token every one is refused. Refusals are logged.</summary>
    private static void Authorize(HttpContext ctx, ServiceOptions o, ILogger log)
    {
        string header = ctx.Request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        bool ok = !string.IsNullOrEmpty(o.AdminToken) && header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)
            && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(
                Encoding.UTF8.GetBytes(header[scheme.Length..].Trim()), Encoding.UTF8.GetBytes(o.AdminToken));
        if (ok) return;
        log.LogWarning("admin request {Method} {Path} from {Remote} refused: {Why}", ctx.Request.Method, ctx.Request.Path.Value, ctx.Connection.RemoteIpAddress,
            string.IsNullOrEmpty(o.AdminToken) ? "no admin token configured" : header.Length == 0 ? "no bearer token" : "wrong token");
        ctx.Response.Headers.WWWAuthenticate = "Bearer";
        throw new ServiceError(401, Grpc.Core.StatusCode.Unauthenticated, "UNAUTHENTICATED", "Authorization", "a valid bearer token is required");
    }

    /// <summary>The request's media type: protobuf or JSON by exact type (parameters such as charset allowed); anything else is 415.</summary>
    private static bool RequestIsProtobuf(HttpContext ctx)
    {
        string? ct = ctx.Request.ContentType;
        if (string.IsNullOrEmpty(ct)) return false;
        if (!MediaTypeHeaderValue.TryParse(ct, out var mt) || mt.MediaType.Value is not string media)
            throw new ServiceError(415, Grpc.Core.StatusCode.InvalidArgument, "UNSUPPORTED_MEDIA_TYPE", "Content-Type", "Content-Type is not a media type");
        if (media.Equals(Protobuf, StringComparison.OrdinalIgnoreCase) || media.Equals("application/protobuf", StringComparison.OrdinalIgnoreCase)) return true;
        if (media.Equals(Json, StringComparison.OrdinalIgnoreCase)) return false;
        throw new ServiceError(415, Grpc.Core.StatusCode.InvalidArgument, "UNSUPPORTED_MEDIA_TYPE", "Content-Type", $"Content-Type must be {Json} or {Protobuf}");
    }

    /// <summary>
    /// The response encoding by the Accept header's q-values (exact types, application/* and */*; the most specific range
    /// decides a type's q); a tie or no Accept follows the request's own encoding. Null when neither is acceptable.
    /// </summary>
    internal static bool? ResponseIsProtobuf(string? accept, bool requestWasProtobuf)
    {
        if (string.IsNullOrWhiteSpace(accept)) return requestWasProtobuf;
        if (!MediaTypeHeaderValue.TryParseList(accept.Split(','), out var ranges)) return requestWasProtobuf;
        double Q(string type)
        {
            int best = -1;
            double q = 0;
            foreach (var r in ranges)
            {
                string m = r.MediaType.Value ?? "";
                int spec = m.Equals(type, StringComparison.OrdinalIgnoreCase) ? 2 : m.Equals("application/*", StringComparison.OrdinalIgnoreCase) ? 1 : m == "*/*" ? 0 : -1;
                if (spec > best) { best = spec; q = r.Quality ?? 1.0; }
            }
            return q;
        }
        double qp = Math.Max(Q(Protobuf), Q("application/protobuf")), qj = Q(Json);
        if (qp <= 0 && qj <= 0) return null;
        return qp == qj ? requestWasProtobuf : qp > qj;
    }

    private static CancellationToken Deadline(HttpContext ctx) => ctx.Items[DeadlineKey] is CancellationToken t ? t : ctx.RequestAborted;

    private static async Task<byte[]> ReadBody(HttpContext ctx)
    {
        using var ms = new MemoryStream();
        try { await ctx.Request.Body.CopyToAsync(ms, Deadline(ctx)); }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        { throw new RequestError("body", "the request body is larger than the limit"); }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException) { throw new RequestError("body", "the request body could not be read"); }
        catch (OperationCanceledException) when (!ctx.RequestAborted.IsCancellationRequested) { throw new DeadlineExceeded(); }
        return ms.ToArray();
    }

    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true).WithRecursionLimit(32));

    private static T Parse<T>(HttpContext ctx, byte[] body, MessageParser<T> parser, ILogger log) where T : IMessage<T>, new()
    {
        bool proto = RequestIsProtobuf(ctx);
        try
        {
            // one rule for unknown fields in both encodings: ignored (proto3's forward compatibility)
            if (proto) return parser.ParseFrom(body);
            string text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(body);
            return Parser.Parse<T>(text);
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidJsonException or FormatException or DecoderFallbackException or ArgumentException)
        {
            log.LogDebug("malformed {Type} body: {Message}", typeof(T).Name, e.Message);
            throw new RequestError("body", $"malformed {(proto ? "protobuf" : "JSON")} {typeof(T).Name}");
        }
    }

    private static async Task<T> Read<T>(HttpContext ctx, MessageParser<T> parser, ILogger log) where T : IMessage<T>, new()
    {
        var body = await ReadBody(ctx);
        if (body.Length == 0) throw new RequestError("body", "empty request body");
        return Parse(ctx, body, parser, log);
    }

    private static async Task<T> ReadOptional<T>(HttpContext ctx, MessageParser<T> parser, ILogger log) where T : IMessage<T>, new()
    {
        var body = await ReadBody(ctx);
        return body.Length == 0 ? new T() : Parse(ctx, body, parser, log);
    }

    private static ErrorResponse Error(ServiceError e, string requestId) => new() { Code = e.Code, Message = e.Message, Field = e.Field, RequestId = requestId };

    private static async Task Write(HttpContext ctx, int status, IMessage msg, bool proto)
    {
        ctx.Response.StatusCode = status;
        if (proto)
        {
            ctx.Response.ContentType = Protobuf;
            await ctx.Response.Body.WriteAsync(msg.ToByteArray());
        }
        else
        {
            ctx.Response.ContentType = Json;
            await ctx.Response.WriteAsync(JsonFormatter.Default.Format(msg));
        }
    }

    private static async Task Handle(HttpContext ctx, string endpoint, ServiceOptions o, RequestMetrics metrics, ILogger log, Func<Caller, Task<IMessage>> body)
    {
        long t0 = Stopwatch.GetTimestamp();
        int status = 200;
        string id = ctx.Response.Headers["X-Request-Id"].ToString();
        bool requestProto = false;
        try { requestProto = RequestIsProtobuf(ctx); } catch (ServiceError) { }
        bool? acceptProto = ResponseIsProtobuf(ctx.Request.Headers.Accept.ToString(), requestProto);
        bool responseProto = acceptProto ?? false;
        var caller = new Caller(endpoint, responseProto ? RequestMetrics.HttpProtobuf : RequestMetrics.HttpJson, ctx.Request.Headers[RankingRequests.UserKeyHeader].ToString());
        using var span = ServiceTracing.Start(caller, id);
        try
        {
            if (acceptProto == null)
                throw new ServiceError(406, Grpc.Core.StatusCode.InvalidArgument, "NOT_ACCEPTABLE", "Accept", $"Accept allows neither {Json} nor {Protobuf}");
            var msg = await body(caller);
            if (Deadline(ctx).IsCancellationRequested && !ctx.RequestAborted.IsCancellationRequested) throw new DeadlineExceeded();
            await Write(ctx, 200, msg, responseProto);
        }
        catch (ServiceError e)
        {
            status = e.HttpStatus;
            if (status == 429 || status == 503) ctx.Response.Headers.RetryAfter = "1";
            await Write(ctx, status, Error(e, id), responseProto);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            status = 499;      // the caller went away
        }
        catch (Exception e)
        {
            status = 500;
            log.LogError(e, "{Endpoint} failed ({RequestId})", endpoint, id);
            await Write(ctx, 500, new ErrorResponse { Code = "INTERNAL", Message = "internal error; the service log has the details", RequestId = id }, responseProto);
        }
        finally
        {
            var elapsed = Stopwatch.GetElapsedTime(t0);
            metrics.Record(endpoint, caller.Protocol, status, caller.Arm, elapsed.TotalSeconds);
            ServiceTracing.End(span, caller, status);
            if (o.AccessLog) log.LogInformation("{Method} {Path} {Status} {Ms:F1}ms {RequestId}", ctx.Request.Method, ctx.Request.Path.Value, status, elapsed.TotalMilliseconds, id);
        }
    }
}
