// `bert4rec bench retrieval`: FAISS candidate generation on generated clustered item vectors (d=65 = hidden 64 + the
// bias column, as the models' w_v = [E[v], b_O[v]]): build time, index file size, single-query latency on one thread
// (p50/p99), batched throughput, and recall@K against exact search, for each search setting of the sweep; peak RSS.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.CommandLine;
using Bert4Rec.Contracts;
using Bert4Rec.Retrieval;

namespace Bert4Rec.Benchmarks;

internal static class RetrievalBench
{
    public static Command Build()
    {
        var sizesOpt = IntList("--items", "catalog sizes (10000000 for the large case)", "100000,1000000", 1000);
        var dimOpt = Flags.Int("--dim", "vector dimension (d + 1)", 65, 2);
        var kOpt = Flags.Int("--k", "neighbours per query", 100, 1);
        var queriesOpt = Flags.Int("--queries", "queries per setting", 500, 10);
        var factoryOpt = Flags.String("--factory", "the approximate index (FAISS factory string; auto: the index `bert4rec index` picks for the size)", "auto", "FACTORY");
        var efsOpt = IntList("--ef-search", "HNSW search breadths to measure", "128,256,512", 1);
        var nprobeOpt = IntList("--nprobe", "IVF lists probed, to measure", "16,32,64", 1);
        var refineOpt = FloatList("--refine-factor", "RFlat refine factors to measure", "4");
        var efcOpt = Flags.Int("--ef-construction", "HNSW build breadth", 200, 8);
        var trainOpt = Flags.Int("--train", "IVF/PQ training vectors", 200_000, 1000);
        var clustersOpt = Flags.Int("--clusters", "clusters of the generated vectors", 4096, 1);
        var spreadOpt = Flags.Double("--spread", "spread of the generated vectors around their cluster centres", 0.7, 0);
        var c = new Command("retrieval", "FAISS recall@k, single-query latency, build time, file size and peak RSS against exact search")
            { sizesOpt, dimOpt, kOpt, queriesOpt, factoryOpt, efsOpt, nprobeOpt, refineOpt, efcOpt, trainOpt, clustersOpt, spreadOpt };
        c.SetAction(a => Run(a.GetValue(sizesOpt)!, a.GetValue(dimOpt), a.GetValue(kOpt), a.GetValue(queriesOpt), a.GetValue(factoryOpt)!, a.GetValue(efsOpt)!,
            a.GetValue(nprobeOpt)!, a.GetValue(refineOpt)!, a.GetValue(efcOpt), a.GetValue(clustersOpt), a.GetValue(spreadOpt), a.GetValue(trainOpt)));
        return c;
    }

    /// <summary>A comma-separated list of integers, each at least <paramref name="min"/>; a bad entry is refused naming the flag.</summary>
    private static Option<int[]> IntList(string name, string description, string fallback, int min) =>
        List<int>(name, description, fallback, "N1,N2,...", $"an integer >= {min}",
            s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= min ? v : null);

    /// <summary>A comma-separated list of refine factors, each in [1, 1000].</summary>
    private static Option<float[]> FloatList(string name, string description, string fallback) =>
        List<float>(name, description, fallback, "F1,F2,...", "a number in [1, 1000]",
            s => float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out float v) && v >= 1 && v <= 1000 ? v : null);

    private static Option<T[]> List<T>(string name, string description, string fallback, string helpName, string what, Func<string, T?> parse) where T : struct => new(name)
    {
        Description = description, HelpName = helpName, DefaultValueFactory = _ => fallback.Split(',').Select(x => parse(x)!.Value).ToArray(),
        CustomParser = r =>
        {
            var values = new List<T>();
            foreach (var s in r.Tokens[0].Value.Split(','))
            {
                if (parse(s) is not { } v)
                {
                    r.AddError($"{name}: '{s}' is not {what}");
                    return [];
                }
                values.Add(v);
            }
            return values.ToArray();
        },
    };

    private static int Run(int[] sizes, int dim, int k, int queries, string factoryFlag, int[] efs, int[] nprobes, float[] factors, int efc, int clusters, double spread, int trainVectors)
    {
        var rows = new List<Dictionary<string, object>>();
        var total = Stopwatch.StartNew();
        float[] allQueries = [];     // the queries of the size being measured
        ReadOnlySpan<float> qs(int i) => allQueries.AsSpan(i * dim, dim);
        Console.WriteLine($"{"items",11} {"index",-22} {"setting",-22} {"recall@" + k,10} {"p50 ms",8} {"p99 ms",8} {"batch q/s",10} {"build s",8} {"size MiB",9}");
        foreach (int n in sizes)
        {
            var sw = Stopwatch.StartNew();
            var (vectors, ids, queryVectors) = Data(n, dim, queries, clusters, spread, seed: n);
            allQueries = queryVectors;
            Console.WriteLine($"  generated {n:N0} x {dim} vectors in {sw.Elapsed.TotalSeconds:F1}s");
            ItemIndex.SetNativeThreads(Environment.ProcessorCount);
            // exact answers first, and the exact index freed before the approximate one is built (10M x 65 floats is 2.6 GB)
            Neighbor[][] truth;
            using (var exact = ItemIndex.Build(vectors, ids, dim, "Flat"))
            {
                sw.Restart();
                truth = exact.Search(allQueries, queries, k);
                Console.WriteLine($"  exact top-{k} of {queries} queries in {sw.Elapsed.TotalSeconds:F1}s");
                if (n <= 1_000_000) Measure(exact, new SearchParameters(), 0, n, truth);
            }
            string factory = factoryFlag == "auto" ? ItemIndex.DefaultFactory(n, dim + 1) : factoryFlag;
            if (factory == "Flat") continue;
            sw.Restart();
            using var approx = ItemIndex.Build(vectors, ids, dim, factory, IndexMetric.InnerProduct,
                new IndexBuildOptions { EfConstruction = efc, MaxTrainingVectors = trainVectors });
            double build = sw.Elapsed.TotalSeconds;
            vectors = [];
            GC.Collect();
            bool ivf = factory.StartsWith("IVF", StringComparison.Ordinal), hnsw = factory.Contains("HNSW", StringComparison.Ordinal);
            bool refine = factory.Contains("RFlat", StringComparison.Ordinal);
            var settings = new List<SearchParameters>();
            if (ivf) foreach (int np in nprobes) foreach (float f in refine ? factors : [0f]) settings.Add(new SearchParameters(Nprobe: np, RefineFactor: f));
            else if (hnsw) foreach (int ef in efs) foreach (float f in refine ? factors : [0f]) settings.Add(new SearchParameters(EfSearch: ef, RefineFactor: f));
            else settings.Add(approx.DefaultSearch);
            foreach (var p in settings) Measure(approx, p, build, n, truth);
        }

        void Measure(ItemIndex index, SearchParameters p, double buildSeconds, int count, Neighbor[][] truth)
        {
            ItemIndex.SetNativeThreads(1);
            for (int i = 0; i < Math.Min(50, queries); i++) index.Search(qs(i), 1, k, p);
            var lat = new List<double>(queries);
            var results = new Neighbor[queries][];
            for (int i = 0; i < queries; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                results[i] = index.Search(qs(i), 1, k, p)[0];
                lat.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
            lat.Sort();
            ItemIndex.SetNativeThreads(Environment.ProcessorCount);
            var bw = Stopwatch.StartNew();
            index.Search(allQueries, queries, k, p);
            double qps = queries / bw.Elapsed.TotalSeconds;
            double hits = 0;
            for (int i = 0; i < queries; i++) hits += results[i].Select(x => x.Id).Intersect(truth[i].Select(x => x.Id)).Count();
            double recall = hits / ((double)queries * k);
            string path = Path.Combine(Path.GetTempPath(), $"b4r-bench-{Environment.ProcessId}.faiss");
            double mib;
            try { mib = index.Save(path).SizeBytes / 1048576.0; }
            finally { File.Delete(path); }
            string setting = index.Factory == "Flat" ? "exact"
                : string.Join(" ", new[] { p.EfSearch > 0 ? $"efSearch={p.EfSearch}" : "", p.Nprobe > 0 ? $"nprobe={p.Nprobe}" : "", p.RefineFactor > 0 ? $"refine={p.RefineFactor}" : "" }.Where(x => x.Length > 0));
            double p50 = lat[lat.Count / 2], p99 = lat[Math.Min(lat.Count - 1, (int)(lat.Count * 0.99))];
            Console.WriteLine($"{count,11:N0} {index.Factory,-22} {setting,-22} {recall,10:F4} {p50,8:F3} {p99,8:F3} {qps,10:N0} {buildSeconds,8:F1} {mib,9:F1}");
            rows.Add(new Dictionary<string, object>
            {
                ["items"] = count, ["index"] = index.Factory, ["setting"] = setting, ["recall"] = Math.Round(recall, 4), ["p50_ms"] = Math.Round(p50, 4),
                ["p99_ms"] = Math.Round(p99, 4), ["batch_qps"] = Math.Round(qps), ["build_s"] = Math.Round(buildSeconds, 1), ["size_mib"] = Math.Round(mib, 1),
            });
        }
        long peak = TrainBench.PeakRssBytes();
        Console.WriteLine($"peak RSS {peak / 1048576} MiB, total {total.Elapsed.TotalSeconds:F0}s");
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(new { k, dim, clusters, spread, peak_rss_mib = peak / 1048576, total_s = Math.Round(total.Elapsed.TotalSeconds), rows }));
        return 0;
    }

    /// <summary>
    /// Item vectors shaped like trained embeddings: around <paramref name="clusters"/> centres (N(0,1) per component),
    /// each item its centre plus N(0, spread^2) noise, scaled by a log-normal popularity factor (sigma 0.25) so norms
    /// vary as they do for frequent and rare items, with a bias-like last column N(0, 0.25). Queries are shaped like user
    /// vectors [z, 1]: a centre plus the same noise, and 1 in the last component. With spread 0.7 a cluster's items
    /// overlap their neighbours' (noise norm about 5.6 against centre distances about 11 at d = 64), so the exact top 100
    /// of a query spans several cells of an inverted file rather than one.
    /// </summary>
    internal static (float[] Vectors, long[] Ids, float[] Queries) Data(int n, int dim, int queries, int clusters, double spread, int seed)
    {
        var rng = new Random(seed);
        var centres = new float[clusters * dim];
        for (int i = 0; i < centres.Length; i++) centres[i] = (float)Gauss(rng);
        var v = new float[(long)n * dim];
        for (long i = 0; i < n; i++)
        {
            int c = rng.Next(clusters);
            float scale = (float)Math.Exp(0.25 * Gauss(rng));
            for (int j = 0; j < dim - 1; j++) v[i * dim + j] = scale * (centres[c * dim + j] + (float)(spread * Gauss(rng)));
            v[i * dim + dim - 1] = 0.5f * (float)Gauss(rng);
        }
        var q = new float[queries * dim];
        for (int i = 0; i < queries; i++)
        {
            int c = rng.Next(clusters);
            for (int j = 0; j < dim - 1; j++) q[i * dim + j] = centres[c * dim + j] + (float)(spread * Gauss(rng));
            q[i * dim + dim - 1] = 1f;
        }
        return (v, Enumerable.Range(1, n).Select(i => (long)i).ToArray(), q);
    }

    private static double Gauss(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());
}
