// `bert4rec bench retrieval`: FAISS candidate generation on synthetic clustered item vectors (d=65, last column bias-like):
// build time, index size, single-query latency on one thread, batched throughput, and recall@K against exact search.
using System.Diagnostics;
using System.Text.Json;
using System.CommandLine;
using Bert4Rec.Contracts;
using Bert4Rec.Retrieval;

namespace Bert4Rec.Benchmarks;

internal static class RetrievalBench
{
    public static Command Build()
    {
        var sizesOpt = IntList("--sizes", "catalog sizes", "100000,1000000", 1000);
        var dimOpt = Flags.Int("--dim", "vector dimension (d + 1)", 65, 2);
        var kOpt = Flags.Int("--k", "neighbours per query", 100, 1);
        var queriesOpt = Flags.Int("--queries", "queries per setting", 500, 10);
        var factoryOpt = Flags.String("--factory", "the approximate index (FAISS factory string)", "HNSW32", "FACTORY");
        var efsOpt = IntList("--ef-search", "HNSW search breadths (IVF: nprobe) to measure", "128,256,512", 1);
        var efcOpt = Flags.Int("--ef-construction", "HNSW build breadth", 200, 8);
        var c = new Command("retrieval", "FAISS recall@k and latency against exact search") { sizesOpt, dimOpt, kOpt, queriesOpt, factoryOpt, efsOpt, efcOpt };
        c.SetAction(a => Run(a.GetValue(sizesOpt)!, a.GetValue(dimOpt), a.GetValue(kOpt), a.GetValue(queriesOpt), a.GetValue(factoryOpt)!, a.GetValue(efsOpt)!, a.GetValue(efcOpt)));
        return c;
    }

    /// <summary>A comma-separated list of integers, each at least <paramref name="min"/>; a bad entry is refused naming the flag.</summary>
    private static Option<int[]> IntList(string name, string description, string fallback, int min) => new(name)
    {
        Description = description, HelpName = "N1,N2,...", DefaultValueFactory = _ => fallback.Split(',').Select(int.Parse).ToArray(),
        CustomParser = r =>
        {
            var values = new List<int>();
            foreach (var s in r.Tokens[0].Value.Split(','))
            {
                if (!int.TryParse(s, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int v) || v < min)
                {
                    r.AddError($"{name}: '{s}' is not an integer >= {min}");
                    return [];
                }
                values.Add(v);
            }
            return values.ToArray();
        },
    };

    private static int Run(int[] sizes, int dim, int k, int queries, string factory, int[] efs, int efc)
    {
        var rows = new List<Dictionary<string, object>>();
        Console.WriteLine($"{"items",9} {"index",-10} {"setting",-14} {"recall@" + k,10} {"p50 ms",8} {"p99 ms",8} {"batch q/s",10} {"build s",8} {"size MiB",9}");
        foreach (int n in sizes)
        {
            var (vectors, ids, qs) = Data(n, dim, queries, seed: n);
            ItemIndex.SetNativeThreads(Environment.ProcessorCount);
            using var exact = ItemIndex.Build(vectors, ids, dim, "Flat");
            var truth = exact.Search(qs, queries, k);
            Measure(exact, "Flat", new SearchParameters(), 0, n);
            var sw = Stopwatch.StartNew();
            using var approx = ItemIndex.Build(vectors, ids, dim, factory, IndexMetric.InnerProduct, new IndexBuildOptions { EfConstruction = efc });
            double build = sw.Elapsed.TotalSeconds;
            foreach (int ef in efs) Measure(approx, factory, new SearchParameters(EfSearch: ef, Nprobe: ef), build, n);

            void Measure(ItemIndex index, string name, SearchParameters p, double buildSeconds, int count)
            {
                ItemIndex.SetNativeThreads(1);
                for (int i = 0; i < Math.Min(50, queries); i++) index.Search(qs.AsSpan(i * dim, dim), 1, k, p);
                var lat = new List<double>(queries);
                var results = new Neighbor[queries][];
                for (int i = 0; i < queries; i++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    results[i] = index.Search(qs.AsSpan(i * dim, dim), 1, k, p)[0];
                    lat.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                }
                lat.Sort();
                ItemIndex.SetNativeThreads(Environment.ProcessorCount);
                var bw = Stopwatch.StartNew();
                index.Search(qs, queries, k, p);
                double qps = queries / bw.Elapsed.TotalSeconds;
                double hits = 0;
                for (int i = 0; i < queries; i++) hits += results[i].Select(x => x.Id).Intersect(truth[i].Select(x => x.Id)).Count();
                double recall = hits / ((double)queries * k);
                string path = Path.GetTempFileName();
                index.Save(path);
                double mib = new FileInfo(path).Length / 1048576.0;
                File.Delete(path);
                string setting = name == "Flat" ? "exact" : $"efSearch={p.EfSearch}";
                Console.WriteLine($"{count,9:N0} {name,-10} {setting,-14} {recall,10:F4} {lat[lat.Count / 2],8:F3} {lat[(int)(lat.Count * 0.99)],8:F3} {qps,10:N0} {buildSeconds,8:F1} {mib,9:F1}");
                rows.Add(new Dictionary<string, object>
                {
                    ["items"] = count, ["index"] = name, ["setting"] = setting, ["recall"] = Math.Round(recall, 4), ["p50_ms"] = Math.Round(lat[lat.Count / 2], 4),
                    ["p99_ms"] = Math.Round(lat[(int)(lat.Count * 0.99)], 4), ["batch_qps"] = Math.Round(qps), ["build_s"] = Math.Round(buildSeconds, 1), ["size_mib"] = Math.Round(mib, 1),
                });
            }
        }
        Console.WriteLine($"peak RSS {TrainBench.PeakRssBytes() / 1048576} MiB");
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(new { k, dim, peak_rss_mib = TrainBench.PeakRssBytes() / 1048576, rows }));
        return 0;
    }

    /// <summary>
    /// Item vectors around 1,024 cluster centres with a bias-like last column, and queries shaped like user vectors:
    /// a centre plus noise, with a last component of 1 (as [z, 1]).
    /// </summary>
    internal static (float[] Vectors, long[] Ids, float[] Queries) Data(int n, int dim, int queries, int seed)
    {
        var rng = new Random(seed);
        int clusters = 1024;
        var centres = new float[clusters * dim];
        for (int i = 0; i < centres.Length; i++) centres[i] = (float)Gauss(rng);
        var v = new float[(long)n * dim];
        for (int i = 0; i < n; i++)
        {
            int c = rng.Next(clusters);
            for (int j = 0; j < dim - 1; j++) v[(long)i * dim + j] = centres[c * dim + j] + 0.5f * (float)Gauss(rng);
            v[(long)i * dim + dim - 1] = 0.5f * (float)Gauss(rng);
        }
        var q = new float[queries * dim];
        for (int i = 0; i < queries; i++)
        {
            int c = rng.Next(clusters);
            for (int j = 0; j < dim - 1; j++) q[i * dim + j] = centres[c * dim + j] + 0.5f * (float)Gauss(rng);
            q[i * dim + dim - 1] = 1f;
        }
        return (v, Enumerable.Range(1, n).Select(i => (long)i).ToArray(), q);
    }

    private static double Gauss(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());
}
