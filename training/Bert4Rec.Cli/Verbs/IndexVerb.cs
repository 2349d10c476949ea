// `bert4rec index`: builds the FAISS index of a bundle over w_v = [E[v], b_O[v]] and records it in the manifest.
using System.CommandLine;
using Bert4Rec.Contracts;
using Bert4Rec.Retrieval;

namespace Bert4Rec.Cli;

internal sealed class IndexVerb : IVerb
{
    public Command Build()
    {
        var bundleOpt = Flags.Required("--bundle", "a bundle made by `bert4rec export`", "DIR");
        var factoryOpt = Flags.String("--factory", "auto, Flat, HNSW32, IVF4096,PQ33,RFlat, ... (auto: Flat up to 50k items, HNSW32 up to 2M, IVF-PQ with an exact refine step beyond)", "auto", "FACTORY");
        factoryOpt.CompletionSources.Add("auto", "Flat", "HNSW32", "IVF1024,Flat");
        var efSearchOpt = Flags.Int("--ef-search", "HNSW search breadth stored with the index", 256, 1);
        var nprobeOpt = Flags.Int("--nprobe", "IVF lists probed, stored with the index", 32, 1);
        var refineOpt = Flags.Double("--refine-factor", "RFlat: candidates re-ranked exactly per result, stored with the index", 4, 1, 1000);
        var efcOpt = Flags.Int("--ef-construction", "HNSW build breadth", 200, 1);
        var c = new Command("index", "build the FAISS index of a bundle") { bundleOpt, factoryOpt, efSearchOpt, nprobeOpt, refineOpt, efcOpt };
        c.SetAction(a => Run(a.GetValue(bundleOpt)!, a.GetValue(factoryOpt)!,
            new SearchParameters(a.GetValue(efSearchOpt), a.GetValue(nprobeOpt), (float)a.GetValue(refineOpt)), a.GetValue(efcOpt)));
        return c;
    }

    private static int Run(string bundle, string factory, SearchParameters defaults, int efc)
    {
        Console.WriteLine(BundleIndexer.Build(bundle, factory, defaults, efc));
        return 0;
    }
}
