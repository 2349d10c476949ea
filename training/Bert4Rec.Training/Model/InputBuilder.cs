// The inference input rule shared by evaluation, ONNX parity and serving: the last N-1 items of a history,
// left-padded with [PAD], then [MASK] at the last position.
using Bert4Rec.Contracts;

namespace Bert4Rec.Training.Model;

public static class InputBuilder
{
    /// <summary>Writes into <paramref name="row"/> (length N) the most recent N-1 items of <paramref name="history"/> (left-padded with 0) and [MASK] last.</summary>
    public static void ForPrediction(ReadOnlySpan<int> history, int N, int maskId, Span<int> row)
    {
        if (row.Length != N) throw new ArgumentException($"row has length {row.Length}, expected {N}");
        row.Clear();
        int keep = Math.Min(history.Length, N - 1);
        history[^keep..].CopyTo(row.Slice(N - 1 - keep, keep));
        row[N - 1] = maskId;
    }
}
