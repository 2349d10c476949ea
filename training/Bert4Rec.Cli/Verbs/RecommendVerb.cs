// `bert4rec recommend`: recommendations for one history straight from a bundle (no server).
using Bert4Rec.Contracts;
using Bert4Rec.Inference.OnnxRuntime;
using Bert4Rec.Inference.Recommendation;

namespace Bert4Rec.Cli;

internal sealed class RecommendVerb : IVerb
{
    public string Name => "recommend";
    public string Summary => "recommend for one history from a bundle, no server needed";
    public string Usage => "  --bundle DIR --history ID,ID,... [-k 10] [--candidates 200] [--include-seen] [--rerank ID,ID,...] [--provider cpu|cuda|auto] [--threads 1]";

    public int Run(CommandLine a)
    {
        string bundle = a.Required("bundle");
        var history = a.Required("history").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        int k = a.Int("k", 10, 1, 10000), cands = a.Int("candidates", 200, 1, 100000);
        bool includeSeen = a.Flag("include-seen");
        string? rerank = a.String("rerank");
        var provider = SessionOptions.ProviderFlag(a);
        int threads = a.Int("threads", 1, 0);
        a.EnsureAllUsed();
        using var b = ModelBundle.Load(bundle, new SessionOptions { IntraOpThreads = threads, Provider = provider }, requireIndex: rerank == null);
        var rec = new Recommender(b);
        var r = rerank != null
            ? rec.Rerank(history, rerank.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), k)
            : rec.Recommend(history, k, cands, includeSeen);
        if (r.UnknownIds.Count > 0) Console.WriteLine($"unknown ids (dropped): {string.Join(", ", r.UnknownIds)}");
        int rank = 1;
        foreach (var item in r.Items) Console.WriteLine($"{rank++,3}. {item.ItemId}\t{item.Score:F4}");
        return 0;
    }
}
