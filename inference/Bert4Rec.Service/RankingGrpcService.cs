// The gRPC face of the ranking service (service Ranking in service.proto): the same requests, limits and errors as the
// HTTP endpoints, errors as status codes (INVALID_ARGUMENT with the field in the message and in the `field` trailer).
using System.Diagnostics;
using Bert4Rec.Contracts.Service;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Bert4Rec.Service;

internal sealed class RankingGrpcService(BundleHolder holder, ServiceOptions options, RequestMetrics metrics, ILogger<RankingGrpcService> log)
    : Ranking.RankingBase
{
    /// <summary>Trailer naming the request field at fault in an INVALID_ARGUMENT status.</summary>
    public const string FieldTrailer = "field";

    public override Task<RecommendResponse> Recommend(RecommendRequest request, ServerCallContext context) =>
        Handle("grpc_recommend", () => RankingRequests.Recommend(request, holder, options, metrics, Caller("grpc_recommend", context)));

    public override Task<BatchRecommendResponse> RecommendBatch(BatchRecommendRequest request, ServerCallContext context) =>
        Handle("grpc_recommend_batch", () => RankingRequests.RecommendBatch(request, holder, options, metrics, Caller("grpc_recommend_batch", context)));

    public override Task<RerankResponse> Rerank(RerankRequest request, ServerCallContext context) =>
        Handle("grpc_rerank", () => RankingRequests.Rerank(request, holder, options, metrics, Caller("grpc_rerank", context)));

    public override Task<ModelInfo> GetModel(GetModelRequest request, ServerCallContext context) =>
        Handle("grpc_model", () => RankingRequests.Model(holder));

    /// <summary>The user key from the call's metadata (x-user-key), used when the message's user_key is empty.</summary>
    private static Caller Caller(string endpoint, ServerCallContext context) =>
        new(endpoint, context.RequestHeaders.GetValue(UserKeyMetadata), UserKeyMetadata);

    public const string UserKeyMetadata = "x-user-key";

    private Task<T> Handle<T>(string endpoint, Func<T> body)
    {
        long t0 = Stopwatch.GetTimestamp();
        int status = 200;
        try { return Task.FromResult(body()); }
        catch (ServiceError e)
        {
            status = e.HttpStatus;
            string text = e.Field.Length > 0 ? $"{e.Field}: {e.Message}" : e.Message;
            throw new RpcException(new Status(e.GrpcStatus, text), e.Field.Length > 0 ? new Metadata { { FieldTrailer, e.Field } } : new Metadata());
        }
        catch (Exception e)
        {
            status = 500;
            log.LogError(e, "{Endpoint} failed", endpoint);
            throw new RpcException(new Status(StatusCode.Internal, "internal error; the service log has the details"));
        }
        finally { metrics.Record(endpoint, status, Stopwatch.GetElapsedTime(t0).TotalMilliseconds); }
    }
}
