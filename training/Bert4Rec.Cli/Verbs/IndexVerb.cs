// `bert4rec index`: builds the FAISS index of a bundle over w_v = [E[v], b_O[v]] and records it in the manifest.
using System.Diagnostics;
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Bundle;
using Bert4Rec.Contracts.Onnx;
using Bert4Rec.Retrieval;

namespace Bert4Rec.Cli;

internal sealed class IndexVerb : IVerb
{
    public string Name => "index";
    public string Summary => "build the FAISS index of a bundle";
    public string Usage => """
          --bundle DIR              a bundle made by `bert4rec export`
          --factory auto|Flat|HNSW32|IVF256,Flat|...   (auto: Flat up to 50k items, HNSW32 beyond)
          --ef-search N --nprobe N  search-time defaults stored with the index (256 / 32)
          --ef-construction N       HNSW build breadth (200)
        """;

    public static void Build(string bundle, string factory, SearchParameters defaults, int efConstruction, Action<string> log)
    {
        var manifest = BundleManifests.Read(bundle);
        BundleManifests.VerifyFiles(bundle, manifest);
        var clock = Stopwatch.StartNew();
        var (vectors, n, dim) = OnnxWeights.ReadItemVectors(Path.Combine(bundle, BundleLayout.Model));
        var ids = Enumerable.Range(1, n).Select(i => (long)i).ToArray();
        ItemIndex.SetNativeThreads(Environment.ProcessorCount);
        using var index = ItemIndex.Build(vectors, ids, dim, factory, IndexMetric.InnerProduct,
            new IndexBuildOptions { EfConstruction = efConstruction, DefaultSearch = defaults });
        index.Save(Path.Combine(bundle, BundleLayout.Index));
        var entry = BundleManifests.Describe(bundle, BundleLayout.RoleIndex, BundleLayout.Index);
        var old = manifest.Files.FirstOrDefault(f => f.Role == BundleLayout.RoleIndex);
        if (old != null) manifest.Files.Remove(old);
        manifest.Files.Add(entry);
        manifest.Index = new IndexInfo { Factory = index.Factory, Metric = "inner_product", Dimension = dim, Count = n };
        manifest.Index.SearchParameters["efSearch"] = defaults.EfSearch.ToString(System.Globalization.CultureInfo.InvariantCulture);
        manifest.Index.SearchParameters["nprobe"] = defaults.Nprobe.ToString(System.Globalization.CultureInfo.InvariantCulture);
        BundleManifests.Write(bundle, manifest);
        log($"index {index.Factory} over {n:N0} items (d+1 = {dim}) built in {clock.Elapsed.TotalSeconds:F2}s -> {Path.Combine(bundle, BundleLayout.Index)}");
    }

    public int Run(CommandLine a)
    {
        string bundle = a.Required("bundle");
        string factory = a.String("factory", "auto");
        var defaults = new SearchParameters(a.Int("ef-search", 256, 1), a.Int("nprobe", 32, 1));
        int efc = a.Int("ef-construction", 200, 1);
        a.EnsureAllUsed();
        Build(bundle, factory, defaults, efc, Console.WriteLine);
        return 0;
    }
}
