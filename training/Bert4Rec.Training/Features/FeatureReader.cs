// Reads a delimited per-user or per-item file by its column spec into a FeatureTable keyed by the dataset's indices:
// vocabularies from the file's values (rare ones to OOV), quantile buckets for numeric fields, bad rows named by file,
// line and field.
using System.Globalization;
using Bert4Rec.Training.Data;

namespace Bert4Rec.Training.Features;

/// <summary>What reading a feature file found: rows used, rows for ids the dataset does not hold, entities without a row.</summary>
public sealed record FeatureReadReport(int RowsRead, int RowsMatched, int RowsUnknownId, int EntitiesWithoutRow)
{
    public override string ToString() =>
        $"{RowsRead:N0} rows, {RowsMatched:N0} matched" + (RowsUnknownId > 0 ? $", {RowsUnknownId:N0} for ids not in the dataset (skipped)" : "") +
        (EntitiesWithoutRow > 0 ? $", {EntitiesWithoutRow:N0} without a row (all fields OOV)" : "");
}

public static class FeatureReader
{
    /// <summary>A number, or a date read as a fractional year (1995-07-02 -> 1995.5); null when it is neither.</summary>
    public static double? ParseNumber(string s) => Bert4Rec.Contracts.FeatureValues.ParseNumber(s);

    /// <summary>
    /// Reads <paramref name="path"/> by <paramref name="spec"/>. <paramref name="rowOf"/> maps a raw id to its table row
    /// (null = not in the dataset: the row is skipped but still checked); the table has <paramref name="rows"/> rows, and rows
    /// in <paramref name="padRows"/> (the pad item) hold pads only. Vocabularies and buckets come from the matched rows.
    /// </summary>
    public static FeatureTable Read(string path, FeatureFileSpec spec, Func<string, int?> rowOf, int rows, out FeatureReadReport report,
                                    IReadOnlySet<int>? padRows = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"feature file not found: {path}", path);
        var cols = spec.Columns;
        int need = Math.Max(spec.IdColumn, cols.Max(c => c.Last));
        // raw values per matched row: per field, the strings of its set (numeric: the parsed number as a string is not kept,
        // the number is)
        var rawRows = new List<(int Row, string[][] Values, double?[] Numbers)>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        string[]? header = null;
        int lineNo = 0, read = 0, unknown = 0;
        // Latin-1 reads every byte (MovieLens 100K's titles are not UTF-8); ids and feature values are compared as read
        using (var reader = new StreamReader(path, System.Text.Encoding.Latin1))
        {
            string? line;
            while ((line = reader.ReadLine()) != null)
            {
                lineNo++;
                if (line.Length == 0 || string.IsNullOrWhiteSpace(line)) continue;
                var f = line.Split(spec.Delimiter);
                if (spec.Header && header == null) { header = f.Select(h => h.Trim()).ToArray(); if (header.Length < need) throw Bad(path, lineNo, $"the header has {header.Length} columns, the spec reads column {need}"); continue; }
                read++;
                if (f.Length < need) throw Bad(path, lineNo, $"expected at least {need} fields separated by '{Show(spec.Delimiter)}', found {f.Length}");
                string id = f[spec.IdColumn - 1].Trim();
                if (id.Length == 0) throw Bad(path, lineNo, $"field 'id' (column {spec.IdColumn}) is empty");
                if (seen.TryGetValue(id, out int first)) throw Bad(path, lineNo, $"field 'id' (column {spec.IdColumn}): id '{FeatureField.Trunc(id)}' already given on line {first}");
                seen[id] = lineNo;
                var values = new string[cols.Count][];
                var numbers = new double?[cols.Count];
                for (int c = 0; c < cols.Count; c++)
                {
                    var col = cols[c];
                    string v = f[col.First - 1].Trim();
                    switch (col.Kind)
                    {
                        case FeatureKind.Categorical:
                            values[c] = v.Length == 0 ? [] : [v];
                            break;
                        case FeatureKind.Numeric:
                            if (v.Length > 0)
                                numbers[c] = ParseNumber(v) ?? throw Bad(path, lineNo, $"field '{col.Name}' (column {col.First}) is not a number or a date: '{FeatureField.Trunc(v)}'");
                            values[c] = [];
                            break;
                        default:
                            if (col.IsFlags)
                            {
                                var set = new List<string>();
                                for (int k = col.First; k <= col.Last; k++)
                                {
                                    string flag = f[k - 1].Trim();
                                    if (flag == "1") set.Add(header?[k - 1] is { Length: > 0 } h ? h : k.ToString(CultureInfo.InvariantCulture));
                                    else if (flag != "0") throw Bad(path, lineNo, $"field '{col.Name}' (column {k}) must be 0 or 1, found '{FeatureField.Trunc(flag)}'");
                                }
                                values[c] = set.ToArray();
                            }
                            else values[c] = v.Split(col.Separator).Select(s => s.Trim()).Where(s => s.Length > 0).Distinct(StringComparer.Ordinal).ToArray();
                            break;
                    }
                }
                int? row = rowOf(id);
                if (row is not { } r) { unknown++; continue; }
                if (r < 0 || r >= rows) throw new ArgumentOutOfRangeException(nameof(rowOf), r, $"row of id '{id}' outside 0..{rows - 1}");
                rawRows.Add((r, values, numbers));
            }
        }
        if (read == 0) throw new InvalidDataException($"{path}: no feature rows found");

        // vocabularies: values seen in at least MinCount matched rows, most frequent first (ties: first seen)
        var fields = new List<FeatureField>();
        for (int c = 0; c < cols.Count; c++)
        {
            var col = cols[c];
            if (col.Kind == FeatureKind.Numeric)
            {
                var xs = rawRows.Where(r => r.Numbers[c] != null).Select(r => r.Numbers[c]!.Value).Order().ToArray();
                var bounds = Quantiles(xs, col.Buckets);
                fields.Add(new FeatureField
                {
                    Name = col.Name, Kind = col.Kind, Width = 1, Boundaries = bounds,
                    Values = Enumerable.Range(0, bounds.Count + 1).Select(b => BucketName(bounds, b)).ToArray(),
                });
                continue;
            }
            var counts = new Dictionary<string, (int Count, int First)>(StringComparer.Ordinal);
            int width = 1, order = 0;
            foreach (var r in rawRows)
            {
                width = Math.Max(width, r.Values[c].Length);
                foreach (var v in r.Values[c]) counts[v] = counts.TryGetValue(v, out var e) ? (e.Count + 1, e.First) : (1, order++);
            }
            var kept = counts.Where(p => p.Value.Count >= spec.MinCount).OrderByDescending(p => p.Value.Count).ThenBy(p => p.Value.First).Select(p => p.Key).ToArray();
            fields.Add(new FeatureField { Name = col.Name, Kind = col.Kind, Width = col.Kind == FeatureKind.MultiHot ? width : 1, Values = kept });
        }

        var table = new int[rows * fields.Sum(f => f.Width)];
        int W = fields.Sum(f => f.Width);
        var has = new bool[rows];
        // entities without a row: OOV in the first slot of every field (pads after it)
        for (int r = 0; r < rows; r++)
        {
            if (padRows?.Contains(r) == true) continue;
            int o = 0;
            foreach (var fld in fields) { table[r * W + o] = FeatureField.Oov; o += fld.Width; }
        }
        foreach (var (r, values, numbers) in rawRows)
        {
            has[r] = true;
            int o = 0;
            for (int c = 0; c < fields.Count; c++)
            {
                var fld = fields[c];
                var slots = table.AsSpan(r * W + o, fld.Width);
                slots.Clear();
                if (fld.Kind == FeatureKind.Numeric)
                    slots[0] = numbers[c] is { } x ? fld.Encode(x.ToString("R", CultureInfo.InvariantCulture)) : FeatureField.Oov;
                else if (values[c].Length == 0) slots[0] = FeatureField.Oov;
                else
                {
                    // an OOV value counts once, known values keep file order
                    var ids = values[c].Select(fld.Encode).Distinct().ToArray();
                    ids.CopyTo(slots);
                }
                o += fld.Width;
            }
        }
        int without = Enumerable.Range(0, rows).Count(r => !has[r] && padRows?.Contains(r) != true);
        report = new FeatureReadReport(read, rawRows.Count, unknown, without);
        return new FeatureTable(fields, rows, table);
    }

    /// <summary>The dataset with the features of these files (either may be null): user rows by raw user id, item rows by raw item
    /// id through the vocabulary; each file's report goes to <paramref name="log"/>.</summary>
    public static SequenceDataset Attach(SequenceDataset data, string? userFile, FeatureFileSpec? userSpec, string? itemFile, FeatureFileSpec? itemSpec,
                                         Action<string>? log = null)
    {
        FeatureTable? users = null, items = null;
        if (userFile != null)
        {
            var rows = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int u = 0; u < data.UserIds.Count; u++) rows[data.UserIds[u]] = u;
            users = Read(userFile, userSpec ?? throw new ArgumentNullException(nameof(userSpec)), id => rows.TryGetValue(id, out int r) ? r : null,
                         data.UserIds.Count, out var report);
            log?.Invoke($"user features from {userFile}: {report}; fields {Describe(users)}");
        }
        if (itemFile != null)
        {
            items = Read(itemFile, itemSpec ?? throw new ArgumentNullException(nameof(itemSpec)), id => data.Items.TryGetIndex(id, out int i) ? i : null,
                         data.Items.Count + 1, out var report, new HashSet<int> { 0 });
            log?.Invoke($"item features from {itemFile}: {report}; fields {Describe(items)}");
        }
        return data.WithFeatures(users, items);
    }

    private static string Describe(FeatureTable t) =>
        string.Join(", ", t.Fields.Select(f => $"{f.Name} ({f.Kind.ToString().ToLowerInvariant()}, {f.Values.Count} values" + (f.Width > 1 ? $", up to {f.Width} per row" : "") + ")"));

    /// <summary>Up to <paramref name="buckets"/> - 1 distinct inner quantile boundaries of sorted values.</summary>
    private static IReadOnlyList<double> Quantiles(double[] sorted, int buckets)
    {
        var b = new List<double>();
        if (sorted.Length == 0) return b;
        for (int k = 1; k < buckets; k++)
        {
            double q = sorted[Math.Min(sorted.Length - 1, (int)((long)k * sorted.Length / buckets))];
            if (q > sorted[0] && (b.Count == 0 || q > b[^1])) b.Add(q);
        }
        return b;
    }

    private static string BucketName(IReadOnlyList<double> bounds, int b)
    {
        string F(double x) => x.ToString("G6", CultureInfo.InvariantCulture);
        return bounds.Count == 0 ? "all" : b == 0 ? $"<{F(bounds[0])}" : b == bounds.Count ? $">={F(bounds[^1])}" : $"[{F(bounds[b - 1])},{F(bounds[b])})";
    }

    private static string Show(char c) => c == '\t' ? "\\t" : c.ToString();

    private static InvalidDataException Bad(string path, int line, string what) => new($"{path}:{line}: {what}");
}
