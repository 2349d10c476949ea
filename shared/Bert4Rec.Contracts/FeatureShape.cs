// The shape of a side's feature fields as the model config carries it: "VOCABxWIDTH,..." (value-comparable, JSON-plain).
using System.Globalization;

namespace Bert4Rec.Contracts;

/// <summary>The canonical "VOCABxWIDTH,..." string of a side's fields, the form the model config carries (value-comparable).</summary>
public static class FeatureShape
{
    public static string Format(IEnumerable<(int Vocab, int Width)> fields) =>
        string.Join(",", fields.Select(f => string.Create(CultureInfo.InvariantCulture, $"{f.Vocab}x{f.Width}")));

    public static (int Vocab, int Width)[] Parse(string shape)
    {
        if (string.IsNullOrEmpty(shape)) return [];
        return shape.Split(',').Select(p =>
        {
            var x = p.Split('x');
            if (x.Length != 2 || !int.TryParse(x[0], NumberStyles.None, CultureInfo.InvariantCulture, out int v) || !int.TryParse(x[1], NumberStyles.None, CultureInfo.InvariantCulture, out int w) || v < 2 || w < 1)
                throw new ArgumentException($"feature shape '{shape}': '{p}' is not VOCABxWIDTH (vocab >= 2, width >= 1)");
            return (v, w);
        }).ToArray();
    }

    /// <summary>The slots of <paramref name="rows"/> rows of <paramref name="fields"/> (empty without fields); throws naming the
    /// side, the row and the id for a table that does not fit.</summary>
    public static int[] CheckSlots(int[]? slots, (int Vocab, int Width)[] fields, int rows, string side)
    {
        if (fields.Length == 0)
        {
            if (slots != null && slots.Length > 0) throw new ArgumentException($"{side} feature slots given, but the config has no {side} fields");
            return [];
        }
        int w = fields.Sum(x => x.Width);
        if (slots == null || slots.LongLength != (long)rows * w)
            throw new ArgumentException($"{side} feature slots: {slots?.Length ?? 0} ids for {rows} rows of width {w}");
        for (int r = 0; r < rows; r++)
        {
            int o = 0;
            foreach (var (vocab, width) in fields)
            {
                for (int k = 0; k < width; k++)
                    if ((uint)slots[r * w + o + k] >= (uint)vocab) throw new ArgumentException($"{side} row {r}: feature id {slots[r * w + o + k]} outside 0..{vocab - 1}");
                o += width;
            }
        }
        return slots;
    }
}
