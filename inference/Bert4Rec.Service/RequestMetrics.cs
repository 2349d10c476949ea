// The service's Prometheus series (prometheus-net, one registry per running service, served at /metrics): requests by
// endpoint, protocol, status and arm, latency histograms, answers per arm and version, the versions served, reloads, and
// the process, runtime, GC and thread-pool metrics of the .NET runtime's own "System.Runtime" meter.
using System.Collections.Concurrent;
using System.Globalization;
using Prometheus;

namespace Bert4Rec.Service;

public sealed class RequestMetrics : IDisposable
{
    /// <summary>The protocol label values: an HTTP request by its response encoding, or a gRPC call.</summary>
    public const string HttpJson = "http-json", HttpProtobuf = "http-protobuf", Grpc = "grpc";
    /// <summary>Latency buckets in seconds (Prometheus base unit): 0.5 ms to 10 s.</summary>
    public static readonly double[] DurationBuckets = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    public CollectorRegistry Registry { get; } = Metrics.NewCustomRegistry();
    private readonly Counter _requests, _armRequests, _reloads, _reloadFailures;
    private readonly Histogram _duration;
    private readonly IDisposable _runtime;
    // label children by value, so that a request costs one dictionary look-up, not a label-array allocation per series
    private readonly ConcurrentDictionary<(string Endpoint, string Protocol, int Status, string Arm), (Counter.Child Count, Histogram.Child Seconds)> _byRequest = new();
    private readonly ConcurrentDictionary<(string Endpoint, string Protocol, string Arm, string Version), Counter.Child> _byArm = new();

    private readonly bool _enabled;

    /// <param name="enabled">false: nothing is recorded (the serve bench measures what recording costs)</param>
    /// <param name="serving">the versions served now (arm, version folder, model version), read at each scrape</param>
    /// <param name="inFlight">ranking requests running now, read at each scrape</param>
    public RequestMetrics(bool enabled = true, Func<IEnumerable<(string Arm, string Version, string ModelVersion)>>? serving = null, Func<int>? inFlight = null)
    {
        _enabled = enabled;
        var f = Metrics.WithCustomRegistry(Registry);
        f.ExemplarBehavior = ExemplarBehavior.NoExemplars();
        _requests = f.CreateCounter("bert4rec_requests_total",
            "Requests answered, by endpoint, protocol (http-json, http-protobuf, grpc), status (HTTP status; a gRPC call's status mapped to it, 499 = caller went away) and arm (primary, canary, mixed for a batch split over both, empty when no version answered)",
            "endpoint", "protocol", "status", "arm");
        _duration = f.CreateHistogram("bert4rec_request_duration_seconds", "Request latency in the service (body read to response written), by endpoint, protocol and arm",
            new HistogramConfiguration { LabelNames = ["endpoint", "protocol", "arm"], Buckets = DurationBuckets });
        _armRequests = f.CreateCounter("bert4rec_arm_requests_total", "Answers by an arm (primary or canary) of a version; a batch counts each of its items",
            "endpoint", "protocol", "arm", "version");
        _reloads = f.CreateCounter("bert4rec_reloads_total", "Versions swapped in (reload, canary promotion, model-root poll)");
        _reloadFailures = f.CreateCounter("bert4rec_reload_failures_total", "Versions refused (verification or smoke test failed); the serving one kept serving");
        var info = f.CreateGauge("bert4rec_model_info", "1 for each version served now, by arm, version folder and model version (manifest created_at + model hash prefix)",
            "arm", "version", "model_version");
        var running = f.CreateGauge("bert4rec_requests_in_flight", "Ranking requests running now");
        Registry.AddBeforeCollectCallback(() =>
        {
            if (inFlight != null) running.Set(inFlight());
            if (serving == null) return;
            var now = serving().ToList();
            foreach (var labels in info.GetAllLabelValues().ToList())
                if (!now.Any(s => s.Arm == labels[0] && s.Version == labels[1] && s.ModelVersion == labels[2])) info.RemoveLabelled(labels);
            foreach (var s in now) info.WithLabels(s.Arm, s.Version, s.ModelVersion).Set(1);
        });
        // process CPU, memory, handles, threads and GC counts (prometheus-net's own collectors) ...
        DotNetStats.Register(Registry);
        // ... and the runtime's "System.Runtime" meter (GC heap and pauses, thread pool threads and queue, lock contention,
        // JIT, exceptions), the meter OpenTelemetry's runtime instrumentation reads; polled at each scrape
        _runtime = MeterAdapter.StartListening(new MeterAdapterOptions
        {
            Registry = Registry, MetricFactory = f, InstrumentFilterPredicate = i => i.Meter.Name == "System.Runtime",
            MetricsExpireAfter = TimeSpan.FromDays(1),       // the longest allowed; each scrape sets every series afresh
        });
    }

    /// <summary>One request answered (or refused) with <paramref name="status"/>, after <paramref name="seconds"/>.</summary>
    public void Record(string endpoint, string protocol, int status, string arm, double seconds)
    {
        if (!_enabled) return;
        var key = (endpoint, protocol, status, arm);
        if (!_byRequest.TryGetValue(key, out var c))
            c = _byRequest.GetOrAdd(key, k => (_requests.WithLabels(k.Endpoint, k.Protocol, k.Status.ToString(CultureInfo.InvariantCulture), k.Arm),
                                                _duration.WithLabels(k.Endpoint, k.Protocol, k.Arm)));
        c.Count.Inc();
        c.Seconds.Observe(seconds);
    }

    /// <summary>One answer by an arm (primary or canary) of a version; a batch counts each of its items.</summary>
    public void RecordArm(string endpoint, string protocol, string arm, string version)
    {
        if (!_enabled) return;
        var key = (endpoint, protocol, arm, version);
        if (!_byArm.TryGetValue(key, out var c)) c = _byArm.GetOrAdd(key, k => _armRequests.WithLabels(k.Endpoint, k.Protocol, k.Arm, k.Version));
        c.Inc();
    }

    public void Reloaded() => _reloads.Inc();
    public void ReloadFailed() => _reloadFailures.Inc();
    public long Reloads => (long)_reloads.Value;
    public long ReloadFailures => (long)_reloadFailures.Value;

    private long Sum(Counter counter, Func<string[], bool> match) =>
        (long)counter.GetAllLabelValues().Where(match).Sum(l => counter.WithLabels(l).Value);

    /// <summary>Requests to an endpoint over every protocol (or one protocol).</summary>
    public long Count(string endpoint, string? protocol = null) => Sum(_requests, l => l[0] == endpoint && (protocol == null || l[1] == protocol));
    /// <summary>Requests to an endpoint answered with a 4xx or 5xx status (or within one class: 4 or 5).</summary>
    public long Errors(string endpoint, string? protocol = null, int? statusClass = null) =>
        Sum(_requests, l => l[0] == endpoint && (protocol == null || l[1] == protocol) && l[2].Length == 3 && l[2][0] is '4' or '5' && (statusClass == null || l[2][0] - '0' == statusClass));
    /// <summary>Answers by an arm, summed over endpoints, protocols and versions.</summary>
    public long ArmCount(string arm) => Sum(_armRequests, l => l[2] == arm);

    /// <summary>The Prometheus text exposition of every series (what a scrape of /metrics reads).</summary>
    public async Task<string> ScrapeAsync()
    {
        using var ms = new MemoryStream();
        await Registry.CollectAndExportAsTextAsync(ms);
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    public void Dispose() => _runtime.Dispose();
}
