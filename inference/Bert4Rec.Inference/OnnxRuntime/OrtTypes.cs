// Public ONNX Runtime types of our session wrapper: error codes, element types and the typed exception, so callers never
// need the Microsoft.ML.OnnxRuntime namespace.
namespace Bert4Rec.Inference.OnnxRuntime;

/// <summary>OrtErrorCode of the C API.</summary>
public enum OrtErrorCode
{
    Ok = 0, Fail = 1, InvalidArgument = 2, NoSuchFile = 3, NoModel = 4, EngineError = 5, RuntimeException = 6,
    InvalidProtobuf = 7, ModelLoaded = 8, NotImplemented = 9, InvalidGraph = 10, EpFail = 11,
}

/// <summary>ONNXTensorElementDataType values we use.</summary>
public enum TensorElementType { Undefined = 0, Float = 1, Int32 = 6, Int64 = 7 }

/// <summary>An error reported by ONNX Runtime (or by this wrapper before calling it), with ORT's code.</summary>
public sealed class OnnxRuntimeException(OrtErrorCode code, string message, Exception? inner = null) : Exception(message, inner)
{
    public OrtErrorCode Code { get; } = code;
}
