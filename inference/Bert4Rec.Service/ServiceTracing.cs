// Trace spans of the service: one per request (ActivitySource "Bert4Rec.Service", named by its endpoint) with the
// recommender's stages below it ("Bert4Rec.Inference": vocabulary, model_run, faiss_search, scoring), and their export
// over OTLP through OpenTelemetry when configured. Nothing listens by default, so no span is made.
using System.Diagnostics;
using Bert4Rec.Inference.Recommendation;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Bert4Rec.Service;

public static class ServiceTracing
{
    public const string SourceName = "Bert4Rec.Service";
    /// <summary>Every trace source of a request: the service's own and the recommender's stages.</summary>
    public static readonly string[] Sources = [SourceName, Recommender.Tracing.Name];
    private static readonly ActivitySource Source = new(SourceName);

    /// <summary>The request's span (null when nobody samples it); ASP.NET Core's server span, when traced, is its parent.</summary>
    internal static Activity? Start(Caller caller, string requestId) =>
        Source.StartActivity(caller.Endpoint)?.SetTag("bert4rec.endpoint", caller.Endpoint).SetTag("bert4rec.protocol", caller.Protocol).SetTag("bert4rec.request_id", requestId);

    /// <summary>Tags the span with what answered and how (a 5xx status marks it an error).</summary>
    internal static void End(Activity? span, Caller caller, int status)
    {
        if (span == null) return;
        span.SetTag("bert4rec.arm", caller.Arm).SetTag("bert4rec.version", caller.Version).SetTag("bert4rec.status", status);
        if (status >= 500) span.SetStatus(ActivityStatusCode.Error);
    }

    /// <summary>
    /// OpenTelemetry's tracer and meter providers for the host, exporting over OTLP: the request spans (with ASP.NET Core's
    /// server spans as their parents) and the ASP.NET Core, Kestrel and runtime metrics.
    /// </summary>
    internal static void AddOtlpExport(IServiceCollection services, Uri endpoint, OtlpExportProtocol protocol)
    {
        // over HTTP/protobuf the exporter wants each signal's full URL; over gRPC the base address
        Uri For(string signal) => protocol == OtlpExportProtocol.HttpProtobuf ? new Uri(endpoint, endpoint.AbsolutePath.TrimEnd('/') + "/v1/" + signal) : endpoint;
        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("bert4rec-serve", serviceVersion: typeof(ServiceTracing).Assembly.GetName().Version?.ToString()))
            .WithTracing(t => t.AddSource(Sources).AddAspNetCoreInstrumentation()
                .AddOtlpExporter(e => { e.Endpoint = For("traces"); e.Protocol = protocol; }))
            .WithMetrics(m => m.AddAspNetCoreInstrumentation().AddRuntimeInstrumentation()
                .AddOtlpExporter(e => { e.Endpoint = For("metrics"); e.Protocol = protocol; }));
    }
}
