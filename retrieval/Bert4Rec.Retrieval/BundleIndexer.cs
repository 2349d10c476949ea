// Builds a bundle's FAISS index over w_v = [E[v], b_O[v]] (read from its model.onnx) and records it in the manifest.
using System.Diagnostics;
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Bundle;
using Bert4Rec.Contracts.Onnx;

namespace Bert4Rec.Retrieval;

public static class BundleIndexer
{
    /// <summary>Verifies the bundle, builds the index, writes items.faiss atomically, then the updated manifest. Returns a one-line summary.</summary>
    public static string Build(string bundle, string factory, SearchParameters defaults, int efConstruction = 200)
    {
        var manifest = BundleManifests.Read(bundle);
        BundleManifests.VerifyFiles(bundle, manifest);
        var clock = Stopwatch.StartNew();
        var (vectors, n, dim) = OnnxWeights.ReadItemVectors(Path.Combine(bundle, BundleLayout.Model));
        if (dim != manifest.Model.Hidden + 1 || n != manifest.Model.ItemCount)
            throw new BundleException($"{bundle}: model.onnx holds {n} item vectors of {dim}, the manifest says {manifest.Model.ItemCount} of {manifest.Model.Hidden + 1}");
        var ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = i + 1;
        ItemIndex.SetNativeThreads(Environment.ProcessorCount);
        using var index = ItemIndex.Build(vectors, ids, dim, factory, IndexMetric.InnerProduct,
            new IndexBuildOptions { EfConstruction = efConstruction, DefaultSearch = defaults });
        ItemIndex.SetNativeThreads(1);
        index.Save(Path.Combine(bundle, BundleLayout.Index));
        var old = manifest.Files.FirstOrDefault(f => f.Role == BundleLayout.RoleIndex);
        if (old != null) manifest.Files.Remove(old);
        manifest.Files.Add(BundleManifests.Describe(bundle, BundleLayout.RoleIndex, BundleLayout.Index));
        manifest.Index = new IndexInfo { Factory = index.Factory, Metric = "inner_product", Dimension = dim, Count = n };
        manifest.Index.SearchParameters["efSearch"] = defaults.EfSearch.ToString(System.Globalization.CultureInfo.InvariantCulture);
        manifest.Index.SearchParameters["nprobe"] = defaults.Nprobe.ToString(System.Globalization.CultureInfo.InvariantCulture);
        BundleManifests.Write(bundle, manifest);
        return $"index {index.Factory} over {n:N0} items (d+1 = {dim}) built in {clock.Elapsed.TotalSeconds:F2}s -> {Path.Combine(bundle, BundleLayout.Index)}";
    }
}
