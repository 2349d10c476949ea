// ItemIndex: a FAISS index over item vectors (for BERT4Rec, w_v = [E[v], b_O[v]] so inner products equal model logits),
// with per-query exclusion of seen items and search-time parameters. Its file is exactly what faiss::write_index writes
// (an IndexIDMap holding the caller's ids around the index), so FAISS's own reader loads it; what FAISS does not store
// (factory string, the caller's metric and dimension, the reduction constant, the file's SHA-256) is the caller's to
// keep (the bundle manifest) and is checked when the file is loaded.
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Numerics.Tensors;
using Bert4Rec.Contracts;
using Bert4Rec.Retrieval.Native;

namespace Bert4Rec.Retrieval;

public enum IndexMetric { InnerProduct = 0, L2 = 1 }

/// <summary>
/// Search-time settings; 0 keeps the index's default. EfSearch applies to HNSW, Nprobe to IVF, RefineFactor to indexes
/// with an exact refine step (RFlat): the base index gathers k x RefineFactor candidates that are then scored exactly.
/// </summary>
public sealed record SearchParameters(int EfSearch = 0, int Nprobe = 0, float RefineFactor = 0);

/// <summary>Build-time settings.</summary>
public sealed record IndexBuildOptions
{
    /// <summary>HNSW graph construction breadth (FAISS's efConstruction); 0 = FAISS default (40).</summary>
    public int EfConstruction { get; init; } = 200;
    /// <summary>The defaults stored with the index and used when a search passes none.</summary>
    public SearchParameters DefaultSearch { get; init; } = ItemIndex.StandardSearch;
    /// <summary>How many vectors IVF/PQ training samples at most (0 = all).</summary>
    public int MaxTrainingVectors { get; init; } = 200_000;
}

/// <summary>
/// What an index file does not say about itself and its reader must be told: the factory string it was built from,
/// the caller's metric and vector dimension, the count, the constant M2 of the inner-product-to-L2 reduction (0 = none:
/// the FAISS index works in the caller's metric and dimension; otherwise it holds L2 vectors of Dimension + 1), and
/// the default search settings.
/// </summary>
public sealed record IndexDescription(string Factory, IndexMetric Metric, int Dimension, long Count, float MipsM2, SearchParameters DefaultSearch)
{
    /// <summary>The dimension of the vectors inside the FAISS index.</summary>
    public int NativeDimension => MipsM2 > 0 ? Dimension + 1 : Dimension;
    /// <summary>The metric of the FAISS index itself.</summary>
    public IndexMetric NativeMetric => MipsM2 > 0 ? IndexMetric.L2 : Metric;
}

/// <summary>An index file's lower-case hex SHA-256 and size, as a manifest records them.</summary>
public sealed record IndexFileDigest(string Sha256, long SizeBytes);

/// <summary>One result: the caller's item id and its inner product (or negative squared L2 distance) with the query.</summary>
public readonly record struct Neighbor(long Id, float Score);

public sealed class ItemIndex : IDisposable
{
    /// <summary>Search defaults when none are given: efSearch 256 (HNSW), nprobe 32 (IVF), refine factor 4 (RFlat).</summary>
    public static readonly SearchParameters StandardSearch = new(EfSearch: 256, Nprobe: 32, RefineFactor: 4);

    /// <summary>The first bytes of index files written by bert4rec before plain FAISS files ("B4RFAISS").</summary>
    private static ReadOnlySpan<byte> OldMagic => "B4RFAISS"u8;

    // Inner-product search over an approximate index is done by the standard reduction to L2 nearest neighbours:
    // items w -> [w, sqrt(M2 - |w|^2)] with M2 = max |w|^2, queries q -> [q, 0]; then |q' - w'|^2 = |q|^2 + M2 - 2 q.w,
    // so the L2 order is the inner-product order, and graphs, k-means cells and PQ codebooks work in a true metric space
    // (all augmented items lie on one sphere). Exact "Flat" needs no reduction and keeps the inner product.
    private readonly FaissIndexHandle _handle;
    private long _searches;

    public IndexDescription Description { get; }
    public int Dimension => Description.Dimension;
    public long Count => Description.Count;
    public string Factory => Description.Factory;
    public IndexMetric Metric => Description.Metric;
    public SearchParameters DefaultSearch => Description.DefaultSearch;
    /// <summary>The reduction constant M2 (0 = no reduction).</summary>
    public float MipsM2 => Description.MipsM2;
    private bool Reduced => Description.MipsM2 > 0;
    /// <summary>How many times <see cref="Search"/> was called (one call may carry many queries).</summary>
    public long Searches => Interlocked.Read(ref _searches);

    private ItemIndex(FaissIndexHandle handle, IndexDescription description)
    {
        _handle = handle;
        Description = description;
    }

    /// <summary>
    /// The factory string used for <c>"auto"</c> (see README, "Index choice", for the measurements behind it): exact
    /// "Flat" up to 50,000 items, "HNSW32" up to 2 million, and beyond an inverted file with product-quantized codes and
    /// an exact refine step, "IVF{nlist},PQ{m},RFlat" with nlist sqrt(n) rounded up to a power of two and m the largest
    /// divisor of the index dimension that is at most half of it (two or more dimensions per sub-quantizer).
    /// <paramref name="nativeDimension"/> is the FAISS index's dimension (the caller's + 1 under the reduction).
    /// </summary>
    public static string DefaultFactory(long count, int nativeDimension)
    {
        if (count <= 50_000) return "Flat";
        if (count <= 2_000_000) return "HNSW32";
        int nlist = (int)Math.Min(65536, System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)Math.Ceiling(Math.Sqrt(count))));
        int m = 1;
        for (int c = nativeDimension / 2; c >= 1; c--) if (nativeDimension % c == 0) { m = c; break; }
        return $"IVF{nlist},PQ{m},RFlat";
    }

    /// <summary>True for the exact factory, the one that keeps the caller's metric without the L2 reduction.</summary>
    private static bool IsExact(string factory) => factory == "Flat";

    /// <summary>Sets how many OpenMP threads FAISS uses inside one search or build call (1 suits many request threads).</summary>
    public static void SetNativeThreads(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        NativeMethods.Check(NativeMethods.SetOmpThreads(threads), "set_omp_threads");
    }

    /// <summary>Builds an index over <paramref name="ids"/>.Length vectors of <paramref name="dimension"/> floats (row-major), one id each.</summary>
    public static unsafe ItemIndex Build(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids, int dimension, string factory = "auto",
                                         IndexMetric metric = IndexMetric.InnerProduct, IndexBuildOptions? options = null)
    {
        options ??= new IndexBuildOptions();
        if (dimension < 1) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "dimension must be >= 1");
        if (vectors.Length != (long)ids.Length * dimension)
            throw new ArgumentException($"vectors has {vectors.Length} floats; {ids.Length} ids x dimension {dimension} needs {(long)ids.Length * dimension}", nameof(vectors));
        // a 0 among the defaults given takes the standard value, so the description records what searches use
        var p = options.DefaultSearch;
        p = new SearchParameters(p.EfSearch == 0 ? StandardSearch.EfSearch : p.EfSearch, p.Nprobe == 0 ? StandardSearch.Nprobe : p.Nprobe,
                                 p.RefineFactor == 0 ? StandardSearch.RefineFactor : p.RefineFactor);
        if (p.EfSearch < 0 || p.Nprobe < 0 || !(p.RefineFactor >= 0) || float.IsInfinity(p.RefineFactor))
            throw new ArgumentException($"search defaults must be >= 0 (efSearch {p.EfSearch}, nprobe {p.Nprobe}, refine factor {p.RefineFactor})", nameof(options));
        for (int i = 0; i < vectors.Length; i++)
            if (!float.IsFinite(vectors[i]))
                throw new ArgumentException($"vector {i / dimension} (id {ids[i / dimension]}) has a non-finite component at {i % dimension}", nameof(vectors));
        var seen = new HashSet<long>(ids.Length);
        foreach (var id in ids)
        {
            if (id < 0) throw new ArgumentException($"id {id} is negative (FAISS uses -1 for 'no result')", nameof(ids));
            if (!seen.Add(id)) throw new ArgumentException($"id {id} appears twice", nameof(ids));
        }
        bool reduce = metric == IndexMetric.InnerProduct;
        if (string.IsNullOrWhiteSpace(factory) || factory == "auto") factory = DefaultFactory(ids.Length, reduce ? dimension + 1 : dimension);
        reduce &= !IsExact(factory);

        NativeMethods.EnsureLoaded();
        float m2 = 0;
        if (reduce)
        {
            for (int i = 0; i < ids.Length; i++) m2 = Math.Max(m2, TensorPrimitives.SumOfSquares(vectors.Slice(i * dimension, dimension)));
            m2 = Math.Max(m2 * 1.0001f, float.Epsilon);
        }
        var description = new IndexDescription(factory, metric, dimension, ids.Length, m2, p);
        int nativeDim = description.NativeDimension;
        NativeMethods.Check(NativeMethods.IndexCreate(factory, nativeDim, (int)description.NativeMetric, options.EfConstruction, out var raw), $"create '{factory}'");
        var handle = new FaissIndexHandle(raw);
        try
        {
            long n = ids.Length;
            NativeMethods.Check(NativeMethods.IndexIsTrained(handle, out int trained), "is_trained");
            if (trained == 0)
            {
                if (n == 0) throw new ArgumentException($"factory '{factory}' needs training vectors; none were given");
                long nt = options.MaxTrainingVectors > 0 ? Math.Min(n, options.MaxTrainingVectors) : n;
                // Training sample: evenly strided rows, deterministic, in the index's own space.
                float[] sample = new float[nt * nativeDim];
                for (long i = 0; i < nt; i++)
                    NativeRow(vectors.Slice((int)(i * n / nt * dimension), dimension), m2, sample.AsSpan((int)(i * nativeDim), nativeDim));
                fixed (float* s = sample) NativeMethods.Check(NativeMethods.IndexTrain(handle, nt, s), $"train '{factory}'");
            }
            // Added in blocks, so the index's own space needs no second copy of all vectors.
            const int block = 65536;
            float[]? buffer = reduce ? new float[Math.Min(n, block) * nativeDim] : null;
            for (long start = 0; start < n; start += block)
            {
                int rows = (int)Math.Min(block, n - start);
                var src = vectors.Slice((int)(start * dimension), rows * dimension);
                if (buffer != null)
                    for (int r = 0; r < rows; r++) NativeRow(src.Slice(r * dimension, dimension), m2, buffer.AsSpan(r * nativeDim, nativeDim));
                ReadOnlySpan<float> x = buffer != null ? buffer.AsSpan(0, rows * nativeDim) : src;
                fixed (float* px = x)
                fixed (long* pid = ids.Slice((int)start, rows))
                    NativeMethods.Check(NativeMethods.IndexAdd(handle, rows, px, pid), "add");
            }
            ApplyDefaults(handle, p);
            return new ItemIndex(handle, description);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>A vector in the FAISS index's space: itself, or [w, sqrt(M2 - |w|^2)] under the reduction.</summary>
    private static void NativeRow(ReadOnlySpan<float> w, float m2, Span<float> dst)
    {
        w.CopyTo(dst);
        if (m2 > 0) dst[w.Length] = MathF.Sqrt(Math.Max(0f, m2 - TensorPrimitives.SumOfSquares(w)));
    }

    /// <summary>
    /// Top-<paramref name="k"/> items for each of <paramref name="queryCount"/> queries (row-major, Dimension floats each).
    /// <paramref name="exclude"/>, when given, holds per query the ids that must not be returned (e.g. seen items); the
    /// index fetches enough extra results that each query still gets k items when the index holds that many.
    /// A query gets fewer than k results only when the index has fewer than k + excluded items. Thread-safe; the
    /// parameters apply to this call only.
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
        if (p.EfSearch < 0 || p.Nprobe < 0 || !(p.RefineFactor >= 0) || float.IsInfinity(p.RefineFactor))
            throw new ArgumentException($"search parameters must be >= 0 (efSearch {p.EfSearch}, nprobe {p.Nprobe}, refine factor {p.RefineFactor})", nameof(parameters));
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
        int nativeDim = Description.NativeDimension;
        ReadOnlySpan<float> native = queries;
        float[]? qnorm = null;
        if (Reduced)
        {
            var aug = new float[queryCount * nativeDim];
            qnorm = new float[queryCount];
            for (int q = 0; q < queryCount; q++)
            {
                var src = queries.Slice(q * Dimension, Dimension);
                src.CopyTo(aug.AsSpan(q * nativeDim, Dimension));
                qnorm[q] = TensorPrimitives.SumOfSquares(src);
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
                NativeMethods.Check(NativeMethods.IndexSearch(_handle, queryCount, x, fetch, p.EfSearch, p.Nprobe, p.RefineFactor, dist, lab), "search");

            bool shortfall = false;
            for (int q = 0; q < queryCount; q++)
            {
                var ex = exclude?[q];
                var list = new List<Neighbor>(k);
                int valid = 0;
                for (long j = 0; j < fetch && list.Count < k; j++)
                {
                    long id = labels[q * fetch + j];
                    if (id < 0) continue;
                    valid++;
                    if (ex != null && ex.Contains(id)) continue;
                    list.Add(new Neighbor(id, ScoreOf(distances[q * fetch + j], qnorm == null ? 0 : qnorm[q])));
                }
                results[q] = list.ToArray();
                // An approximate index can return fewer valid results than asked; widen the fetch and retry.
                if (list.Count < k && fetch < Count && valid < fetch) shortfall = true;
            }
            if (!shortfall) return results;
            fetch = Math.Min(Count, fetch * 2);
        }
    }

    /// <summary>
    /// The caller's score from a FAISS distance: under the reduction d = |q|^2 + M2 - 2 q.w, so q.w = (|q|^2 + M2 - d) / 2;
    /// an L2 index gives -d; an inner-product index gives the inner product itself.
    /// </summary>
    public float ScoreOf(float faissDistance, float querySquaredNorm) =>
        Reduced ? 0.5f * (querySquaredNorm + Description.MipsM2 - faissDistance) : Metric == IndexMetric.L2 ? -faissDistance : faissDistance;

    /// <summary>
    /// Writes the index atomically (a temporary file renamed into place) as exactly the bytes faiss::write_index writes,
    /// streamed, and returns their SHA-256 and size for the manifest.
    /// </summary>
    public unsafe IndexFileDigest Save(string path)
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        IndexFileDigest? digest = null;
        AtomicFile.Write(path, stream =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var sink = new StreamContext(stream, hash);
            var gc = GCHandle.Alloc(sink);
            try
            {
                int rc = NativeMethods.IndexWrite(_handle, &WriteCallback, GCHandle.ToIntPtr(gc));
                if (sink.Error != null) throw new IOException($"{path}: writing the index failed: {sink.Error.Message}", sink.Error);
                NativeMethods.Check(rc, "write_index");
            }
            finally { gc.Free(); }
            digest = new IndexFileDigest(Convert.ToHexStringLower(hash.GetHashAndReset()), sink.Bytes);
        });
        return digest!;
    }

    /// <summary>
    /// Reads an index file written by <see cref="Save"/> (or by any faiss::write_index of an IndexIDMap) that must have
    /// <paramref name="digest"/>'s size and SHA-256 (checked over the whole file before FAISS parses a byte, and again
    /// over the bytes FAISS read) and match <paramref name="expected"/> (count, dimension, metric). The expected
    /// factory and default search settings are taken as they are. Throws <see cref="IndexFileException"/> naming the file
    /// for a missing, short, tampered, foreign or old-format file; no file of more than <paramref name="maxBytes"/> is read.
    /// </summary>
    public static unsafe ItemIndex Load(string path, IndexDescription expected, IndexFileDigest digest, long maxBytes = long.MaxValue)
    {
        if (digest.SizeBytes < 0 || digest.SizeBytes > maxBytes)
            throw new IndexFileException("recorded size out of bounds", $"{path}: the recorded size {digest.SizeBytes} bytes is out of bounds (at most {maxBytes})");
        FileStream fs;
        long size;
        try { (fs, size) = SafeFiles.OpenRegular(path, maxBytes); }
        catch (UnsafeFileException e) { throw new IndexFileException(e.Reason, $"{path}: {(e.Reason == "missing" ? "index file not found" : e.Reason)}", e); }
        using (fs)
        {
            Span<byte> head = stackalloc byte[8];
            int got = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            if (got == head.Length && head.SequenceEqual(OldMagic))
                throw new IndexFileException("old index format: rebuild it with `bert4rec index`", $"{path}: an index file in the format of an earlier bert4rec (a private header around FAISS's bytes); " +
                                             "rebuild it as a plain FAISS file with `bert4rec index --bundle DIR`");
            if (size != digest.SizeBytes)
                throw new IndexFileException("size differs from the manifest", $"{path}: size {size} bytes, the manifest says {digest.SizeBytes} (the file is truncated or was replaced)");
            fs.Position = 0;
            string h1 = Convert.ToHexStringLower(SHA256.HashData(fs));
            if (!string.Equals(h1, digest.Sha256, StringComparison.OrdinalIgnoreCase))
                throw new IndexFileException("SHA-256 does not match the manifest", $"{path}: SHA-256 {h1} does not match the manifest's {digest.Sha256} (the file is corrupt or was changed after it was written)");
            if (fs.Position != size) throw new IndexFileException("changed while being read", $"{path}: the file changed size while being read");

            fs.Position = 0;
            NativeMethods.EnsureLoaded();
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var source = new StreamContext(fs, hash);
            var gc = GCHandle.Alloc(source);
            IntPtr raw;
            int rc;
            try { rc = NativeMethods.IndexRead(&ReadCallback, GCHandle.ToIntPtr(gc), out raw); }
            finally { gc.Free(); }
            if (source.Error != null) throw new IndexFileException("cannot be read", $"{path}: reading failed: {source.Error.Message}", source.Error);
            if (rc != 0)
            {
                try { NativeMethods.Check(rc, "read_index"); }
                catch (FaissException e) { throw new IndexFileException("not a FAISS index with ids", $"{path}: FAISS could not read the index: {e.Message}", e); }
            }
            var handle = new FaissIndexHandle(raw);
            try
            {
                if (source.Bytes != size)
                    throw new IndexFileException("trailing bytes after the index", $"{path}: FAISS read {source.Bytes} of its {size} bytes (trailing bytes after the index)");
                string h2 = Convert.ToHexStringLower(hash.GetHashAndReset());
                if (!string.Equals(h2, digest.Sha256, StringComparison.OrdinalIgnoreCase))
                    throw new IndexFileException("changed while being read", $"{path}: the file changed while being read (SHA-256 of the bytes read {h2}, manifest {digest.Sha256})");
                NativeMethods.Check(NativeMethods.IndexNTotal(handle, out long ntotal), "ntotal");
                NativeMethods.Check(NativeMethods.IndexDimension(handle, out int d), "dimension");
                NativeMethods.Check(NativeMethods.IndexMetric(handle, out int metric), "metric");
                if (ntotal != expected.Count || d != expected.NativeDimension || metric != (int)expected.NativeMetric)
                    throw new IndexFileException("index shape differs from the manifest", $"{path}: the FAISS index holds {ntotal} vectors of dimension {d} ({(IndexMetric)metric}); " +
                                                 $"the manifest describes {expected.Count} of {expected.NativeDimension} ({expected.NativeMetric})");
                ApplyDefaults(handle, expected.DefaultSearch);
                return new ItemIndex(handle, expected);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }
    }

    private static void ApplyDefaults(FaissIndexHandle handle, SearchParameters p)
    {
        if (p.EfSearch < 0 || p.Nprobe < 0 || !(p.RefineFactor >= 0) || float.IsInfinity(p.RefineFactor))
            throw new ArgumentException($"search defaults must be >= 0 (efSearch {p.EfSearch}, nprobe {p.Nprobe}, refine factor {p.RefineFactor})");
        NativeMethods.Check(NativeMethods.IndexSetDefaults(handle, p.EfSearch, p.Nprobe, p.RefineFactor), "set_defaults");
    }

    /// <summary>The stream FAISS writes to or reads from through the shim's callbacks, hashed on the way; an exception
    /// of the stream is kept here (it must not unwind through native frames) and rethrown by the caller.</summary>
    private sealed class StreamContext(Stream stream, IncrementalHash hash)
    {
        public Stream Stream { get; } = stream;
        public IncrementalHash Hash { get; } = hash;
        public long Bytes;
        public Exception? Error;
    }

    [UnmanagedCallersOnly]
    private static unsafe nuint WriteCallback(IntPtr context, byte* data, nuint size)
    {
        var s = (StreamContext)GCHandle.FromIntPtr(context).Target!;
        try
        {
            for (nuint done = 0; done < size;)
            {
                int n = (int)Math.Min((ulong)(size - done), 1 << 30);
                var span = new ReadOnlySpan<byte>(data + done, n);
                s.Stream.Write(span);
                s.Hash.AppendData(span);
                done += (nuint)n;
            }
            s.Bytes += (long)size;
            return size;
        }
        catch (Exception e)
        {
            s.Error ??= e;
            return 0;
        }
    }

    [UnmanagedCallersOnly]
    private static unsafe nuint ReadCallback(IntPtr context, byte* data, nuint size)
    {
        var s = (StreamContext)GCHandle.FromIntPtr(context).Target!;
        try
        {
            var span = new Span<byte>(data, (int)Math.Min((ulong)size, 1 << 30));
            int n = s.Stream.Read(span);
            s.Hash.AppendData(span[..n]);
            s.Bytes += n;
            return (nuint)n;
        }
        catch (Exception e)
        {
            s.Error ??= e;
            return 0;
        }
    }

    public void Dispose() => _handle.Dispose();
}
