// The ONNX Runtime C API bound by hand: OrtGetApiBase -> GetApi(version) -> the OrtApi function-pointer table, indexed
// by each entry's position in onnxruntime_c_api.h (positions are fixed once an API version ships).
using System.Runtime.InteropServices;
using Bert4Rec.Contracts;

namespace Bert4Rec.Inference.OnnxRuntime;

internal static unsafe class OrtApi
{
    /// <summary>The OrtApi version this binding is written against (ONNX Runtime 1.30).</summary>
    internal const uint ApiVersion = 30;
    internal const string LibraryFile = "libonnxruntime.so.1";

    // Positions in the OrtApi struct (version 1 entries 0..101; CUDA V2 entries from version 11).
    private const int CreateStatusSlot = 0, GetErrorCodeSlot = 1, GetErrorMessageSlot = 2, CreateEnvSlot = 3,
        CreateSessionSlot = 7, RunSlot = 9, CreateSessionOptionsSlot = 10, SetOptimizedModelFilePathSlot = 11,
        SetSessionExecutionModeSlot = 13, SetSessionGraphOptimizationLevelSlot = 23, SetIntraOpNumThreadsSlot = 24,
        SetInterOpNumThreadsSlot = 25, SessionGetInputCountSlot = 30, SessionGetOutputCountSlot = 31,
        SessionGetInputTypeInfoSlot = 33, SessionGetOutputTypeInfoSlot = 34, SessionGetInputNameSlot = 36,
        SessionGetOutputNameSlot = 37, CreateTensorWithDataAsOrtValueSlot = 49, GetTensorMutableDataSlot = 51,
        CastTypeInfoToTensorInfoSlot = 55, GetTensorElementTypeSlot = 60, GetDimensionsCountSlot = 61, GetDimensionsSlot = 62,
        GetTensorTypeAndShapeSlot = 65, CreateCpuMemoryInfoSlot = 69, AllocatorFreeSlot = 76,
        GetAllocatorWithDefaultOptionsSlot = 78, ReleaseEnvSlot = 92, ReleaseStatusSlot = 93, ReleaseMemoryInfoSlot = 94,
        ReleaseSessionSlot = 95, ReleaseValueSlot = 96, ReleaseTypeInfoSlot = 98, ReleaseTensorTypeAndShapeInfoSlot = 99,
        ReleaseSessionOptionsSlot = 100,
        SessionOptionsAppendExecutionProviderCudaV2Slot = 204, CreateCudaProviderOptionsSlot = 205,
        UpdateCudaProviderOptionsSlot = 206, ReleaseCudaProviderOptionsSlot = 208;

    private static readonly IntPtr* Table;
    internal static readonly string VersionString;
    internal static readonly string LibraryPath;

    [StructLayout(LayoutKind.Sequential)]
    private struct OrtApiBase
    {
        public delegate* unmanaged<uint, IntPtr> GetApi;           // const OrtApi* (*)(uint32_t version)
        public delegate* unmanaged<IntPtr> GetVersionString;       // const char* (*)(void)
    }

    static OrtApi()
    {
        IntPtr lib = NativeLibraries.Load(LibraryFile);
        LibraryPath = NativeLibraries.Find(LibraryFile)!;
        if (!NativeLibrary.TryGetExport(lib, "OrtGetApiBase", out IntPtr getBase))
            throw new DllNotFoundException($"{LibraryPath} has no OrtGetApiBase export: not an ONNX Runtime library");
        var baseFn = (delegate* unmanaged<OrtApiBase*>)getBase;
        OrtApiBase* b = baseFn();
        VersionString = Marshal.PtrToStringUTF8(b->GetVersionString()) ?? "?";
        IntPtr api = b->GetApi(ApiVersion);
        if (api == IntPtr.Zero)
            throw new OnnxRuntimeException(OrtErrorCode.NotImplemented,
                $"ONNX Runtime at {LibraryPath} is version {VersionString}, which does not provide C API version {ApiVersion} " +
                $"(ONNX Runtime 1.{ApiVersion} or newer is needed); re-run {NativeLibraries.SetupCommand}");
        Table = (IntPtr*)api;
    }

    internal static void EnsureLoaded() { _ = Table; }

    private static IntPtr Slot(int i) => Table[i];

    // --- error funnel -------------------------------------------------------------------------------------------------

    /// <summary>Throws <see cref="OnnxRuntimeException"/> for a non-null OrtStatus*, releasing the status in all cases.</summary>
    internal static void Check(IntPtr status, string operation)
    {
        if (status == IntPtr.Zero) return;
        try
        {
            var code = (OrtErrorCode)((delegate* unmanaged<IntPtr, int>)Slot(GetErrorCodeSlot))(status);
            string msg = Marshal.PtrToStringUTF8(((delegate* unmanaged<IntPtr, IntPtr>)Slot(GetErrorMessageSlot))(status)) ?? "";
            throw new OnnxRuntimeException(code, $"{operation}: {msg}");
        }
        finally
        {
            ((delegate* unmanaged<IntPtr, void>)Slot(ReleaseStatusSlot))(status);
        }
    }

    internal static IntPtr CreateStatus(int code, string message)
    {
        IntPtr m = Marshal.StringToCoTaskMemUTF8(message);
        try { return ((delegate* unmanaged<int, IntPtr, IntPtr>)Slot(CreateStatusSlot))(code, m); }
        finally { Marshal.FreeCoTaskMem(m); }
    }

    // --- environment, options, session ---------------------------------------------------------------------------------

    internal static IntPtr CreateEnv(int logLevel, string logId)
    {
        IntPtr id = Marshal.StringToCoTaskMemUTF8(logId);
        try
        {
            IntPtr env;
            // OrtStatus* CreateEnv(OrtLoggingLevel log_severity_level, const char* logid, OrtEnv** out)
            Check(((delegate* unmanaged<int, IntPtr, IntPtr*, IntPtr>)Slot(CreateEnvSlot))(logLevel, id, &env), "CreateEnv");
            return env;
        }
        finally { Marshal.FreeCoTaskMem(id); }
    }

    internal static void ReleaseEnv(IntPtr p) => ((delegate* unmanaged<IntPtr, void>)Slot(ReleaseEnvSlot))(p);

    internal static IntPtr CreateSessionOptions()
    {
        IntPtr o;
        Check(((delegate* unmanaged<IntPtr*, IntPtr>)Slot(CreateSessionOptionsSlot))(&o), "CreateSessionOptions");
        return o;
    }

    internal static void ReleaseSessionOptions(IntPtr p) => ((delegate* unmanaged<IntPtr, void>)Slot(ReleaseSessionOptionsSlot))(p);

    internal static void SetIntraOpNumThreads(SafeOrtHandle o, int n) =>
        Check(((delegate* unmanaged<IntPtr, int, IntPtr>)Slot(SetIntraOpNumThreadsSlot))(o.Raw, n), "SetIntraOpNumThreads");

    internal static void SetInterOpNumThreads(SafeOrtHandle o, int n) =>
        Check(((delegate* unmanaged<IntPtr, int, IntPtr>)Slot(SetInterOpNumThreadsSlot))(o.Raw, n), "SetInterOpNumThreads");

    internal static void SetGraphOptimizationLevel(SafeOrtHandle o, int level) =>
        Check(((delegate* unmanaged<IntPtr, int, IntPtr>)Slot(SetSessionGraphOptimizationLevelSlot))(o.Raw, level), "SetSessionGraphOptimizationLevel");

    internal static void SetExecutionMode(SafeOrtHandle o, int mode) =>
        Check(((delegate* unmanaged<IntPtr, int, IntPtr>)Slot(SetSessionExecutionModeSlot))(o.Raw, mode), "SetSessionExecutionMode");

    internal static void SetOptimizedModelFilePath(SafeOrtHandle o, string path)
    {
        IntPtr p = Marshal.StringToCoTaskMemUTF8(path);
        try { Check(((delegate* unmanaged<IntPtr, IntPtr, IntPtr>)Slot(SetOptimizedModelFilePathSlot))(o.Raw, p), "SetOptimizedModelFilePath"); }
        finally { Marshal.FreeCoTaskMem(p); }
    }

    internal static void AppendCudaV2(SafeOrtHandle o, int deviceId)
    {
        IntPtr cuda;
        Check(((delegate* unmanaged<IntPtr*, IntPtr>)Slot(CreateCudaProviderOptionsSlot))(&cuda), "CreateCUDAProviderOptions");
        try
        {
            IntPtr key = Marshal.StringToCoTaskMemUTF8("device_id");
            IntPtr val = Marshal.StringToCoTaskMemUTF8(deviceId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            try
            {
                IntPtr* keys = stackalloc IntPtr[1] { key };
                IntPtr* vals = stackalloc IntPtr[1] { val };
                Check(((delegate* unmanaged<IntPtr, IntPtr*, IntPtr*, nuint, IntPtr>)Slot(UpdateCudaProviderOptionsSlot))(cuda, keys, vals, 1), "UpdateCUDAProviderOptions");
            }
            finally { Marshal.FreeCoTaskMem(key); Marshal.FreeCoTaskMem(val); }
            Check(((delegate* unmanaged<IntPtr, IntPtr, IntPtr>)Slot(SessionOptionsAppendExecutionProviderCudaV2Slot))(o.Raw, cuda), "SessionOptionsAppendExecutionProvider_CUDA_V2");
        }
        finally { ((delegate* unmanaged<IntPtr, void>)Slot(ReleaseCudaProviderOptionsSlot))(cuda); }
    }

    internal static IntPtr CreateSession(SafeOrtHandle env, string modelPath, SafeOrtHandle options)
    {
        IntPtr p = Marshal.StringToCoTaskMemUTF8(modelPath);
        try
        {
            IntPtr s;
            Check(((delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr*, IntPtr>)Slot(CreateSessionSlot))(env.Raw, p, options.Raw, &s), "CreateSession");
            return s;
        }
        finally { Marshal.FreeCoTaskMem(p); }
    }

    internal static void ReleaseSession(IntPtr p) => ((delegate* unmanaged<IntPtr, void>)Slot(ReleaseSessionSlot))(p);

    internal static nuint InputCount(SafeOrtHandle s)
    {
        nuint n;
        Check(((delegate* unmanaged<IntPtr, nuint*, IntPtr>)Slot(SessionGetInputCountSlot))(s.Raw, &n), "SessionGetInputCount");
        return n;
    }

    internal static nuint OutputCount(SafeOrtHandle s)
    {
        nuint n;
        Check(((delegate* unmanaged<IntPtr, nuint*, IntPtr>)Slot(SessionGetOutputCountSlot))(s.Raw, &n), "SessionGetOutputCount");
        return n;
    }

    internal static string IoName(SafeOrtHandle s, nuint index, bool input)
    {
        IntPtr alloc;
        Check(((delegate* unmanaged<IntPtr*, IntPtr>)Slot(GetAllocatorWithDefaultOptionsSlot))(&alloc), "GetAllocatorWithDefaultOptions");
        IntPtr name;
        int slot = input ? SessionGetInputNameSlot : SessionGetOutputNameSlot;
        Check(((delegate* unmanaged<IntPtr, nuint, IntPtr, IntPtr*, IntPtr>)Slot(slot))(s.Raw, index, alloc, &name), input ? "SessionGetInputName" : "SessionGetOutputName");
        try { return Marshal.PtrToStringUTF8(name) ?? ""; }
        finally { Check(((delegate* unmanaged<IntPtr, IntPtr, IntPtr>)Slot(AllocatorFreeSlot))(alloc, name), "AllocatorFree"); }
    }

    /// <summary>Element type and dimensions (-1 = dynamic) of a session input or output.</summary>
    internal static (TensorElementType Type, long[] Dims) IoType(SafeOrtHandle s, nuint index, bool input)
    {
        IntPtr typeInfo;
        int slot = input ? SessionGetInputTypeInfoSlot : SessionGetOutputTypeInfoSlot;
        Check(((delegate* unmanaged<IntPtr, nuint, IntPtr*, IntPtr>)Slot(slot))(s.Raw, index, &typeInfo), "SessionGetTypeInfo");
        try
        {
            IntPtr tensorInfo;   // owned by typeInfo
            Check(((delegate* unmanaged<IntPtr, IntPtr*, IntPtr>)Slot(CastTypeInfoToTensorInfoSlot))(typeInfo, &tensorInfo), "CastTypeInfoToTensorInfo");
            if (tensorInfo == IntPtr.Zero) return (TensorElementType.Undefined, []);
            return ShapeOf(tensorInfo);
        }
        finally { ((delegate* unmanaged<IntPtr, void>)Slot(ReleaseTypeInfoSlot))(typeInfo); }
    }

    private static (TensorElementType Type, long[] Dims) ShapeOf(IntPtr tensorInfo)
    {
        int t;
        Check(((delegate* unmanaged<IntPtr, int*, IntPtr>)Slot(GetTensorElementTypeSlot))(tensorInfo, &t), "GetTensorElementType");
        nuint n;
        Check(((delegate* unmanaged<IntPtr, nuint*, IntPtr>)Slot(GetDimensionsCountSlot))(tensorInfo, &n), "GetDimensionsCount");
        var dims = new long[(int)n];
        fixed (long* d = dims)
            Check(((delegate* unmanaged<IntPtr, long*, nuint, IntPtr>)Slot(GetDimensionsSlot))(tensorInfo, d, n), "GetDimensions");
        return ((TensorElementType)t, dims);
    }

    /// <summary>Shape of a tensor OrtValue produced by a run.</summary>
    internal static (TensorElementType Type, long[] Dims) ValueShape(IntPtr value)
    {
        IntPtr info;
        Check(((delegate* unmanaged<IntPtr, IntPtr*, IntPtr>)Slot(GetTensorTypeAndShapeSlot))(value, &info), "GetTensorTypeAndShape");
        try { return ShapeOf(info); }
        finally { ((delegate* unmanaged<IntPtr, void>)Slot(ReleaseTensorTypeAndShapeInfoSlot))(info); }
    }

    internal static IntPtr TensorData(IntPtr value)
    {
        IntPtr data;
        Check(((delegate* unmanaged<IntPtr, IntPtr*, IntPtr>)Slot(GetTensorMutableDataSlot))(value, &data), "GetTensorMutableData");
        return data;
    }

    // --- memory and values ---------------------------------------------------------------------------------------------

    internal static IntPtr CreateCpuMemoryInfo()
    {
        IntPtr info;
        // OrtStatus* CreateCpuMemoryInfo(OrtAllocatorType type = OrtArenaAllocator (1), OrtMemType mem_type = OrtMemTypeDefault (0), OrtMemoryInfo** out)
        Check(((delegate* unmanaged<int, int, IntPtr*, IntPtr>)Slot(CreateCpuMemoryInfoSlot))(1, 0, &info), "CreateCpuMemoryInfo");
        return info;
    }

    internal static void ReleaseMemoryInfo(IntPtr p) => ((delegate* unmanaged<IntPtr, void>)Slot(ReleaseMemoryInfoSlot))(p);

    /// <summary>An OrtValue over caller memory (not copied; the caller keeps it pinned until the value is released).</summary>
    internal static IntPtr CreateTensor(SafeOrtHandle memInfo, void* data, long bytes, long* shape, int rank, TensorElementType type)
    {
        IntPtr v;
        Check(((delegate* unmanaged<IntPtr, void*, nuint, long*, nuint, int, IntPtr*, IntPtr>)Slot(CreateTensorWithDataAsOrtValueSlot))(
            memInfo.Raw, data, (nuint)bytes, shape, (nuint)rank, (int)type, &v), "CreateTensorWithDataAsOrtValue");
        return v;
    }

    internal static void ReleaseValue(IntPtr p)
    {
        if (p != IntPtr.Zero) ((delegate* unmanaged<IntPtr, void>)Slot(ReleaseValueSlot))(p);
    }

    internal static void Run(SafeOrtHandle session, IntPtr* inputNames, IntPtr* inputs, int inputCount, IntPtr* outputNames, int outputCount, IntPtr* outputs)
    {
        // OrtStatus* Run(OrtSession*, const OrtRunOptions*, const char* const* input_names, const OrtValue* const* inputs,
        //                size_t input_len, const char* const* output_names, size_t output_names_len, OrtValue** outputs)
        Check(((delegate* unmanaged<IntPtr, IntPtr, IntPtr*, IntPtr*, nuint, IntPtr*, nuint, IntPtr*, IntPtr>)Slot(RunSlot))(
            session.Raw, IntPtr.Zero, inputNames, inputs, (nuint)inputCount, outputNames, (nuint)outputCount, outputs), "Run");
    }
}
