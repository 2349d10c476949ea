// Builds a bundle's FAISS index over w_v = [E[v], b_O[v]] (read from its model.onnx) and records it in the manifest.
using System.Diagnostics;
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Bundle;
using Bert4Rec.Contracts.Onnx;

namespace Bert4Rec.Retrieval;

public static class BundleIndexer
{
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
        if (dim != manifest.Model.Hidden + 1 || n != manifest.Model.ItemCount)
            throw new BundleException($"{bundle}: model.onnx holds {n} item vectors of {dim}, the manifest says {manifest.Model.ItemCount} of {manifest.Model.Hidden + 1}");
        var ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = i + 1;
        ItemIndex index;
        ItemIndex.SetNativeThreads(Environment.ProcessorCount);
        try { index = ItemIndex.Build(vectors, ids, dim, factory, IndexMetric.InnerProduct, new IndexBuildOptions { EfConstruction = efConstruction, DefaultSearch = defaults }); }
        finally { ItemIndex.SetNativeThreads(1); }
        using var _ = index;
        string name = $"items-{Guid.NewGuid().ToString("N")[..12]}.faiss";
        index.Save(Path.Combine(bundle, name));
        var old = manifest.Files.FirstOrDefault(f => f.Role == BundleLayout.RoleIndex);
        if (old != null) manifest.Files.Remove(old);
        manifest.Files.Add(BundleManifests.Describe(bundle, BundleLayout.RoleIndex, name));
        manifest.Index = new IndexInfo { Factory = index.Factory, Metric = "inner_product", Dimension = dim, Count = n };
        manifest.Index.SearchParameters["efSearch"] = defaults.EfSearch.ToString(System.Globalization.CultureInfo.InvariantCulture);
        manifest.Index.SearchParameters["nprobe"] = defaults.Nprobe.ToString(System.Globalization.CultureInfo.InvariantCulture);
        BundleManifests.Write(bundle, manifest);
        RemoveUnlistedIndexes(bundle, manifest);
        return $"index {index.Factory} over {n:N0} items (d+1 = {dim}) built in {clock.Elapsed.TotalSeconds:F2}s -> {Path.Combine(bundle, name)}";
    }

    /// <summary>Removes index files (items.faiss, items-*.faiss) the manifest does not name (temporary files of dead writers go with AtomicFile.RemoveStale).</summary>
    private static void RemoveUnlistedIndexes(string bundle, BundleManifest manifest)
    {
        var listed = manifest.Files.Select(f => f.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var f in Directory.EnumerateFiles(bundle))
        {
            string n = Path.GetFileName(f);
            bool indexFile = n == BundleLayout.Index || (n.StartsWith("items-", StringComparison.Ordinal) && n.EndsWith(".faiss", StringComparison.Ordinal))
                             ;
            if (indexFile && !listed.Contains(n)) { try { File.Delete(f); } catch (IOException) { } }
        }
    }
}
