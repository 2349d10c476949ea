// Per-user or per-item feature fields, each with its own vocabulary, and every entity's values as slots of one int matrix:
// what `prepare` stores beside the sequences and what the feature models embed.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Bert4Rec.Contracts;

namespace Bert4Rec.Training.Features;

/// <summary>
/// One field and its vocabulary. Value ids: 0 = [PAD] (an unused slot of a multi-hot field), 1 = [OOV] (a value outside the
/// vocabulary: unseen, rarer than the file's minimum count, or empty), 2.. = <see cref="Values"/> in order. A categorical or
/// numeric field takes one slot; a multi-hot field <see cref="Width"/> slots (its largest set), unused ones 0. A numeric
/// field's values are its buckets: bucket b holds x with Boundaries[b-1] &lt;= x &lt; Boundaries[b].
/// </summary>
public sealed record FeatureField
{
    public const int Pad = FeatureValues.Pad, Oov = FeatureValues.Oov, FirstValue = FeatureValues.FirstValue;

    public required string Name { get; init; }
    [JsonConverter(typeof(JsonStringEnumConverter))]
    public required FeatureKind Kind { get; init; }
    public required int Width { get; init; }
    public required IReadOnlyList<string> Values { get; init; }
    public IReadOnlyList<double> Boundaries { get; init; } = [];

    /// <summary>Number of ids, pad and OOV included.</summary>
    [JsonIgnore] public int VocabSize => Values.Count + FirstValue;

    private Dictionary<string, int>? _index;

    /// <summary>The id of a raw value (categorical and multi-hot: the string; numeric: a number or date, bucketed); OOV for an
    /// unknown or empty value. A numeric value that is neither a number nor a date throws <see cref="FormatException"/>.</summary>
    public int Encode(string raw)
    {
        string v = raw.Trim();
        if (v.Length == 0) return Oov;
        if (Kind == FeatureKind.Numeric)
        {
            double x = FeatureReader.ParseNumber(v) ?? throw new FormatException($"'{Trunc(v)}' is not a number or a date");
            return FeatureValues.Bucket(Boundaries, x);
        }
        _index ??= Values.Select((s, i) => (s, i)).ToDictionary(p => p.s, p => p.i + FirstValue, StringComparer.Ordinal);
        return _index.TryGetValue(v, out int id) ? id : Oov;
    }

    internal static string Trunc(string s) => s.Length > 40 ? s[..40] + "..." : s;
}

/// <summary>
/// The feature rows of one side (users or items) of a prepared dataset: <see cref="Slots"/> is (Rows, Width) row-major, the
/// fields' slots side by side in field order. User rows are the dataset's user indices 0..U-1; item rows are item indices
/// 0..n (row 0, the pad item, is all pads). An entity without a row in the file has OOV in every field.
/// </summary>
public sealed class FeatureTable
{
    public const int FormatVersion = 1;

    public IReadOnlyList<FeatureField> Fields { get; }
    public int Rows { get; }
    public int Width { get; }
    public int[] Slots { get; }

    public FeatureTable(IReadOnlyList<FeatureField> fields, int rows, int[] slots)
    {
        if (fields.Count == 0) throw new ArgumentException("a feature table needs at least one field");
        Fields = fields; Rows = rows;
        Width = fields.Sum(f => f.Width);
        if (fields.Any(f => f.Width < 1 || (f.Kind != FeatureKind.MultiHot && f.Width != 1)))
            throw new ArgumentException("every field takes one slot, a multi-hot field at least one");
        if (slots.LongLength != (long)rows * Width) throw new ArgumentException($"{slots.Length} slots for {rows} rows of width {Width}");
        int o = 0;
        foreach (var f in fields)
        {
            for (int r = 0; r < rows; r++)
                for (int k = 0; k < f.Width; k++)
                {
                    int v = slots[r * Width + o + k];
                    if (v < 0 || v >= f.VocabSize) throw new ArgumentException($"row {r}, field '{f.Name}': value id {v} outside 0..{f.VocabSize - 1}");
                }
            o += f.Width;
        }
        Slots = slots;
    }

    /// <summary>Field widths and vocabulary sizes as the model config's canonical string, e.g. "23x1,4x1,21x6".</summary>
    public string Shape => FeatureShape.Format(Fields.Select(f => (f.VocabSize, f.Width)));

    public ReadOnlySpan<int> Row(int r) => Slots.AsSpan(r * Width, Width);

    /// <summary>The table as the bundle carries it for the service (user_features.pb): fields, vocabularies, buckets, rows.</summary>
    public Contracts.Bundle.FeatureTableInfo ToInfo()
    {
        var info = new Contracts.Bundle.FeatureTableInfo { Rows = Rows };
        foreach (var f in Fields)
            info.Fields.Add(new Contracts.Bundle.FeatureFieldInfo
            {
                Name = f.Name, Width = f.Width, Values = { f.Values }, Boundaries = { f.Boundaries },
                Kind = f.Kind switch { FeatureKind.MultiHot => "multi_hot", FeatureKind.Numeric => "numeric", _ => "categorical" },
            });
        info.Slots.AddRange(Slots);
        return info;
    }

    private sealed record Stored(int Version, string Side, IReadOnlyList<FeatureField> Fields, int Rows, int[] Slots);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    /// <summary>Writes the table as JSON (atomically).</summary>
    public void Save(string path, string side) =>
        AtomicFile.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(new Stored(FormatVersion, side, Fields, Rows, Slots), Json));

    /// <summary>Reads a table written by <see cref="Save"/>; <paramref name="rows"/> is the row count the dataset needs.</summary>
    public static FeatureTable Load(string path, string side, int rows)
    {
        Stored? s;
        try { s = JsonSerializer.Deserialize<Stored>(File.ReadAllBytes(path), Json); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a feature table ({e.Message})"); }
        if (s == null || s.Fields == null || s.Slots == null) throw new InvalidDataException($"{path}: not a feature table (fields or slots missing)");
        if (s.Version != FormatVersion) throw new InvalidDataException($"{path}: version {s.Version}, this build reads {FormatVersion}");
        if (s.Side != side) throw new InvalidDataException($"{path}: holds {s.Side} features, {side} features expected");
        if (s.Rows != rows) throw new InvalidDataException($"{path}: {s.Rows} rows, the dataset has {rows} {side} rows");
        try { return new FeatureTable(s.Fields, s.Rows, s.Slots); }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: {e.Message}"); }
    }
}
