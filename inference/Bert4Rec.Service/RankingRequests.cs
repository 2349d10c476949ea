// What the ranking endpoints do, once for both transports: limits checked (a RequestError names the field at fault),
// the request run on a lease of the current bundle, the response message built. HTTP and gRPC only map errors.
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Service;
using Bert4Rec.Inference.Recommendation;
using ScoredItem = Bert4Rec.Contracts.Service.ScoredItem;

namespace Bert4Rec.Service;

/// <summary>
/// An error a remote caller may see: its HTTP status, gRPC status, code and the request field at fault are chosen by the
/// type that throws it, and its message is written for callers (no exception text, file content, hash or path).
/// </summary>
public class ServiceError(int httpStatus, Grpc.Core.StatusCode grpcStatus, string code, string field, string message) : Exception(message)
{
    public int HttpStatus { get; } = httpStatus;
    public Grpc.Core.StatusCode GrpcStatus { get; } = grpcStatus;
    public string Code { get; } = code;
    public string Field { get; } = field;
}

/// <summary>A request the service refuses: INVALID_ARGUMENT with the request field at fault (HTTP 400, gRPC status 3).</summary>
public sealed class RequestError(string field, string message)
    : ServiceError(400, Grpc.Core.StatusCode.InvalidArgument, "INVALID_ARGUMENT", field, message);

/// <summary>No bundle is loaded, or the service is draining (UNAVAILABLE: HTTP 503, gRPC status 14).</summary>
public sealed class NoBundleException(string message = "no bundle loaded")
    : ServiceError(503, Grpc.Core.StatusCode.Unavailable, "UNAVAILABLE", "", message);

/// <summary>A named version does not exist under the model root (NOT_FOUND: HTTP 404).</summary>
public sealed class VersionNotFound(string field)
    : ServiceError(404, Grpc.Core.StatusCode.NotFound, "NOT_FOUND", field, "no complete version of that name under the model root");

/// <summary>A version that failed verification or its smoke test; the serving one keeps serving (FAILED_PRECONDITION: HTTP 409).</summary>
public sealed class VersionRefused(string file, string reason)
    : ServiceError(409, Grpc.Core.StatusCode.FailedPrecondition, "FAILED_PRECONDITION", file, $"refused ({reason}); the current version keeps serving");

/// <summary>Too many requests in flight (RESOURCE_EXHAUSTED: HTTP 429 with Retry-After).</summary>
public sealed class Overloaded()
    : ServiceError(429, Grpc.Core.StatusCode.ResourceExhausted, "RESOURCE_EXHAUSTED", "", "too many requests in flight; retry later");

/// <summary>The request ran past its deadline (DEADLINE_EXCEEDED: HTTP 504).</summary>
public sealed class DeadlineExceeded()
    : ServiceError(504, Grpc.Core.StatusCode.DeadlineExceeded, "DEADLINE_EXCEEDED", "", "the request ran past its deadline");

/// <summary>
/// Who is calling: the endpoint's metrics name, the protocol, and the user key given outside the message (HTTP header or
/// gRPC metadata); the request fills in the arm that answered (for the metrics and the trace).
/// </summary>
internal sealed class Caller(string endpoint, string protocol, string? userKey = null, string userKeySource = RankingRequests.UserKeyHeader)
{
    public string Endpoint { get; } = endpoint;
    public string Protocol { get; } = protocol;
    public string? UserKey { get; } = userKey;
    public string UserKeySource { get; } = userKeySource;
    /// <summary>primary, canary, mixed (a batch answered by both), or empty until a version answers.</summary>
    public string Arm { get; private set; } = "";
    /// <summary>The version folder that answered (the last one, for a batch answered by both arms).</summary>
    public string Version { get; private set; } = "";

    /// <summary>One answer by <paramref name="arm"/> of <paramref name="version"/>: counted, and the caller's arm set.</summary>
    public void Answered(RequestMetrics metrics, string arm, string version)
    {
        metrics.RecordArm(Endpoint, Protocol, arm, version);
        Arm = Arm.Length == 0 || Arm == arm ? arm : "mixed";
        Version = version;
    }
}

internal static class RankingRequests
{
    /// <summary>The HTTP header (gRPC metadata key, lower case) carrying a user key for requests whose user_key field is empty.</summary>
    public const string UserKeyHeader = "X-User-Key";
    /// <summary>The HTTP response header naming the arm that answered.</summary>
    public const string ArmHeader = "X-Model-Arm";

    /// <summary>The request's user key: its own field, else the caller's header; checked for length.</summary>
    private static string UserKey(string field, string prefix, Caller caller)
    {
        if (field.Length > 0)
        {
            if (field.Length > BundleHolder.MaxUserKeyLength) throw new RequestError(prefix + "user_key", $"at most {BundleHolder.MaxUserKeyLength} characters, got {field.Length}");
            return field;
        }
        string key = caller.UserKey ?? "";
        if (key.Length > BundleHolder.MaxUserKeyLength) throw new RequestError(caller.UserKeySource, $"at most {BundleHolder.MaxUserKeyLength} characters, got {key.Length}");
        return key;
    }

    public static RecommendResponse Recommend(RecommendRequest req, BundleHolder holder, ServiceOptions o, RequestMetrics metrics, Caller caller)
    {
        var q = Check(req, o, "");
        using var lease = holder.Acquire(UserKey(req.UserKey, "", caller));
        var resp = Response(WithUserErrors(() => lease.Recommender.RecommendBatch([q])[0]), lease);
        caller.Answered(metrics, lease.Arm, lease.Name);
        return resp;
    }

    public static BatchRecommendResponse RecommendBatch(BatchRecommendRequest req, BundleHolder holder, ServiceOptions o, RequestMetrics metrics, Caller caller)
    {
        if (req.Requests.Count == 0) throw new RequestError("requests", "requests is empty");
        if (req.Requests.Count > o.MaxBatch) throw new RequestError("requests", $"at most {o.MaxBatch} requests per batch, got {req.Requests.Count}");
        var queries = new RecommendQuery[req.Requests.Count];
        var keys = new string[queries.Length];
        for (int i = 0; i < queries.Length; i++)
        {
            queries[i] = Check(req.Requests[i], o, $"requests[{i}].");
            keys[i] = UserKey(req.Requests[i].UserKey, $"requests[{i}].", caller);
        }
        // each item goes to its key's arm; each arm runs its items as one batch (one ONNX Runtime run, one FAISS search per distinct K)
        var leases = new List<BundleHolder.Lease>();
        try
        {
            var arms = new BundleHolder.Lease[queries.Length];
            for (int i = 0; i < queries.Length; i++)
            {
                var l = holder.Acquire(keys[i]);
                int same = leases.FindIndex(x => ReferenceEquals(x.Bundle, l.Bundle));
                if (same >= 0) { l.Dispose(); arms[i] = leases[same]; }
                else { leases.Add(l); arms[i] = l; }
            }
            var resp = new RecommendResponse[queries.Length];
            foreach (var lease in leases)
            {
                int[] rows = Enumerable.Range(0, queries.Length).Where(i => ReferenceEquals(arms[i].Bundle, lease.Bundle)).ToArray();
                // the batch encodes its users before any model runs; a bad user feature is named with its request's index
                RecommendationResult[] results;
                try { results = lease.Recommender.RecommendBatch(rows.Select(i => queries[i]).ToArray()); }
                catch (UserFeatureException e) when (e.Query >= 0) { throw new RequestError($"requests[{rows[e.Query]}].{e.Field}", e.Message); }
                for (int j = 0; j < rows.Length; j++) resp[rows[j]] = Response(results[j], lease);
            }
            var batch = new BatchRecommendResponse();
            batch.Responses.AddRange(resp);
            for (int i = 0; i < resp.Length; i++) caller.Answered(metrics, arms[i].Arm, arms[i].Name);
            return batch;
        }
        finally { foreach (var l in leases) l.Dispose(); }
    }

    public static RerankResponse Rerank(RerankRequest req, BundleHolder holder, ServiceOptions o, RequestMetrics metrics, Caller caller)
    {
        CheckHistory(req.History, o, "");
        if (req.Candidates.Count == 0) throw new RequestError("candidates", "candidates is empty");
        if (req.Candidates.Count > o.MaxCandidates) throw new RequestError("candidates", $"at most {o.MaxCandidates} candidates, got {req.Candidates.Count}");
        for (int i = 0; i < req.Candidates.Count; i++)
            if (string.IsNullOrEmpty(req.Candidates[i])) throw new RequestError($"candidates[{i}]", "empty item id");
        if (req.K < 0 || req.K > o.MaxK) throw new RequestError("k", $"k must be in 0..{o.MaxK}, got {req.K}");
        using var lease = holder.Acquire(UserKey(req.UserKey, "", caller));
        var user = CheckUser(req.UserId, req.UserFeatures, "");
        var r = WithUserErrors(() => lease.Recommender.Rerank(req.History, req.Candidates, req.K, user));
        var resp = new RerankResponse { ModelVersion = lease.Bundle.Version, Arm = lease.Arm, Version = lease.Name, RankedBy = r.RankedBy };
        resp.Items.AddRange(r.Items.Select(i => new ScoredItem { ItemId = i.ItemId, Score = i.Score }));
        resp.UnknownIds.AddRange(r.UnknownIds);
        resp.UnknownCandidateIds.AddRange(r.UnknownCandidateIds);
        caller.Answered(metrics, lease.Arm, lease.Name);
        return resp;
    }

    public static ModelInfo Model(BundleHolder holder)
    {
        using var lease = holder.Acquire();
        var b = lease.Bundle;
        var info = new ModelInfo
        {
            ModelVersion = b.Version, ItemCount = b.Config.ItemCount, Hidden = b.Config.Hidden, Layers = b.Config.Layers, Heads = b.Config.Heads,
            MaxLength = b.Config.MaxLength, IndexFactory = b.Index?.Factory ?? "", ExecutionProvider = b.Session.ActiveProvider,
            Version = lease.Name, CanaryVersion = holder.CanaryName ?? "", CanaryShare = holder.CanaryShare,
        };
        info.Versions.AddRange(holder.Versions());
        info.Kind = b.Config.Kind.Name();
        if (b.StageTwo is { } two) info.StageTwoKind = two.Config.Kind.Name();
        info.UserFeatureFields.AddRange(b.Users?.FieldNames ?? []);
        foreach (var (k, v) in b.Manifest.Metrics) info.Metrics[k] = v;
        return info;
    }

    private static void CheckHistory(IList<string> history, ServiceOptions o, string prefix)
    {
        if (history.Count > o.MaxHistory) throw new RequestError(prefix + "history", $"at most {o.MaxHistory} history items, got {history.Count}");
        for (int i = 0; i < history.Count; i++)
            if (string.IsNullOrEmpty(history[i])) throw new RequestError($"{prefix}history[{i}]", "empty item id");
    }

    /// <summary>The request's limits checked (errors name the field under <paramref name="prefix"/>) and its defaults filled in.</summary>
    private static RecommendQuery Check(RecommendRequest req, ServiceOptions o, string prefix)
    {
        CheckHistory(req.History, o, prefix);
        int k = req.K == 0 ? 10 : req.K;
        if (k < 1 || k > o.MaxK) throw new RequestError(prefix + "k", $"k must be in 1..{o.MaxK}, got {req.K}");
        int c = req.Candidates == 0 ? 200 : req.Candidates;
        if (c < 1 || c > o.MaxCandidates) throw new RequestError(prefix + "candidates", $"candidates must be in 1..{o.MaxCandidates}, got {req.Candidates}");
        return new RecommendQuery(req.History, k, c, req.IncludeSeen, CheckUser(req.UserId, req.UserFeatures, prefix));
    }

    /// <summary>The most user feature fields a request may carry, and the longest name and value.</summary>
    public const int MaxUserFeatures = 64, MaxFeatureNameLength = 128, MaxFeatureValueLength = 1024;

    /// <summary>The request's user for a stage-two ranker, its limits checked (what the bundle reads is checked by it).</summary>
    private static UserContext? CheckUser(string userId, IDictionary<string, string> features, string prefix)
    {
        if (userId.Length > BundleHolder.MaxUserKeyLength) throw new RequestError(prefix + "user_id", $"at most {BundleHolder.MaxUserKeyLength} characters, got {userId.Length}");
        if (features.Count > MaxUserFeatures) throw new RequestError(prefix + "user_features", $"at most {MaxUserFeatures} fields, got {features.Count}");
        foreach (var (name, value) in features)
        {
            if (name.Length == 0 || name.Length > MaxFeatureNameLength) throw new RequestError(prefix + "user_features", $"a field name must have 1..{MaxFeatureNameLength} characters");
            if (value.Length > MaxFeatureValueLength) throw new RequestError($"{prefix}user_features.{name}", $"at most {MaxFeatureValueLength} characters, got {value.Length}");
        }
        return userId.Length == 0 && features.Count == 0 ? null : new UserContext(userId, new Dictionary<string, string>(features, StringComparer.Ordinal));
    }

    /// <summary>Runs <paramref name="run"/>, turning a user feature the bundle cannot read into a RequestError naming its field.</summary>
    private static T WithUserErrors<T>(Func<T> run)
    {
        try { return run(); }
        catch (UserFeatureException e) { throw new RequestError(e.Field, e.Message); }
    }


    private static RecommendResponse Response(RecommendationResult r, BundleHolder.Lease lease)
    {
        var resp = new RecommendResponse { ModelVersion = lease.Bundle.Version, Arm = lease.Arm, Version = lease.Name, RankedBy = r.RankedBy };
        resp.Items.AddRange(r.Items.Select(i => new ScoredItem { ItemId = i.ItemId, Score = i.Score }));
        resp.UnknownIds.AddRange(r.UnknownIds);
        return resp;
    }

}
