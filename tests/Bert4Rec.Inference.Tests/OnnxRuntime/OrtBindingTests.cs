// Proof of the native ONNX chain: a model written from C# through our ONNX schema runs in ONNX Runtime (the official
// Microsoft.ML.OnnxRuntime package) through our session wrapper, with checked outputs, clear errors for bad files and bad
// inputs, thread-safe runs, and the provider choice (cpu | cuda | auto).
using Bert4Rec.Contracts.Onnx;
using Bert4Rec.Inference.OnnxRuntime;
using Google.Protobuf;

namespace Bert4Rec.Inference.Tests.OnnxRuntime;

public class OrtBindingTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-ort-");
    public void Dispose() => _dir.Delete(true);

    // y = x @ W + b, with W (3,2) and b (2); x is float [batch, 3]; plus z = Gather(table, ids) for an int64 input.
    private string WriteAffineModel()
    {
        var g = new OnnxGraphBuilder("affine");
        g.Initializer("W", new float[] { 1, 2, 3, 4, 5, 6 }, 3, 2);
        g.Initializer("b", new float[] { 0.5f, -1 }, 2);
        g.Initializer("table", new float[] { 10, 20, 30, 40 }, 4);
        string mm = g.Node("MatMul", new[] { "x", "W" });
        g.Node("Add", new[] { mm, "b" }, output: "y");
        g.Node("Gather", new[] { "table", "ids" }, output: "z", attributes: OnnxGraphBuilder.Int("axis", 0));
        g.Graph.Input.Add(OnnxGraphBuilder.Value("x", OnnxTensor.Types.DataType.Float, "batch", 3));
        g.Graph.Input.Add(OnnxGraphBuilder.Value("ids", OnnxTensor.Types.DataType.Int64, "n"));
        g.Graph.Output.Add(OnnxGraphBuilder.Value("y", OnnxTensor.Types.DataType.Float, "batch", 2));
        g.Graph.Output.Add(OnnxGraphBuilder.Value("z", OnnxTensor.Types.DataType.Float, "n"));
        string path = Path.Combine(_dir.FullName, "affine.onnx");
        File.WriteAllBytes(path, g.ToModel(17, "test").ToByteArray());
        return path;
    }

    [Fact]
    public void A_model_written_from_CSharp_runs_in_OnnxRuntime_with_checked_outputs()
    {
        using var s = new InferenceSession(WriteAffineModel(), new SessionOptions { IntraOpThreads = 1 });
        Assert.StartsWith("1.31", InferenceSession.RuntimeVersion);
        Assert.Equal(new[] { "x", "ids" }, s.Inputs.Select(i => i.Name));
        Assert.Equal(new long[] { -1, 3 }, s.Input("x").Dimensions);
        Assert.Equal(TensorElementType.Int64, s.Input("ids").ElementType);

        var x = new float[] { 1, 0, 0, 0, 1, 1 };                      // two rows
        var ids = new long[] { 3, 0, 2 };
        var y = new float[4];
        var z = new float[3];
        s.Run(new[] { NamedTensor.Float("x", x, 2, 3), NamedTensor.Int64("ids", ids, 3) },
              new[] { NamedTensor.Float("y", y, 2, 2), NamedTensor.Float("z", z, 3) });
        Assert.Equal(new[] { 1.5f, 1f, 8.5f, 9f }, y);
        Assert.Equal(new[] { 40f, 10f, 30f }, z);

        var allocated = s.Run(new[] { NamedTensor.Float("x", x, 2, 3), NamedTensor.Int64("ids", ids, 3) }, "y");
        Assert.Equal(y, allocated[0].Data);
        Assert.Equal(new long[] { 2, 2 }, allocated[0].Shape);
    }

    [Fact]
    public void Files_that_are_not_onnx_or_are_truncated_are_refused_with_the_path()
    {
        string good = WriteAffineModel();
        string junk = Path.Combine(_dir.FullName, "junk.onnx");
        File.WriteAllText(junk, "definitely not a protobuf model");
        var e = Assert.Throws<OnnxRuntimeException>(() => new InferenceSession(junk));
        Assert.Contains(junk, e.Message);

        string truncated = Path.Combine(_dir.FullName, "truncated.onnx");
        var bytes = File.ReadAllBytes(good);
        File.WriteAllBytes(truncated, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        e = Assert.Throws<OnnxRuntimeException>(() => new InferenceSession(truncated));
        Assert.Contains(truncated, e.Message);

        Assert.Throws<FileNotFoundException>(() => new InferenceSession(Path.Combine(_dir.FullName, "missing.onnx")));
    }

    [Fact]
    public void Wrong_input_shapes_names_and_types_give_clear_errors_not_crashes()
    {
        using var s = new InferenceSession(WriteAffineModel());
        var y = new float[4];
        var z = new float[3];
        var outs = new[] { NamedTensor.Float("y", y, 2, 2), NamedTensor.Float("z", z, 3) };
        var e1 = Assert.Throws<ArgumentException>(() => s.Run(new[] { NamedTensor.Float("x", new float[8], 2, 4), NamedTensor.Int64("ids", new long[3], 3) }, outs));
        Assert.Contains("dimension 1 must be 3", e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() => s.Run(new[] { NamedTensor.Int64("x", new long[6], 2, 3), NamedTensor.Int64("ids", new long[3], 3) }, outs));
        Assert.Contains("expects Float", e2.Message);
        var e3 = Assert.Throws<ArgumentException>(() => s.Run(new[] { NamedTensor.Float("q", new float[6], 2, 3), NamedTensor.Int64("ids", new long[3], 3) }, outs));
        Assert.Contains("no input 'q'", e3.Message);
        Assert.Throws<ArgumentException>(() => NamedTensor.Float("x", new float[5], 2, 3));
        // an index out of range is ORT's own error, surfaced as a typed exception
        var e4 = Assert.Throws<OnnxRuntimeException>(() => s.Run(new[] { NamedTensor.Float("x", new float[6], 2, 3), NamedTensor.Int64("ids", new long[] { 0, 9, 1 }, 3) }, outs));
        Assert.NotEqual(OrtErrorCode.Ok, e4.Code);
        // the output buffer's shape must match what the inputs produce
        var e5 = Assert.Throws<OnnxRuntimeException>(() => s.Run(new[] { NamedTensor.Float("x", new float[6], 2, 3), NamedTensor.Int64("ids", new long[3], 3) },
            new[] { NamedTensor.Float("y", new float[6], 3, 2), NamedTensor.Float("z", z, 3) }));
        Assert.Contains("output", e5.Message);
        Assert.Equal(OrtErrorCode.InvalidArgument, e5.Code);
    }

    [Fact]
    public void Eight_threads_share_one_session_and_get_the_serial_results()
    {
        using var s = new InferenceSession(WriteAffineModel());
        float[] Run(int seed)
        {
            var rng = new Random(seed);
            var x = Enumerable.Range(0, 30).Select(_ => (float)rng.NextDouble()).ToArray();
            var y = new float[20];
            s.Run(new[] { NamedTensor.Float("x", x, 10, 3), NamedTensor.Int64("ids", new long[] { seed % 4 }, 1) },
                  new[] { NamedTensor.Float("y", y, 10, 2), NamedTensor.Float("z", new float[1], 1) });
            return y;
        }
        var serial = Enumerable.Range(0, 64).Select(Run).ToArray();
        var parallel = new float[64][];
        Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => parallel[i] = Run(i));
        for (int i = 0; i < 64; i++) Assert.Equal(serial[i], parallel[i]);
    }

    [Fact]
    public void The_output_holds_the_linux_onnxruntime_library_and_no_windows_or_other_platform_copies()
    {
        string dir = AppContext.BaseDirectory;
        Assert.True(File.Exists(Path.Combine(dir, "libonnxruntime.so")), $"libonnxruntime.so missing in {dir}");
        Assert.Empty(Directory.GetFiles(dir, "*onnxruntime*.dll"));
        Assert.False(Directory.Exists(Path.Combine(dir, "runtimes")), $"{dir}runtimes/ exists: the build is not linux-x64 only");
    }

    [Fact]
    public void Cuda_without_the_gpu_package_fails_naming_it_and_auto_falls_back_to_cpu_with_one_warning()
    {
        string model = WriteAffineModel();
        var warnings = new List<string>();
        Action<string> log = warnings.Add;
        using (var s = new InferenceSession(model, new SessionOptions { Provider = ExecutionProvider.Auto, Log = log }))
        {
            if (s.ActiveProvider == "CUDA")
            {
                // a machine with the CUDA provider: auto takes it without a warning, and asking for it by name works
                Assert.Empty(warnings);
                Assert.Contains("CUDAExecutionProvider", InferenceSession.AvailableProviders);
                using var cuda = new InferenceSession(model, new SessionOptions { Provider = ExecutionProvider.Cuda, Log = log });
                Assert.Equal("CUDA", cuda.ActiveProvider);
                Assert.Empty(warnings);
                return;
            }
            Assert.Equal("CPU", s.ActiveProvider);
        }
        using (var again = new InferenceSession(model, new SessionOptions { Provider = ExecutionProvider.Auto, Log = log }))
            Assert.Equal("CPU", again.ActiveProvider);   // a second session (a reload) does not repeat the warning
        var w = Assert.Single(warnings);
        Assert.Contains("CUDA execution provider", w);
        Assert.Contains("falling back", w);
        if (!InferenceSession.AvailableProviders.Contains("CUDAExecutionProvider")) Assert.Contains("OnnxRuntimePackage=Gpu", w);
        var e = Assert.Throws<OnnxRuntimeException>(() => new InferenceSession(model, new SessionOptions { Provider = ExecutionProvider.Cuda }));
        Assert.Contains("CUDA execution provider", e.Message);
        if (!InferenceSession.AvailableProviders.Contains("CUDAExecutionProvider")) Assert.Contains(InferenceSession.PackageName, e.Message);
        Assert.Throws<ArgumentException>(() => SessionOptions.ParseProvider("tpu"));
    }
}
