// The feature ids a feature model (NeuMF, DeepFM) embeds: one row per user or item, checked against the config's fields.
namespace Bert4Rec.Training.Model;

public static class FeatureSlots
{
    /// <summary>The slots of one side, checked: (rows, the fields' total width), every id inside its field's vocabulary; an
    /// empty array when the config has no fields on that side.</summary>
    public static int[] Check(int[]? slots, (int Vocab, int Width)[] fields, int rows, string side)
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
