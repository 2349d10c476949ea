// One pass over an interaction log: parses each line's user, item and time without splitting it into strings, interns
// the raw ids (first-seen order), and hands each interaction to a sink. Both prepare paths read through it: the
// in-memory InteractionLog and the external sort (ExternalPrepare), so they accept and refuse exactly the same lines.
using System.Globalization;

namespace Bert4Rec.Training.Data;

/// <summary>Receives one interaction: interned user and item, its time (file order when the format has none), and its file order.</summary>
public delegate void InteractionSink(int user, int item, long time, long order);

public sealed class LogScanner
{
    private readonly List<string> _userNames, _itemNames;
    private readonly Dictionary<string, int> _users = new(StringComparer.Ordinal), _items = new(StringComparer.Ordinal);

    /// <summary>Interns into <paramref name="userNames"/> and <paramref name="itemNames"/> (index = interned id).</summary>
    public LogScanner(List<string> userNames, List<string> itemNames)
    {
        _userNames = userNames; _itemNames = itemNames;
    }

    public IReadOnlyList<string> UserNames => _userNames;
    public IReadOnlyList<string> ItemNames => _itemNames;

    /// <summary>
    /// Reads <paramref name="path"/> once and returns the number of interactions. Bad rows throw InvalidDataException
    /// naming the file, the line and the field.
    /// </summary>
    public long Scan(string path, LogReadOptions options, InteractionSink sink)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"input file not found: {path}", path);
        var users = _users.GetAlternateLookup<ReadOnlySpan<char>>();
        var items = _items.GetAlternateLookup<ReadOnlySpan<char>>();
        long total = new FileInfo(path).Length, read = 0, lastReport = 0, lineNo = 0, count = 0;
        using var reader = new StreamReader(path, System.Text.Encoding.UTF8, true, 1 << 16);
        int userCol = 0, itemCol = 1, timeCol = -1;
        var format = options.Format;
        char sep = format switch { LogFormat.MovieLens => ':', LogFormat.Ml100k or LogFormat.Tsv => '\t', LogFormat.Csv => ',', _ => ' ' };
        string separator = format == LogFormat.MovieLens ? "::" : sep.ToString();
        string? line;
        if (format is LogFormat.Csv or LogFormat.Tsv)
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
        else if (format is LogFormat.MovieLens or LogFormat.Ml100k) timeCol = 3;
        int need = Math.Max(Math.Max(userCol, itemCol), timeCol) + 1;
        Span<Range> fields = stackalloc Range[need];
        while ((line = reader.ReadLine()) != null)
        {
            lineNo++;
            read += line.Length + 1;
            if (options.Progress != null && read - lastReport > (8 << 20)) { options.Progress(read, total); lastReport = read; }
            if (line.Length == 0 || string.IsNullOrWhiteSpace(line)) continue;
            var span = line.AsSpan();
            int found = format == LogFormat.Pairs ? WhitespaceFields(span, fields) : Fields(span, separator, fields);
            if (found < need)
                throw new InvalidDataException($"{path}:{lineNo}: expected at least {need} fields for format {format}, found {found}: '{Trunc(line)}'");
            var u = span[fields[userCol]].Trim().Trim('"');
            var i = span[fields[itemCol]].Trim().Trim('"');
            if (u.Length == 0) throw new InvalidDataException($"{path}:{lineNo}: field 'user' (column {userCol + 1}) is empty");
            if (i.Length == 0) throw new InvalidDataException($"{path}:{lineNo}: field 'item' (column {itemCol + 1}) is empty");
            foreach (char ch in i)
                if (char.IsWhiteSpace(ch)) throw new InvalidDataException($"{path}:{lineNo}: field 'item' contains whitespace: '{i}'");
            long time = count;   // file order
            if (timeCol >= 0)
            {
                var ts = span[fields[timeCol]].Trim().Trim('"');
                if (!long.TryParse(ts, NumberStyles.Integer, CultureInfo.InvariantCulture, out time))
                {
                    if (double.TryParse(ts, NumberStyles.Float, CultureInfo.InvariantCulture, out double dt)) time = (long)dt;
                    else if (DateTimeOffset.TryParse(ts, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var dto)) time = dto.ToUnixTimeSeconds();
                    else throw new InvalidDataException($"{path}:{lineNo}: field 'timestamp' (column {timeCol + 1}) is not a number or a date: '{ts}'");
                }
            }
            if (!users.TryGetValue(u, out int ui)) { ui = _userNames.Count; string s = u.ToString(); _users.Add(s, ui); _userNames.Add(s); }
            if (!items.TryGetValue(i, out int ii)) { ii = _itemNames.Count; string s = i.ToString(); _items.Add(s, ii); _itemNames.Add(s); }
            sink(ui, ii, time, count);
            count++;
        }
        options.Progress?.Invoke(total, total);
        if (count == 0) throw new InvalidDataException($"{path}: no interactions found");
        return count;
    }

    /// <summary>Splits at every <paramref name="separator"/> (as string.Split does); fills the first fields and returns how many there are.</summary>
    private static int Fields(ReadOnlySpan<char> line, ReadOnlySpan<char> separator, Span<Range> first)
    {
        int n = 0, start = 0;
        while (true)
        {
            int at = line[start..].IndexOf(separator);
            int end = at < 0 ? line.Length : start + at;
            if (n < first.Length) first[n] = new Range(start, end);
            n++;
            if (at < 0) return n;
            start = end + separator.Length;
        }
    }

    /// <summary>Splits at runs of white space, dropping empty fields (as string.Split(null, RemoveEmptyEntries) does).</summary>
    private static int WhitespaceFields(ReadOnlySpan<char> line, Span<Range> first)
    {
        int n = 0, k = 0;
        while (k < line.Length)
        {
            while (k < line.Length && char.IsWhiteSpace(line[k])) k++;
            if (k == line.Length) break;
            int start = k;
            while (k < line.Length && !char.IsWhiteSpace(line[k])) k++;
            if (n < first.Length) first[n] = new Range(start, k);
            n++;
        }
        return n;
    }

    private static string Trunc(string s) => s.Length > 80 ? s[..80] + "..." : s;
}
