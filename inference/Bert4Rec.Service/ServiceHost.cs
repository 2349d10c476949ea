// The online ranking service: ASP.NET Core on Kestrel with JSON or binary-protobuf endpoints over HTTP/1.1 and the same
// operations as a gRPC service over HTTP/2 on its own port (with the standard grpc.health.v1 service), limits, request
// metrics, health and readiness, and hot reload. StartAsync runs it in-process (the CLI, the demo, the bench and the
// tests use it).
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
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;

namespace Bert4Rec.Service;

public sealed record ServiceOptions
{
    public required string BundlePath { get; init; }
    /// <summary>HTTP/1.1 (JSON and binary protobuf) listen URLs, ';'-separated; port 0 picks a free port.</summary>
    public string Urls { get; init; } = "http://127.0.0.1:8080";
    /// <summary>gRPC (HTTP/2 without TLS) listen URLs, ';'-separated; empty (the default here) = no gRPC endpoint.
    /// `bert4rec serve` defaults to http://127.0.0.1:8081.</summary>
    public string GrpcUrls { get; init; } = "";
    public int MaxHistory { get; init; } = 2000;
    public int MaxK { get; init; } = 1000;
    public int MaxCandidates { get; init; } = 10000;
    public int MaxBatch { get; init; } = 256;
    public long MaxBodyBytes { get; init; } = 1 << 20;
    public ExecutionProvider Provider { get; init; } = ExecutionProvider.Cpu;
    public int IntraOpThreads { get; init; } = 1;
    public LogLevel LogLevel { get; init; } = LogLevel.Warning;
    /// <summary>Structured JSON log lines (one object per event) instead of single-line text.</summary>
    public bool JsonLogs { get; init; }
}

public sealed class RunningService : IAsyncDisposable
{
    internal RunningService(WebApplication app, BundleHolder holder, string address, string? grpcAddress, RequestMetrics metrics)
    { App = app; Holder = holder; Address = address; GrpcAddress = grpcAddress; Metrics = metrics; }
    public WebApplication App { get; }
    public BundleHolder Holder { get; }
    public RequestMetrics Metrics { get; }
    /// <summary>The bound base address, e.g. http://127.0.0.1:40123.</summary>
    public string Address { get; }
    /// <summary>The bound gRPC base address (HTTP/2), e.g. http://127.0.0.1:40124; null when gRPC is off.</summary>
    public string? GrpcAddress { get; }
    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        Holder.Dispose();
    }
}

public static class ServiceHost
{
    public const string Protobuf = "application/x-protobuf";

    /// <summary>Loads and verifies the bundle (failing fast with a clear message), then starts Kestrel.</summary>
    public static async Task<RunningService> StartAsync(ServiceOptions o)
    {
        var holder = new BundleHolder(new SessionOptions { IntraOpThreads = o.IntraOpThreads, Provider = o.Provider });
        await holder.ReloadAsync(o.BundlePath);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (o.JsonLogs) builder.Logging.AddJsonConsole(c => { c.TimestampFormat = "O"; c.UseUtcTimestamp = true; });
        else builder.Logging.AddSimpleConsole(c => { c.SingleLine = true; c.TimestampFormat = "HH:mm:ss "; });
        builder.Logging.SetMinimumLevel(o.LogLevel);
        var httpEndpoints = ParseUrls(o.Urls, "--urls");
        var grpcEndpoints = string.IsNullOrWhiteSpace(o.GrpcUrls) ? [] : ParseUrls(o.GrpcUrls, "--grpc-urls");
        if (httpEndpoints.Count == 0) throw new ArgumentException("--urls: no URL given");
        var httpListen = new List<ListenOptions>();
        var grpcListen = new List<ListenOptions>();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = o.MaxBodyBytes;
            foreach (var ep in httpEndpoints) k.Listen(ep, l => { l.Protocols = HttpProtocols.Http1; httpListen.Add(l); });
            foreach (var ep in grpcEndpoints) k.Listen(ep, l => { l.Protocols = HttpProtocols.Http2; grpcListen.Add(l); });
        });
        var metrics = new RequestMetrics();
        builder.Services.AddSingleton(holder).AddSingleton(o).AddSingleton(metrics);
        builder.Services.AddGrpc(g =>
        {
            g.MaxReceiveMessageSize = (int)Math.Min(int.MaxValue, o.MaxBodyBytes);
            g.EnableDetailedErrors = false;
        });
        builder.Services.AddGrpcHealthChecks()
            .AddCheck("bundle", () => holder.Ready ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("no bundle loaded"));
        var app = builder.Build();
        var log = app.Logger;
        // each port serves its own protocol: gRPC calls only on the gRPC port, the HTTP API (admin included) only on the other
        int[]? grpcPorts = null;
        app.Use((ctx, next) =>
        {
            grpcPorts ??= grpcListen.Select(l => l.IPEndPoint!.Port).ToArray();
            bool onGrpcPort = grpcPorts.Contains(ctx.Connection.LocalPort);
            bool isGrpc = ctx.Request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true;
            if (onGrpcPort == isGrpc) return next(ctx);
            ctx.Response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        });
        Map(app, o, holder, metrics, log);
        app.MapGrpcService<RankingGrpcService>();
        app.MapGrpcHealthChecksService();
        await app.StartAsync();
        string address = $"http://{httpListen[0].IPEndPoint}";
        string? grpcAddress = grpcListen.Count > 0 ? $"http://{grpcListen[0].IPEndPoint}" : null;
        log.LogInformation("serving {Bundle} on {Address} (HTTP/1.1) and {GrpcAddress} (gRPC)", o.BundlePath, address, grpcAddress ?? "no gRPC");
        return new RunningService(app, holder, address, grpcAddress, metrics);
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

    private static void Map(WebApplication app, ServiceOptions o, BundleHolder holder, RequestMetrics metrics, ILogger log)
    {
        app.MapPost("/v1/recommend", (RequestDelegate)(ctx => Handle(ctx, "recommend", metrics, log, async () =>
            RankingRequests.Recommend(await Read(ctx, RecommendRequest.Parser), holder, o))));
        app.MapPost("/v1/recommend:batch", (RequestDelegate)(ctx => Handle(ctx, "recommend_batch", metrics, log, async () =>
            RankingRequests.RecommendBatch(await Read(ctx, BatchRecommendRequest.Parser), holder, o))));
        app.MapPost("/v1/rerank", (RequestDelegate)(ctx => Handle(ctx, "rerank", metrics, log, async () =>
            RankingRequests.Rerank(await Read(ctx, RerankRequest.Parser), holder, o))));
        app.MapGet("/v1/model", (RequestDelegate)(ctx => Handle(ctx, "model", metrics, log, () => Task.FromResult<IMessage>(RankingRequests.Model(holder)))));
        app.MapPost("/admin/reload", (RequestDelegate)(ctx => Handle(ctx, "reload", metrics, log, async () =>
        {
            var req = ctx.Request.ContentLength > 0 ? await Read(ctx, ReloadRequest.Parser) : new ReloadRequest();
            try
            {
                var b = await holder.ReloadAsync(string.IsNullOrEmpty(req.Bundle) ? null : req.Bundle);
                log.LogWarning("reloaded bundle {Path} ({Version})", b.Path, b.Version);
                Interlocked.Increment(ref metrics.Reloads);
                return new ModelInfo { ModelVersion = b.Version, ItemCount = b.Config.ItemCount, BundlePath = b.Path };
            }
            catch (Exception e) when (e is BundleException or IOException or InvalidDataException or OnnxRuntimeException or Retrieval.IndexFileException)
            {
                Interlocked.Increment(ref metrics.FailedReloads);
                log.LogError("reload refused, the current bundle keeps serving: {Message}", e.Message);
                throw new RequestError("bundle", "reload refused, the current bundle keeps serving: " + e.Message);
            }
        })));
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/readyz", () => holder.Ready ? Results.Text("ready\n") : Results.Text("not ready\n", statusCode: 503));
        app.MapGet("/metrics", () => Results.Text(metrics.Prometheus(), "text/plain; version=0.0.4"));
    }

    private static bool IsProtobuf(string? contentType) => contentType != null && contentType.Contains(Protobuf, StringComparison.OrdinalIgnoreCase);

    private static async Task<T> Read<T>(HttpContext ctx, MessageParser<T> parser) where T : IMessage<T>, new()
    {
        using var ms = new MemoryStream();
        try { await ctx.Request.Body.CopyToAsync(ms); }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) { throw new RequestError("body", e.Message); }
        if (ms.Length == 0) throw new RequestError("body", "empty request body");
        try
        {
            if (IsProtobuf(ctx.Request.ContentType)) return parser.ParseFrom(ms.ToArray());
            return JsonParser.Default.Parse<T>(Encoding.UTF8.GetString(ms.ToArray()));
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidJsonException or FormatException)
        {
            throw new RequestError("body", $"malformed {(IsProtobuf(ctx.Request.ContentType) ? "protobuf" : "JSON")} {typeof(T).Name}: {e.Message}");
        }
    }

    private static async Task Write(HttpContext ctx, int status, IMessage msg)
    {
        ctx.Response.StatusCode = status;
        string? accept = ctx.Request.Headers.Accept.ToString();
        bool proto = IsProtobuf(accept) || (string.IsNullOrEmpty(accept) || accept == "*/*") && IsProtobuf(ctx.Request.ContentType);
        if (proto)
        {
            ctx.Response.ContentType = Protobuf;
            await ctx.Response.Body.WriteAsync(msg.ToByteArray());
        }
        else
        {
            ctx.Response.ContentType = "application/json";
            await ctx.Response.WriteAsync(JsonFormatter.Default.Format(msg));
        }
    }

    private static async Task Handle(HttpContext ctx, string endpoint, RequestMetrics metrics, ILogger log, Func<Task<IMessage>> body)
    {
        var clock = Stopwatch.StartNew();
        int status = 200;
        try
        {
            var msg = await body();
            await Write(ctx, 200, msg);
        }
        catch (RequestError e)
        {
            status = 400;
            await Write(ctx, 400, new ErrorResponse { Code = "INVALID_ARGUMENT", Message = e.Message, Field = e.Field });
        }
        catch (NoBundleException e)
        {
            status = 503;
            await Write(ctx, 503, new ErrorResponse { Code = "UNAVAILABLE", Message = e.Message });
        }
        catch (Exception e)
        {
            status = 500;
            log.LogError(e, "{Endpoint} failed", endpoint);
            await Write(ctx, 500, new ErrorResponse { Code = "INTERNAL", Message = "internal error; the service log has the details" });
        }
        finally
        {
            metrics.Record(endpoint, status, clock.Elapsed.TotalMilliseconds);
        }
    }
}
