// The service's OpenAPI document against the real endpoints through Kestrel: it parses and validates (Microsoft.OpenApi),
// every HTTP route the service maps is in it, and every documented operation answers a good request and a bad one with
// a status, media type and body its document describes (bodies checked against the documented JSON schemas).
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Bert4Rec.Service;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;

namespace Bert4Rec.Inference.Tests.Service;

public class OpenApiTests(BundleFixture fx) : IClassFixture<BundleFixture>
{
    private sealed class SchemaMismatch(string message) : Exception(message);

    /// <summary>Checks a JSON value against a schema of the document (the subset it uses: $ref, oneOf, type, properties, additionalProperties, items, enum, pattern, format int32).</summary>
    private static void Check(JsonNode? value, JsonNode schemaNode, JsonObject doc, string at)
    {
        var schema = schemaNode.AsObject();
        if (schema["$ref"] is JsonNode r)
        {
            string name = r.GetValue<string>()["#/components/schemas/".Length..];
            Check(value, doc["components"]!["schemas"]![name] ?? throw new SchemaMismatch($"{at}: $ref {name} is not in components"), doc, at);
            return;
        }
        if (schema["oneOf"] is JsonArray one)
        {
            int matches = one.Count(s => { try { Check(value, s!, doc, at); return true; } catch (SchemaMismatch) { return false; } });
            if (matches != 1) throw new SchemaMismatch($"{at}: {value?.ToJsonString()} matches {matches} of oneOf");
            return;
        }
        string type = schema["type"]!.GetValue<string>();
        switch (type)
        {
            case "object":
                if (value is not JsonObject o) throw new SchemaMismatch($"{at}: not an object: {value?.ToJsonString()}");
                var props = schema["properties"] as JsonObject;
                foreach (var (k, v) in o)
                    if (props?[k] is JsonNode p) Check(v, p, doc, $"{at}.{k}");
                    else if (schema["additionalProperties"] is JsonObject extra) Check(v, extra, doc, $"{at}.{k}");
                    else if (schema["additionalProperties"] is JsonValue b && !b.GetValue<bool>()) throw new SchemaMismatch($"{at}: property '{k}' is not documented");
                break;
            case "array":
                if (value is not JsonArray a) throw new SchemaMismatch($"{at}: not an array");
                for (int i = 0; i < a.Count; i++) Check(a[i], schema["items"]!, doc, $"{at}[{i}]");
                break;
            default:
                if (value is not JsonValue jv) throw new SchemaMismatch($"{at}: not a {type}");
                var kind = jv.GetValueKind();
                bool ok = type switch
                {
                    "string" => kind == System.Text.Json.JsonValueKind.String,
                    "boolean" => kind is System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False,
                    "number" => kind == System.Text.Json.JsonValueKind.Number,
                    "integer" => kind == System.Text.Json.JsonValueKind.Number && jv.TryGetValue(out long n) && (schema["format"]?.GetValue<string>() != "int32" || n is >= int.MinValue and <= int.MaxValue),
                    _ => throw new SchemaMismatch($"{at}: type {type} unknown to this check"),
                };
                if (!ok) throw new SchemaMismatch($"{at}: {jv.ToJsonString()} is not a {type}");
                if (schema["enum"] is JsonArray e && !e.Any(x => x!.ToJsonString() == jv.ToJsonString())) throw new SchemaMismatch($"{at}: {jv.ToJsonString()} not in its enum");
                if (schema["pattern"] is JsonNode pat && !Regex.IsMatch(jv.GetValue<string>(), pat.GetValue<string>())) throw new SchemaMismatch($"{at}: {jv} does not match {pat}");
                break;
        }
    }

    /// <summary>A good request body (JSON) for each documented body-taking operation, and its expected status.</summary>
    private static readonly Dictionary<string, string> GoodBodies = new()
    {
        ["post /v1/recommend"] = """{"history": ["item1", "item2", "nope"], "k": 3, "userKey": "u1"}""",
        ["post /v1/recommend:batch"] = """{"requests": [{"history": ["item1"], "k": 2}, {"history": ["item3"], "k": 3, "includeSeen": true, "candidates": 20}]}""",
        ["post /v1/rerank"] = """{"history": ["item1"], "candidates": ["item2", "item5", "zzz"], "k": 2}""",
        ["post /admin/canary"] = """{"version": "o2", "share": 0.5}""",
        ["post /admin/reload"] = """{"version": "o1"}""",
    };

    [Fact]
    public async Task The_document_validates_covers_every_route_and_each_operation_answers_as_documented()
    {
        fx.MakeBundle("o1", 31);
        fx.MakeBundle("o2", 32);
        await using var svc = await ServiceHost.StartAsync(new ServiceOptions
        {
            ModelRoot = fx.Dir.FullName, Version = "o1", Urls = "http://127.0.0.1:0", GrpcUrls = "http://127.0.0.1:0", AdminUrls = "http://127.0.0.1:0", AdminToken = "tok",
        });
        using var http = new HttpClient { BaseAddress = new Uri(svc.Address) };
        using var admin = new HttpClient { BaseAddress = new Uri(svc.AdminAddress!) };

        var resp = await http.GetAsync(ApiDocument.Path);
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Equal("application/json", resp.Content.Headers.ContentType!.MediaType);
        string text = await resp.Content.ReadAsStringAsync();
        // an OpenAPI parser reads it without error and its validation rules find nothing
        var read = OpenApiDocument.Load(new MemoryStream(Encoding.UTF8.GetBytes(text)), "json");
        Assert.Empty(read.Diagnostic!.Errors);
        Assert.Equal(OpenApiSpecVersion.OpenApi3_1, read.Diagnostic.SpecificationVersion);
        var parsed = read.Document!;
        Assert.Empty(parsed.Validate(ValidationRuleSet.GetDefaultRuleSet())!);
        var doc = JsonNode.Parse(text)!.AsObject();
        var paths = doc["paths"]!.AsObject();
        Assert.Equal(paths.Count, parsed.Paths.Count);

        // every route the service maps is documented, but for the Prometheus scrape, the document itself and gRPC
        var documented = paths.SelectMany(p => p.Value!.AsObject().Select(m => $"{m.Key} {p.Key}")).ToHashSet();
        var mapped = new HashSet<string>();
        foreach (var e in svc.App.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>())
        {
            string route = e.RoutePattern.RawText!;
            if (route is "/metrics" or ApiDocument.Path || e.DisplayName?.StartsWith("gRPC", StringComparison.Ordinal) == true
                || e.Metadata.Any(m => m.GetType().Namespace?.StartsWith("Grpc.", StringComparison.Ordinal) == true)) continue;
            var methods = e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods;
            Assert.True(methods != null, $"{route} ({e.DisplayName}; {string.Join(", ", e.Metadata.Select(m => m.GetType().FullName))}) has no HTTP method");
            foreach (var method in methods.Where(m => m != "HEAD"))
                mapped.Add($"{method.ToLowerInvariant()} {route}");
        }
        Assert.Equal(mapped.Order(), documented.Order());
        Assert.Contains("post /v1/recommend", documented);

        foreach (var op in documented)
        {
            string method = op[..op.IndexOf(' ')], path = op[(op.IndexOf(' ') + 1)..];
            var spec = paths[path]![method]!.AsObject();
            bool isAdmin = spec["security"] != null;
            var client = isAdmin ? admin : http;
            async Task Answer(HttpRequestMessage msg, int expected, string what)
            {
                var r = await client.SendAsync(msg);
                int status = (int)r.StatusCode;
                string body = await r.Content.ReadAsStringAsync();
                Assert.True(status == expected, $"{op} {what}: {status} {body}");
                var documentedResponse = spec["responses"]![status.ToString()] ?? throw new Xunit.Sdk.XunitException($"{op} {what}: status {status} not documented");
                string media = r.Content.Headers.ContentType!.MediaType!;
                var content = documentedResponse["content"]![media] ?? throw new Xunit.Sdk.XunitException($"{op} {what}: {status} {media} not documented");
                if (media == "application/json") Check(JsonNode.Parse(body), content["schema"]!, doc, $"{op} {status}");
            }

            // a good request: 200 with its documented body
            var good = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()), path);
            if (spec["requestBody"] is JsonNode requestBody)
            {
                Assert.True(GoodBodies.ContainsKey(op), $"{op}: no sample request in this test");
                Check(JsonNode.Parse(GoodBodies[op]), requestBody["content"]!["application/json"]!["schema"]!, doc, $"{op} request");
                good.Content = new StringContent(GoodBodies[op], Encoding.UTF8, "application/json");
            }
            if (isAdmin) good.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "tok");
            await Answer(good, 200, "good request");

            // a bad one: malformed JSON (or, without a body, an Accept it cannot meet; without a token for admin)
            if (path is "/healthz" or "/readyz") continue;
            var bad = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()), path);
            if (spec["requestBody"] != null) bad.Content = new StringContent("{", Encoding.UTF8, "application/json");
            else bad.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/html"));
            if (isAdmin) bad.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "tok");
            await Answer(bad, spec["requestBody"] != null ? 400 : 406, "bad request");
            if (isAdmin) await Answer(new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(GoodBodies[op], Encoding.UTF8, "application/json") }, 401, "no token");
        }
    }
}
