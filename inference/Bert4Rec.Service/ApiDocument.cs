// The OpenAPI 3.1 document of the HTTP API (GET /openapi/v1.json), generated from the endpoints themselves: each route
// carries an ApiOperation (summary, request and response messages, error statuses) and the schemas follow protobuf's
// JSON mapping of those messages' descriptors, which is what the service writes (JsonFormatter) and reads (JsonParser).
using System.Text.Json.Nodes;
using Bert4Rec.Contracts.Service;
using Google.Protobuf.Reflection;
using Microsoft.AspNetCore.Routing;

namespace Bert4Rec.Service;

/// <summary>
/// A route's entry in the OpenAPI document. <paramref name="Response"/> null: the answer is text/plain. Every operation may
/// also answer 500; <paramref name="Errors"/> lists the other statuses it answers with an ErrorResponse.
/// </summary>
public sealed record ApiOperation(string Summary, MessageDescriptor? Request, MessageDescriptor? Response, int[] Errors, bool Admin = false, bool RequestOptional = false, int[]? TextStatuses = null);

public static class ApiDocument
{
    public const string Path = "/openapi/v1.json";

    /// <summary>What each error status means (every one answers an ErrorResponse naming its code and field).</summary>
    public static readonly IReadOnlyDictionary<int, string> ErrorMeaning = new Dictionary<int, string>
    {
        [400] = "INVALID_ARGUMENT: the request is malformed or over a limit; `field` names the field at fault",
        [401] = "UNAUTHENTICATED: no valid bearer token",
        [404] = "NOT_FOUND: no complete version of that name under the model root",
        [406] = "NOT_ACCEPTABLE: Accept allows neither application/json nor application/x-protobuf",
        [409] = "FAILED_PRECONDITION: the version failed verification or its smoke test; the serving one keeps serving",
        [415] = "UNSUPPORTED_MEDIA_TYPE: Content-Type is neither application/json nor application/x-protobuf",
        [429] = "RESOURCE_EXHAUSTED: too many requests in flight; retry after Retry-After seconds",
        [500] = "INTERNAL: the service log has the details",
        [503] = "UNAVAILABLE: no version loaded, or the service is draining (Retry-After)",
        [504] = "DEADLINE_EXCEEDED: the request ran past its deadline",
    };

    /// <summary>The document for every route of <paramref name="endpoints"/> that carries an <see cref="ApiOperation"/>.</summary>
    public static JsonObject Build(EndpointDataSource endpoints)
    {
        var paths = new JsonObject();
        var schemas = new JsonObject();
        foreach (var e in endpoints.Endpoints.OfType<RouteEndpoint>().OrderBy(e => e.RoutePattern.RawText, StringComparer.Ordinal))
        {
            if (e.Metadata.GetMetadata<ApiOperation>() is not { } op) continue;
            var item = paths[e.RoutePattern.RawText!] as JsonObject ?? (JsonObject)(paths[e.RoutePattern.RawText!] = new JsonObject());
            foreach (var method in e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? [])
                if (method != "HEAD") item[method.ToLowerInvariant()] = Operation(op, e.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName ?? e.RoutePattern.RawText!, schemas);
        }
        return new JsonObject
        {
            ["openapi"] = "3.1.0",
            ["info"] = new JsonObject
            {
                ["title"] = "Bert4Rec ranking service",
                ["version"] = "v1",
                ["description"] = "The HTTP API of `bert4rec serve`. Bodies are JSON (protobuf's JSON mapping of bert4rec.v1 in service.proto: lowerCamelCase names, " +
                                  "fields at their default value left out) or the same messages as binary protobuf (Content-Type / Accept application/x-protobuf). " +
                                  "The admin operations are served on the admin listener (--admin-urls), not on this one.",
            },
            ["paths"] = paths,
            ["components"] = new JsonObject
            {
                ["schemas"] = schemas,
                ["securitySchemes"] = new JsonObject { ["adminToken"] = new JsonObject { ["type"] = "http", ["scheme"] = "bearer" } },
            },
        };
    }

    private static JsonObject Operation(ApiOperation op, string name, JsonObject schemas)
    {
        var o = new JsonObject { ["summary"] = op.Summary };
        var parameters = new JsonArray(Header("X-Request-Id", "the request id echoed in the response and logs (letters, digits, '-', '_', '.', ':'; at most 64)"));
        if (op.Request?.FindFieldByName("user_key") != null)
            parameters.Add(Header(RankingRequests.UserKeyHeader, "the caller's user key for the canary split, used when the body's userKey is empty"));
        o["parameters"] = parameters;
        if (op.Admin) o["security"] = new JsonArray(new JsonObject { ["adminToken"] = new JsonArray() });
        if (op.Request != null)
            o["requestBody"] = new JsonObject
            {
                ["required"] = !op.RequestOptional,
                ["content"] = Content(op.Request, schemas),
            };
        var responses = new JsonObject();
        if (op.Response != null)
        {
            var ok = new JsonObject { ["description"] = op.Response.Name, ["content"] = Content(op.Response, schemas) };
            if (op.Request?.FindFieldByName("user_key") != null)
                ok["headers"] = new JsonObject { [RankingRequests.ArmHeader] = new JsonObject { ["description"] = "the arm that answered (primary or canary)", ["schema"] = new JsonObject { ["type"] = "string" } } };
            responses["200"] = ok;
        }
        foreach (int status in op.TextStatuses ?? [])
            responses[status.ToString()] = new JsonObject { ["description"] = status == 200 ? "ok" : "not ready", ["content"] = new JsonObject { ["text/plain"] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "string" } } } };
        foreach (int status in op.Errors.Append(500).Distinct().Order())
            responses[status.ToString()] = new JsonObject { ["description"] = ErrorMeaning[status], ["content"] = Content(ErrorResponse.Descriptor, schemas) };
        o["responses"] = responses;
        o["operationId"] = name;
        return o;
    }

    private static JsonObject Header(string name, string description) => new()
    {
        ["name"] = name, ["in"] = "header", ["required"] = false, ["description"] = description, ["schema"] = new JsonObject { ["type"] = "string" },
    };

    private static JsonObject Content(MessageDescriptor m, JsonObject schemas) => new()
    {
        [ServiceHost.Json] = new JsonObject { ["schema"] = Ref(m, schemas) },
        [ServiceHost.Protobuf] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "string", ["format"] = "binary", ["description"] = $"{m.FullName} as binary protobuf" } },
    };

    /// <summary>A reference to the message's schema, adding it (and the messages it holds) to <paramref name="schemas"/>.</summary>
    private static JsonObject Ref(MessageDescriptor m, JsonObject schemas)
    {
        if (!schemas.ContainsKey(m.FullName))
        {
            var props = new JsonObject();
            schemas[m.FullName] = new JsonObject { ["type"] = "object", ["properties"] = props, ["additionalProperties"] = false };
            foreach (var f in m.Fields.InFieldNumberOrder())
                props[f.JsonName] = f.IsMap ? new JsonObject { ["type"] = "object", ["additionalProperties"] = Single(f.MessageType.FindFieldByNumber(2), schemas) }
                    : f.IsRepeated ? new JsonObject { ["type"] = "array", ["items"] = Single(f, schemas) }
                    : Single(f, schemas);
        }
        return new JsonObject { ["$ref"] = "#/components/schemas/" + m.FullName };
    }

    /// <summary>One value of a field under protobuf's JSON mapping.</summary>
    private static JsonObject Single(FieldDescriptor f, JsonObject schemas) => f.FieldType switch
    {
        FieldType.String => new JsonObject { ["type"] = "string" },
        FieldType.Bool => new JsonObject { ["type"] = "boolean" },
        FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => new JsonObject { ["type"] = "integer", ["format"] = "int32" },
        FieldType.UInt32 or FieldType.Fixed32 => new JsonObject { ["type"] = "integer", ["format"] = "int32", ["minimum"] = 0 },
        // 64-bit integers are written as decimal strings (JSON numbers lose precision past 2^53)
        FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 or FieldType.UInt64 or FieldType.Fixed64 => new JsonObject { ["type"] = "string", ["format"] = "int64", ["pattern"] = "^-?[0-9]+$" },
        // a finite number, or NaN and the infinities as strings
        FieldType.Float or FieldType.Double => new JsonObject
        {
            ["oneOf"] = new JsonArray(new JsonObject { ["type"] = "number", ["format"] = f.FieldType == FieldType.Float ? "float" : "double" },
                                      new JsonObject { ["type"] = "string", ["enum"] = new JsonArray("NaN", "Infinity", "-Infinity") }),
        },
        FieldType.Bytes => new JsonObject { ["type"] = "string", ["format"] = "byte" },
        FieldType.Enum => new JsonObject { ["type"] = "string", ["enum"] = new JsonArray(f.EnumType.Values.Select(v => (JsonNode)v.Name).ToArray()) },
        FieldType.Message => Ref(f.MessageType, schemas),
        _ => throw new NotSupportedException($"{f.FullName}: field type {f.FieldType} has no JSON schema here"),
    };
}
