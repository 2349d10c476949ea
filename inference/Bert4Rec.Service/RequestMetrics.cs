// Request counters and a latency histogram per endpoint, exposed in Prometheus text format at /metrics.
using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Bert4Rec.Service;

public sealed class RequestMetrics
{
    private static readonly double[] BucketsMs = [0.5, 1, 2, 5, 10, 20, 50, 100, 250, 1000];
    private sealed class Series
    {
        public long Count, Errors;
        public double SumMs;
        public readonly long[] Buckets = new long[BucketsMs.Length + 1];
    }
    private readonly ConcurrentDictionary<string, Series> _series = new();
    private readonly ConcurrentDictionary<(string Endpoint, string Arm, string Version), long[]> _arms = new();
    public long Reloads;
    public long FailedReloads;

    public void Record(string endpoint, int status, double ms)
    {
        var s = _series.GetOrAdd(endpoint, _ => new Series());
        lock (s)
        {
            s.Count++;
            if (status >= 400) s.Errors++;
            s.SumMs += ms;
            int b = Array.FindIndex(BucketsMs, x => ms <= x);
            s.Buckets[b < 0 ? BucketsMs.Length : b]++;
        }
    }

    /// <summary>One answer by an arm (primary or canary) of a version; a batch counts each of its items.</summary>
    public void RecordArm(string endpoint, string arm, string version) => Interlocked.Increment(ref _arms.GetOrAdd((endpoint, arm, version), _ => new long[1])[0]);

    /// <summary>Answers by an arm, summed over endpoints and versions.</summary>
    public long ArmCount(string arm) => _arms.Where(x => x.Key.Arm == arm).Sum(x => Interlocked.Read(ref x.Value[0]));

    public long Count(string endpoint) => _series.TryGetValue(endpoint, out var s) ? s.Count : 0;
    public long Errors(string endpoint) => _series.TryGetValue(endpoint, out var s) ? s.Errors : 0;

    public string Prometheus()
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append("# TYPE bert4rec_requests_total counter\n# TYPE bert4rec_request_errors_total counter\n# TYPE bert4rec_request_duration_ms histogram\n");
        foreach (var (name, s) in _series.OrderBy(x => x.Key))
            lock (s)
            {
                sb.Append(inv, $"bert4rec_requests_total{{endpoint=\"{name}\"}} {s.Count}\n");
                sb.Append(inv, $"bert4rec_request_errors_total{{endpoint=\"{name}\"}} {s.Errors}\n");
                long cum = 0;
                for (int i = 0; i < BucketsMs.Length; i++)
                {
                    cum += s.Buckets[i];
                    sb.Append(inv, $"bert4rec_request_duration_ms_bucket{{endpoint=\"{name}\",le=\"{BucketsMs[i]}\"}} {cum}\n");
                }
                sb.Append(inv, $"bert4rec_request_duration_ms_bucket{{endpoint=\"{name}\",le=\"+Inf\"}} {s.Count}\n");
                sb.Append(inv, $"bert4rec_request_duration_ms_sum{{endpoint=\"{name}\"}} {s.SumMs:F3}\nbert4rec_request_duration_ms_count{{endpoint=\"{name}\"}} {s.Count}\n");
            }
        sb.Append("# TYPE bert4rec_arm_requests_total counter\n");
        foreach (var ((endpoint, arm, version), n) in _arms.OrderBy(x => x.Key))
            sb.Append(inv, $"bert4rec_arm_requests_total{{endpoint=\"{endpoint}\",arm=\"{arm}\",version=\"{version}\"}} {Interlocked.Read(ref n[0])}\n");
        sb.Append(inv, $"bert4rec_reloads_total {Interlocked.Read(ref Reloads)}\nbert4rec_reload_failures_total {Interlocked.Read(ref FailedReloads)}\n");
        return sb.ToString();
    }
}
