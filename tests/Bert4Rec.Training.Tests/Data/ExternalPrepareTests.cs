// The external-sort prepare against the in-memory path: byte-identical datasets for several run sizes (one run, many
// runs, merges in rounds), both k-core modes and several formats; bad rows and failures leave nothing behind.
using Bert4Rec.Training.Data;

namespace Bert4Rec.Training.Tests.Data;

public class ExternalPrepareTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-ext-");
    public void Dispose() => _dir.Delete(true);
    private string PathOf(string name) => Path.Combine(_dir.FullName, name);
    private string Write(string name, string text) { var p = PathOf(name); File.WriteAllText(p, text); return p; }

    private static readonly string[] Files = [SequenceDataset.DataFile, SequenceDataset.VocabFile, SequenceDataset.UsersFile, SequenceDataset.StatsFile];

    /// <summary>A CSV log with random users, skewed items, and timestamps with many ties (file order must break them).</summary>
    private static string CsvLog(int lines, int users, int items, int seed)
    {
        var rng = new Random(seed);
        var sb = new System.Text.StringBuilder("user_id,item_id,timestamp\n");
        for (int k = 0; k < lines; k++)
            sb.Append($"u{rng.Next(users)},i{(int)(items * Math.Pow(rng.NextDouble(), 2))},{rng.Next(20)}\n");
        return sb.ToString();
    }

    private void AssertSameDataset(string expectedDir, string actualDir)
    {
        foreach (var f in Files)
            Assert.True(File.ReadAllBytes(Path.Combine(expectedDir, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(actualDir, f))), $"{f} differs");
    }

    [Theory]
    [InlineData(1 << 20, 64, 2, 2, false)]   // one run, merged from memory
    [InlineData(24 * 100, 64, 2, 2, false)]  // 30 runs, one merge
    [InlineData(24 * 100, 64, 3, 3, true)]   // 30 runs, several k-core passes
    [InlineData(24 * 16, 4, 5, 2, true)]     // 188 runs merged in rounds of 4
    [InlineData(24 * 37, 2, 0, 0, false)]    // no filter; binary merge rounds
    public void The_external_sort_writes_the_in_memory_paths_bytes(long memoryBytes, int fanIn, int minUser, int minItem, bool fixedPoint)
    {
        string log = Write("log.csv", CsvLog(3000, 300, 400, 7));
        var read = new LogReadOptions { Format = LogFormat.Csv };
        InteractionLog.Read(log, read).ToDataset(minUser, minItem, fixedPoint).Save(PathOf("mem"));
        var res = ExternalPrepare.Run(log, read, minUser, minItem, fixedPoint, PathOf("ext"), new ExternalSortOptions { MemoryBytes = memoryBytes, MaxFanIn = fanIn });
        AssertSameDataset(PathOf("mem"), PathOf("ext"));
        Assert.Equal(SequenceDataset.Load(PathOf("mem")).Statistics, res.Statistics);
        Assert.Equal(3000, res.LinesRead);
        Assert.Equal(memoryBytes >= 1 << 20 ? 1 : (3000 + (int)(memoryBytes / 24) - 1) / (int)(memoryBytes / 24), res.Runs);
        if (res.Runs == 1) Assert.Equal(0, res.MergeRounds);
        else if (res.Runs <= fanIn) Assert.Equal(1, res.MergeRounds);
        else Assert.True(res.MergeRounds > 1);
        if (fixedPoint && minUser > 0) Assert.True(res.KcorePasses > 1);
        // nothing but the dataset is left beside it
        Assert.Equal(["ext", "log.csv", "mem"], _dir.EnumerateFileSystemInfos().Select(f => f.Name).Order());
        Assert.Equal(Files.Order(), Directory.EnumerateFileSystemEntries(PathOf("ext")).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void Pairs_and_movielens_logs_match_too()
    {
        var rng = new Random(3);
        string pairs = Write("p.txt", string.Concat(Enumerable.Range(0, 2000).Select(_ => $"{rng.Next(100)}  {rng.Next(60)}\n")));
        string ml = Write("ratings.dat", string.Concat(Enumerable.Range(0, 2000).Select(_ => $"{rng.Next(100)}::{rng.Next(60)}::5::{rng.Next(1000)}\n")));
        foreach (var (path, format) in new[] { (pairs, LogFormat.Pairs), (ml, LogFormat.MovieLens) })
        {
            var read = new LogReadOptions { Format = format };
            InteractionLog.Read(path, read).ToDataset(5, 5, true).Save(PathOf("mem-" + format));
            ExternalPrepare.Run(path, read, 5, 5, true, PathOf("ext-" + format), new ExternalSortOptions { MemoryBytes = 24 * 128 });
            AssertSameDataset(PathOf("mem-" + format), PathOf("ext-" + format));
        }
    }

    [Fact]
    public void The_fixed_point_removes_what_one_pass_leaves()
    {
        // item C has 1 interaction; removing it leaves user 3 with 1 item, whose removal leaves item B with 1 interaction
        string log = Write("k.txt", "1 A\n1 B\n2 A\n2 D\n3 B\n3 C\n4 A\n4 D\n");
        var once = ExternalPrepare.Run(log, new LogReadOptions(), 2, 2, false, PathOf("once"), new ExternalSortOptions { MemoryBytes = 24 * 16 });
        var fixedPoint = ExternalPrepare.Run(log, new LogReadOptions(), 2, 2, true, PathOf("fixed"), new ExternalSortOptions { MemoryBytes = 24 * 16 });
        Assert.Equal(6, once.Statistics.Interactions);             // C's row, then user 3's B
        Assert.Equal(4, fixedPoint.Statistics.Interactions);       // users 2 and 4 with A and D
        Assert.Equal(["A", "D"], SequenceDataset.Load(PathOf("fixed")).Items.RawIds);
        Assert.Equal(["2", "4"], File.ReadAllLines(PathOf("fixed/users.txt")));
        Assert.True(fixedPoint.KcorePasses >= 2);
    }

    [Theory]
    [MemberData(nameof(ReaderTests.MalformedLogs), MemberType = typeof(ReaderTests))]
    public void Bad_rows_get_the_readers_errors_and_leave_nothing(string name, string text, LogFormat format, string expected)
    {
        string p = Write(name, text);
        var read = new LogReadOptions { Format = format };
        var e = Assert.Throws<InvalidDataException>(() => ExternalPrepare.Run(p, read, 0, 0, false, PathOf("out"), new ExternalSortOptions()));
        var inMemory = Assert.Throws<InvalidDataException>(() => InteractionLog.Read(p, read));
        Assert.Equal(inMemory.Message, e.Message);
        Assert.Contains(p, e.Message);
        Assert.Contains(expected, e.Message);
        Assert.Equal([name], _dir.EnumerateFileSystemInfos().Select(f => f.Name));
    }

    [Fact]
    public void A_failure_after_runs_were_written_removes_them_and_keeps_the_old_dataset()
    {
        string good = Write("good.csv", CsvLog(500, 50, 40, 1));
        var read = new LogReadOptions { Format = LogFormat.Csv };
        var sort = new ExternalSortOptions { MemoryBytes = 24 * 20 };
        ExternalPrepare.Run(good, read, 0, 0, false, PathOf("out"), sort);
        var before = Files.Select(f => File.ReadAllBytes(PathOf("out/" + f))).ToList();
        // 400 good rows (20 runs written) and then one without an item
        string bad = Write("bad.csv", CsvLog(400, 50, 40, 2) + "u1,,5\n");
        var e = Assert.Throws<InvalidDataException>(() => ExternalPrepare.Run(bad, read, 0, 0, false, PathOf("out"), sort));
        Assert.Equal($"{bad}:402: field 'item' (column 2) is empty", e.Message);
        Assert.Equal(["bad.csv", "good.csv", "out"], _dir.EnumerateFileSystemInfos().Select(f => f.Name).Order());
        Assert.Equal(before, Files.Select(f => File.ReadAllBytes(PathOf("out/" + f))).ToList());
        // a filter that keeps nothing also fails cleanly
        var none = Assert.Throws<InvalidDataException>(() => ExternalPrepare.Run(good, read, 1000, 0, false, PathOf("empty"), sort));
        Assert.Contains("no user is left", none.Message);
        Assert.False(Directory.Exists(PathOf("empty")));
        Assert.Equal(["bad.csv", "good.csv", "out"], _dir.EnumerateFileSystemInfos().Select(f => f.Name).Order());
    }

    [Fact]
    public void A_memory_bound_too_small_for_a_record_buffer_is_refused()
    {
        string log = Write("p.txt", "1 1\n");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ExternalPrepare.Run(log, new LogReadOptions(), 0, 0, false, PathOf("o"), new ExternalSortOptions { MemoryBytes = 100 }));
        Assert.Contains("memory bound", e.Message);
        Assert.False(Directory.Exists(PathOf("o")));
    }
}

public class SequenceStoreTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-store-");
    public void Dispose() => _dir.Delete(true);

    private string Saved()
    {
        var d = SyntheticDataset.Generate(new SyntheticOptions { Users = 60, Items = 40, Seed = 5 });
        string dir = Path.Combine(_dir.FullName, "d");
        d.Save(dir);
        return dir;
    }

    [Fact]
    public void The_map_reads_every_users_items_as_saved()
    {
        string dir = Saved();
        var d = SequenceDataset.Load(dir);
        using var store = SequenceStore.Open(Path.Combine(dir, SequenceDataset.DataFile));
        Assert.Equal(d.Sequences.Count, store.Count);
        Assert.Equal(d.Items.Count, store.ItemCount);
        Assert.Equal(d.Statistics.Interactions, store.Interactions);
        for (int u = 0; u < store.Count; u++) Assert.Equal(d.Sequences[u].ToArray(), store[u].ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => store.Length(store.Count));
        store.Dispose();
        Assert.Throws<ObjectDisposedException>(() => store.Length(0));
    }

    [Fact]
    public void Corrupt_truncated_and_foreign_files_are_refused_with_the_path()
    {
        string file = Path.Combine(Saved(), SequenceDataset.DataFile);
        byte[] good = File.ReadAllBytes(file);
        void Expect(byte[] bytes, string message)
        {
            File.WriteAllBytes(file, bytes);
            var e = Assert.Throws<InvalidDataException>(() => SequenceStore.Open(file));
            Assert.Contains(file, e.Message);
            Assert.Contains(message, e.Message);
        }
        var flipped = (byte[])good.Clone();
        flipped[40] ^= 1;
        Expect(flipped, "checksum mismatch");
        Expect(good[..^4], "checksum mismatch");
        Expect(good[..20], "too short");
        var foreign = (byte[])good.Clone();
        foreign[0] = (byte)'X';
        Expect(foreign, "bad magic");
        File.Delete(file);
        Assert.Throws<FileNotFoundException>(() => SequenceStore.Open(file));
    }
}
