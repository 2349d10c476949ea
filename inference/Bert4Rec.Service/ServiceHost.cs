// The online ranking service: ASP.NET Core on Kestrel with JSON or binary-protobuf endpoints, limits, request metrics,
// health and readiness, and hot reload. StartAsync runs it in-process (the CLI, the demo, the bench and the tests use it).
using System.Diagnostics;
using System.Text;
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Service;
using Bert4Rec.Inference.OnnxRuntime;
using SessionOptions = Bert4Rec.Inference.OnnxRuntime.SessionOptions;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bert4Rec.Service;

public sealed record ServiceOptions
{
    public required string BundlePath { get; init; }
    public string Urls { get; init; } = "http://127.0.0.1:8080";
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
    internal RunningService(WebApplication app, BundleHolder holder, string address, RequestMetrics metrics)
    { App = app; Holder = holder; Address = address; Metrics = metrics; }
    public WebApplication App { get; }
    public BundleHolder Holder { get; }
    public RequestMetrics Metrics { get; }
    /// <summary>The bound base address, e.g. http://127.0.0.1:40123.</summary>
    public string Address { get; }
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
        builder.WebHost.UseUrls(o.Urls);
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = o.MaxBodyBytes);
        var app = builder.Build();
        var metrics = new RequestMetrics();
        var log = app.Logger;
        Map(app, o, holder, metrics, log);
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        log.LogInformation("serving {Bundle} on {Address}", o.BundlePath, address);
        return new RunningService(app, holder, address, metrics);
    }

    private sealed class BadRequest(string field, string message) : Exception(message) { public string Field { get; } = field; }

    private static void Map(WebApplication app, ServiceOptions o, BundleHolder holder, RequestMetrics metrics, ILogger log)
    {
        app.MapPost("/v1/recommend", (RequestDelegate)(ctx => Handle(ctx, "recommend", metrics, log, async () =>
        {
            var req = await Read(ctx, RecommendRequest.Parser);
            using var lease = holder.Acquire();
            return Recommend(req, lease, o);
        })));
        app.MapPost("/v1/recommend:batch", (RequestDelegate)(ctx => Handle(ctx, "recommend_batch", metrics, log, async () =>
        {
            var req = await Read(ctx, BatchRecommendRequest.Parser);
            if (req.Requests.Count == 0) throw new BadRequest("requests", "requests is empty");
            if (req.Requests.Count > o.MaxBatch) throw new BadRequest("requests", $"at most {o.MaxBatch} requests per batch, got {req.Requests.Count}");
            using var lease = holder.Acquire();
            var resp = new BatchRecommendResponse();
            foreach (var r in req.Requests) resp.Responses.Add(Recommend(r, lease, o));
            return resp;
        })));
        app.MapPost("/v1/rerank", (RequestDelegate)(ctx => Handle(ctx, "rerank", metrics, log, async () =>
        {
            var req = await Read(ctx, RerankRequest.Parser);
            CheckHistory(req.History, o);
            if (req.Candidates.Count == 0) throw new BadRequest("candidates", "candidates is empty");
            if (req.Candidates.Count > o.MaxCandidates) throw new BadRequest("candidates", $"at most {o.MaxCandidates} candidates, got {req.Candidates.Count}");
            if (req.K < 0 || req.K > o.MaxK) throw new BadRequest("k", $"k must be in 0..{o.MaxK}, got {req.K}");
            using var lease = holder.Acquire();
            var r = lease.Recommender.Rerank(req.History, req.Candidates, req.K);
            var resp = new RerankResponse { ModelVersion = lease.Bundle.Version };
            resp.Items.AddRange(r.Items.Select(i => new Contracts.Service.ScoredItem { ItemId = i.ItemId, Score = i.Score }));
            resp.UnknownIds.AddRange(r.UnknownIds);
            return resp;
        })));
        app.MapGet("/v1/model", (RequestDelegate)(ctx => Handle(ctx, "model", metrics, log, () => Task.FromResult(Info(holder)))));
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
                throw new BadRequest("bundle", "reload refused, the current bundle keeps serving: " + e.Message);
            }
        })));
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/readyz", () => holder.Ready ? Results.Text("ready\n") : Results.Text("not ready\n", statusCode: 503));
        app.MapGet("/metrics", () => Results.Text(metrics.Prometheus(), "text/plain; version=0.0.4"));
    }

    private static IMessage Info(BundleHolder holder)
    {
        using var lease = holder.Acquire();
        var b = lease.Bundle;
        var info = new ModelInfo
        {
            ModelVersion = b.Version, ItemCount = b.Config.ItemCount, Hidden = b.Config.Hidden, Layers = b.Config.Layers, Heads = b.Config.Heads,
            MaxLength = b.Config.MaxLength, IndexFactory = b.Index?.Factory ?? "", ExecutionProvider = b.Session.ActiveProvider, BundlePath = b.Path,
        };
        foreach (var (k, v) in b.Manifest.Metrics) info.Metrics[k] = v;
        return info;
    }

    private static void CheckHistory(IList<string> history, ServiceOptions o)
    {
        if (history.Count > o.MaxHistory) throw new BadRequest("history", $"at most {o.MaxHistory} history items, got {history.Count}");
        for (int i = 0; i < history.Count; i++)
            if (string.IsNullOrEmpty(history[i])) throw new BadRequest($"history[{i}]", "empty item id");
    }

    private static RecommendResponse Recommend(RecommendRequest req, BundleHolder.Lease lease, ServiceOptions o)
    {
        CheckHistory(req.History, o);
        int k = req.K == 0 ? 10 : req.K;
        if (k < 1 || k > o.MaxK) throw new BadRequest("k", $"k must be in 1..{o.MaxK}, got {req.K}");
        int c = req.Candidates == 0 ? 200 : req.Candidates;
        if (c < 1 || c > o.MaxCandidates) throw new BadRequest("candidates", $"candidates must be in 1..{o.MaxCandidates}, got {req.Candidates}");
        var r = lease.Recommender.Recommend(req.History, k, c, req.IncludeSeen);
        var resp = new RecommendResponse { ModelVersion = lease.Bundle.Version };
        resp.Items.AddRange(r.Items.Select(i => new Contracts.Service.ScoredItem { ItemId = i.ItemId, Score = i.Score }));
        resp.UnknownIds.AddRange(r.UnknownIds);
        return resp;
    }

    private static bool IsProtobuf(string? contentType) => contentType != null && contentType.Contains(Protobuf, StringComparison.OrdinalIgnoreCase);

    private static async Task<T> Read<T>(HttpContext ctx, MessageParser<T> parser) where T : IMessage<T>, new()
    {
        using var ms = new MemoryStream();
        try { await ctx.Request.Body.CopyToAsync(ms); }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) { throw new BadRequest("body", e.Message); }
        if (ms.Length == 0) throw new BadRequest("body", "empty request body");
        try
        {
            if (IsProtobuf(ctx.Request.ContentType)) return parser.ParseFrom(ms.ToArray());
            return JsonParser.Default.Parse<T>(Encoding.UTF8.GetString(ms.ToArray()));
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidJsonException or FormatException)
        {
            throw new BadRequest("body", $"malformed {(IsProtobuf(ctx.Request.ContentType) ? "protobuf" : "JSON")} {typeof(T).Name}: {e.Message}");
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
        catch (BadRequest e)
        {
            status = 400;
            await Write(ctx, 400, new ErrorResponse { Code = "INVALID_ARGUMENT", Message = e.Message, Field = e.Field });
        }
        catch (InvalidOperationException e) when (e.Message.StartsWith("no bundle", StringComparison.Ordinal))
        {
            status = 503;
            await Write(ctx, 503, new ErrorResponse { Code = "UNAVAILABLE", Message = e.Message });
        }
        catch (Exception e)
        {
            status = 500;
            log.LogError(e, "{Endpoint} failed", endpoint);
            await Write(ctx, 500, new ErrorResponse { Code = "INTERNAL", Message = e.Message });
        }
        finally
        {
            metrics.Record(endpoint, status, clock.Elapsed.TotalMilliseconds);
        }
    }
}
