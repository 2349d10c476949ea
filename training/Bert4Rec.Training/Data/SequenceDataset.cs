// A prepared dataset: each user's items (dense indices 1..n) in time order, the vocabulary and statistics; saved in a
// compact checksummed binary form beside vocab.txt, users.txt and stats.json.
using System.Text;
using System.Text.Json;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Features;

namespace Bert4Rec.Training.Data;

public sealed record DatasetStatistics(int Users, int Items, long Interactions, double AverageLength, int MaxLength, int MinLength, double Density)
{
    public static DatasetStatistics Of(SequenceView sequences, int items) => OfLengths(sequences.Lengths(), items);

    /// <summary>The statistics of sequences with these lengths over <paramref name="items"/> items.</summary>
    public static DatasetStatistics OfLengths(IEnumerable<int> lengths, int items)
    {
        long total = 0; int max = 0, min = int.MaxValue, users = 0;
        foreach (int n in lengths) { total += n; max = Math.Max(max, n); min = Math.Min(min, n); users++; }
        if (users == 0) min = 0;
        return new DatasetStatistics(users, items, total, users == 0 ? 0 : (double)total / users, max, min,
            users == 0 || items == 0 ? 0 : (double)total / ((double)users * items));
    }

    public override string ToString() =>
        $"users {Users:N0}, items {Items:N0}, interactions {Interactions:N0}, avg length {AverageLength:F2}, max {MaxLength}, min {MinLength}, density {Density:P4}";
}

public sealed class SequenceDataset
{
    public const string DataFile = "sequences.bin", VocabFile = "vocab.txt", UsersFile = "users.txt", StatsFile = "stats.json";
    public const string UserFeaturesFile = "user_features.json", ItemFeaturesFile = "item_features.json";

    public Vocabulary Items { get; }
    public IReadOnlyList<string> UserIds { get; }
    /// <summary>Per user, item indices 1..n in time order: a loaded dataset's are read from the mapped sequences.bin (not copied).</summary>
    public SequenceView Sequences { get; }
    public DatasetStatistics Statistics { get; }
    /// <summary>Per-user features (rows = user indices 0..U-1), or null.</summary>
    public FeatureTable? UserFeatures { get; private init; }
    /// <summary>Per-item features (rows = item indices 0..n, row 0 the pad item), or null.</summary>
    public FeatureTable? ItemFeatures { get; private init; }

    public SequenceDataset(Vocabulary items, IReadOnlyList<string> userIds, SequenceView sequences)
    {
        if (userIds.Count != sequences.Count) throw new ArgumentException($"{userIds.Count} user ids for {sequences.Count} sequences");
        int checkedRange = sequences is SequenceStore store ? store.ItemCount : -1;   // a store checked its items when it was opened
        if (checkedRange != items.Count)
            for (int u = 0; u < sequences.Count; u++)
                foreach (var i in sequences[u])
                    if (i < 1 || i > items.Count) throw new ArgumentException($"user {userIds[u]}: item index {i} outside 1..{items.Count}");
        Items = items; UserIds = userIds; Sequences = sequences;
        Statistics = DatasetStatistics.Of(sequences, items.Count);
    }

    /// <summary>The same dataset with these feature tables (null: none on that side).</summary>
    public SequenceDataset WithFeatures(FeatureTable? users, FeatureTable? items)
    {
        if (users != null && users.Rows != Sequences.Count) throw new ArgumentException($"user features have {users.Rows} rows, the dataset {Sequences.Count} users");
        if (items != null && items.Rows != Items.Count + 1) throw new ArgumentException($"item features have {items.Rows} rows, the dataset needs {Items.Count + 1} (pad row 0 and items)");
        return new SequenceDataset(Items, UserIds, Sequences) { UserFeatures = users, ItemFeatures = items };
    }

    /// <summary>Item interaction counts (index = item, entry 0 unused), over the given sequences.</summary>
    public static int[] Popularity(SequenceView sequences, int itemCount)
    {
        var c = new int[itemCount + 1];
        for (int u = 0; u < sequences.Count; u++) foreach (var i in sequences[u]) c[i]++;
        return c;
    }

    /// <summary>Writes the dataset into <paramref name="dir"/>: into a temporary folder first, renamed into place, so a failure leaves nothing behind.</summary>
    public void Save(string dir) => WriteFolder(dir, tmp =>
    {
        using (var fs = File.Create(Path.Combine(tmp, DataFile)))
        {
            var w = new SequenceFileWriter(fs, Items.Count, Sequences.Lengths().ToArray());
            for (int u = 0; u < Sequences.Count; u++) w.Write(Sequences[u]);
            w.Finish();
        }
        WriteSideFiles(tmp, Items, UserIds, Statistics);
        UserFeatures?.Save(Path.Combine(tmp, UserFeaturesFile), "user");
        ItemFeatures?.Save(Path.Combine(tmp, ItemFeaturesFile), "item");
    });

    /// <summary>Runs <paramref name="write"/> on a fresh temporary folder beside <paramref name="dir"/> and swaps it into place; on failure removes it.</summary>
    internal static void WriteFolder(string dir, Action<string> write)
    {
        string full = Path.GetFullPath(dir);
        string tmp = AtomicFile.TempFolderFor(full);
        Directory.CreateDirectory(tmp);
        try
        {
            write(tmp);
            AtomicFile.ReplaceDirectory(tmp, full);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
            throw;
        }
    }

    /// <summary>vocab.txt, users.txt and stats.json of a dataset being written into <paramref name="tmp"/>.</summary>
    internal static void WriteSideFiles(string tmp, Vocabulary items, IEnumerable<string> userIds, DatasetStatistics stats)
    {
        items.Save(Path.Combine(tmp, VocabFile));
        File.WriteAllLines(Path.Combine(tmp, UsersFile), userIds);
        File.WriteAllText(Path.Combine(tmp, StatsFile), JsonSerializer.Serialize(stats, new JsonSerializerOptions { WriteIndented = true }));
    }

    public static SequenceDataset Load(string dir)
    {
        string data = Path.Combine(dir, DataFile);
        if (!File.Exists(data)) throw new FileNotFoundException($"{data}: not found (is {dir} a dataset made by `bert4rec prepare`?)", data);
        // checked through a read-only map and kept as the dataset's sequences: nothing is copied, and the map stays open for
        // as long as the process runs (spans handed out by it must stay valid)
        var store = SequenceStore.Open(data);
        int items = store.ItemCount, users = store.Count;
        var vocab = Vocabulary.Load(Path.Combine(dir, VocabFile));
        if (vocab.Count != items) throw new InvalidDataException($"{Path.Combine(dir, VocabFile)}: {vocab.Count} items, {data} says {items}");
        string usersPath = Path.Combine(dir, UsersFile);
        var userIds = File.Exists(usersPath) ? File.ReadAllLines(usersPath) : Enumerable.Range(1, users).Select(i => i.ToString()).ToArray();
        if (userIds.Length != users) throw new InvalidDataException($"{usersPath}: {userIds.Length} users, {data} says {users}");
        SequenceDataset d;
        try { d = new SequenceDataset(vocab, userIds, store); }
        catch (ArgumentException e) { throw new InvalidDataException($"{data}: {e.Message}"); }
        string uf = Path.Combine(dir, UserFeaturesFile), itf = Path.Combine(dir, ItemFeaturesFile);
        bool hasUsers = File.Exists(uf), hasItems = File.Exists(itf);
        return hasUsers || hasItems
            ? d.WithFeatures(hasUsers ? FeatureTable.Load(uf, "user", users) : null, hasItems ? FeatureTable.Load(itf, "item", items + 1) : null)
            : d;
    }
}

/// <summary>One evaluation case: a user's history (input) and the held-out target item.</summary>
public readonly record struct EvaluationCase(int User, int[] History, int Target);

/// <summary>The leave-one-out split: last item = test, second-to-last = validation, the rest = train.</summary>
public sealed class LeaveOneOutSplit
{
    public required int ItemCount { get; init; }
    /// <summary>Every user's training items: a view over the dataset's sequences, not a copy.</summary>
    public required SequenceView TrainSequences { get; init; }
    public required IReadOnlyList<EvaluationCase> Validation { get; init; }
    public required IReadOnlyList<EvaluationCase> Test { get; init; }
    /// <summary>The dataset's feature tables (null: none on that side); users are the indices of <see cref="TrainSequences"/>.</summary>
    public FeatureTable? UserFeatures { get; init; }
    public FeatureTable? ItemFeatures { get; init; }
}

/// <summary>
/// The evaluation cases of a split, made when read: case i is user users[i], its sequence without the last
/// <paramref name="held"/> items as the history (a fresh array, dropped after use) and the first held-out item as the
/// target. Only the user indices are kept, so the cases cost no memory per interaction.
/// </summary>
internal sealed class HeldOutCases(SequenceView all, int[] users, int held) : IReadOnlyList<EvaluationCase>
{
    public int Count => users.Length;
    public EvaluationCase this[int index]
    {
        get
        {
            int u = users[index];
            var s = all[u];
            return new EvaluationCase(u, s[..^held].ToArray(), s[^held]);
        }
    }
    public IEnumerator<EvaluationCase> GetEnumerator()
    {
        for (int i = 0; i < users.Length; i++) yield return this[i];
    }
    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}

public static class LeaveOneOut
{
    /// <summary>Users with fewer items than this are not evaluated and train on everything.</summary>
    public const int MinimumLength = 3;

    /// <summary>
    /// Users with at least 3 items give a validation case (history seq[..^2], target seq[^2]) and a test case
    /// (history seq[..^1], which includes the validation item, target seq[^1]); their train part is seq[..^2].
    /// Users with fewer than 3 items keep everything for training. Views and user indices over the dataset's sequences:
    /// nothing is copied.
    /// </summary>
    public static LeaveOneOutSplit Split(SequenceDataset d)
    {
        var all = d.Sequences;
        var evaluated = new List<int>();
        for (int u = 0; u < all.Count; u++)
            if (all.Length(u) >= MinimumLength) evaluated.Add(u);
        var users = evaluated.ToArray();
        return new LeaveOneOutSplit
        {
            ItemCount = d.Items.Count, TrainSequences = new HeldOutView(all, 2), Validation = new HeldOutCases(all, users, 2),
            Test = new HeldOutCases(all, users, 1), UserFeatures = d.UserFeatures, ItemFeatures = d.ItemFeatures,
        };
    }

    /// <summary>
    /// The split a refit trains on: every item before the test item (a test user's train part is its test history, so the
    /// validation item becomes training data), no validation cases, and the same test cases. Used after every choice has
    /// been made on <paramref name="split"/>'s validation split, so nothing is chosen on the refit's data.
    /// </summary>
    public static LeaveOneOutSplit WithValidationItems(LeaveOneOutSplit split)
    {
        if (split.TrainSequences is not HeldOutView { Held: 2 } train)
            throw new ArgumentException("the split was not made by LeaveOneOut.Split", nameof(split));
        return new LeaveOneOutSplit
        {
            ItemCount = split.ItemCount, TrainSequences = new HeldOutView(train.All, 1), Validation = [], Test = split.Test,
            UserFeatures = split.UserFeatures, ItemFeatures = split.ItemFeatures,
        };
    }
}
