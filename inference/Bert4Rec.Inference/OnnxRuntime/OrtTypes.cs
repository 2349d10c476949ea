// Public ONNX Runtime types of our binding: error codes, element types, the typed exception, and native handle owners.
using System.Runtime.InteropServices;

namespace Bert4Rec.Inference.OnnxRuntime;

/// <summary>OrtErrorCode of the C API.</summary>
public enum OrtErrorCode
{
    Ok = 0, Fail = 1, InvalidArgument = 2, NoSuchFile = 3, NoModel = 4, EngineError = 5, RuntimeException = 6,
    InvalidProtobuf = 7, ModelLoaded = 8, NotImplemented = 9, InvalidGraph = 10, EpFail = 11,
}

/// <summary>ONNXTensorElementDataType values we use.</summary>
public enum TensorElementType { Undefined = 0, Float = 1, Int32 = 6, Int64 = 7 }

/// <summary>An error reported by ONNX Runtime (or by this binding before calling it), with ORT's code.</summary>
public sealed class OnnxRuntimeException(OrtErrorCode code, string message) : Exception(message)
{
    public OrtErrorCode Code { get; } = code;
}

/// <summary>Owns one native ONNX Runtime object and releases it exactly once through its Release function.</summary>
internal sealed class SafeOrtHandle : SafeHandle
{
    private readonly Action<IntPtr> _release;
    internal SafeOrtHandle(IntPtr h, Action<IntPtr> release) : base(IntPtr.Zero, ownsHandle: true)
    {
        _release = release;
        SetHandle(h);
    }
    public override bool IsInvalid => handle == IntPtr.Zero;
    internal IntPtr Raw => IsClosed ? throw new ObjectDisposedException("ONNX Runtime object") : handle;
    protected override bool ReleaseHandle()
    {
        _release(handle);
        return true;
    }
}
