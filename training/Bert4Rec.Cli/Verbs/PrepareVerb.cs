// `bert4rec prepare`: interaction log (or the synthetic generator) -> a prepared dataset folder.
using System.CommandLine;
using System.Diagnostics;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Features;

namespace Bert4Rec.Cli;

internal sealed class PrepareVerb : IVerb
{
    public Command Build()
    {
        var input = Flags.String("--input", "interaction log", helpName: "FILE");
        var format = Flags.Choice("--format", "movielens (u::i::r::t), ml100k (tab), csv, tsv, or pairs (`user item`, file order = time)", "pairs", "movielens", "ml100k", "csv", "tsv", "pairs");
        var userCol = Flags.String("--user-col", "csv/tsv: the user column's header", "user_id", "NAME");
        var itemCol = Flags.String("--item-col", "csv/tsv: the item column's header", "item_id", "NAME");
        var timeCol = Flags.String("--time-col", "csv/tsv: the time column's header", "timestamp", "NAME");
        var minUser = Flags.Int("--min-user", "k-core: users with fewer interactions are dropped (0 disables)", 5, 0);
        var minItem = Flags.Int("--min-item", "k-core: items with fewer interactions are dropped (0 disables)", 5, 0);
        var fixedPoint = Flags.Flag("--kcore-fixed-point", "repeat the filter until nothing changes (default: one pass, as SASRec)");
        var synthetic = Flags.Flag("--synthetic", "generate the synthetic dataset instead of reading a file");
        var users = Flags.Int("--users", "--synthetic: users", 2000, 10);
        var items = Flags.Int("--items", "--synthetic: items", 500, 20);
        var seed = Flags.Int("--seed", "--synthetic: generator seed", 42);
        var outDir = Flags.Required("--out", "output folder (written to a temporary folder, then renamed)", "DIR");
        var userFeatures = Flags.String("--user-features", "per-user feature file (delimited), stored with the dataset", helpName: "FILE");
        var itemFeatures = Flags.String("--item-features", "per-item feature file (delimited), stored with the dataset", helpName: "FILE");
        const string columnsHelp = "id=COL,NAME=cat:COL,NAME=num:COL[:BUCKETS],NAME=flags:FIRST-LAST,NAME=multi:COL:SEP (columns from 1); "
            + "default with --format ml100k: MovieLens 100K's ";
        var userColumns = Flags.String("--user-feature-columns", columnsHelp + "u.user", helpName: "SPEC");
        var itemColumns = Flags.String("--item-feature-columns", columnsHelp + "u.item", helpName: "SPEC");
        var delimiterOpt = Flags.String("--feature-delimiter", "the feature files' field separator", "|", "C");
        var headerOpt = Flags.Flag("--feature-header", "the feature files' first line names the columns");
        var minCountOpt = Flags.Int("--feature-min-count", "rarer feature values share the out-of-vocabulary bucket", 2, 1);
        var memoryOpt = Flags.Int("--memory-mb", "logs: the sort buffer's bound in MiB (24 bytes per interaction); a larger log is sorted in runs on disk beside --out and merged", 1024, 1);
        var c = new Command("prepare", "read interaction logs, filter, split and save a prepared dataset")
        {
            input, format, userCol, itemCol, timeCol, minUser, minItem, fixedPoint, synthetic, users, items, seed, outDir,
            userFeatures, itemFeatures, userColumns, itemColumns, delimiterOpt, headerOpt, minCountOpt, memoryOpt,
        };
        c.SetAction(r =>
        {
            var clock = Stopwatch.StartNew();
            char delimiter = FeatureFileSpec.ParseDelimiter(r.GetValue(delimiterOpt)!);
            bool header = r.GetValue(headerOpt);
            int minCount = r.GetValue(minCountOpt);
            bool ml100k = r.Given(format) && InteractionLog.ParseFormat(r.GetValue(format)!) == LogFormat.Ml100k;
            FeatureFileSpec? Spec(string? file, string? columns, string flag, FeatureFileSpec ml100kDefault)
            {
                if (file == null)
                    return columns == null ? null : throw new UsageException($"--{flag} goes with --{flag.Replace("-columns", "s")} FILE");
                if (columns != null) return FeatureFileSpec.Parse(columns, delimiter, "--" + flag, header, minCount);
                if (!ml100k) throw new UsageException($"--{flag}: give the columns of {file} (only --format ml100k has defaults)");
                return ml100kDefault with { Delimiter = delimiter, Header = header, MinCount = minCount };
            }
            string? userFile = r.GetValue(userFeatures), itemFile = r.GetValue(itemFeatures);
            var userSpec = Spec(userFile, r.GetValue(userColumns), "user-feature-columns", FeatureFileSpec.Ml100kUsers);
            var itemSpec = Spec(itemFile, r.GetValue(itemColumns), "item-feature-columns", FeatureFileSpec.Ml100kItems);
            string dir = r.GetValue(outDir)!;
            DatasetStatistics stats;
            if (r.GetValue(synthetic))
            {
                foreach (var o in new Option[] { input, format, userCol, itemCol, timeCol, minUser, minItem, fixedPoint, memoryOpt })
                    if (r.Given(o)) throw new UsageException($"{o.Name}: reads a log, which --synthetic does not");
                var data = SyntheticDataset.Generate(new SyntheticOptions { Users = r.GetValue(users), Items = r.GetValue(items), Seed = r.GetValue(seed) });
                stats = Save(FeatureReader.Attach(data, userFile, userSpec, itemFile, itemSpec, Console.WriteLine), dir);
            }
            else
            {
                foreach (var o in new Option[] { users, items, seed })
                    if (r.Given(o)) throw new UsageException($"{o.Name}: goes with --synthetic");
                string path = r.GetValue(input) ?? throw new UsageException("missing required flag --input (or --synthetic)");
                var opts = new LogReadOptions
                {
                    Format = InteractionLog.ParseFormat(r.GetValue(format)!), UserColumn = r.GetValue(userCol)!, ItemColumn = r.GetValue(itemCol)!,
                    TimeColumn = r.GetValue(timeCol)!, Progress = Progress,
                };
                int minU = r.GetValue(minUser), minI = r.GetValue(minItem);
                bool fp = r.GetValue(fixedPoint);
                if (userFile == null && itemFile == null)
                {
                    // the external sort: memory bounded by --memory-mb whatever the log's size (one run, no merge, when it fits)
                    var sort = new ExternalSortOptions { MemoryBytes = (long)r.GetValue(memoryOpt) << 20, Log = line => Console.Error.WriteLine("prepare: " + line) };
                    var res = ExternalPrepare.Run(path, opts, minU, minI, fp, dir, sort);
                    Console.WriteLine($"read {res.LinesRead:N0} interactions from {path}, {res.Runs} sorted run(s), {res.KcorePasses} k-core pass(es)");
                    stats = res.Statistics;
                }
                else
                {
                    // feature tables attach to the dataset in memory (they are per user and per item, as large as the vocabularies)
                    var log = InteractionLog.Read(path, opts);
                    Console.WriteLine($"read {log.Count:N0} interactions from {path} in {clock.Elapsed.TotalSeconds:F2}s");
                    stats = Save(FeatureReader.Attach(log.ToDataset(minU, minI, fp), userFile, userSpec, itemFile, itemSpec, Console.WriteLine), dir);
                }
            }
            Console.WriteLine($"dataset: {stats}");
            Console.WriteLine($"saved to {dir} in {clock.Elapsed.TotalSeconds:F2}s");
            Console.WriteLine("RESULT " + System.Text.Json.JsonSerializer.Serialize(new { stats.Users, stats.Items, stats.Interactions, seconds = Math.Round(clock.Elapsed.TotalSeconds, 2) }));
            return 0;
        });
        return c;
    }

    private static DatasetStatistics Save(SequenceDataset data, string dir)
    {
        data.Save(dir);
        return data.Statistics;
    }

    private static void Progress(long done, long total)
    {
        double pct = total > 0 ? 100.0 * done / total : 100;
        if (Console.IsErrorRedirected) Console.Error.WriteLine($"read {pct:F0}%");
        else Console.Error.Write($"\rread {pct:F0}%   " + (done >= total ? "\n" : ""));
    }
}
