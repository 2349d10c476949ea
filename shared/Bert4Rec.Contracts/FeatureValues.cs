// How a raw feature value becomes a value id, shared by `prepare` (training/Features) and the service (a request's user
// features against a bundle's FeatureTableInfo), so both encode a value the same way.
using System.Globalization;
using Bert4Rec.Contracts.Bundle;

namespace Bert4Rec.Contracts;

public static class FeatureValues
{
    /// <summary>Value ids: 0 = pad (an unused slot of a multi-hot field), 1 = OOV, 2.. = the field's values or buckets.</summary>
    public const int Pad = 0, Oov = 1, FirstValue = 2;

    /// <summary>The separator of a multi-hot field's values in one string (a request's user_features value).</summary>
    public const char MultiSeparator = '|';

    private static readonly string[] DateFormats = ["d-MMM-yyyy", "yyyy-MM-dd", "yyyy-MM-ddTHH:mm:ss", "yyyy"];

    /// <summary>A number, or a date read as a fractional year (1995-07-02 -> 1995.5); null when it is neither.</summary>
    public static double? ParseNumber(string s)
    {
        if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) && double.IsFinite(x)) return x;
        if (DateTime.TryParseExact(s, DateFormats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var d))
            return d.Year + (d.DayOfYear - 1) / (DateTime.IsLeapYear(d.Year) ? 366.0 : 365.0);
        return null;
    }

    /// <summary>The value id of number <paramref name="x"/>: bucket b holds boundaries[b-1] &lt;= x &lt; boundaries[b].</summary>
    public static int Bucket(IReadOnlyList<double> boundaries, double x)
    {
        int b = 0;
        while (b < boundaries.Count && x >= boundaries[b]) b++;
        return FirstValue + b;
    }

    /// <summary>
    /// Writes the value ids of one field's raw request value into <paramref name="slots"/> (its width): categorical and
    /// numeric take one id (OOV when unknown or empty), a multi-hot field the distinct ids of its '|'-separated values, in
    /// order, pads after them. A numeric value that is neither a number nor a date, or a multi-hot set wider than the
    /// field, is an <see cref="ArgumentException"/> whose message is fit for a caller.
    /// </summary>
    public static void Encode(FeatureFieldInfo field, Dictionary<string, int> index, string raw, Span<int> slots)
    {
        slots.Clear();
        string v = raw.Trim();
        switch (field.Kind)
        {
            case "numeric":
                if (v.Length == 0) { slots[0] = Oov; return; }
                slots[0] = Bucket(field.Boundaries, ParseNumber(v) ?? throw new ArgumentException($"'{Trunc(v)}' is not a number or a date"));
                return;
            case "multi_hot":
                var ids = v.Split(MultiSeparator).Select(s => s.Trim()).Where(s => s.Length > 0)
                    .Select(s => index.TryGetValue(s, out int id) ? id : Oov).Distinct().ToArray();
                if (ids.Length == 0) { slots[0] = Oov; return; }
                if (ids.Length > slots.Length) throw new ArgumentException($"at most {slots.Length} distinct values ('{MultiSeparator}'-separated), got {ids.Length}");
                ids.CopyTo(slots);
                return;
            default:
                slots[0] = v.Length == 0 ? Oov : index.TryGetValue(v, out int c) ? c : Oov;
                return;
        }
    }

    /// <summary>A field's value -> id map (values[i] -> 2 + i).</summary>
    public static Dictionary<string, int> Index(FeatureFieldInfo field) =>
        field.Values.Select((s, i) => (s, i)).ToDictionary(p => p.s, p => p.i + FirstValue, StringComparer.Ordinal);

    private static string Trunc(string s) => s.Length > 40 ? s[..40] + "..." : s;
}
