// The gRPC face of the ranking service (service Ranking in service.proto): the same requests, limits and errors as the
// HTTP endpoints, errors as status codes (INVALID_ARGUMENT with the field in the message and in the `field` trailer);
// metrics count a call under the same endpoint name as HTTP, with protocol "grpc".
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
        Handle("recommend", context, c => RankingRequests.Recommend(request, holder, options, metrics, c));

    public override Task<BatchRecommendResponse> RecommendBatch(BatchRecommendRequest request, ServerCallContext context) =>
        Handle("recommend_batch", context, c => RankingRequests.RecommendBatch(request, holder, options, metrics, c));

    public override Task<RerankResponse> Rerank(RerankRequest request, ServerCallContext context) =>
        Handle("rerank", context, c => RankingRequests.Rerank(request, holder, options, metrics, c));

    public override Task<ModelInfo> GetModel(GetModelRequest request, ServerCallContext context) =>
        Handle("model", context, _ => RankingRequests.Model(holder));

    public const string UserKeyMetadata = "x-user-key";

    /// <summary>Runs the call for a caller whose user key is the call's metadata x-user-key (used when the message's user_key is empty).</summary>
    private Task<T> Handle<T>(string endpoint, ServerCallContext context, Func<Caller, T> body)
    {
        long t0 = Stopwatch.GetTimestamp();
        int status = 200;
        var caller = new Caller(endpoint, RequestMetrics.Grpc, context.RequestHeaders.GetValue(UserKeyMetadata), UserKeyMetadata);
        using var span = ServiceTracing.Start(caller, context.GetHttpContext().TraceIdentifier);
        try { return Task.FromResult(body(caller)); }
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
        finally
        {
            metrics.Record(endpoint, RequestMetrics.Grpc, status, caller.Arm, Stopwatch.GetElapsedTime(t0).TotalSeconds);
            ServiceTracing.End(span, caller, status);
        }
    }
}
