// `bert4rec recommend`: recommendations for one history straight from a bundle (no server).
using System.CommandLine;
using Bert4Rec.Contracts;
using Bert4Rec.Inference.OnnxRuntime;
using Bert4Rec.Inference.Recommendation;

namespace Bert4Rec.Cli;

internal sealed class RecommendVerb : IVerb
{
    public Command Build()
    {
        var bundleOpt = Flags.Required("--bundle", "a bundle (with its index unless --rerank)", "DIR");
        var historyOpt = Flags.Required("--history", "the user's items, oldest first (raw ids)", "ID,ID,...");
        var kOpt = Flags.Int("-k", "recommendations to return", 10, 1, 10000);
        kOpt.Aliases.Add("--k");
        var candsOpt = Flags.Int("--candidates", "FAISS candidates scored exactly", 200, 1, 100000);
        var seenOpt = Flags.Flag("--include-seen", "allow items already in the history");
        var rerankOpt = Flags.String("--rerank", "score these items instead of searching the index", helpName: "ID,ID,...");
        var providerOpt = SessionOptions.ProviderOption();
        var threadsOpt = Flags.Int("--threads", "ONNX Runtime intra-op threads (0 = one per core)", 1, 0);
        var userOpt = Flags.String("--user-id", "the user's raw id, for a bundle whose models read the user (a Two-Tower stage one, a stage-two ranker)", helpName: "ID");
        var featureOpt = new Option<string[]>("--user-feature")
        {
            Description = "a user feature value replacing the stored one (repeat the flag per field; a multi-hot field's values '|'-separated)",
            HelpName = "NAME=VALUE", Arity = ArgumentArity.ZeroOrMore, DefaultValueFactory = _ => [],
        };
        var c = new Command("recommend", "recommend for one history from a bundle, no server needed")
            { bundleOpt, historyOpt, kOpt, candsOpt, seenOpt, rerankOpt, providerOpt, threadsOpt, userOpt, featureOpt };
        c.SetAction(a =>
        {
            var user = User(a.GetValue(userOpt), a.GetValue(featureOpt) ?? []);
            return Run(a.GetValue(bundleOpt)!, Ids(a.GetValue(historyOpt)!), a.GetValue(kOpt), a.GetValue(candsOpt), a.GetValue(seenOpt),
                a.GetValue(rerankOpt) is { } r ? Ids(r) : null, SessionOptions.ParseProvider(a.GetValue(providerOpt)!), a.GetValue(threadsOpt), user);
        });
        return c;
    }

    /// <summary>The request's user from --user-id and --user-feature NAME=VALUE (checked before the bundle is read); null = none.</summary>
    private static UserContext? User(string? id, string[] features)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in features)
        {
            int eq = f.IndexOf('=');
            if (eq < 1) throw new UsageException($"--user-feature: '{f}' is not NAME=VALUE");
            if (!values.TryAdd(f[..eq], f[(eq + 1)..])) throw new UsageException($"--user-feature: field '{f[..eq]}' given twice");
        }
        return id == null && values.Count == 0 ? null : new UserContext(id, values);
    }

    private static string[] Ids(string list) => list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static int Run(string bundle, string[] history, int k, int cands, bool includeSeen, string[]? rerank, ExecutionProvider provider, int threads,
                           UserContext? user)
    {
        using var b = ModelBundle.Load(bundle, new SessionOptions { IntraOpThreads = threads, Provider = provider }, requireIndex: rerank == null);
        var rec = new Recommender(b);
        RecommendationResult r;
        try
        {
            r = rerank != null
                ? rec.Rerank(history, rerank, k, user)
                : rec.RecommendBatch([new RecommendQuery(history, k, cands, includeSeen, user)])[0];
        }
        catch (UserFeatureException e) { throw new UsageException($"--user-feature {e.Field["user_features.".Length..]}: {e.Message}"); }
        if (b.StageTwo != null) Console.WriteLine($"ranked by {r.RankedBy}");
        if (r.UnknownIds.Count > 0) Console.WriteLine($"unknown ids (dropped): {string.Join(", ", r.UnknownIds)}");
        int rank = 1;
        foreach (var item in r.Items) Console.WriteLine($"{rank++,3}. {item.ItemId}\t{item.Score:F4}");
        return 0;
    }
}
