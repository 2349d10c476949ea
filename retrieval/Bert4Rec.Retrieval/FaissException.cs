// The typed error of the FAISS layer: carries the shim's status code and FAISS's message.
namespace Bert4Rec.Retrieval;

public sealed class FaissException(int code, string message) : Exception(message)
{
    /// <summary>The shim's status: -1 FAISS error, -2 other C++ error, -3 unknown, -4 bad argument.</summary>
    public int Code { get; } = code;
}

/// <summary>
/// An index file that is missing, corrupt, truncated, tampered with, of an old format, of another shape than its
/// description, or not an index at all. The message names the file; <see cref="Reason"/> is the short cause alone.
/// </summary>
public sealed class IndexFileException(string reason, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Reason { get; } = reason;
}
