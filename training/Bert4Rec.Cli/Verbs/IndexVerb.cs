// `bert4rec index`: builds the FAISS index of a bundle over w_v = [E[v], b_O[v]] and records it in the manifest.
using Bert4Rec.Contracts;
using Bert4Rec.Retrieval;

namespace Bert4Rec.Cli;

internal sealed class IndexVerb : IVerb
{
    public string Name => "index";
    public string Summary => "build the FAISS index of a bundle";
    public string Usage => """
          --bundle DIR              a bundle made by `bert4rec export`
          --factory auto|Flat|HNSW32|IVF4096,PQ33,RFlat|...   (auto: Flat up to 50k items, HNSW32 up to 2M,
                                    IVF-PQ with an exact refine step beyond)
          --ef-search N --nprobe N --refine-factor F
                                    search-time defaults stored with the index (256 / 32 / 4)
          --ef-construction N       HNSW build breadth (200)
        """;

    public int Run(CommandLine a)
    {
        string bundle = a.Required("bundle");
        string factory = a.String("factory", "auto");
        var defaults = new SearchParameters(a.Int("ef-search", 256, 1), a.Int("nprobe", 32, 1), (float)a.Double("refine-factor", 4, 1, 1000));
        int efc = a.Int("ef-construction", 200, 1);
        a.EnsureAllUsed();
        Console.WriteLine(BundleIndexer.Build(bundle, factory, defaults, efc));
        return 0;
    }
}
