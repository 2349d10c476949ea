// ItemIndex: a FAISS index over item vectors (for BERT4Rec, w_v = [E[v], b_O[v]] so inner products equal model logits),
// with per-query exclusion of seen items, search-time parameters, and an atomic, checksummed file format.
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Bert4Rec.Contracts;
using Bert4Rec.Retrieval.Native;

namespace Bert4Rec.Retrieval;

public enum IndexMetric { InnerProduct = 0, L2 = 1 }

/// <summary>Search-time settings; 0 keeps the index's default. EfSearch applies to HNSW, Nprobe to IVF.</summary>
public sealed record SearchParameters(int EfSearch = 0, int Nprobe = 0);

/// <summary>Build-time settings.</summary>
public sealed record IndexBuildOptions
{
    /// <summary>HNSW graph construction breadth (FAISS's efConstruction); 0 = FAISS default (40).</summary>
    public int EfConstruction { get; init; } = 200;
    /// <summary>The defaults stored with the index and used when a search passes none.</summary>
    public SearchParameters DefaultSearch { get; init; } = new(EfSearch: 256, Nprobe: 32);
    /// <summary>How many vectors IVF/PQ training samples at most (0 = all).</summary>
    public int MaxTrainingVectors { get; init; } = 200_000;
}

/// <summary>One result: the caller's item id and its inner product (or negative squared L2 distance) with the query.</summary>
public readonly record struct Neighbor(long Id, float Score);

public sealed class ItemIndex : IDisposable
{
    private const ulong Magic = 0x5349414652344234UL;   // "B4RFAISS" little-endian
    private const int FileVersion = 2;

    // Inner-product search over a graph index (HNSW) is done by the standard reduction to L2 nearest neighbours:
    // items w -> [w, sqrt(M2 - |w|^2)] with M2 = max |w|^2, queries q -> [q, 0]; then |q' - w'|^2 = |q|^2 + M2 - 2 q.w,
    // so the L2 order is the inner-product order, and the graph is built in a true metric space.
    private readonly float _mipsM2;     // 0 = no reduction (the FAISS index works in the caller's metric directly)
    private bool Reduced => _mipsM2 > 0;

    private readonly FaissIndexHandle _handle;
    private readonly long[] _ids;                       // position -> caller's id

    public int Dimension { get; }
    private long _searches;
    /// <summary>How many times <see cref="Search"/> was called (one call may carry many queries).</summary>
    public long Searches => Interlocked.Read(ref _searches);
    public long Count => _ids.Length;
    public string Factory { get; }
    public IndexMetric Metric { get; }
    public SearchParameters DefaultSearch { get; }

    private ItemIndex(FaissIndexHandle handle, long[] ids, int dimension, string factory, IndexMetric metric, SearchParameters defaults, float mipsM2 = 0)
    {
        _mipsM2 = mipsM2;
        _handle = handle;
        _ids = ids;
        Dimension = dimension;
        Factory = factory;
        Metric = metric;
        DefaultSearch = defaults;
    }

    /// <summary>
    /// The factory string used for <c>"auto"</c>: exact "Flat" up to 50,000 items (exact and still fast), "HNSW32" up to
    /// 5 million, and "IVF{4 sqrt n},Flat" beyond.
    /// </summary>
    public static string DefaultFactory(long count) =>
        count <= 50_000 ? "Flat" : count <= 5_000_000 ? "HNSW32" : $"IVF{(int)Math.Min(65536, 4 * Math.Sqrt(count))},Flat";

    /// <summary>Sets how many OpenMP threads FAISS uses inside one search or build call (1 suits many request threads).</summary>
    public static void SetNativeThreads(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        NativeMethods.Check(NativeMethods.SetOmpThreads(threads), "set_omp_threads");
    }

    /// <summary>Builds an index over <paramref name="count"/> vectors of <paramref name="dimension"/> floats (row-major), one id each.</summary>
    public static unsafe ItemIndex Build(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids, int dimension, string factory = "auto",
                                         IndexMetric metric = IndexMetric.InnerProduct, IndexBuildOptions? options = null)
    {
        options ??= new IndexBuildOptions();
        if (dimension < 1) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "dimension must be >= 1");
        if (vectors.Length != (long)ids.Length * dimension)
            throw new ArgumentException($"vectors has {vectors.Length} floats; {ids.Length} ids x dimension {dimension} needs {(long)ids.Length * dimension}", nameof(vectors));
        for (int i = 0; i < vectors.Length; i++)
            if (!float.IsFinite(vectors[i]))
                throw new ArgumentException($"vector {i / dimension} (id {ids[i / dimension]}) has a non-finite component at {i % dimension}", nameof(vectors));
        var seen = new HashSet<long>();
        foreach (var id in ids)
            if (!seen.Add(id)) throw new ArgumentException($"id {id} appears twice", nameof(ids));
        if (string.IsNullOrWhiteSpace(factory) || factory == "auto") factory = DefaultFactory(ids.Length);

        NativeMethods.EnsureLoaded();
        float m2 = 0;
        if (metric == IndexMetric.InnerProduct && UsesGraph(factory) && ids.Length > 0)
        {
            for (int i = 0; i < ids.Length; i++) m2 = Math.Max(m2, System.Numerics.Tensors.TensorPrimitives.SumOfSquares(vectors.Slice(i * dimension, dimension)));
            m2 = Math.Max(m2 * 1.0001f, float.Epsilon);
            var aug = new float[(long)ids.Length * (dimension + 1)];
            for (int i = 0; i < ids.Length; i++)
            {
                var v = vectors.Slice(i * dimension, dimension);
                v.CopyTo(aug.AsSpan(i * (dimension + 1), dimension));
                aug[i * (dimension + 1) + dimension] = MathF.Sqrt(Math.Max(0f, m2 - System.Numerics.Tensors.TensorPrimitives.SumOfSquares(v)));
            }
            return BuildNative(aug, ids, dimension, dimension + 1, factory, IndexMetric.L2, metric, options, m2);
        }
        return BuildNative(vectors, ids, dimension, dimension, factory, metric, metric, options, 0);
    }

    /// <summary>Factories whose search walks a graph (HNSW), where inner product gets the reduction to L2.</summary>
    private static bool UsesGraph(string factory) => factory.Contains("HNSW", StringComparison.OrdinalIgnoreCase);

    private static unsafe ItemIndex BuildNative(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids, int dimension, int nativeDim, string factory,
                                                IndexMetric nativeMetric, IndexMetric metric, IndexBuildOptions options, float m2)
    {
        NativeMethods.Check(NativeMethods.IndexCreate(factory, nativeDim, (int)nativeMetric, options.EfConstruction, out var raw), $"create '{factory}'");
        var handle = new FaissIndexHandle(raw);
        try
        {
            long n = ids.Length;
            fixed (float* x = vectors)
            {
                NativeMethods.Check(NativeMethods.IndexIsTrained(handle, out int trained), "is_trained");
                if (trained == 0)
                {
                    if (n == 0) throw new ArgumentException($"factory '{factory}' needs training vectors; none were given");
                    long nt = options.MaxTrainingVectors > 0 ? Math.Min(n, options.MaxTrainingVectors) : n;
                    // Training sample: evenly strided rows, deterministic.
                    float[] sample = new float[nt * nativeDim];
                    for (long i = 0; i < nt; i++)
                        vectors.Slice((int)(i * n / nt * nativeDim), nativeDim).CopyTo(sample.AsSpan((int)(i * nativeDim), nativeDim));
                    fixed (float* s = sample) NativeMethods.Check(NativeMethods.IndexTrain(handle, nt, s), $"train '{factory}'");
                }
                if (n > 0) NativeMethods.Check(NativeMethods.IndexAdd(handle, n, x), "add");
            }
            ApplyDefaults(handle, options.DefaultSearch);
            return new ItemIndex(handle, ids.ToArray(), dimension, factory, metric, options.DefaultSearch, m2);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Top-<paramref name="k"/> items for each of <paramref name="queryCount"/> queries (row-major, Dimension floats each).
    /// <paramref name="exclude"/>, when given, holds per query the ids that must not be returned (e.g. seen items); the
    /// index fetches enough extra results that each query still gets k items when the index holds that many.
    /// A query gets fewer than k results only when the index has fewer than k + excluded items. Thread-safe.
    /// </summary>
    public unsafe Neighbor[][] Search(ReadOnlySpan<float> queries, int queryCount, int k, SearchParameters? parameters = null,
                                      IReadOnlyList<IReadOnlyCollection<long>>? exclude = null)
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        Interlocked.Increment(ref _searches);
        if (queryCount < 0) throw new ArgumentOutOfRangeException(nameof(queryCount), queryCount, "must be >= 0");
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be >= 1");
        if (queries.Length != (long)queryCount * Dimension)
            throw new ArgumentException($"queries has {queries.Length} floats; {queryCount} queries x dimension {Dimension} needs {(long)queryCount * Dimension}", nameof(queries));
        if (exclude != null && exclude.Count != queryCount)
            throw new ArgumentException($"exclude has {exclude.Count} entries for {queryCount} queries", nameof(exclude));
        var p = parameters ?? DefaultSearch;
        if (p.EfSearch < 0 || p.Nprobe < 0) throw new ArgumentException($"search parameters must be >= 0 (efSearch {p.EfSearch}, nprobe {p.Nprobe})", nameof(parameters));
        var results = new Neighbor[queryCount][];
        if (queryCount == 0) return results;
        if (Count == 0)
        {
            for (int q = 0; q < queryCount; q++) results[q] = [];
            return results;
        }

        int maxExclude = 0;
        if (exclude != null) foreach (var e in exclude) maxExclude = Math.Max(maxExclude, e?.Count ?? 0);
        long fetch = Math.Min(Count, (long)k + maxExclude);
        ReadOnlySpan<float> native = queries;
        float[]? qnorm = null;
        if (Reduced)
        {
            var aug = new float[queryCount * (Dimension + 1)];
            qnorm = new float[queryCount];
            for (int q = 0; q < queryCount; q++)
            {
                var src = queries.Slice(q * Dimension, Dimension);
                src.CopyTo(aug.AsSpan(q * (Dimension + 1), Dimension));
                qnorm[q] = System.Numerics.Tensors.TensorPrimitives.SumOfSquares(src);
            }
            native = aug;
        }
        while (true)
        {
            var distances = new float[queryCount * fetch];
            var labels = new long[queryCount * fetch];
            fixed (float* x = native)
            fixed (float* dist = distances)
            fixed (long* lab = labels)
                NativeMethods.Check(NativeMethods.IndexSearch(_handle, queryCount, x, fetch, p.EfSearch, p.Nprobe, dist, lab), "search");

            bool shortfall = false;
            for (int q = 0; q < queryCount; q++)
            {
                var ex = exclude?[q];
                var list = new List<Neighbor>(k);
                int valid = 0;
                for (long j = 0; j < fetch && list.Count < k; j++)
                {
                    long pos = labels[q * fetch + j];
                    if (pos < 0) continue;
                    valid++;
                    long id = _ids[pos];
                    if (ex != null && ex.Contains(id)) continue;
                    float score = distances[q * fetch + j];
                    // reduced: d = |q|^2 + M2 - 2 q.w  =>  q.w = (|q|^2 + M2 - d) / 2
                    list.Add(new Neighbor(id, Reduced ? 0.5f * (qnorm![q] + _mipsM2 - score) : Metric == IndexMetric.L2 ? -score : score));
                }
                results[q] = list.ToArray();
                // An approximate index can return fewer valid results than asked; widen the fetch and retry.
                if (list.Count < k && fetch < Count && valid < fetch) shortfall = true;
            }
            if (!shortfall) return results;
            fetch = Math.Min(Count, fetch * 2);
        }
    }

    /// <summary>Writes the index atomically: our header (magic, version, dimension, metric, count, factory, defaults), the ids,
    /// FAISS's serialized bytes, and a SHA-256 of all of it.</summary>
    public unsafe void Save(string path)
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        NativeMethods.Check(NativeMethods.IndexSerialize(_handle, out var data, out var size), "serialize");
        try
        {
            var payload = new ReadOnlySpan<byte>((void*)data, checked((int)size));
            byte[] factory = Encoding.UTF8.GetBytes(Factory);
            int headerLen = 8 + 4 + 4 + 4 + 8 + 4 + factory.Length + 4 + 4 + 4;
            var buf = new byte[headerLen + _ids.Length * 8L + 8 + payload.Length + 32];
            var w = buf.AsSpan();
            int o = 0;
            BinaryPrimitives.WriteUInt64LittleEndian(w[o..], Magic); o += 8;
            BinaryPrimitives.WriteInt32LittleEndian(w[o..], FileVersion); o += 4;
            BinaryPrimitives.WriteInt32LittleEndian(w[o..], Dimension); o += 4;
            BinaryPrimitives.WriteInt32LittleEndian(w[o..], (int)Metric); o += 4;
            BinaryPrimitives.WriteInt64LittleEndian(w[o..], Count); o += 8;
            BinaryPrimitives.WriteInt32LittleEndian(w[o..], factory.Length); o += 4;
            factory.CopyTo(w[o..]); o += factory.Length;
            BinaryPrimitives.WriteInt32LittleEndian(w[o..], DefaultSearch.EfSearch); o += 4;
            BinaryPrimitives.WriteInt32LittleEndian(w[o..], DefaultSearch.Nprobe); o += 4;
            BinaryPrimitives.WriteSingleLittleEndian(w[o..], _mipsM2); o += 4;
            MemoryMarshal.AsBytes(_ids.AsSpan()).CopyTo(w[o..]); o += _ids.Length * 8;
            BinaryPrimitives.WriteInt64LittleEndian(w[o..], payload.Length); o += 8;
            payload.CopyTo(w[o..]); o += payload.Length;
            SHA256.HashData(w[..o], w[o..]);
            AtomicFile.WriteAllBytes(path, buf);
        }
        finally { NativeMethods.BufferFree(data); }
    }

    /// <summary>
    /// Reads an index written by <see cref="Save"/>. Throws <see cref="IndexFileException"/> for a missing, truncated or corrupt file,
    /// a file that is not an index, or (when <paramref name="expectedDimension"/> is given) an index of another dimension.
    /// </summary>
    public static unsafe ItemIndex Load(string path, int? expectedDimension = null)
    {
        if (!File.Exists(path) && !SafeFiles.IsSymbolicLink(path)) throw new IndexFileException($"{path}: index file not found");
        byte[] buf;
        try { buf = SafeFiles.ReadAllBytes(path, int.MaxValue); }
        catch (UnsafeFileException e) { throw new IndexFileException($"{path}: {e.Reason}"); }
        var r = buf.AsSpan();
        if (r.Length < 8 || BinaryPrimitives.ReadUInt64LittleEndian(r) != Magic)
            throw new IndexFileException($"{path}: not an item index (bad magic; expected a file written by `bert4rec index`)");
        if (r.Length < 8 + 32 + 36) throw new IndexFileException($"{path}: truncated ({r.Length} bytes)");
        var body = r[..^32];
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(body, hash);
        if (!hash.SequenceEqual(r[^32..]))
            throw new IndexFileException($"{path}: checksum mismatch (the file is corrupt or truncated)");
        int o = 8;
        int version = BinaryPrimitives.ReadInt32LittleEndian(r[o..]); o += 4;
        if (version != FileVersion) throw new IndexFileException($"{path}: file version {version}, this build reads {FileVersion}");
        int dim = BinaryPrimitives.ReadInt32LittleEndian(r[o..]); o += 4;
        int metric = BinaryPrimitives.ReadInt32LittleEndian(r[o..]); o += 4;
        long count = BinaryPrimitives.ReadInt64LittleEndian(r[o..]); o += 8;
        int flen = BinaryPrimitives.ReadInt32LittleEndian(r[o..]); o += 4;
        if (dim < 1 || metric is < 0 or > 1 || count < 0 || flen < 0 || flen > 4096 || o + flen + 12 + count * 8 + 8 > body.Length)
            throw new IndexFileException($"{path}: header fields out of range (dimension {dim}, metric {metric}, count {count})");
        string factory = Encoding.UTF8.GetString(r.Slice(o, flen)); o += flen;
        int ef = BinaryPrimitives.ReadInt32LittleEndian(r[o..]); o += 4;
        int nprobe = BinaryPrimitives.ReadInt32LittleEndian(r[o..]); o += 4;
        float m2 = BinaryPrimitives.ReadSingleLittleEndian(r[o..]); o += 4;
        if (!(m2 >= 0) || float.IsInfinity(m2)) throw new IndexFileException($"{path}: header field mips_m2 {m2} out of range");
        long[] ids = MemoryMarshal.Cast<byte, long>(r.Slice(o, checked((int)(count * 8)))).ToArray(); o += (int)(count * 8);
        long plen = BinaryPrimitives.ReadInt64LittleEndian(r[o..]); o += 8;
        if (plen <= 0 || o + plen != body.Length) throw new IndexFileException($"{path}: payload length {plen} does not match the file");
        if (expectedDimension is int want && want != dim)
            throw new IndexFileException($"{path}: index dimension is {dim}, expected {want}");

        NativeMethods.EnsureLoaded();
        IntPtr raw;
        fixed (byte* p = &r[o])
        {
            int rc = NativeMethods.IndexDeserialize(p, (nuint)plen, out raw);
            if (rc != 0)
            {
                try { NativeMethods.Check(rc, "deserialize"); }
                catch (FaissException e) { throw new IndexFileException($"{path}: FAISS could not read the index: {e.Message}", e); }
            }
        }
        var handle = new FaissIndexHandle(raw);
        try
        {
            NativeMethods.Check(NativeMethods.IndexNTotal(handle, out long ntotal), "ntotal");
            NativeMethods.Check(NativeMethods.IndexDimension(handle, out int d), "dimension");
            int nativeDim = m2 > 0 ? dim + 1 : dim;
            if (ntotal != count || d != nativeDim)
                throw new IndexFileException($"{path}: FAISS payload holds {ntotal} vectors of dimension {d}, header says {count} of {nativeDim}");
            var defaults = new SearchParameters(ef, nprobe);
            ApplyDefaults(handle, defaults);
            return new ItemIndex(handle, ids, dim, factory, (IndexMetric)metric, defaults, m2);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static void ApplyDefaults(FaissIndexHandle handle, SearchParameters p)
    {
        if (p.EfSearch < 0 || p.Nprobe < 0) throw new ArgumentException($"search defaults must be >= 0 (efSearch {p.EfSearch}, nprobe {p.Nprobe})");
        NativeMethods.Check(NativeMethods.IndexSetDefaults(handle, p.EfSearch, p.Nprobe), "set_defaults");
    }

    public void Dispose() => _handle.Dispose();
}
