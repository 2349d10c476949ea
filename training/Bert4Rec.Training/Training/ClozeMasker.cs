// Training samples for the Cloze objective: sliding windows over long sequences, fresh random masks every epoch
// (at most max_predictions per sequence), and one extra sample per user that masks only the last item.
using Bert4Rec.Contracts;

namespace Bert4Rec.Training.Training;

public static class ClozeMasker
{
    /// <summary>Windows (start, length) of a sequence: the last N items, then every stride items back, covering the start.</summary>
    public static List<(int Start, int Length)> Windows(int length, int N, int stride)
    {
        var w = new List<(int, int)>();
        if (length <= N) { if (length > 0) w.Add((0, length)); return w; }
        for (int end = length; ; end -= stride)
        {
            int start = Math.Max(0, end - N);
            w.Add((start, end - start));
            if (start == 0) break;
        }
        return w;
    }

    /// <summary>
    /// Writes one masked sample into <paramref name="ids"/> and <paramref name="labels"/> (length N each, left-padded):
    /// each position is chosen with probability rho (at least one, at most maxPredictions); a chosen position's label is its
    /// item and its input becomes [MASK] (or, with the 80/10/10 variant, sometimes a random item or itself).
    /// When <paramref name="lastOnly"/>, only the last position is masked.
    /// </summary>
    public static void Mask(ReadOnlySpan<int> items, int N, int itemCount, float rho, int maxPredictions, float maskTokenRate,
                            bool lastOnly, Random rng, Span<int> ids, Span<int> labels)
    {
        ids.Clear(); labels.Clear();
        int len = items.Length, off = N - len;
        items.CopyTo(ids[off..]);
        int mask = itemCount + 1;
        if (lastOnly)
        {
            labels[N - 1] = ids[N - 1];
            ids[N - 1] = mask;
            return;
        }
        Span<int> chosen = len <= 512 ? stackalloc int[len] : new int[len];
        int k = 0;
        for (int t = 0; t < len; t++) if (rng.NextDouble() < rho) chosen[k++] = t;
        if (k == 0) chosen[k++] = rng.Next(len);
        if (k > maxPredictions)
        {
            // keep a uniform random subset of maxPredictions positions
            for (int i = 0; i < maxPredictions; i++) { int j = i + rng.Next(k - i); (chosen[i], chosen[j]) = (chosen[j], chosen[i]); }
            k = maxPredictions;
        }
        for (int i = 0; i < k; i++)
        {
            int p = off + chosen[i];
            labels[p] = ids[p];
            double r = rng.NextDouble();
            if (r < maskTokenRate) ids[p] = mask;
            else if (r < maskTokenRate + (1 - maskTokenRate) / 2) ids[p] = rng.Next(1, itemCount + 1);
        }
    }
}

/// <summary>SASRec's and GRU4Rec's samples: inputs x_1..x_{L-1} and, at each of their positions, the next item as the target.</summary>
public static class NextItemSamples
{
    /// <summary>From a window of L (2..N+1) items writes ids = its first L-1 items and labels = its last L-1, both left-padded to N.</summary>
    public static void Fill(ReadOnlySpan<int> items, int N, Span<int> ids, Span<int> labels)
    {
        int L = items.Length;
        if (L < 2 || L > N + 1) throw new ArgumentException($"a next-item window holds 2..{N + 1} items, got {L}");
        ids.Clear(); labels.Clear();
        items[..^1].CopyTo(ids[(N - L + 1)..]);
        items[1..].CopyTo(labels[(N - L + 1)..]);
    }
}
