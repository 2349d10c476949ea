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
        if (!File.Exists(path)) throw new FileNotFoundException($"input file not found: {path}", path);
        var log = new InteractionLog();
        var users = new Dictionary<string, int>(StringComparer.Ordinal);
        var items = new Dictionary<string, int>(StringComparer.Ordinal);
        long total = new FileInfo(path).Length, read = 0, lastReport = 0;
        using var reader = new StreamReader(path, System.Text.Encoding.UTF8, true, 1 << 16);
        int lineNo = 0, userCol = 0, itemCol = 1, timeCol = -1;
        char sep = options.Format switch { LogFormat.MovieLens => ':', LogFormat.Ml100k or LogFormat.Tsv => '\t', LogFormat.Csv => ',', _ => ' ' };
        string? line;
        if (options.Format is LogFormat.Csv or LogFormat.Tsv)
        {
            line = reader.ReadLine(); lineNo++;
            if (line == null) throw new InvalidDataException($"{path}: empty file (a header line is expected)");
            var header = line.Split(sep).Select(h => h.Trim().Trim('"')).ToList();
            userCol = header.IndexOf(options.UserColumn);
            itemCol = header.IndexOf(options.ItemColumn);
            timeCol = options.TimeColumn == null ? -1 : header.IndexOf(options.TimeColumn);
            if (userCol < 0) throw new InvalidDataException($"{path}:1: no column '{options.UserColumn}' in header ({string.Join(", ", header)}); choose it with --user-col");
            if (itemCol < 0) throw new InvalidDataException($"{path}:1: no column '{options.ItemColumn}' in header; choose it with --item-col");
            if (options.TimeColumn != null && timeCol < 0 && options.TimeColumn != "timestamp")
                throw new InvalidDataException($"{path}:1: no column '{options.TimeColumn}' in header; choose it with --time-col");
        }
        else if (options.Format is LogFormat.MovieLens or LogFormat.Ml100k) timeCol = 3;
        while ((line = reader.ReadLine()) != null)
        {
            lineNo++;
            read += line.Length + 1;
            if (options.Progress != null && read - lastReport > (8 << 20)) { options.Progress(read, total); lastReport = read; }
            if (line.Length == 0 || (line.Length > 0 && string.IsNullOrWhiteSpace(line))) continue;
            string[] f = options.Format == LogFormat.MovieLens ? line.Split("::")
                       : options.Format == LogFormat.Pairs ? line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
                       : line.Split(sep);
            int need = Math.Max(Math.Max(userCol, itemCol), timeCol) + 1;
            if (f.Length < need)
                throw new InvalidDataException($"{path}:{lineNo}: expected at least {need} fields for format {options.Format}, found {f.Length}: '{Trunc(line)}'");
            string u = f[userCol].Trim().Trim('"'), i = f[itemCol].Trim().Trim('"');
            if (u.Length == 0) throw new InvalidDataException($"{path}:{lineNo}: field 'user' (column {userCol + 1}) is empty");
            if (i.Length == 0) throw new InvalidDataException($"{path}:{lineNo}: field 'item' (column {itemCol + 1}) is empty");
            if (i.Any(char.IsWhiteSpace)) throw new InvalidDataException($"{path}:{lineNo}: field 'item' contains whitespace: '{i}'");
            long time = log.Count;   // file order
            if (timeCol >= 0)
            {
                string ts = f[timeCol].Trim().Trim('"');
                if (!long.TryParse(ts, NumberStyles.Integer, CultureInfo.InvariantCulture, out time))
                {
                    if (double.TryParse(ts, NumberStyles.Float, CultureInfo.InvariantCulture, out double dt)) time = (long)dt;
                    else if (DateTimeOffset.TryParse(ts, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var dto)) time = dto.ToUnixTimeSeconds();
                    else throw new InvalidDataException($"{path}:{lineNo}: field 'timestamp' (column {timeCol + 1}) is not a number or a date: '{ts}'");
                }
            }
            if (!users.TryGetValue(u, out int ui)) { ui = users.Count; users.Add(u, ui); log.UserNames.Add(u); }
            if (!items.TryGetValue(i, out int ii)) { ii = items.Count; items.Add(i, ii); log.ItemNames.Add(i); }
            log.Users.Add(ui); log.Items.Add(ii); log.Times.Add(time);
        }
        options.Progress?.Invoke(total, total);
        if (log.Count == 0) throw new InvalidDataException($"{path}: no interactions found");
        return log;
    }

    private static string Trunc(string s) => s.Length > 80 ? s[..80] + "..." : s;

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
