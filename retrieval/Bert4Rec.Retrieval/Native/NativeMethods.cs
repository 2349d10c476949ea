// P/Invoke declarations for retrieval/native/faiss_shim.h (libbert4rec_faiss.so, built by scripts/setup.sh).
using System.Runtime.InteropServices;

namespace Bert4Rec.Retrieval.Native;

internal static unsafe partial class NativeMethods
{
    internal const string Library = "bert4rec_faiss";
    internal const string FileName = "libbert4rec_faiss.so";

    static NativeMethods() =>
        Bert4Rec.Contracts.NativeLibraries.Register(typeof(NativeMethods).Assembly, Library, FileName);

    /// <summary>Forces the resolver to be installed before the first call.</summary>
    internal static void EnsureLoaded() { }

    [LibraryImport(Library, EntryPoint = "b4r_last_error")]
    internal static partial IntPtr LastError();                                          // const char*

    [LibraryImport(Library, EntryPoint = "b4r_index_create", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int IndexCreate(string factory,                              // const char*
                                            int dimension,                               // int
                                            int metric,                                  // int
                                            int efConstruction,                          // int
                                            out IntPtr index);                           // b4r_index**

    [LibraryImport(Library, EntryPoint = "b4r_index_is_trained")]
    internal static partial int IndexIsTrained(FaissIndexHandle index, out int trained); // const b4r_index*, int*

    [LibraryImport(Library, EntryPoint = "b4r_index_train")]
    internal static partial int IndexTrain(FaissIndexHandle index, long n, float* x);    // b4r_index*, int64_t, const float*

    [LibraryImport(Library, EntryPoint = "b4r_index_add")]
    internal static partial int IndexAdd(FaissIndexHandle index, long n, float* x, long* ids); // b4r_index*, int64_t, const float*, const int64_t*

    [LibraryImport(Library, EntryPoint = "b4r_index_search")]
    internal static partial int IndexSearch(FaissIndexHandle index,                      // const b4r_index*
                                            long n,                                      // int64_t
                                            float* x,                                    // const float* (n*d)
                                            long k,                                      // int64_t
                                            int efSearch,                                // int
                                            int nprobe,                                  // int
                                            float kFactor,                               // float
                                            float* distances,                            // float* (n*k)
                                            long* labels);                               // int64_t* (n*k), the caller's ids

    [LibraryImport(Library, EntryPoint = "b4r_index_set_defaults")]
    internal static partial int IndexSetDefaults(FaissIndexHandle index, int efSearch, int nprobe, float kFactor); // b4r_index*, int, int, float

    [LibraryImport(Library, EntryPoint = "b4r_index_ntotal")]
    internal static partial int IndexNTotal(FaissIndexHandle index, out long n);         // const b4r_index*, int64_t*

    [LibraryImport(Library, EntryPoint = "b4r_index_dimension")]
    internal static partial int IndexDimension(FaissIndexHandle index, out int d);       // const b4r_index*, int*

    [LibraryImport(Library, EntryPoint = "b4r_index_metric")]
    internal static partial int IndexMetric(FaissIndexHandle index, out int metric);     // const b4r_index*, int*

    [LibraryImport(Library, EntryPoint = "b4r_index_write")]
    internal static partial int IndexWrite(FaissIndexHandle index,                       // const b4r_index*
                                           delegate* unmanaged<IntPtr, byte*, nuint, nuint> write, // b4r_write_fn
                                           IntPtr context);                              // void*

    [LibraryImport(Library, EntryPoint = "b4r_index_read")]
    internal static partial int IndexRead(delegate* unmanaged<IntPtr, byte*, nuint, nuint> read, // b4r_read_fn
                                          IntPtr context,                                // void*
                                          out IntPtr index);                             // b4r_index**

    [LibraryImport(Library, EntryPoint = "b4r_index_free")]
    internal static partial void IndexFree(IntPtr index);                                // b4r_index*

    [LibraryImport(Library, EntryPoint = "b4r_set_omp_threads")]
    internal static partial int SetOmpThreads(int threads);                              // int

    /// <summary>The one error funnel: a non-zero status becomes a <see cref="FaissException"/> with the native message.</summary>
    internal static void Check(int rc, string operation)
    {
        if (rc == 0) return;
        string message = Marshal.PtrToStringUTF8(LastError()) ?? "";
        throw new FaissException(rc, $"FAISS {operation} failed: {(message.Length > 0 ? message : "status " + rc)}");
    }
}

/// <summary>Owns one native b4r_index; freed exactly once.</summary>
internal sealed class FaissIndexHandle : SafeHandle
{
    public FaissIndexHandle() : base(IntPtr.Zero, ownsHandle: true) { }
    internal FaissIndexHandle(IntPtr h) : base(IntPtr.Zero, ownsHandle: true) => SetHandle(h);
    public override bool IsInvalid => handle == IntPtr.Zero;
    protected override bool ReleaseHandle()
    {
        NativeMethods.IndexFree(handle);
        return true;
    }
}
