// Per-user item sequences read as spans, without owning a copy: over in-memory arrays (generated data, tests), over a
// memory-mapped sequences.bin (SequenceStore), or over another view with each user's last items held out (the
// leave-one-out split). Training, validation and the baselines read their sequences through a view, so a prepared
// dataset is never copied into the managed heap.
namespace Bert4Rec.Training.Data;

public abstract class SequenceView
{
    /// <summary>Users.</summary>
    public abstract int Count { get; }

    /// <summary>User <paramref name="user"/>'s items (1..n) in time order (valid while the backing store is open).</summary>
    public abstract ReadOnlySpan<int> this[int user] { get; }

    public virtual int Length(int user) => this[user].Length;

    /// <summary>Every user's length, in user order.</summary>
    public IEnumerable<int> Lengths() => Enumerable.Range(0, Count).Select(Length);

    /// <summary>Items over all users.</summary>
    public virtual long Interactions
    {
        get
        {
            long total = 0;
            for (int u = 0; u < Count; u++) total += Length(u);
            return total;
        }
    }

    public static implicit operator SequenceView(int[][] sequences) => new ArraySequences(sequences);

    /// <summary>A copy of every sequence, for the consumers that keep arrays (saving, tests).</summary>
    public int[][] ToArrays()
    {
        var a = new int[Count][];
        for (int u = 0; u < a.Length; u++) a[u] = this[u].ToArray();
        return a;
    }
}

/// <summary>A view over arrays the caller owns (not copied).</summary>
public sealed class ArraySequences(int[][] sequences) : SequenceView
{
    public override int Count => sequences.Length;
    public override ReadOnlySpan<int> this[int user] => sequences[user];
    public override int Length(int user) => sequences[user].Length;
}

/// <summary>
/// Each sequence of <paramref name="all"/> with its last <paramref name="held"/> items left out, for users with at least
/// <see cref="LeaveOneOut.MinimumLength"/> items; shorter users are read whole (the leave-one-out rule). Offsets only: no copy.
/// </summary>
public sealed class HeldOutView(SequenceView all, int held) : SequenceView
{
    public SequenceView All => all;
    public int Held => held;
    public override int Count => all.Count;
    public override ReadOnlySpan<int> this[int user]
    {
        get
        {
            var s = all[user];
            return s.Length >= LeaveOneOut.MinimumLength ? s[..^held] : s;
        }
    }
    public override int Length(int user)
    {
        int n = all.Length(user);
        return n >= LeaveOneOut.MinimumLength ? n - held : n;
    }
}
