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
        Handle("grpc_recommend", () => RankingRequests.Recommend(request, holder, options));

    public override Task<BatchRecommendResponse> RecommendBatch(BatchRecommendRequest request, ServerCallContext context) =>
        Handle("grpc_recommend_batch", () => RankingRequests.RecommendBatch(request, holder, options));

    public override Task<RerankResponse> Rerank(RerankRequest request, ServerCallContext context) =>
        Handle("grpc_rerank", () => RankingRequests.Rerank(request, holder, options));

    public override Task<ModelInfo> GetModel(GetModelRequest request, ServerCallContext context) =>
        Handle("grpc_model", () => RankingRequests.Model(holder));

    private Task<T> Handle<T>(string endpoint, Func<T> body)
    {
        long t0 = Stopwatch.GetTimestamp();
        int status = 200;
        try { return Task.FromResult(body()); }
        catch (RequestError e)
        {
            status = 400;
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"{e.Field}: {e.Message}"), new Metadata { { FieldTrailer, e.Field } });
        }
        catch (NoBundleException e)
        {
            status = 503;
            throw new RpcException(new Status(StatusCode.Unavailable, e.Message));
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
