// Builds a bundle's FAISS index over its model.onnx's item vectors (a sequential model's w_v = [E[v], b_O[v]], a Two-Tower
// graph's item tower outputs) and records it in the manifest;
// opens it again from the manifest's description (the file itself is a plain FAISS file).
using System.Diagnostics;
using System.Globalization;
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Bundle;
using Bert4Rec.Contracts.Onnx;

namespace Bert4Rec.Retrieval;

public static class BundleIndexer
{
    /// <summary>The value of IndexInfo.file_format for plain FAISS files.</summary>
    public const string FileFormat = "faiss";

    private const string EfSearchKey = "efSearch", NprobeKey = "nprobe", RefineFactorKey = "refineFactor";

    /// <summary>
    /// Verifies the bundle (all but a previous index, which is rebuilt: a run killed half-way can always be run again),
    /// builds the index, writes it under a fresh name (items-ID.faiss), switches the manifest to it (one atomic rename of
    /// manifest.pb), then removes index files the manifest no longer names. A kill at any point leaves the old manifest
    /// with its old index, or the new one with the new. Returns a one-line summary.
    /// </summary>
    public static string Build(string bundle, string factory, SearchParameters defaults, int efConstruction = 200)
    {
        var manifest = BundleManifests.Read(bundle);
        BundleManifests.VerifyFiles(bundle, new BundleManifest { Files = { manifest.Files.Where(f => f.Role != BundleLayout.RoleIndex) } });
        var clock = Stopwatch.StartNew();
        var (vectors, n, dim) = OnnxWeights.ReadItemVectors(Path.Combine(bundle, BundleLayout.Model));
        int want = VectorDimension(manifest.Model);
        if (dim != want || n != manifest.Model.ItemCount)
            throw new BundleException($"{bundle}: model.onnx holds {n} item vectors of {dim}, the manifest says {manifest.Model.ItemCount} of {want}");
        var ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = i + 1;
        ItemIndex index;
        ItemIndex.SetNativeThreads(Environment.ProcessorCount);
        try { index = ItemIndex.Build(vectors, ids, dim, factory, IndexMetric.InnerProduct, new IndexBuildOptions { EfConstruction = efConstruction, DefaultSearch = defaults }); }
        finally { ItemIndex.SetNativeThreads(1); }
        using var _ = index;
        string name = $"items-{Guid.NewGuid().ToString("N")[..12]}.faiss";
        var digest = index.Save(Path.Combine(bundle, name));
        var old = manifest.Files.FirstOrDefault(f => f.Role == BundleLayout.RoleIndex);
        if (old != null) manifest.Files.Remove(old);
        manifest.Files.Add(new BundleFile { Role = BundleLayout.RoleIndex, Name = name, Sha256 = digest.Sha256, SizeBytes = digest.SizeBytes });
        manifest.Index = ToInfo(index.Description);
        BundleManifests.Write(bundle, manifest);
        RemoveUnlistedIndexes(bundle, manifest);
        return $"index {index.Factory} over {n:N0} items (dimension {dim}) built in {clock.Elapsed.TotalSeconds:F2}s -> {Path.Combine(bundle, name)} ({digest.SizeBytes / 1048576.0:F1} MiB)";
    }

    /// <summary>The dimension of a model's item vectors: d + 1 for the sequential kinds ([E[v], b_O[v]]), d for Two-Tower.</summary>
    public static int VectorDimension(ModelShape model) =>
        string.Equals(model.Kind, ModelKind.TwoTower.Name(), StringComparison.OrdinalIgnoreCase) ? model.Hidden : model.Hidden + 1;

    /// <summary>The manifest's record of an index.</summary>
    public static IndexInfo ToInfo(IndexDescription d)
    {
        var info = new IndexInfo
        {
            Factory = d.Factory, Metric = MetricName(d.Metric), Dimension = d.Dimension, Count = d.Count, MipsM2 = d.MipsM2, FileFormat = FileFormat,
        };
        info.SearchParameters[EfSearchKey] = d.DefaultSearch.EfSearch.ToString(CultureInfo.InvariantCulture);
        info.SearchParameters[NprobeKey] = d.DefaultSearch.Nprobe.ToString(CultureInfo.InvariantCulture);
        info.SearchParameters[RefineFactorKey] = d.DefaultSearch.RefineFactor.ToString("R", CultureInfo.InvariantCulture);
        return info;
    }

    private static string MetricName(IndexMetric m) => m == IndexMetric.InnerProduct ? "inner_product" : "l2";

    /// <summary>
    /// Opens the index a manifest lists: its description must be complete and of the current file format, and its file
    /// (at most <paramref name="maxBytes"/>) must have the recorded size and SHA-256 and hold
    /// <paramref name="expectedCount"/> vectors of <paramref name="expectedDimension"/>. Any fault is a
    /// <see cref="BundleException"/> naming the file.
    /// </summary>
    public static ItemIndex Open(string bundleDir, BundleManifest manifest, BundleFile file, int expectedDimension, long expectedCount, long maxBytes)
    {
        string path = Path.Combine(bundleDir, file.Name);
        var info = manifest.Index
            ?? throw new BundleException(BundleLayout.Manifest, "lists an index file without its description", $"{Path.Combine(bundleDir, BundleLayout.Manifest)}: lists the index {file.Name} but no 'index' description");
        if (info.FileFormat != FileFormat)
            throw new BundleException(file.Name, "old index format: rebuild it with `bert4rec index`",
                $"{path}: an index in the format of an earlier bert4rec (private header); rebuild it as a plain FAISS file with `bert4rec index --bundle {bundleDir}`");
        IndexDescription d;
        try { d = FromInfo(info); }
        catch (FormatException e) { throw new BundleException(BundleLayout.Manifest, "index description invalid", $"{Path.Combine(bundleDir, BundleLayout.Manifest)}: index description invalid: {e.Message}", e); }
        if (d.Dimension != expectedDimension || d.Count != expectedCount)
            throw new BundleException(file.Name, "index shape differs from the model's",
                $"{path}: the manifest describes the index as {d.Count} items of dimension {d.Dimension}; the model has {expectedCount} of {expectedDimension}");
        try { return ItemIndex.Load(path, d, new IndexFileDigest(file.Sha256, file.SizeBytes), maxBytes); }
        catch (IndexFileException e) { throw new BundleException(file.Name, e.Reason, e.Message, e); }
    }

    /// <summary>The description of an index from the manifest's record; a missing or out-of-range field is a <see cref="FormatException"/>.</summary>
    public static IndexDescription FromInfo(IndexInfo info)
    {
        if (string.IsNullOrWhiteSpace(info.Factory)) throw new FormatException("factory is empty");
        var metric = info.Metric switch
        {
            "inner_product" => IndexMetric.InnerProduct,
            "l2" => IndexMetric.L2,
            _ => throw new FormatException($"metric '{info.Metric}' is not inner_product or l2"),
        };
        if (info.Dimension < 1) throw new FormatException($"dimension {info.Dimension} < 1");
        if (info.Count < 0) throw new FormatException($"count {info.Count} < 0");
        if (!(info.MipsM2 >= 0) || float.IsInfinity(info.MipsM2)) throw new FormatException($"mips_m2 {info.MipsM2} is not a finite number >= 0");
        if (info.MipsM2 > 0 && metric != IndexMetric.InnerProduct) throw new FormatException("mips_m2 > 0 needs metric inner_product");
        int Int(string key) => info.SearchParameters.TryGetValue(key, out var s) && int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int v)
            ? v : throw new FormatException($"search parameter {key} is missing or not an integer >= 0");
        float factor = info.SearchParameters.TryGetValue(RefineFactorKey, out var f) && float.TryParse(f, NumberStyles.Float, CultureInfo.InvariantCulture, out float fv) && fv >= 0 && float.IsFinite(fv)
            ? fv : throw new FormatException($"search parameter {RefineFactorKey} is missing or not a number >= 0");
        return new IndexDescription(info.Factory, metric, info.Dimension, info.Count, info.MipsM2, new SearchParameters(Int(EfSearchKey), Int(NprobeKey), factor));
    }

    /// <summary>Removes index files (items.faiss, items-*.faiss) the manifest does not name (temporary files of dead writers go with AtomicFile.RemoveStale).</summary>
    private static void RemoveUnlistedIndexes(string bundle, BundleManifest manifest)
    {
        var listed = manifest.Files.Select(f => f.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var f in Directory.EnumerateFiles(bundle))
        {
            string n = Path.GetFileName(f);
            bool indexFile = n == BundleLayout.Index || (n.StartsWith("items-", StringComparison.Ordinal) && n.EndsWith(".faiss", StringComparison.Ordinal));
            if (indexFile && !listed.Contains(n)) { try { File.Delete(f); } catch (IOException) { } }
        }
    }
}
