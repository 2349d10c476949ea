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
}
