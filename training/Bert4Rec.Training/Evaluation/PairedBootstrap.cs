// Is the difference between two models on the same users real? The mean per-user difference of a metric (NDCG@10), its
// confidence interval from a seeded percentile bootstrap over users, and a p-value from a paired sign-flip randomization test.
using Bert4Rec.Contracts;

namespace Bert4Rec.Training.Evaluation;

/// <summary>
/// Model A against model B on the same users. Difference = mean(A - B); [Low, High] is the percentile bootstrap interval at
/// <see cref="Level"/>; PValue is the two-sided p of the sign-flip test of "A and B are exchangeable for every user".
/// </summary>
public sealed record PairedDifference(int Users, double MeanA, double MeanB, double Difference, double Low, double High, double PValue, double Level, int Resamples)
{
    public bool Significant(double alpha = 0.05) => PValue < alpha;

    public override string ToString() =>
        $"{Difference:+0.0000;-0.0000;0.0000} [{Low:+0.0000;-0.0000;0.0000}, {High:+0.0000;-0.0000;0.0000}] ({Level:P0} CI), p {FormatP(PValue, Resamples)}, {Users:N0} users";

    /// <summary>Three decimals, four below 0.001 ("p 0.0007" was printed as "p &lt; 0.0007"); the smallest a sign-flip test
    /// can give, 1 / (1 + resamples), is itself an upper bound of the p-value, and reads as such: "p &lt;= 0.0001".</summary>
    public static string FormatP(double p, int resamples = 0) =>
        resamples > 0 && p <= 1.0 / (1 + resamples) + 1e-12 ? $"<= {p:0.0000}" : p < 1e-3 ? $"{p:0.0000}" : $"{p:0.000}";
}

public static class PairedBootstrap
{
    private const int BootstrapStream = 0xb007, FlipStream = 0xf11b;

    /// <summary>Per-case NDCG@k from 1-based ranks (<see cref="Evaluator.Ranks"/>).</summary>
    public static double[] Ndcg(IReadOnlyList<int> ranks, int k = 10)
    {
        var v = new double[ranks.Count];
        for (int i = 0; i < v.Length; i++) v[i] = RankingMetrics.Ndcg(ranks[i], k);
        return v;
    }

    /// <summary>
    /// Compares <paramref name="a"/> and <paramref name="b"/>, one value per user in the same order. The interval resamples
    /// users with replacement <paramref name="resamples"/> times and takes the (1 - level) / 2 and (1 + level) / 2 quantiles
    /// of the resampled mean differences. The p-value flips the sign of each user's difference at random (under the null
    /// hypothesis A and B are exchangeable per user) <paramref name="resamples"/> times and counts flipped means at least as
    /// far from 0 as the observed one: p = (1 + count) / (1 + resamples). Every draw derives from <paramref name="seed"/> and
    /// the resample's index, so the result does not depend on threads.
    /// </summary>
    public static PairedDifference Compare(IReadOnlyList<double> a, IReadOnlyList<double> b, int seed, int resamples = 10_000, double level = 0.95)
    {
        if (a.Count != b.Count) throw new ArgumentException($"paired comparison needs one value per user in both: {a.Count} against {b.Count}");
        if (a.Count == 0) throw new ArgumentException("paired comparison needs at least one user");
        if (resamples < 1) throw new ArgumentOutOfRangeException(nameof(resamples), resamples, "must be >= 1");
        if (level is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(level), level, "must be in (0, 1)");
        int n = a.Count;
        var d = new double[n];
        double sumA = 0, sumB = 0;
        for (int i = 0; i < n; i++)
        {
            if (!double.IsFinite(a[i]) || !double.IsFinite(b[i])) throw new ArgumentException($"user {i}: values must be finite ({a[i]}, {b[i]})");
            d[i] = a[i] - b[i]; sumA += a[i]; sumB += b[i];
        }
        double observed = d.Sum() / n;

        // percentile bootstrap of the mean difference
        var means = new double[resamples];
        Parallel.For(0, resamples, r =>
        {
            var rng = new Random(Kernels.Elementwise.StableSeed(seed, BootstrapStream, r));
            double s = 0;
            for (int i = 0; i < n; i++) s += d[rng.Next(n)];
            means[r] = s / n;
        });
        Array.Sort(means);
        double low = Quantile(means, (1 - level) / 2), high = Quantile(means, (1 + level) / 2);

        // sign-flip randomization test: 64 signs per random word
        double threshold = Math.Abs(observed) * (1 - 1e-9) - 1e-15;   // summation order differs from the observed mean's
        var extreme = new int[resamples];
        Parallel.For(0, resamples, r =>
        {
            var rng = new Random(Kernels.Elementwise.StableSeed(seed, FlipStream, r));
            double s = 0;
            ulong bits = 0;
            for (int i = 0; i < n; i++)
            {
                if ((i & 63) == 0) bits = (ulong)rng.NextInt64() ^ ((ulong)rng.Next(2) << 63);
                s += (bits & 1) == 0 ? d[i] : -d[i];
                bits >>= 1;
            }
            extreme[r] = Math.Abs(s / n) >= threshold ? 1 : 0;
        });
        double p = (1.0 + extreme.Sum()) / (1.0 + resamples);
        return new PairedDifference(n, sumA / n, sumB / n, observed, low, high, p, level, resamples);
    }

    /// <summary>Linear interpolation between order statistics of a sorted array (Hyndman and Fan's type 7).</summary>
    public static double Quantile(double[] sorted, double q)
    {
        if (sorted.Length == 0) throw new ArgumentException("no values", nameof(sorted));
        double h = (sorted.Length - 1) * Math.Clamp(q, 0, 1);
        int lo = (int)Math.Floor(h), hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }
}
