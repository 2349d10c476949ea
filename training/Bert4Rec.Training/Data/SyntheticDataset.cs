// A seeded synthetic interaction log with planted sequential structure, the demo's default data and the tests' data.
//
// Items have power-law popularity. Users belong to one of `Clusters` taste clusters, each owning a slice of the catalog.
// Each item has `Successors` preferred next items inside its cluster. A user's next item is, with probability
// `Transition`, one of the current item's successors; otherwise a popularity-weighted item of the user's cluster; with
// probability `Noise`, any popularity-weighted item. So the next item depends on the previous one (a sequence model
// learns it), while the most popular items are only a weak guess.
using Bert4Rec.Contracts;

namespace Bert4Rec.Training.Data;

public sealed record SyntheticOptions
{
    public int Users { get; init; } = 2000;
    public int Items { get; init; } = 500;
    public int MinLength { get; init; } = 10;
    public int MaxLength { get; init; } = 60;
    public int Clusters { get; init; } = 10;
    public int Successors { get; init; } = 3;
    public double Transition { get; init; } = 0.6;
    public double Noise { get; init; } = 0.1;
    public double PopularityExponent { get; init; } = 1.0;
    public int Seed { get; init; } = 42;
}

public static class SyntheticDataset
{
    public static SequenceDataset Generate(SyntheticOptions o)
    {
        if (o.Users < 1 || o.Items < o.Clusters || o.Clusters < 1 || o.MinLength < 3 || o.MaxLength < o.MinLength || o.Successors < 1)
            throw new ArgumentException($"synthetic options out of range: {o}");
        var rng = new Random(o.Seed);
        int n = o.Items;
        // power-law popularity over a random permutation of items
        var perm = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).ToArray();
        var weight = new double[n];
        for (int r = 0; r < n; r++) weight[perm[r]] = 1.0 / Math.Pow(r + 1, o.PopularityExponent);
        int cluster(int item) => item % o.Clusters;
        var members = Enumerable.Range(0, o.Clusters).Select(c => Enumerable.Range(0, n).Where(i => cluster(i) == c).ToArray()).ToArray();
        var cum = members.Select(m => Cumulative(m.Select(i => weight[i]).ToArray())).ToArray();
        var all = Cumulative(weight);
        var succ = new int[n][];
        for (int i = 0; i < n; i++)
        {
            var m = members[cluster(i)];
            succ[i] = Enumerable.Range(0, o.Successors).Select(_ => m[rng.Next(m.Length)]).ToArray();
        }
        var seqs = new int[o.Users][];
        var raw = new string[n];
        for (int i = 0; i < n; i++) raw[i] = $"i{i}";
        // first-seen re-indexing, as prepare does
        var index = new int[n];
        var names = new List<string>();
        for (int u = 0; u < o.Users; u++)
        {
            int c = rng.Next(o.Clusters);
            int len = rng.Next(o.MinLength, o.MaxLength + 1);
            var s = new int[len];
            int cur = members[c][Sample(cum[c], rng)];
            for (int t = 0; t < len; t++)
            {
                if (t > 0)
                {
                    double x = rng.NextDouble();
                    cur = x < o.Noise ? Sample(all, rng)
                        : x < o.Noise + o.Transition ? succ[cur][rng.Next(succ[cur].Length)]
                        : members[c][Sample(cum[c], rng)];
                }
                if (index[cur] == 0) { names.Add(raw[cur]); index[cur] = names.Count; }
                s[t] = index[cur];
            }
            seqs[u] = s;
        }
        return new SequenceDataset(new Vocabulary(names), Enumerable.Range(1, o.Users).Select(u => $"u{u}").ToArray(), seqs);
    }

    private static double[] Cumulative(double[] w)
    {
        var c = new double[w.Length];
        double s = 0;
        for (int i = 0; i < w.Length; i++) { s += w[i]; c[i] = s; }
        return c;
    }

    private static int Sample(double[] cum, Random rng)
    {
        double x = rng.NextDouble() * cum[^1];
        int i = Array.BinarySearch(cum, x);
        return i >= 0 ? i : Math.Min(~i, cum.Length - 1);
    }
}
