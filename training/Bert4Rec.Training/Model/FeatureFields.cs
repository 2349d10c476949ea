// The pieces the feature models (NeuMF, Two-Tower) share: checking a feature table's slots against the config's fields, and
// the embedding bag of one field (the mean of its non-pad rows) with its backward. Two-Tower pools its history items with
// the same bag (item 0 is the pad).
namespace Bert4Rec.Training.Model;

internal static class FeatureFields
{
    /// <summary>The feature models' initialisation: embeddings N(0, <paramref name="embeddingStd"/>^2), dense weights (*.w)
    /// Glorot-uniform, biases (*.b) 0; seeded.</summary>
    public static void Initialize(Bert4Rec.Contracts.ParameterLayout layout, float[] parameters, ulong seed, double embeddingStd)
    {
        var rng = new Random(unchecked((int)(seed ^ (seed >> 32))));
        Array.Clear(parameters);
        foreach (var t in layout.Tensors)
        {
            var s = parameters.AsSpan(checked((int)t.Offset), checked((int)t.Size));
            if (t.Name.EndsWith(".b", StringComparison.Ordinal)) continue;
            bool dense = t.Name.EndsWith(".w", StringComparison.Ordinal);
            double limit = dense ? Math.Sqrt(6.0 / (t.Shape[0] + t.Shape[1])) : 0;
            for (int i = 0; i < s.Length; i++)
            {
                if (dense) { s[i] = (float)((rng.NextDouble() * 2 - 1) * limit); continue; }
                double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
                s[i] = (float)(embeddingStd * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
            }
        }
    }

    /// <summary>Mean over the non-pad ids of <paramref name="slots"/> of their rows of <paramref name="table"/> (rows of
    /// <paramref name="dim"/>), into <paramref name="output"/>; all zeros when every id is the pad.</summary>
    public static void Pool(ReadOnlySpan<float> table, int dim, ReadOnlySpan<int> slots, Span<float> output)
    {
        output[..dim].Clear();
        int count = 0;
        foreach (int id in slots)
        {
            if (id == 0) continue;
            count++;
            var e = table.Slice(id * dim, dim);
            for (int c = 0; c < dim; c++) output[c] += e[c];
        }
        if (count > 1) for (int c = 0; c < dim; c++) output[c] /= count;
    }

    /// <summary>The backward of <see cref="Pool"/>: adds dout / count to each non-pad id's row of <paramref name="gradTable"/>.</summary>
    public static void PoolBackward(Span<float> gradTable, int dim, ReadOnlySpan<int> slots, ReadOnlySpan<float> dout)
    {
        int count = 0;
        foreach (int id in slots) if (id != 0) count++;
        if (count == 0) return;
        float scale = 1f / count;
        foreach (int id in slots)
        {
            if (id == 0) continue;
            var g = gradTable.Slice(id * dim, dim);
            for (int c = 0; c < dim; c++) g[c] += dout[c] * scale;
        }
    }
}
