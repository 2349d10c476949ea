// `bert4rec bench prepare`: generates an interaction log (CSV user_id,item_id,timestamp; users uniform, items skewed
// towards the head, timestamps random so every user's rows need sorting) into a temporary folder, prepares it as
// `prepare` does (the external sort, or --in-memory for the old path), and reports wall time, lines/s and the peak RSS
// of the prepare alone (the high-water mark is reset after generating, where the kernel allows it). The folder is
// deleted afterwards; --keep DIR moves the prepared dataset there first (to train on a large log).
using System.Buffers.Text;
using System.Diagnostics;
using System.CommandLine;
using System.Text.Json;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;

namespace Bert4Rec.Benchmarks;

internal static class PrepareBench
{
    private const string DataFolder = "data";

    public static Command Build()
    {
        var linesOpt = Flags.Long("--lines", "interactions in the generated log", 10_000_000, 1);
        var usersOpt = Flags.OptionalInt("--users", "distinct users (default lines / 20)", 1);
        var itemsOpt = Flags.Int("--items", "distinct items", 200_000, 1);
        var memoryOpt = Flags.Int("--memory-mb", "prepare's sort buffer bound in MiB", 1024, 1);
        var minOpt = Flags.Int("--min-count", "k-core minimum for users and items", 5, 0);
        var fixedOpt = Flags.Flag("--kcore-fixed-point", "repeat the k-core filter until nothing changes");
        var inMemoryOpt = Flags.Flag("--in-memory", "prepare through the in-memory path (InteractionLog) instead, for comparison");
        var seedOpt = Flags.Int("--seed", "generator seed", 1);
        var dirOpt = Flags.String("--dir", "parent folder of the temporary work folder (default: the system's temp folder)", helpName: "DIR");
        var keepOpt = Flags.String("--keep", "move the prepared dataset to this new folder instead of deleting it", helpName: "DIR");
        var c = new Command("prepare", "prepare's wall time, lines/s and peak RSS on a generated log")
            { linesOpt, usersOpt, itemsOpt, memoryOpt, minOpt, fixedOpt, inMemoryOpt, seedOpt, dirOpt, keepOpt };
        c.SetAction(a =>
        {
            long lines = a.GetValue(linesOpt);
            int users = a.GetValue(usersOpt) ?? (int)Math.Clamp(lines / 20, 1, int.MaxValue);
            string parent = a.GetValue(dirOpt) ?? Path.GetTempPath();
            if (!Directory.Exists(parent)) throw new UsageException($"--dir: {parent} is not a folder");
            string? keep = a.GetValue(keepOpt) is { } k ? Path.GetFullPath(k) : null;
            if (keep != null && (Directory.Exists(keep) || File.Exists(keep))) throw new UsageException($"--keep: {keep} exists (name a new folder)");
            var work = Directory.CreateDirectory(Path.Combine(parent, $"bert4rec-bench-prepare-{Environment.ProcessId}"));
            try
            {
                int rc = Run(work.FullName, lines, users, a.GetValue(itemsOpt), a.GetValue(memoryOpt), a.GetValue(minOpt), a.GetValue(fixedOpt),
                    a.GetValue(inMemoryOpt), a.GetValue(seedOpt));
                if (keep != null)
                {
                    Directory.Move(Path.Combine(work.FullName, DataFolder), keep);
                    Console.Error.WriteLine($"bench prepare: dataset kept in {keep}");
                }
                return rc;
            }
            finally
            {
                work.Delete(true);
            }
        });
        return c;
    }

    private static int Run(string work, long lines, int users, int items, int memoryMb, int min, bool fixedPoint, bool inMemory, int seed)
    {
        string log = Path.Combine(work, "log.csv"), outDir = Path.Combine(work, DataFolder);
        var gen = Stopwatch.StartNew();
        Generate(log, lines, users, items, seed);
        long bytes = new FileInfo(log).Length;
        Console.WriteLine($"generated {lines:N0} lines ({bytes / 1048576.0:N0} MiB, {users:N0} users, {items:N0} items) in {gen.Elapsed.TotalSeconds:F1}s");
        gen.Stop();
        bool reset = ResetPeakRss();
        var read = new LogReadOptions { Format = LogFormat.Csv };
        var clock = Stopwatch.StartNew();
        DatasetStatistics stats;
        var extra = new Dictionary<string, object>();
        if (inMemory)
        {
            var d = InteractionLog.Read(log, read).ToDataset(min, min, fixedPoint);
            d.Save(outDir);
            stats = d.Statistics;
        }
        else
        {
            var res = ExternalPrepare.Run(log, read, min, min, fixedPoint, outDir, new ExternalSortOptions
            {
                MemoryBytes = (long)memoryMb << 20, Log = line => Console.WriteLine($"  [{clock.Elapsed.TotalSeconds,6:F1}s] {line}"),
            });
            stats = res.Statistics;
            extra["runs"] = res.Runs; extra["merge_rounds"] = res.MergeRounds; extra["kcore_passes"] = res.KcorePasses;
        }
        double secs = clock.Elapsed.TotalSeconds;
        long peak = TrainBench.PeakRssBytes();
        Console.WriteLine($"prepare ({(inMemory ? "in memory" : $"external sort, --memory-mb {memoryMb}")}): {secs:F1}s, {lines / secs:N0} lines/s, peak RSS {peak / 1048576.0:N0} MiB"
                          + (reset ? "" : " (includes the generator: the kernel refused to reset the high-water mark)"));
        Console.WriteLine($"dataset: {stats}");
        var result = new Dictionary<string, object>
        {
            ["path"] = inMemory ? "in-memory" : "external", ["lines"] = lines, ["input_mib"] = bytes >> 20, ["users"] = users, ["items"] = items,
            ["memory_mb"] = memoryMb, ["seconds"] = Math.Round(secs, 1), ["lines_per_s"] = Math.Round(lines / secs), ["peak_rss_mib"] = peak >> 20,
            ["peak_rss_reset"] = reset, ["kept_users"] = stats.Users, ["kept_items"] = stats.Items, ["kept_interactions"] = stats.Interactions,
            ["generate_seconds"] = Math.Round(gen.Elapsed.TotalSeconds, 1),
        };
        foreach (var (k, v) in extra) result[k] = v;
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>Writes `user_id,item_id,timestamp` and <paramref name="lines"/> rows as UTF-8 without per-row strings.</summary>
    internal static void Generate(string path, long lines, int users, int items, int seed)
    {
        var rng = new Random(seed);
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1);
        var buf = new byte[1 << 20];
        int used = 0;
        void Put(ReadOnlySpan<byte> s) { s.CopyTo(buf.AsSpan(used)); used += s.Length; }
        Put("user_id,item_id,timestamp\n"u8);
        for (long k = 0; k < lines; k++)
        {
            if (used > buf.Length - 64) { fs.Write(buf, 0, used); used = 0; }
            int user = rng.Next(users);
            int item = (int)(items * Math.Pow(rng.NextDouble(), 3));   // a popular head and a long tail
            long time = 1_500_000_000 + rng.NextInt64(200_000_000);
            Put("u"u8); Utf8Formatter.TryFormat(user, buf.AsSpan(used), out int n); used += n;
            Put(",i"u8); Utf8Formatter.TryFormat(item, buf.AsSpan(used), out n); used += n;
            Put(","u8); Utf8Formatter.TryFormat(time, buf.AsSpan(used), out n); used += n;
            Put("\n"u8);
        }
        fs.Write(buf, 0, used);
    }

    /// <summary>Resets the kernel's peak-RSS mark (VmHWM) of this process; false where that is not allowed.</summary>
    private static bool ResetPeakRss()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); return true; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }
}
