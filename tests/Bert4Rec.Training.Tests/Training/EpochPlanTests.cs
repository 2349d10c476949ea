// The lazy epoch plan: its keyed permutation is a bijection, and an epoch holds exactly the samples of the plain definition
// (windows, last-item and prefix samples, or every interaction), each once, in an order that depends on the seed and epoch.
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Training.Tests.Training;

public sealed class EpochPlanTests
{
    [Theory]
    [InlineData(1)] [InlineData(2)] [InlineData(3)] [InlineData(4)] [InlineData(5)] [InlineData(16)] [InlineData(17)]
    [InlineData(97)] [InlineData(1024)] [InlineData(65_537)] [InlineData(3_000_017)]
    public void The_keyed_permutation_is_a_bijection(int n)
    {
        var p = new KeyedPermutation(n, seed: 12345);
        var hit = new bool[n];
        for (long i = 0; i < n; i++)
        {
            long j = p[i];
            Assert.InRange(j, 0, n - 1);
            Assert.False(hit[j], $"{j} reached twice");
            hit[j] = true;
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => p[n]);
        Assert.Throws<ArgumentOutOfRangeException>(() => p[-1]);
    }

    [Fact]
    public void Other_seeds_give_other_orders_that_look_shuffled()
    {
        const int n = 10_000;
        long[] Order(int seed) { var p = new KeyedPermutation(n, seed); return Enumerable.Range(0, n).Select(i => p[i]).ToArray(); }
        var a = Order(1);
        Assert.Equal(a, Order(1));                                   // deterministic
        Assert.NotEqual(a, Order(2));
        Assert.InRange(a.Zip(Order(2)).Count(t => t.First == t.Second), 0, 20);   // ~1 fixed coincidence expected
        // the first half of the order draws from the whole range, not one end of it
        Assert.InRange(a.Take(n / 2).Count(j => j < n / 2), n / 2 * 0.45, n / 2 * 0.55);
        Assert.InRange(a.Take(n / 2).Average(), n * 0.45, n * 0.55);
        Assert.Empty(Enumerable.Range(0, 0).Select(i => new KeyedPermutation(0, 1)[i]));
    }

    [Theory]
    [InlineData("bert4rec", 3)]
    [InlineData("bert4rec", 0)]
    [InlineData("sasrec", 0)]
    [InlineData("gru4rec", 0)]
    [InlineData("neumf", 0)]
    public void An_epoch_holds_each_sample_of_the_definition_once(string model, int prefixSamples)
    {
        var rng = new Random(5);
        // lengths around the window edges: empty, one item, shorter than N, exactly N and N + 1, many windows
        int[] lengths = [0, 1, 2, 3, 9, 10, 11, 12, 25, 57, 4, 0, 130];
        var seqs = new ArraySequences(lengths.Select(l => Enumerable.Range(0, l).Select(_ => 1 + rng.Next(50)).ToArray()).ToArray());
        var cfg = new TrainingConfig { Model = model, MaxLength = 10, WindowStride = 3, PrefixSamples = prefixSamples, Seed = 9 };
        foreach (int epoch in new[] { 0, 4 })
        {
            var plan = new EpochPlan(cfg, seqs, epoch, Trainer.OrderSeed(cfg.Seed, epoch));
            var got = Enumerable.Range(0, checked((int)plan.Count)).Select(i => plan[i]).ToList();
            var want = Reference(cfg, seqs, epoch);
            Assert.Equal(want.Count, got.Count);
            Assert.Equal(want.OrderBy(Key), got.OrderBy(Key));
            Assert.NotEqual(want, got);                               // shuffled, not the unshuffled list
            Assert.Throws<ArgumentOutOfRangeException>(() => plan[plan.Count]);
        }
        var e0 = new EpochPlan(cfg, seqs, 0, Trainer.OrderSeed(cfg.Seed, 0));
        var e1 = new EpochPlan(cfg, seqs, 1, Trainer.OrderSeed(cfg.Seed, 1));
        Assert.NotEqual(Enumerable.Range(0, (int)e0.Count).Select(i => e0[i]), Enumerable.Range(0, (int)e1.Count).Select(i => e1[i]));
    }

    [Fact]
    public void Window_counts_match_the_windows()
    {
        for (int len = 0; len < 120; len++)
            foreach (var (N, stride) in new[] { (10, 1), (10, 3), (10, 10), (10, 13), (50, 5), (1, 1) })
                Assert.Equal(ClozeMasker.Windows(len, N, stride).Count, EpochPlan.WindowCount(len, N, stride));
    }

    private static (int, int, int, bool) Key(Sample s) => (s.User, s.Start, s.Length, s.LastOnly);

    /// <summary>The definition, user by user: every interaction (feature models); else the windows, and for BERT4Rec the
    /// last-item sample and the prefix samples' cuts.</summary>
    private static List<Sample> Reference(TrainingConfig cfg, SequenceView seqs, int epoch)
    {
        var list = new List<Sample>();
        bool cloze = cfg.Model == "bert4rec";
        int N = cfg.MaxLength, span = cloze ? N : N + 1;
        for (int u = 0; u < seqs.Count; u++)
        {
            int len = seqs.Length(u);
            if (cfg.Model == "neumf") { for (int t = 0; t < len; t++) list.Add(new Sample(u, t, 1, false)); continue; }
            if (len < (cloze ? 1 : 2)) continue;
            foreach (var (s, l) in ClozeMasker.Windows(len, span, cfg.WindowStride)) list.Add(new Sample(u, s, l, false));
            if (!cloze) continue;
            list.Add(new Sample(u, Math.Max(0, len - N), Math.Min(len, N), true));
            foreach (int cut in Trainer.PrefixCuts(len, cfg.PrefixSamples, new Random(Trainer.PrefixSeed(cfg.Seed, epoch, u))))
                list.Add(new Sample(u, Math.Max(0, cut - N), Math.Min(cut, N), true));
        }
        return list;
    }
}
