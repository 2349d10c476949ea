// InferenceSession: one loaded ONNX model on the official ONNX Runtime C# API (NuGet Microsoft.ML.OnnxRuntime), run with
// tensors over pinned managed memory (no copies in or out). One session serves all threads: ORT's Run is thread-safe and
// every call pins and releases its own values.
using Ort = Microsoft.ML.OnnxRuntime;

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

public sealed class InferenceSession : IDisposable
{
    /// <summary>The NuGet package this build runs on (chosen by the MSBuild property OnnxRuntimePackage).</summary>
#if ORT_GPU_PACKAGE
    public const string PackageName = "Microsoft.ML.OnnxRuntime.Gpu";
#else
    public const string PackageName = "Microsoft.ML.OnnxRuntime";
#endif
    private const string CudaProviderName = "CUDAExecutionProvider";

    private readonly Ort.InferenceSession _session;
    private readonly Ort.RunOptions _runOptions;
    private readonly Dictionary<string, int> _inputIndex;
    private readonly Dictionary<string, int> _outputIndex;
    private int _disposed;

    public IReadOnlyList<NodeMetadata> Inputs { get; }
    public IReadOnlyList<NodeMetadata> Outputs { get; }
    public string ModelPath { get; }
    /// <summary>The execution provider the session actually uses ("CPU" or "CUDA").</summary>
    public string ActiveProvider { get; }

    /// <summary>The ONNX Runtime version string of the loaded library.</summary>
    public static string RuntimeVersion => Env.GetVersionString();

    /// <summary>Execution providers compiled into the loaded ONNX Runtime (e.g. CPUExecutionProvider).</summary>
    public static IReadOnlyList<string> AvailableProviders => Env.GetAvailableProviders();

    // One process-wide environment with ORT's own log at ERROR (its warnings about unused initializers are noise here).
    private static readonly Lazy<Ort.OrtEnv> LazyEnv = new(CreateEnv, isThreadSafe: true);
    private static Ort.OrtEnv Env => LazyEnv.Value;

    private static Ort.OrtEnv CreateEnv()
    {
        try
        {
            var o = new Ort.EnvironmentCreationOptions { logId = "bert4rec", logLevel = Ort.OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
            return Ort.OrtEnv.CreateInstanceWithOptions(ref o);
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            throw new OnnxRuntimeException(OrtErrorCode.Fail,
                $"the ONNX Runtime native library (libonnxruntime.so from the NuGet package {PackageName}) could not be loaded: " +
                $"{(e.InnerException ?? e).Message}; rebuild with `dotnet build` so that it is copied beside the assemblies", e);
        }
    }

    public InferenceSession(string modelPath, SessionOptions? options = null) : this(modelPath, null, options) { }

    /// <summary>A session over a model already read (and verified) into memory; <paramref name="name"/> labels errors.</summary>
    public InferenceSession(byte[] model, string name, SessionOptions? options = null) : this(name, model, options) { }

    private InferenceSession(string modelPath, byte[]? model, SessionOptions? options)
    {
        options ??= new SessionOptions();
        ModelPath = modelPath;
        if (model == null && !File.Exists(modelPath)) throw new FileNotFoundException($"ONNX model not found: {modelPath}", modelPath);
        if (options.IntraOpThreads < 0 || options.InterOpThreads < 0) throw new ArgumentException("thread counts must be >= 0");
        var log = Once(options.Log ?? StandardError);
        _ = Env;

        var so = NewOptions(options);
        string provider = "CPU";
        try
        {
            provider = ConfigureProvider(so, options, log);
            try { _session = model != null ? new Ort.InferenceSession(model, so) : new Ort.InferenceSession(modelPath, so); }
            catch (Ort.OnnxRuntimeException e) when (provider == "CUDA" && options.Provider == ExecutionProvider.Auto)
            {
                // the provider library loaded but could not run here (no device, driver mismatch): the CPU it is
                log($"warning: the CUDA execution provider failed to start ({Describe(e).Message}); falling back to the CPU execution provider");
                so.Dispose();
                so = NewOptions(options);
                provider = "CPU";
                _session = model != null ? new Ort.InferenceSession(model, so) : new Ort.InferenceSession(modelPath, so);
            }
        }
        catch (Ort.OnnxRuntimeException e)
        {
            var (code, msg) = Describe(e);
            throw new OnnxRuntimeException(code, $"could not load ONNX model {modelPath}: {msg}", e);
        }
        finally { so.Dispose(); }
        ActiveProvider = provider;
        _runOptions = new Ort.RunOptions();

        Inputs = _session.InputNames.Select(n => Meta(n, _session.InputMetadata[n])).ToList();
        Outputs = _session.OutputNames.Select(n => Meta(n, _session.OutputMetadata[n])).ToList();
        _inputIndex = Inputs.Select((m, i) => (m.Name, i)).ToDictionary(x => x.Name, x => x.i);
        _outputIndex = Outputs.Select((m, i) => (m.Name, i)).ToDictionary(x => x.Name, x => x.i);
    }

    private static readonly Action<string> StandardError = m => Console.Error.WriteLine(m);
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Action<string>, HashSet<string>> Warned = new();

    /// <summary>The log, passing each distinct warning once per process (a bench or a reloading service opens many sessions).</summary>
    private static Action<string> Once(Action<string> log) => m =>
    {
        var seen = Warned.GetOrCreateValue(log);
        bool first;
        lock (seen) first = seen.Add(m);
        if (first) log(m);
    };

    private static Ort.SessionOptions NewOptions(SessionOptions options)
    {
        var so = new Ort.SessionOptions
        {
            IntraOpNumThreads = options.IntraOpThreads,
            InterOpNumThreads = options.InterOpThreads,
            GraphOptimizationLevel = options.OptimizationLevel switch
            {
                GraphOptimizationLevel.DisableAll => Ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                GraphOptimizationLevel.Basic => Ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                GraphOptimizationLevel.Extended => Ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                _ => Ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            },
            LogSeverityLevel = Ort.OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        if (options.OptimizedModelPath != null) so.OptimizedModelFilePath = options.OptimizedModelPath;
        return so;
    }

    /// <summary>Adds the CUDA provider when asked for and possible; returns the provider the session will use.</summary>
    private static string ConfigureProvider(Ort.SessionOptions so, SessionOptions options, Action<string> log)
    {
        if (options.Provider == ExecutionProvider.Cpu) return "CPU";
        string missing;
        if (!AvailableProviders.Contains(CudaProviderName))
            missing = $"the CUDA execution provider is not in this build's ONNX Runtime (package {PackageName}, providers " +
                      $"{string.Join(", ", AvailableProviders)}); build with -p:OnnxRuntimePackage=Gpu on a machine that has CUDA";
        else
        {
            try
            {
                using var cuda = new Ort.OrtCUDAProviderOptions();
                cuda.UpdateOptions(new Dictionary<string, string> { ["device_id"] = options.CudaDeviceId.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                so.AppendExecutionProvider_CUDA(cuda);
                return "CUDA";
            }
            catch (Ort.OnnxRuntimeException e)
            {
                missing = $"the CUDA execution provider failed to load ({Describe(e).Message})";
            }
        }
        if (options.Provider == ExecutionProvider.Cuda) throw new OnnxRuntimeException(OrtErrorCode.EpFail, $"--provider cuda: {missing}");
        log($"warning: {missing}; falling back to the CPU execution provider");
        return "CPU";
    }

    private static NodeMetadata Meta(string name, Ort.NodeMetadata m) =>
        m.IsTensor
            ? new NodeMetadata(name, (TensorElementType)(int)m.ElementDataType, m.Dimensions.Select(d => (long)d).ToArray())
            : new NodeMetadata(name, TensorElementType.Undefined, []);

    /// <summary>
    /// ORT's code and message of an official-API exception. The code exists only in the message, which the managed
    /// API writes as "[ErrorCode:Name] text"; anything else counts as Fail.
    /// </summary>
    internal static (OrtErrorCode Code, string Message) Describe(Ort.OnnxRuntimeException e)
    {
        const string prefix = "[ErrorCode:";
        string m = e.Message;
        if (!m.StartsWith(prefix, StringComparison.Ordinal)) return (OrtErrorCode.Fail, m);
        int end = m.IndexOf(']', prefix.Length);
        if (end < 0) return (OrtErrorCode.Fail, m);
        var code = Enum.TryParse<OrtErrorCode>(m.AsSpan(prefix.Length, end - prefix.Length), out var c) ? c : OrtErrorCode.Fail;
        return (code, m[(end + 1)..].Trim());
    }

    private long _runs;
    /// <summary>How many times <see cref="Run(ReadOnlySpan{NamedTensor}, ReadOnlySpan{NamedTensor})"/> was called (batching is visible in it).</summary>
    public long Runs => Interlocked.Read(ref _runs);

    public NodeMetadata Input(string name) => _inputIndex.TryGetValue(name, out int i) ? Inputs[i] : throw new ArgumentException($"model {ModelPath} has no input '{name}'");
    public NodeMetadata Output(string name) => _outputIndex.TryGetValue(name, out int i) ? Outputs[i] : throw new ArgumentException($"model {ModelPath} has no output '{name}'");

    /// <summary>
    /// Runs the model. Inputs and outputs are tensors over caller memory; ORT writes the outputs straight into the caller's
    /// buffers, whose shapes must be exactly the outputs' shapes for these inputs. Every model input must be given.
    /// Thread-safe.
    /// </summary>
    public void Run(ReadOnlySpan<NamedTensor> inputs, ReadOnlySpan<NamedTensor> outputs)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        Interlocked.Increment(ref _runs);
        CheckInputCount(inputs.Length);
        var inNames = new string[inputs.Length];
        var outNames = new string[outputs.Length];
        var inValues = new Ort.OrtValue[inputs.Length];
        var outValues = new Ort.OrtValue[outputs.Length];
        try
        {
            for (int i = 0; i < inputs.Length; i++)
            {
                inNames[i] = CheckCompatible(inputs[i], input: true).Name;
                inValues[i] = ToValue(inputs[i]);
            }
            for (int j = 0; j < outputs.Length; j++)
            {
                outNames[j] = CheckCompatible(outputs[j], input: false).Name;
                outValues[j] = ToValue(outputs[j]);
            }
            try { _session.Run(_runOptions, inNames, inValues, outNames, outValues); }
            catch (Ort.OnnxRuntimeException e) { throw RunError(e); }
        }
        finally
        {
            foreach (var v in inValues) v?.Dispose();
            foreach (var v in outValues) v?.Dispose();
        }
    }

    /// <summary>Runs the model and returns the named float outputs as new arrays with their shapes (ORT allocates them).</summary>
    public (float[] Data, long[] Shape)[] Run(ReadOnlySpan<NamedTensor> inputs, params string[] outputNames)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        CheckInputCount(inputs.Length);
        foreach (var name in outputNames)
            if (Output(name).ElementType != TensorElementType.Float) throw new ArgumentException($"output '{name}' is {Output(name).ElementType}, not float");
        var inNames = new string[inputs.Length];
        var inValues = new Ort.OrtValue[inputs.Length];
        try
        {
            for (int i = 0; i < inputs.Length; i++)
            {
                inNames[i] = CheckCompatible(inputs[i], input: true).Name;
                inValues[i] = ToValue(inputs[i]);
            }
            Ort.IDisposableReadOnlyCollection<Ort.OrtValue> results;
            try { results = _session.Run(_runOptions, inNames, inValues, outputNames); }
            catch (Ort.OnnxRuntimeException e) { throw RunError(e); }
            using (results)
                return results.Select(v => (v.GetTensorDataAsSpan<float>().ToArray(), v.GetTensorTypeAndShape().Shape)).ToArray();
        }
        finally
        {
            foreach (var v in inValues) v?.Dispose();
        }
    }

    /// <summary>An OrtValue over the tensor's own memory: pinned for the value's lifetime, not copied.</summary>
    private static Ort.OrtValue ToValue(in NamedTensor t) => t.ElementType == TensorElementType.Int64
        ? Ort.OrtValue.CreateTensorValueFromMemory(Ort.OrtMemoryInfo.DefaultInstance, t.Int64Data, t.Shape)
        : Ort.OrtValue.CreateTensorValueFromMemory(Ort.OrtMemoryInfo.DefaultInstance, t.FloatData, t.Shape);

    private OnnxRuntimeException RunError(Ort.OnnxRuntimeException e)
    {
        var (code, msg) = Describe(e);
        return new OnnxRuntimeException(code, $"ONNX Runtime run of {Path.GetFileName(ModelPath)} failed: {msg}", e);
    }

    private void CheckInputCount(int given)
    {
        if (given != Inputs.Count)
            throw new ArgumentException($"the model takes {Inputs.Count} inputs ({string.Join(", ", Inputs.Select(x => x.Name))}), {given} given");
    }

    private NodeMetadata CheckCompatible(in NamedTensor t, bool input)
    {
        string kind = input ? "input" : "output";
        var index = input ? _inputIndex : _outputIndex;
        if (!index.TryGetValue(t.Name, out int k)) throw new ArgumentException($"model {ModelPath} has no {kind} '{t.Name}'");
        var meta = (input ? Inputs : Outputs)[k];
        if (t.ElementType != meta.ElementType)
            throw new ArgumentException($"{kind} '{t.Name}' of model {Path.GetFileName(ModelPath)} expects {meta.ElementType}, got {t.ElementType}");
        if (t.Shape.Length != meta.Dimensions.Length)
            throw new ArgumentException($"{kind} '{t.Name}' expects rank {meta.Dimensions.Length} [{string.Join(",", meta.Dimensions)}], got shape [{string.Join(",", t.Shape)}]");
        for (int i = 0; i < t.Shape.Length; i++)
            if (meta.Dimensions[i] >= 0 && meta.Dimensions[i] != t.Shape[i])
                throw new ArgumentException($"{kind} '{t.Name}' dimension {i} must be {meta.Dimensions[i]}, got {t.Shape[i]}");
        return meta;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _session.Dispose();
        _runOptions.Dispose();
    }
}
