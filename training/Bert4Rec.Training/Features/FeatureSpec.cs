// Which columns of a delimited per-user or per-item file are features, and of what kind: the `--user-feature-columns` /
// `--item-feature-columns` syntax, and MovieLens 100K's u.user and u.item layouts as presets.
using System.Globalization;
using Bert4Rec.Contracts;

namespace Bert4Rec.Training.Features;

/// <summary>Categorical: one value per entity. MultiHot: a set of values (0/1 flag columns, or one column split by a
/// separator). Numeric: a number (or a date, read as a fractional year) put into quantile buckets.</summary>
public enum FeatureKind { Categorical, MultiHot, Numeric }

/// <summary>One feature field: columns are 1-based. MultiHot reads the flag columns First..Last, or, with a
/// <see cref="Separator"/>, the values of column First split by it. Numeric uses <see cref="Buckets"/> quantile buckets.</summary>
public sealed record FeatureColumn(string Name, FeatureKind Kind, int First, int Last, char Separator = '\0', int Buckets = 0)
{
    public bool IsFlags => Kind == FeatureKind.MultiHot && Separator == '\0';
}

/// <summary>The layout of one feature file: delimiter, the 1-based id column, the feature columns, whether the first line is a
/// header, and the rarest value a vocabulary keeps (rarer values fall into the out-of-vocabulary bucket).</summary>
public sealed record FeatureFileSpec(char Delimiter, int IdColumn, IReadOnlyList<FeatureColumn> Columns, bool Header = false, int MinCount = 2)
{
    public const int DefaultBuckets = 5;

    /// <summary>MovieLens 100K u.user: id|age|gender|occupation|zip code.</summary>
    public static FeatureFileSpec Ml100kUsers => Parse("id=1,age=num:2:5,gender=cat:3,occupation=cat:4,zip=cat:5", '|', "--user-feature-columns");

    /// <summary>MovieLens 100K u.item: id|title|release date|video release date|IMDb URL|19 genre flags (unknown, Action, ...,
    /// Western). The release date becomes a bucketed year; the title, video date and URL are not used.</summary>
    public static FeatureFileSpec Ml100kItems => Parse("id=1,year=num:3:5,genre=flags:6-24", '|', "--item-feature-columns");

    /// <summary>
    /// Parses a column spec: comma-separated entries, one <c>id=COL</c> and any number of
    /// <c>NAME=cat:COL</c>, <c>NAME=num:COL[:BUCKETS]</c>, <c>NAME=flags:FIRST-LAST</c> or <c>NAME=multi:COL:SEP</c>
    /// (columns 1-based). Errors name <paramref name="flag"/> and the entry.
    /// </summary>
    public static FeatureFileSpec Parse(string spec, char delimiter, string flag, bool header = false, int minCount = 2)
    {
        if (string.IsNullOrWhiteSpace(spec)) throw new UsageException($"{flag}: empty column spec");
        if (minCount < 1) throw new UsageException($"--feature-min-count: {minCount} must be >= 1");
        int id = 0;
        var cols = new List<FeatureColumn>();
        foreach (var raw in spec.Split(','))
        {
            string entry = raw.Trim();
            int eq = entry.IndexOf('=');
            if (eq <= 0) throw new UsageException($"{flag}: '{entry}' is not NAME=KIND:COLUMN (e.g. gender=cat:3)");
            string name = entry[..eq].Trim(), rest = entry[(eq + 1)..].Trim();
            if (!name.All(c => char.IsLetterOrDigit(c) || c is '_' or '-' or '.')) throw new UsageException($"{flag}: field name '{name}' may hold letters, digits, '_', '-' and '.' only");
            if (name == "id")
            {
                if (id != 0) throw new UsageException($"{flag}: id given twice");
                id = Column(rest, flag, entry);
                continue;
            }
            if (cols.Any(c => c.Name == name)) throw new UsageException($"{flag}: field '{name}' given twice");
            var parts = rest.Split(':');
            string kind = parts[0].ToLowerInvariant();
            FeatureColumn col = kind switch
            {
                "cat" when parts.Length == 2 => new FeatureColumn(name, FeatureKind.Categorical, Column(parts[1], flag, entry), Column(parts[1], flag, entry)),
                "num" when parts.Length is 2 or 3 => new FeatureColumn(name, FeatureKind.Numeric, Column(parts[1], flag, entry), Column(parts[1], flag, entry),
                    Buckets: parts.Length == 3 ? Count(parts[2], flag, entry) : DefaultBuckets),
                "flags" when parts.Length == 2 => Flags(name, parts[1], flag, entry),
                // the separator may itself be ':' only as the last character (multi:COL::)
                "multi" when parts.Length >= 3 && rest.Length > rest.IndexOf(':', 6) + 1 =>
                    new FeatureColumn(name, FeatureKind.MultiHot, Column(parts[1], flag, entry), Column(parts[1], flag, entry), Separator(rest[(rest.IndexOf(':', 6) + 1)..], flag, entry)),
                _ => throw new UsageException($"{flag}: '{entry}': the kind must be cat:COL, num:COL[:BUCKETS], flags:FIRST-LAST or multi:COL:SEP"),
            };
            cols.Add(col);
        }
        if (id == 0) throw new UsageException($"{flag}: no id=COLUMN entry (the column holding the user or item id)");
        if (cols.Count == 0) throw new UsageException($"{flag}: no feature column besides the id");
        foreach (var c in cols)
            if (id >= c.First && id <= c.Last) throw new UsageException($"{flag}: field '{c.Name}' reads the id column {id}");
        return new FeatureFileSpec(delimiter, id, cols, header, minCount);
    }

    /// <summary>The delimiter flag's value: one character, or the words tab, comma, pipe.</summary>
    public static char ParseDelimiter(string s) => s switch
    {
        "tab" or "\\t" => '\t', "comma" => ',', "pipe" => '|', "semicolon" => ';',
        _ when s.Length == 1 && s != "\n" && s != "\r" => s[0],
        _ => throw new UsageException($"--feature-delimiter: '{s}' is not one character (or tab, comma, pipe, semicolon)"),
    };

    private static int Column(string s, string flag, string entry) =>
        int.TryParse(s.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int c) && c >= 1 && c <= 10_000 ? c
            : throw new UsageException($"{flag}: '{entry}': column '{s}' is not a number in 1..10000 (columns count from 1)");

    private static int Count(string s, string flag, string entry) =>
        int.TryParse(s.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int c) && c >= 2 && c <= 1000 ? c
            : throw new UsageException($"{flag}: '{entry}': bucket count '{s}' is not a number in 2..1000");

    private static FeatureColumn Flags(string name, string range, string flag, string entry)
    {
        var ends = range.Split('-');
        if (ends.Length != 2) throw new UsageException($"{flag}: '{entry}': flags need a column range FIRST-LAST");
        int first = Column(ends[0], flag, entry), last = Column(ends[1], flag, entry);
        if (last < first) throw new UsageException($"{flag}: '{entry}': the range {first}-{last} is empty");
        return new FeatureColumn(name, FeatureKind.MultiHot, first, last);
    }

    private static char Separator(string s, string flag, string entry) =>
        s.Length == 1 && s != "," ? s[0] : throw new UsageException($"{flag}: '{entry}': the multi-value separator must be one character other than ','");
}
