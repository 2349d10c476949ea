// `prepare` for logs larger than memory. The log is read once: raw ids are interned (the vocabularies stay in memory)
// and each interaction becomes a 24-byte record (user, time, file order, item) in a buffer of bounded size; a full
// buffer is sorted by (user, time, file order) and written as a run into a work folder inside the dataset's temporary
// folder. The runs are k-way merged (in several rounds when there are more than the fan-in) into one file of
// (user, item) pairs in final order; the merge also counts, per user, the interactions whose item survived the item
// filter, so the one-pass k-core needs no further read. `--kcore-fixed-point` repeats passes over the merged file,
// counts in arrays, until nothing changes. A last pass writes sequences.bin as a stream (items re-indexed in
// first-seen order). The output is byte for byte what InteractionLog.ToDataset + Save write for the same input.
// Temporary files live in the dataset's temporary folder, which is removed on failure (and by the next writer after a
// crash), so a failed prepare leaves neither work files nor a half-written dataset.
using System.Diagnostics;
using System.Runtime.InteropServices;
using Bert4Rec.Contracts;

namespace Bert4Rec.Training.Data;

public sealed record ExternalSortOptions
{
    /// <summary>Bytes for the sort buffer (24 bytes per interaction); the merge uses at most as much for its read buffers.</summary>
    public long MemoryBytes { get; init; } = 1L << 30;
    /// <summary>Runs merged at once; more runs are merged in rounds.</summary>
    public int MaxFanIn { get; init; } = 64;
    /// <summary>Progress lines (runs written, merge and k-core passes).</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>What an external prepare did: the dataset's statistics and how the work went.</summary>
public sealed record ExternalPrepareResult(DatasetStatistics Statistics, long LinesRead, int Runs, int MergeRounds, int KcorePasses);

public static class ExternalPrepare
{
    /// <summary>One interaction as sorted and written into runs (24 bytes, order by user, time, file order).</summary>
    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    internal struct Record : IComparable<Record>
    {
        public long Time, Order;
        public int User, Item;

        public readonly int CompareTo(Record o)
        {
            int c = User.CompareTo(o.User);
            if (c != 0) return c;
            c = Time.CompareTo(o.Time);
            return c != 0 ? c : Order.CompareTo(o.Order);
        }
    }

    private static readonly int RecordBytes = Marshal.SizeOf<Record>();
    private const int PairBytes = 8;

    /// <summary>
    /// Reads <paramref name="input"/>, k-core filters (as <see cref="InteractionLog.ToDataset"/>) and writes the dataset
    /// into <paramref name="outDir"/> (temporary folder, then renamed into place).
    /// </summary>
    public static ExternalPrepareResult Run(string input, LogReadOptions read, int minUser, int minItem, bool fixedPoint, string outDir, ExternalSortOptions sort)
    {
        if (sort.MemoryBytes < 16L * RecordBytes) throw new ArgumentOutOfRangeException(nameof(sort), $"memory bound {sort.MemoryBytes} bytes is below {16 * RecordBytes}");
        if (sort.MaxFanIn < 2) throw new ArgumentOutOfRangeException(nameof(sort), "fan-in must be at least 2");
        var log = sort.Log ?? (_ => { });
        ExternalPrepareResult? result = null;
        SequenceDataset.WriteFolder(outDir, tmp =>
        {
            string work = Path.Combine(tmp, ".work");
            Directory.CreateDirectory(work);
            try
            {
                result = Prepare(input, read, minUser, minItem, fixedPoint, tmp, work, sort, log);
            }
            finally
            {
                if (Directory.Exists(work)) Directory.Delete(work, true);
            }
        });
        return result!;
    }

    private static ExternalPrepareResult Prepare(string input, LogReadOptions read, int minUser, int minItem, bool fixedPoint, string tmp, string work,
                                                 ExternalSortOptions sort, Action<string> log)
    {
        var clock = Stopwatch.StartNew();
        // 1. read: intern, count items, fill the buffer, sort and write full buffers as runs
        var userNames = new List<string>();
        var itemNames = new List<string>();
        var scanner = new LogScanner(userNames, itemNames);
        // every line holds at least 4 bytes ("u i\n"), so a buffer of a quarter of the file's size in records never grows
        long capacity = Math.Min(sort.MemoryBytes / RecordBytes, Array.MaxLength);
        var buffer = new Record[(int)Math.Min(capacity, File.Exists(input) ? new FileInfo(input).Length / 4 + 16 : 16)];
        int filled = 0;
        var runs = new List<string>();
        int[] itemCounts = new int[1024];
        long lines = scanner.Scan(input, read, (user, item, time, order) =>
        {
            if (filled == buffer.Length)
            {
                runs.Add(WriteRun(buffer, filled, work, runs.Count));
                filled = 0;
                log($"run {runs.Count} written ({buffer.Length:N0} interactions, {clock.Elapsed.TotalSeconds:F1}s)");
            }
            buffer[filled++] = new Record { User = user, Item = item, Time = time, Order = order };
            if (item >= itemCounts.Length) Array.Resize(ref itemCounts, Math.Max(itemCounts.Length * 2, item + 1));
            itemCounts[item]++;
        });
        int users = userNames.Count, items = itemNames.Count;
        log($"read {lines:N0} interactions ({users:N0} users, {items:N0} items) in {clock.Elapsed.TotalSeconds:F1}s");

        // 2. k-core, first item stage: the counts over the whole log are known now
        var k = new Kcore(users, items, minUser, minItem);
        bool changed = k.FilterItems(itemCounts);
        itemCounts = [];

        // 3. merge into (user, item) pairs in final order, counting the first user stage on the way
        string merged = Path.Combine(work, "merged.bin");
        int rounds = 0, runsWritten = 1;
        using (var pairs = new FileStream(merged, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
        {
            var writer = new PairWriter(pairs);
            void Emit(int user, int item) { writer.Add(user, item); k.Add(user, item); }
            if (runs.Count == 0)
            {
                Array.Sort(buffer, 0, filled);
                for (int r = 0; r < filled; r++) Emit(buffer[r].User, buffer[r].Item);
            }
            else
            {
                if (filled > 0) { runs.Add(WriteRun(buffer, filled, work, runs.Count)); log($"run {runs.Count} written ({filled:N0} interactions)"); }
                buffer = [];
                runsWritten = runs.Count;
                int next = runs.Count;
                while (runs.Count > sort.MaxFanIn)
                {
                    rounds++;
                    var group = runs.Take(sort.MaxFanIn).ToList();
                    runs.RemoveRange(0, group.Count);
                    string path = Path.Combine(work, $"run-{next++}.bin");
                    using (var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
                        Merge(group, sort, r => fs.Write(MemoryMarshal.AsBytes(new ReadOnlySpan<Record>(in r))), null);
                    foreach (var g in group) File.Delete(g);
                    runs.Add(path);
                    log($"merge round {rounds}: {group.Count} runs into one ({runs.Count} left)");
                }
                rounds++;
                Merge(runs, sort, r => Emit(r.User, r.Item), (done, total) => log($"merge: {done:N0} of {total:N0} interactions ({100.0 * done / total:F0}%)"));
                foreach (var g in runs) File.Delete(g);
            }
            k.EndPass();
            writer.Flush();
        }
        buffer = [];
        changed |= k.Changed;
        int passes = 1;
        log($"merged {runsWritten} run(s) in {rounds} round(s), k-core pass 1 done in {clock.Elapsed.TotalSeconds:F1}s");

        // 4. the fixed point: further passes over the merged pairs until nothing changes
        while (fixedPoint && changed)
        {
            changed = k.FilterItems(k.NextItemCounts);
            k.BeginPass();
            ReadPairs(merged, sort, k.Add);
            k.EndPass();
            changed |= k.Changed;
            passes++;
            log($"k-core pass {passes}: {k.AliveUsers:N0} users left");
        }

        // 5. write sequences.bin, then the vocabulary, users and statistics
        var lengths = new List<int>();
        var keptUsers = new List<string>();
        for (int u = 0; u < users; u++)
            if (k.UserAlive[u] && k.UserCounts[u] > 0) { lengths.Add(k.UserCounts[u]); keptUsers.Add(userNames[u]); }
        if (lengths.Count == 0) throw new InvalidDataException($"no user is left after k-core filtering (min user {minUser}, min item {minItem})");
        int keptItems = 0;
        for (int i = 0; i < items; i++) if (k.ItemAlive[i] && k.NextItemCounts[i] > 0) keptItems++;
        var itemIndex = new int[items];
        var newItemNames = new List<string>(keptItems);
        using (var fs = File.Create(Path.Combine(tmp, SequenceDataset.DataFile)))
        {
            var w = new SequenceFileWriter(fs, keptItems, lengths);
            ReadPairs(merged, sort, (user, item) =>
            {
                if (!k.UserAlive[user] || !k.ItemAlive[item]) return;
                if (itemIndex[item] == 0) { newItemNames.Add(itemNames[item]); itemIndex[item] = newItemNames.Count; }
                w.Write(itemIndex[item]);
            });
            w.Finish();
        }
        var stats = DatasetStatistics.OfLengths(lengths, keptItems);
        SequenceDataset.WriteSideFiles(tmp, new Vocabulary(newItemNames), keptUsers, stats);
        return new ExternalPrepareResult(stats, lines, runsWritten, rounds, passes);
    }

    private static string WriteRun(Record[] buffer, int count, string work, int index)
    {
        Array.Sort(buffer, 0, count);
        string path = Path.Combine(work, $"run-{index}.bin");
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        fs.Write(MemoryMarshal.AsBytes(buffer.AsSpan(0, count)));
        return path;
    }

    /// <summary>Read buffer per open file: the memory bound shared by the files open at once, 4 KiB to 4 MiB each.</summary>
    private static int ReadBufferRecords(ExternalSortOptions sort, int files) =>
        (int)Math.Clamp(sort.MemoryBytes / (files + 1) / RecordBytes, 4096 / RecordBytes, (4 << 20) / RecordBytes);

    /// <summary>k-way merge of sorted run files into <paramref name="emit"/>, in (user, time, file order) order.</summary>
    private static void Merge(List<string> runs, ExternalSortOptions sort, Action<Record> emit, Action<long, long>? progress)
    {
        int per = ReadBufferRecords(sort, runs.Count);
        var readers = runs.Select(r => new RunReader(r, per)).ToList();
        try
        {
            long total = readers.Sum(r => r.Count), done = 0, step = Math.Max(1, total / 10), nextReport = step;
            var heap = new PriorityQueue<int, Record>(readers.Count);
            for (int i = 0; i < readers.Count; i++)
                if (readers[i].TryRead(out var r)) heap.Enqueue(i, r);
            while (heap.TryPeek(out int src, out var rec))
            {
                emit(rec);
                if (readers[src].TryRead(out var next)) heap.DequeueEnqueue(src, next);
                else heap.Dequeue();
                if (++done >= nextReport) { progress?.Invoke(done, total); nextReport += step; }
            }
        }
        finally
        {
            foreach (var r in readers) r.Dispose();
        }
    }

    private static void ReadPairs(string path, ExternalSortOptions sort, Action<int, int> visit)
    {
        var buf = new int[2 * Math.Clamp(sort.MemoryBytes / PairBytes, 512, 1 << 19)];
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
        var bytes = MemoryMarshal.AsBytes(buf.AsSpan());
        while (true)
        {
            int got = fs.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
            if (got % PairBytes != 0) throw new InvalidDataException($"{path}: truncated work file");
            for (int p = 0; p < got / 4; p += 2) visit(buf[p], buf[p + 1]);
            if (got < bytes.Length) return;
        }
    }

    private sealed class RunReader : IDisposable
    {
        private readonly FileStream _fs;
        private readonly Record[] _buf;
        private int _at, _count;
        public long Count { get; }

        public RunReader(string path, int records)
        {
            _fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            Count = _fs.Length / RecordBytes;
            _buf = new Record[records];
        }

        public bool TryRead(out Record r)
        {
            if (_at == _count)
            {
                var bytes = MemoryMarshal.AsBytes(_buf.AsSpan());
                int got = _fs.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
                if (got % RecordBytes != 0) throw new InvalidDataException($"{_fs.Name}: truncated run file");
                _count = got / RecordBytes; _at = 0;
                if (_count == 0) { r = default; return false; }
            }
            r = _buf[_at++];
            return true;
        }

        public void Dispose() => _fs.Dispose();
    }

    private sealed class PairWriter(Stream output)
    {
        private readonly int[] _buf = new int[1 << 16];
        private int _used;

        public void Add(int user, int item)
        {
            if (_used == _buf.Length) Flush();
            _buf[_used++] = user; _buf[_used++] = item;
        }

        public void Flush()
        {
            output.Write(MemoryMarshal.AsBytes(_buf.AsSpan(0, _used)));
            _used = 0;
        }
    }

    /// <summary>
    /// The k-core state in arrays: which items and users are still in, and the counts of the current pass. Within a pass
    /// the pairs arrive grouped by user; a user's surviving items are held until the user ends, so one pass decides the
    /// user stage and counts the next item stage.
    /// </summary>
    private sealed class Kcore
    {
        private readonly int _minUser, _minItem;
        private readonly List<int> _group = [];
        private int _current = -1;
        public bool[] UserAlive { get; }
        public bool[] ItemAlive { get; }
        /// <summary>Per user, its surviving interactions in the last pass.</summary>
        public int[] UserCounts { get; }
        /// <summary>Per item, its interactions from surviving users in the last pass: the next item stage's counts.</summary>
        public int[] NextItemCounts { get; private set; }
        public bool Changed { get; private set; }
        public int AliveUsers => UserAlive.Count(a => a);

        public Kcore(int users, int items, int minUser, int minItem)
        {
            _minUser = minUser; _minItem = minItem;
            UserAlive = new bool[users]; Array.Fill(UserAlive, true);
            ItemAlive = new bool[items]; Array.Fill(ItemAlive, true);
            UserCounts = new int[users];
            NextItemCounts = new int[items];
        }

        /// <summary>The item stage: drops items with fewer than the minimum; true when that removed an interaction.</summary>
        public bool FilterItems(int[] counts)
        {
            bool changed = false;
            for (int i = 0; i < ItemAlive.Length; i++)
                if (ItemAlive[i] && counts[i] < _minItem) { ItemAlive[i] = false; changed |= counts[i] > 0; }
            return changed;
        }

        public void BeginPass()
        {
            NextItemCounts = new int[ItemAlive.Length];
            Changed = false;
            _current = -1;
        }

        public void Add(int user, int item)
        {
            if (user != _current) { EndUser(); _current = user; }
            if (UserAlive[user] && ItemAlive[item]) _group.Add(item);
        }

        public void EndPass() { EndUser(); _current = -1; }

        private void EndUser()
        {
            if (_current < 0) return;
            int n = _group.Count;
            UserCounts[_current] = n;
            if (UserAlive[_current] && n < _minUser) { UserAlive[_current] = false; Changed |= n > 0; UserCounts[_current] = 0; }
            else foreach (int i in _group) NextItemCounts[i]++;
            _group.Clear();
        }
    }
}
