// `bert4rec prepare`: interaction log (or the synthetic generator) -> a prepared dataset folder.
using System.Diagnostics;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Features;

namespace Bert4Rec.Cli;

internal sealed class PrepareVerb : IVerb
{
    public string Name => "prepare";
    public string Summary => "read interaction logs, filter, split and save a prepared dataset";
    public string Usage => """
          --input FILE          interaction log
          --format F            movielens (u::i::r::t) | ml100k (tab) | csv | tsv | pairs (`user item`, file order = time)
          --user-col/--item-col/--time-col NAME   csv/tsv header columns (defaults user_id, item_id, timestamp)
          --min-user K --min-item K               k-core thresholds (default 5 / 5; 0 disables)
          --kcore-fixed-point                     repeat the filter until nothing changes (default: one pass, as SASRec)
          --synthetic [--users N --items N --seed S]   generate the synthetic dataset instead of reading a file
          --out DIR             output folder (written to a temporary folder, then renamed)
          --user-features FILE / --item-features FILE   per-user / per-item feature files (delimited), stored with the dataset
          --user-feature-columns SPEC / --item-feature-columns SPEC   id=COL,NAME=cat:COL,NAME=num:COL[:BUCKETS],NAME=flags:FIRST-LAST,
                                NAME=multi:COL:SEP (columns from 1); default with --format ml100k: MovieLens 100K's u.user / u.item
          --feature-delimiter C  (default '|'), --feature-header (the first line names the columns), --feature-min-count K (default 2:
                                rarer values share the out-of-vocabulary bucket)
        """;

    public int Run(CommandLine a)
    {
        string outDir = a.Required("out");
        var clock = Stopwatch.StartNew();
        string? userFeatures = a.String("user-features"), itemFeatures = a.String("item-features");
        string? userColumns = a.String("user-feature-columns"), itemColumns = a.String("item-feature-columns");
        char delimiter = FeatureFileSpec.ParseDelimiter(a.String("feature-delimiter", "|"));
        bool header = a.Flag("feature-header");
        int minCount = a.Int("feature-min-count", 2, 1);
        bool ml100k = a.String("format") is { } fmt && InteractionLog.ParseFormat(fmt) == LogFormat.Ml100k;
        FeatureFileSpec? Spec(string? file, string? columns, string flag, FeatureFileSpec ml100kDefault)
        {
            if (file == null)
                return columns == null ? null : throw new UsageException($"--{flag} goes with --{flag.Replace("-columns", "s")} FILE");
            if (columns != null) return FeatureFileSpec.Parse(columns, delimiter, "--" + flag, header, minCount);
            if (!ml100k) throw new UsageException($"--{flag}: give the columns of {file} (only --format ml100k has defaults)");
            return ml100kDefault with { Delimiter = delimiter, Header = header, MinCount = minCount };
        }
        var userSpec = Spec(userFeatures, userColumns, "user-feature-columns", FeatureFileSpec.Ml100kUsers);
        var itemSpec = Spec(itemFeatures, itemColumns, "item-feature-columns", FeatureFileSpec.Ml100kItems);
        SequenceDataset data;
        if (a.Flag("synthetic"))
        {
            var o = new SyntheticOptions { Users = a.Int("users", 2000, 10), Items = a.Int("items", 500, 20), Seed = a.Int("seed", 42) };
            a.EnsureAllUsed();
            data = SyntheticDataset.Generate(o);
        }
        else
        {
            string input = a.Required("input");
            var format = InteractionLog.ParseFormat(a.String("format", "pairs"));
            var opts = new LogReadOptions
            {
                Format = format, UserColumn = a.String("user-col", "user_id"), ItemColumn = a.String("item-col", "item_id"),
                TimeColumn = a.String("time-col", "timestamp"), Progress = Progress,
            };
            int minUser = a.Int("min-user", 5, 0), minItem = a.Int("min-item", 5, 0);
            bool fixedPoint = a.Flag("kcore-fixed-point");
            a.EnsureAllUsed();
            var log = InteractionLog.Read(input, opts);
            Console.WriteLine($"read {log.Count:N0} interactions from {input} in {clock.Elapsed.TotalSeconds:F2}s");
            data = log.ToDataset(minUser, minItem, fixedPoint);
        }
        data = FeatureReader.Attach(data, userFeatures, userSpec, itemFeatures, itemSpec, Console.WriteLine);
        data.Save(outDir);
        Console.WriteLine($"dataset: {data.Statistics}");
        Console.WriteLine($"saved to {outDir} in {clock.Elapsed.TotalSeconds:F2}s");
        Console.WriteLine("RESULT " + System.Text.Json.JsonSerializer.Serialize(new { data.Statistics.Users, data.Statistics.Items, data.Statistics.Interactions, seconds = Math.Round(clock.Elapsed.TotalSeconds, 2) }));
        return 0;
    }

    private static void Progress(long done, long total)
    {
        double pct = total > 0 ? 100.0 * done / total : 100;
        if (Console.IsErrorRedirected) Console.Error.WriteLine($"read {pct:F0}%");
        else Console.Error.Write($"\rread {pct:F0}%   " + (done >= total ? "\n" : ""));
    }
}
