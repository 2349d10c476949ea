// `export --triton`: the repository's layout, and a config.pbtxt whose inputs and outputs are the ONNX graph's own
// (names, element types, and the dimensions after the batch one), read back from the model with ONNX Runtime.
using System.Text.RegularExpressions;
using Bert4Rec.Contracts;
using Bert4Rec.Inference.OnnxRuntime;
using Bert4Rec.Training.Export;

namespace Bert4Rec.Inference.Tests.Export;

public class TritonRepositoryTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-triton-");
    public void Dispose() => _dir.Delete(true);

    [Theory]
    [InlineData(ModelKind.Bert4Rec)]
    [InlineData(ModelKind.SasRec)]
    public void The_repository_holds_the_graph_and_a_config_that_matches_its_inputs_and_outputs(ModelKind kind)
    {
        var cfg = new ModelConfig { Kind = kind, ItemCount = 40, Hidden = 16, Heads = 2, Layers = 2, MaxLength = 10 };
        using var model = OnnxParityTests.RandomModel(cfg, 4);
        string onnx = Path.Combine(_dir.FullName, "model.onnx");
        OnnxExporter.Export(cfg, model.Parameters, onnx);
        string repo = Path.Combine(_dir.FullName, "repo");
        TritonRepository.Write(repo, "ranker", cfg, onnx, maxBatch: 32);
        // written again over itself: replaced, never merged with the old one
        TritonRepository.Write(repo, "ranker", cfg, onnx, maxBatch: 32);
        Assert.Equal(["ranker"], Directory.GetDirectories(repo).Select(Path.GetFileName));
        Assert.Equal(File.ReadAllBytes(onnx), File.ReadAllBytes(Path.Combine(repo, "ranker", "1", "model.onnx")));
        string text = File.ReadAllText(Path.Combine(repo, "ranker", "config.pbtxt"));
        Assert.Contains("name: \"ranker\"", text);
        Assert.Contains("platform: \"onnxruntime_onnx\"", text);
        Assert.Contains("max_batch_size: 32", text);

        var declared = Regex.Matches(text, @"\{ name: ""(\w+)"" data_type: (\w+) dims: \[ ([-\d, ]+) \] \}")
            .ToDictionary(m => m.Groups[1].Value, m => (Type: m.Groups[2].Value, Dims: m.Groups[3].Value.Split(',', StringSplitOptions.TrimEntries).Select(long.Parse).ToArray()));
        using var s = new InferenceSession(onnx, new SessionOptions { IntraOpThreads = 1 });
        var nodes = s.Inputs.Concat(s.Outputs).ToList();
        Assert.Equal(nodes.Select(n => n.Name).Order(), declared.Keys.Order());
        foreach (var n in nodes)
        {
            var (type, dims) = declared[n.Name];
            Assert.Equal(n.ElementType == TensorElementType.Int64 ? "TYPE_INT64" : "TYPE_FP32", type);
            Assert.Equal(n.Dimensions.Skip(1).Select(x => x < 0 ? -1 : x), dims);      // Triton's dims leave out the batch
        }
    }

    [Fact]
    public void Bad_names_are_refused_and_nothing_is_written()
    {
        var cfg = new ModelConfig { Kind = ModelKind.SasRec, ItemCount = 5, Hidden = 8, Heads = 1, Layers = 1, MaxLength = 4 };
        string repo = Path.Combine(_dir.FullName, "repo");
        foreach (var bad in new[] { "", "../x", ".hidden", "a b", "x/y" })
            Assert.Contains("--triton-name", Assert.Throws<UsageException>(() => TritonRepository.Write(repo, bad, cfg, "/nonexistent.onnx")).Message);
        Assert.False(Directory.Exists(repo));
        Assert.ThrowsAny<IOException>(() => TritonRepository.Write(repo, "ok", cfg, Path.Combine(_dir.FullName, "missing.onnx")));
        Assert.False(Directory.Exists(repo));
        Assert.Empty(Directory.GetDirectories(_dir.FullName));
    }
}
