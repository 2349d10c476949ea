// The samples of one training epoch, in their seeded order, computed when read. A list of every sample (16 bytes each) grows
// with the log, and the feature models have one sample per training interaction: 1.6 GB at 100M interactions. Here the plan
// is one long per user (where each user's samples begin) and a keyed permutation of the sample indices, so a log of any length
// trains with memory that grows only with its users.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;

namespace Bert4Rec.Training.Training;

/// <summary>One training sample: the items [Start, Start + Length) of a user's training sequence; LastOnly = BERT4Rec's
/// samples that mask only their last item (feature models: Start is the interaction, Length 1).</summary>
internal readonly record struct Sample(int User, int Start, int Length, bool LastOnly);

/// <summary>
/// What an epoch trains on. BERT4Rec: windows of N items (Cloze-masked when batched), one sample per user that masks only
/// the last item, and <see cref="TrainingConfig.PrefixSamples"/> samples masking the item at a random earlier cut. SASRec and
/// GRU4Rec: windows of N + 1 items, read as N inputs and the N next items as targets (a user with one training item has
/// nothing to predict). Feature models (NeuMF, DeepFM, Two-Tower): each training interaction. Sample i of the epoch is
/// <c>order[i]</c>-th of the unshuffled list, which runs user by user; every random choice derives from (seed, epoch, user)
/// or (seed, epoch), so any sample can be read alone and a resumed run replays the epoch exactly.
/// </summary>
internal sealed class EpochPlan
{
    private readonly TrainingConfig _cfg;
    private readonly SequenceView _seqs;
    private readonly int _epoch, _span, _stride;
    private readonly bool _cloze;
    private readonly long[] _first;           // _first[u] = index of user u's first sample in the unshuffled list; _first[^1] = Count
    private readonly KeyedPermutation _order;

    public EpochPlan(TrainingConfig cfg, SequenceView train, int epoch, int orderSeed)
    {
        _cfg = cfg; _seqs = train; _epoch = epoch;
        _cloze = cfg.Kind == ModelKind.Bert4Rec;
        _span = _cloze ? cfg.MaxLength : cfg.MaxLength + 1;
        _stride = cfg.WindowStride > 0 ? cfg.WindowStride : Math.Max(1, cfg.MaxLength / 10);
        _first = new long[train.Count + 1];
        for (int u = 0; u < train.Count; u++) _first[u + 1] = _first[u] + SamplesOf(train.Length(u));
        _order = new KeyedPermutation(Count, orderSeed);
    }

    /// <summary>Samples in the epoch.</summary>
    public long Count => _first[^1];

    /// <summary>The epoch's <paramref name="i"/>-th sample.</summary>
    public Sample this[long i]
    {
        get
        {
            if ((ulong)i >= (ulong)Count) throw new ArgumentOutOfRangeException(nameof(i), i, $"the epoch has {Count} samples");
            long j = _order[i];
            // the user whose range holds j: the last u with _first[u] <= j (users without samples have empty ranges)
            int lo = 0, hi = _seqs.Count - 1;
            while (lo < hi) { int mid = (lo + hi + 1) >>> 1; if (_first[mid] <= j) lo = mid; else hi = mid - 1; }
            return SampleOf(lo, (int)(j - _first[lo]));
        }
    }

    /// <summary>How many samples a training sequence of <paramref name="len"/> items gives.</summary>
    private long SamplesOf(int len)
    {
        if (!_cfg.Kind.IsSequential()) return len;
        if (len < (_cloze ? 1 : 2)) return 0;
        int windows = WindowCount(len, _span, _stride);
        return _cloze ? windows + 1 + Math.Min(_cfg.PrefixSamples, Math.Max(0, len - 2)) : windows;
    }

    /// <summary>User <paramref name="u"/>'s <paramref name="k"/>-th sample: its windows (ClozeMasker.Windows' order), then
    /// (BERT4Rec) the last-item sample, then the prefix samples' cuts in increasing order.</summary>
    private Sample SampleOf(int u, int k)
    {
        int len = _seqs.Length(u);
        if (!_cfg.Kind.IsSequential()) return new Sample(u, k, 1, false);
        int windows = WindowCount(len, _span, _stride);
        if (k < windows)
        {
            int end = len - k * _stride, start = Math.Max(0, end - _span);
            return new Sample(u, start, end - start, false);
        }
        // the last N items before a cut, only the cut's item masked: the whole sequence, then the prefix samples' cuts
        int N = _cfg.MaxLength;
        Sample CutAt(int cut) => new(u, Math.Max(0, cut - N), Math.Min(cut, N), true);
        if (k == windows) return CutAt(len);
        var cuts = new Random(Trainer.PrefixSeed(_cfg.Seed, _epoch, u));
        return CutAt(Trainer.PrefixCuts(len, _cfg.PrefixSamples, cuts).ElementAt(k - windows - 1));
    }

    /// <summary>How many windows <see cref="ClozeMasker.Windows"/> gives: the last N items, then one every stride items back
    /// until one starts at the sequence's first item.</summary>
    internal static int WindowCount(int len, int N, int stride) =>
        len <= 0 ? 0 : len <= N ? 1 : 1 + (len - N + stride - 1) / stride;
}

/// <summary>
/// A seeded bijection of [0, n): a four-round Feistel network over the smallest even number of bits that holds n, walked
/// until it lands inside [0, n) (fewer than four steps on average, as the domain is under 4n). It shuffles an epoch's
/// samples without holding them: reading position i costs a few hashes.
/// </summary>
internal readonly struct KeyedPermutation
{
    private readonly long _n;
    private readonly int _half;
    private readonly ulong _mask, _k0, _k1, _k2, _k3;

    public KeyedPermutation(long n, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        _n = n;
        int bits = 2;
        while (bits < 62 && (1L << bits) < n) bits += 2;
        _half = bits / 2;
        _mask = (1UL << _half) - 1;
        ulong s = (ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ 0xD6E8FEB86659FD93UL;
        _k0 = Mix(s += 0x9E3779B97F4A7C15UL); _k1 = Mix(s += 0x9E3779B97F4A7C15UL);
        _k2 = Mix(s += 0x9E3779B97F4A7C15UL); _k3 = Mix(s + 0x9E3779B97F4A7C15UL);
    }

    public long this[long i]
    {
        get
        {
            if ((ulong)i >= (ulong)_n) throw new ArgumentOutOfRangeException(nameof(i), i, $"must be in [0, {_n})");
            ulong x = (ulong)i;
            do x = Encrypt(x); while (x >= (ulong)_n);
            return (long)x;
        }
    }

    private ulong Encrypt(ulong x)
    {
        ulong l = x >> _half, r = x & _mask;
        l ^= Mix(r ^ _k0) & _mask; r ^= Mix(l ^ _k1) & _mask;
        l ^= Mix(r ^ _k2) & _mask; r ^= Mix(l ^ _k3) & _mask;
        return l << _half | r;
    }

    private static ulong Mix(ulong z) => Kernels.Elementwise.SplitMix(z);
}
