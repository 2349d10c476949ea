// Reading interaction logs (MovieLens ratings.dat, ML-100k u.data, CSV/TSV with a header, `user item` pairs) into
// compact arrays, then k-core filtering, a stable sort by time, and dense re-indexing into a SequenceDataset.
using System.Diagnostics;
using System.Globalization;
using Bert4Rec.Contracts;

namespace Bert4Rec.Training.Data;

public enum LogFormat { MovieLens, Ml100k, Csv, Tsv, Pairs }

public sealed record LogReadOptions
{
    public LogFormat Format { get; init; } = LogFormat.Pairs;
    /// <summary>CSV/TSV: header names of the user, item and (optional) timestamp columns.</summary>
    public string UserColumn { get; init; } = "user_id";
    public string ItemColumn { get; init; } = "item_id";
    public string? TimeColumn { get; init; } = "timestamp";
    /// <summary>Called now and then with (bytes read, total bytes).</summary>
    public Action<long, long>? Progress { get; init; }
}

/// <summary>Interactions as parallel arrays; raw ids interned once.</summary>
public sealed class InteractionLog
{
    public List<string> UserNames { get; } = [];
    public List<string> ItemNames { get; } = [];
    public List<int> Users { get; } = [];
    public List<int> Items { get; } = [];
    public List<long> Times { get; } = [];
    public int Count => Users.Count;

    public static InteractionLog Read(string path, LogReadOptions options)
    {
        var log = new InteractionLog();
        var scanner = new LogScanner(log.UserNames, log.ItemNames);
        scanner.Scan(path, options, (user, item, time, _) => { log.Users.Add(user); log.Items.Add(item); log.Times.Add(time); });
        return log;
    }

    /// <summary>
    /// k-core filtering (items with fewer than <paramref name="minItem"/> interactions, then users with fewer than
    /// <paramref name="minUser"/>; once, or repeated until nothing changes), a stable sort of each user's interactions
    /// by time (ties keep file order), and dense re-indexing of items in first-seen order.
    /// </summary>
    public SequenceDataset ToDataset(int minUser, int minItem, bool fixedPoint)
    {
        int nu = UserNames.Count, ni = ItemNames.Count;
        var alive = new bool[Count];
        Array.Fill(alive, true);
        while (true)
        {
            var ic = new int[ni]; var uc = new int[nu];
            for (int k = 0; k < Count; k++) if (alive[k]) ic[Items[k]]++;
            bool changed = false;
            for (int k = 0; k < Count; k++) if (alive[k] && ic[Items[k]] < minItem) { alive[k] = false; changed = true; }
            for (int k = 0; k < Count; k++) if (alive[k]) uc[Users[k]]++;
            for (int k = 0; k < Count; k++) if (alive[k] && uc[Users[k]] < minUser) { alive[k] = false; changed = true; }
            if (!fixedPoint || !changed) break;
        }
        // group by user in first-appearance order, stable by time
        var perUser = new List<int>[nu];
        for (int k = 0; k < Count; k++)
            if (alive[k]) (perUser[Users[k]] ??= []).Add(k);
        var userIds = new List<string>();
        var seqs = new List<int[]>();
        var itemIndex = new int[ni];
        var itemNames = new List<string>();
        for (int u = 0; u < nu; u++)
        {
            var ks = perUser[u];
            if (ks == null || ks.Count == 0) continue;
            var sorted = ks.OrderBy(k => Times[k]).ThenBy(k => k).ToArray();
            var s = new int[sorted.Length];
            for (int j = 0; j < sorted.Length; j++)
            {
                int it = Items[sorted[j]];
                if (itemIndex[it] == 0) { itemNames.Add(ItemNames[it]); itemIndex[it] = itemNames.Count; }
                s[j] = itemIndex[it];
            }
            userIds.Add(UserNames[u]);
            seqs.Add(s);
        }
        if (seqs.Count == 0) throw new InvalidDataException($"no user is left after k-core filtering (min user {minUser}, min item {minItem})");
        return new SequenceDataset(new Vocabulary(itemNames), userIds, seqs.ToArray());
    }

    public static LogFormat ParseFormat(string s) => s.ToLowerInvariant() switch
    {
        "movielens" or "ml-1m" or "ratings.dat" => LogFormat.MovieLens,
        "ml100k" or "ml-100k" or "u.data" => LogFormat.Ml100k,
        "csv" => LogFormat.Csv,
        "tsv" => LogFormat.Tsv,
        "pairs" => LogFormat.Pairs,
        _ => throw new UsageException($"--format: '{s}' is not one of movielens, ml100k, csv, tsv, pairs"),
    };
}
