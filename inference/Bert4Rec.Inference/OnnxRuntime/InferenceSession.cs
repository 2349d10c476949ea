// InferenceSession: one loaded ONNX model, run with tensors over pinned managed memory (no copies in or out).
// A session serves concurrent callers: ORT's Run is thread-safe and every call pins and releases its own values.
using System.Buffers;
using System.Runtime.InteropServices;

namespace Bert4Rec.Inference.OnnxRuntime;

/// <summary>Name, element type and shape (-1 = dynamic) of a model input or output.</summary>
public sealed record NodeMetadata(string Name, TensorElementType ElementType, long[] Dimensions);

/// <summary>A named tensor over caller memory: int64 or float, row-major, with its shape.</summary>
public readonly struct NamedTensor
{
    public string Name { get; }
    public TensorElementType ElementType { get; }
    public long[] Shape { get; }
    internal readonly Memory<long> Int64Data;
    internal readonly Memory<float> FloatData;

    private NamedTensor(string name, TensorElementType t, long[] shape, Memory<long> i, Memory<float> f)
    {
        Name = name; ElementType = t; Shape = shape; Int64Data = i; FloatData = f;
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"tensor '{name}': negative dimension {d}");
            n *= d;
        }
        long have = t == TensorElementType.Int64 ? i.Length : f.Length;
        if (n != have) throw new ArgumentException($"tensor '{name}': shape [{string.Join(",", shape)}] needs {n} elements, buffer has {have}");
    }

    public static NamedTensor Int64(string name, Memory<long> data, params long[] shape) => new(name, TensorElementType.Int64, shape, data, default);
    public static NamedTensor Float(string name, Memory<float> data, params long[] shape) => new(name, TensorElementType.Float, shape, default, data);
}

public sealed unsafe class InferenceSession : IDisposable
{
    private static readonly Lazy<SafeOrtHandle> Env = new(() =>
        new SafeOrtHandle(OrtApi.CreateEnv(logLevel: 3 /* ERROR */, "bert4rec"), OrtApi.ReleaseEnv), isThreadSafe: true);

    private readonly SafeOrtHandle _session;
    private readonly SafeOrtHandle _memoryInfo;
    private readonly Dictionary<string, int> _inputIndex;
    private readonly Dictionary<string, int> _outputIndex;
    private readonly IntPtr[] _inputNamePtrs;
    private readonly IntPtr[] _outputNamePtrs;

    public IReadOnlyList<NodeMetadata> Inputs { get; }
    public IReadOnlyList<NodeMetadata> Outputs { get; }
    public string ModelPath { get; }
    /// <summary>The execution provider the session actually uses ("CPU" or "CUDA").</summary>
    public string ActiveProvider { get; }

    /// <summary>The ONNX Runtime version string of the loaded library.</summary>
    public static string RuntimeVersion => OrtApi.VersionString;

    public InferenceSession(string modelPath, SessionOptions? options = null)
    {
        options ??= new SessionOptions();
        ModelPath = modelPath;
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"ONNX model not found: {modelPath}", modelPath);
        OrtApi.EnsureLoaded();
        var log = options.Log ?? (m => Console.Error.WriteLine(m));
        using var so = new SafeOrtHandle(OrtApi.CreateSessionOptions(), OrtApi.ReleaseSessionOptions);
        if (options.IntraOpThreads < 0 || options.InterOpThreads < 0) throw new ArgumentException("thread counts must be >= 0");
        OrtApi.SetIntraOpNumThreads(so, options.IntraOpThreads);
        OrtApi.SetInterOpNumThreads(so, options.InterOpThreads);
        OrtApi.SetGraphOptimizationLevel(so, (int)options.OptimizationLevel);
        if (options.OptimizedModelPath != null) OrtApi.SetOptimizedModelFilePath(so, options.OptimizedModelPath);
        ActiveProvider = ConfigureProvider(so, options, log);

        IntPtr raw;
        try { raw = OrtApi.CreateSession(Env.Value, modelPath, so); }
        catch (OnnxRuntimeException e)
        {
            throw new OnnxRuntimeException(e.Code, $"could not load ONNX model {modelPath}: {e.Message}");
        }
        _session = new SafeOrtHandle(raw, OrtApi.ReleaseSession);
        _memoryInfo = new SafeOrtHandle(OrtApi.CreateCpuMemoryInfo(), OrtApi.ReleaseMemoryInfo);

        var inputs = new List<NodeMetadata>();
        for (nuint i = 0; i < OrtApi.InputCount(_session); i++)
        {
            var (t, d) = OrtApi.IoType(_session, i, input: true);
            inputs.Add(new NodeMetadata(OrtApi.IoName(_session, i, input: true), t, d));
        }
        var outputs = new List<NodeMetadata>();
        for (nuint i = 0; i < OrtApi.OutputCount(_session); i++)
        {
            var (t, d) = OrtApi.IoType(_session, i, input: false);
            outputs.Add(new NodeMetadata(OrtApi.IoName(_session, i, input: false), t, d));
        }
        Inputs = inputs;
        Outputs = outputs;
        _inputIndex = inputs.Select((m, i) => (m.Name, i)).ToDictionary(x => x.Name, x => x.i);
        _outputIndex = outputs.Select((m, i) => (m.Name, i)).ToDictionary(x => x.Name, x => x.i);
        _inputNamePtrs = inputs.Select(m => Marshal.StringToCoTaskMemUTF8(m.Name)).ToArray();
        _outputNamePtrs = outputs.Select(m => Marshal.StringToCoTaskMemUTF8(m.Name)).ToArray();
    }

    private static string ConfigureProvider(SafeOrtHandle so, SessionOptions options, Action<string> log)
    {
        if (options.Provider == ExecutionProvider.Cpu) return "CPU";
        string dir = Path.GetDirectoryName(OrtApi.LibraryPath)!;
        string[] needed = ["libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"];
        var missing = needed.Where(f => !File.Exists(Path.Combine(dir, f))).ToList();
        if (missing.Count > 0)
        {
            string msg = $"CUDA execution provider unavailable: {string.Join(" and ", missing.Select(m => Path.Combine(dir, m)))} not found";
            if (options.Provider == ExecutionProvider.Cuda) throw new OnnxRuntimeException(OrtErrorCode.NoSuchFile, msg);
            log($"warning: {msg}; falling back to the CPU execution provider");
            return "CPU";
        }
        try
        {
            OrtApi.AppendCudaV2(so, options.CudaDeviceId);
            return "CUDA";
        }
        catch (OnnxRuntimeException e) when (options.Provider == ExecutionProvider.Auto)
        {
            log($"warning: CUDA execution provider failed to load ({e.Message}); falling back to the CPU execution provider");
            return "CPU";
        }
    }

    public NodeMetadata Input(string name) => _inputIndex.TryGetValue(name, out int i) ? Inputs[i] : throw new ArgumentException($"model {ModelPath} has no input '{name}'");
    public NodeMetadata Output(string name) => _outputIndex.TryGetValue(name, out int i) ? Outputs[i] : throw new ArgumentException($"model {ModelPath} has no output '{name}'");

    /// <summary>
    /// Runs the model. Inputs and outputs are tensors over caller memory; ORT writes the outputs straight into the caller's
    /// buffers, whose shapes must be exactly the outputs' shapes for these inputs. Every model input must be given.
    /// Thread-safe.
    /// </summary>
    public void Run(ReadOnlySpan<NamedTensor> inputs, ReadOnlySpan<NamedTensor> outputs)
    {
        ObjectDisposedException.ThrowIf(_session.IsClosed, this);
        if (inputs.Length != Inputs.Count)
            throw new ArgumentException($"the model takes {Inputs.Count} inputs ({string.Join(", ", Inputs.Select(x => x.Name))}), {inputs.Length} given");
        int nIn = inputs.Length, nOut = outputs.Length;
        var handles = new MemoryHandle[nIn + nOut];
        var values = new IntPtr[nIn + nOut];
        var inNames = new IntPtr[nIn];
        var outNames = new IntPtr[nOut];
        int pinned = 0;
        try
        {
            for (int i = 0; i < nIn + nOut; i++)
            {
                var t = i < nIn ? inputs[i] : outputs[i - nIn];
                NodeMetadata meta;
                if (i < nIn)
                {
                    if (!_inputIndex.TryGetValue(t.Name, out int k)) throw new ArgumentException($"model {ModelPath} has no input '{t.Name}'");
                    meta = Inputs[k];
                    inNames[i] = _inputNamePtrs[k];
                }
                else
                {
                    if (!_outputIndex.TryGetValue(t.Name, out int k)) throw new ArgumentException($"model {ModelPath} has no output '{t.Name}'");
                    meta = Outputs[k];
                    outNames[i - nIn] = _outputNamePtrs[k];
                }
                CheckCompatible(t, meta, i < nIn ? "input" : "output");
                values[i] = PinAsValue(t, ref handles[i]);
                pinned = i + 1;
            }
            fixed (IntPtr* inN = inNames)
            fixed (IntPtr* outN = outNames)
            fixed (IntPtr* v = values)
            {
                var outValues = stackalloc IntPtr[Math.Max(1, nOut)];
                for (int j = 0; j < nOut; j++) outValues[j] = v[nIn + j];
                OrtApi.Run(_session, inN, v, nIn, outN, nOut, outValues);
                // ORT keeps the caller's output values when their shapes fit; anything else is a mismatch we report.
                for (int j = 0; j < nOut; j++)
                    if (outValues[j] != v[nIn + j])
                    {
                        var (_, dims) = OrtApi.ValueShape(outValues[j]);
                        OrtApi.ReleaseValue(outValues[j]);
                        throw new ArgumentException($"output '{outputs[j].Name}' has shape [{string.Join(",", dims)}], the buffer given is [{string.Join(",", outputs[j].Shape)}]");
                    }
            }
        }
        finally
        {
            for (int i = 0; i < values.Length; i++) OrtApi.ReleaseValue(values[i]);
            for (int i = 0; i < pinned; i++) handles[i].Dispose();
        }
    }

    /// <summary>Runs the model and returns the named float outputs as new arrays with their shapes (ORT allocates them).</summary>
    public (float[] Data, long[] Shape)[] Run(ReadOnlySpan<NamedTensor> inputs, params string[] outputNames)
    {
        ObjectDisposedException.ThrowIf(_session.IsClosed, this);
        if (inputs.Length != Inputs.Count)
            throw new ArgumentException($"the model takes {Inputs.Count} inputs ({string.Join(", ", Inputs.Select(x => x.Name))}), {inputs.Length} given");
        int nIn = inputs.Length, nOut = outputNames.Length;
        var handles = new MemoryHandle[nIn];
        var values = new IntPtr[nIn];
        var inNames = new IntPtr[nIn];
        var outNames = new IntPtr[nOut];
        var outValues = new IntPtr[nOut];
        int pinned = 0;
        try
        {
            for (int j = 0; j < nOut; j++)
            {
                if (!_outputIndex.TryGetValue(outputNames[j], out int k)) throw new ArgumentException($"model {ModelPath} has no output '{outputNames[j]}'");
                if (Outputs[k].ElementType != TensorElementType.Float) throw new ArgumentException($"output '{outputNames[j]}' is {Outputs[k].ElementType}, not float");
                outNames[j] = _outputNamePtrs[k];
            }
            for (int i = 0; i < nIn; i++)
            {
                var t = inputs[i];
                if (!_inputIndex.TryGetValue(t.Name, out int k)) throw new ArgumentException($"model {ModelPath} has no input '{t.Name}'");
                CheckCompatible(t, Inputs[k], "input");
                inNames[i] = _inputNamePtrs[k];
                values[i] = PinAsValue(t, ref handles[i]);
                pinned = i + 1;
            }
            fixed (IntPtr* inN = inNames)
            fixed (IntPtr* outN = outNames)
            fixed (IntPtr* v = values)
            fixed (IntPtr* o = outValues)
                OrtApi.Run(_session, inN, v, nIn, outN, nOut, o);
            var results = new (float[], long[])[nOut];
            for (int j = 0; j < nOut; j++)
            {
                var (_, dims) = OrtApi.ValueShape(outValues[j]);
                long n = 1;
                foreach (var d in dims) n *= d;
                var data = new float[n];
                new ReadOnlySpan<float>((void*)OrtApi.TensorData(outValues[j]), checked((int)n)).CopyTo(data);
                results[j] = (data, dims);
            }
            return results;
        }
        finally
        {
            foreach (var v in values) OrtApi.ReleaseValue(v);
            foreach (var v in outValues) OrtApi.ReleaseValue(v);
            for (int i = 0; i < pinned; i++) handles[i].Dispose();
        }
    }

    /// <summary>Pins the tensor's memory into <paramref name="handle"/> and wraps it in an OrtValue (no copy). On failure the pin is released.</summary>
    private IntPtr PinAsValue(in NamedTensor t, ref MemoryHandle handle)
    {
        long bytes;
        if (t.ElementType == TensorElementType.Int64) { handle = t.Int64Data.Pin(); bytes = t.Int64Data.Length * 8L; }
        else { handle = t.FloatData.Pin(); bytes = t.FloatData.Length * 4L; }
        try
        {
            fixed (long* shape = t.Shape)
                return OrtApi.CreateTensor(_memoryInfo, handle.Pointer, bytes, shape, t.Shape.Length, t.ElementType);
        }
        catch
        {
            handle.Dispose();
            handle = default;
            throw;
        }
    }

    private void CheckCompatible(in NamedTensor t, NodeMetadata meta, string kind)
    {
        if (t.ElementType != meta.ElementType)
            throw new ArgumentException($"{kind} '{t.Name}' of model {Path.GetFileName(ModelPath)} expects {meta.ElementType}, got {t.ElementType}");
        if (t.Shape.Length != meta.Dimensions.Length)
            throw new ArgumentException($"{kind} '{t.Name}' expects rank {meta.Dimensions.Length} [{string.Join(",", meta.Dimensions)}], got shape [{string.Join(",", t.Shape)}]");
        for (int i = 0; i < t.Shape.Length; i++)
            if (meta.Dimensions[i] >= 0 && meta.Dimensions[i] != t.Shape[i])
                throw new ArgumentException($"{kind} '{t.Name}' dimension {i} must be {meta.Dimensions[i]}, got {t.Shape[i]}");
    }

    public void Dispose()
    {
        if (_session.IsClosed) return;
        _session.Dispose();
        _memoryInfo.Dispose();
        foreach (var p in _inputNamePtrs) Marshal.FreeCoTaskMem(p);
        foreach (var p in _outputNamePtrs) Marshal.FreeCoTaskMem(p);
    }
}
