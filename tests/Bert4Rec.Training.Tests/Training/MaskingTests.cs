// Cloze sample construction: masking rate and cap, the 80/10/10 variant, the last-item sample, left padding, sliding windows,
// fresh masks per epoch; and the learning-rate schedule.
using Bert4Rec.Training.Optim;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Training.Tests.Training;

public class MaskingTests
{
    private const int Items = 100, MaskId = Items + 1;

    [Fact]
    public void Positions_are_masked_with_probability_rho_uniformly_over_the_sequence()
    {
        var items = Enumerable.Range(1, 40).ToArray();
        var ids = new int[50]; var labels = new int[50];
        var perPosition = new int[50];
        var rng = new Random(1);
        const int Draws = 4000;
        long masked = 0;
        for (int r = 0; r < Draws; r++)
        {
            ClozeMasker.Mask(items, 50, Items, 0.2f, 1000, 1f, false, rng, ids, labels);
            for (int t = 0; t < 10; t++) { Assert.Equal(0, ids[t]); Assert.Equal(0, labels[t]); }   // left padding
            for (int t = 10; t < 50; t++)
            {
                // a masked position reads [MASK] and is labelled with its item; the others keep their item and have no label
                Assert.Equal(labels[t] != 0 ? MaskId : items[t - 10], ids[t]);
                if (labels[t] != 0) { Assert.Equal(items[t - 10], labels[t]); perPosition[t]++; masked++; }
            }
        }
        double rate = masked / (double)(Draws * 40);
        Assert.InRange(rate, 0.19, 0.21);                                       // sd of the mean is about 0.001
        for (int t = 10; t < 50; t++) Assert.InRange(perPosition[t] / (double)Draws, 0.16, 0.24);   // sd about 0.006
    }

    [Fact]
    public void At_most_max_predictions_and_at_least_one_position_are_masked()
    {
        var items = Enumerable.Range(1, 40).ToArray();
        var ids = new int[40]; var labels = new int[40];
        var rng = new Random(2);
        var counts = new int[41];
        var perPosition = new int[40];
        for (int r = 0; r < 2000; r++)
        {
            ClozeMasker.Mask(items, 40, Items, 0.6f, 5, 1f, false, rng, ids, labels);
            int k = labels.Count(l => l != 0);
            counts[k]++;
            for (int t = 0; t < 40; t++) if (labels[t] != 0) perPosition[t]++;
        }
        Assert.Equal(2000, counts[5]);                                          // 24 expected of 40 at rho 0.6: always capped to 5
        Assert.All(perPosition, c => Assert.InRange(c / 2000.0, 0.08, 0.17));   // the kept subset is uniform: 5/40 = 0.125
        // a short sequence at a tiny rho still gets one prediction
        var one = new[] { 7, 8 };
        for (int r = 0; r < 200; r++)
        {
            ClozeMasker.Mask(one, 4, Items, 0.001f, 5, 1f, false, rng, ids.AsSpan(0, 4), labels.AsSpan(0, 4));
            Assert.Equal(1, labels.AsSpan(0, 4).ToArray().Count(l => l != 0));
        }
    }

    [Fact]
    public void The_80_10_10_variant_replaces_with_mask_random_items_and_keeps_in_those_proportions()
    {
        var items = Enumerable.Range(1, 40).ToArray();
        var ids = new int[40]; var labels = new int[40];
        var rng = new Random(3);
        int mask = 0, kept = 0, other = 0;
        for (int r = 0; r < 3000; r++)
        {
            ClozeMasker.Mask(items, 40, Items, 0.25f, 1000, 0.8f, false, rng, ids, labels);
            for (int t = 0; t < 40; t++)
            {
                if (labels[t] == 0) continue;
                if (ids[t] == MaskId) mask++;
                else if (ids[t] == items[t]) kept++;
                else { other++; Assert.InRange(ids[t], 1, Items); }
            }
        }
        double total = mask + kept + other;
        Assert.InRange(mask / total, 0.79, 0.81);
        Assert.InRange(kept / total, 0.09, 0.111);   // 0.1 plus the random draws that hit the item itself (0.1 / 100)
        Assert.InRange(other / total, 0.089, 0.11);
    }

    [Fact]
    public void The_extra_sample_masks_only_the_last_item()
    {
        var items = Enumerable.Range(1, 40).ToArray();
        var ids = new int[50]; var labels = new int[50];
        ClozeMasker.Mask(items, 50, Items, 0.9f, 30, 0.8f, true, new Random(4), ids, labels);
        Assert.Equal(40, labels[49]);
        Assert.Equal(MaskId, ids[49]);
        Assert.Single(labels, l => l != 0);
        Assert.Equal(items[..39], ids[10..49]);
        Assert.All(ids[..10], v => Assert.Equal(0, v));
    }

    [Fact]
    public void Masks_are_fresh_each_epoch_and_reproducible()
    {
        var seeds = Enumerable.Range(0, 20).Select(e => Trainer.MaskSeed(42, e, 7)).ToList();
        Assert.Equal(seeds.Count, seeds.Distinct().Count());
        Assert.Equal(seeds[3], Trainer.MaskSeed(42, 3, 7));
        Assert.NotEqual(Trainer.OrderSeed(42, 0), Trainer.OrderSeed(42, 1));
        Assert.NotEqual(Trainer.DropoutSeed(42, 10), Trainer.DropoutSeed(42, 11));
        Assert.NotEqual(Trainer.DropoutSeed(42, 10), Trainer.DropoutSeed(43, 10));
        var items = Enumerable.Range(1, 40).ToArray();
        int[] L(int seed) { var ids = new int[40]; var labels = new int[40]; ClozeMasker.Mask(items, 40, Items, 0.3f, 40, 1f, false, new Random(seed), ids, labels); return labels; }
        Assert.NotEqual(L(seeds[0]), L(seeds[1]));
        Assert.Equal(L(seeds[0]), L(Trainer.MaskSeed(42, 0, 7)));
    }

    [Fact]
    public void Long_sequences_are_cut_into_sliding_windows_that_cover_them()
    {
        // windows of 40 ending at 100, 95, ... until one starts at 0
        Assert.Equal(Enumerable.Range(0, 13).Select(i => (60 - 5 * i, 40)).ToList(), ClozeMasker.Windows(100, 40, 5).Select(w => (w.Start, w.Length)).ToList());
        // a stride that does not divide: the last window is clipped at the start
        Assert.Equal(new[] { (3, 10), (0, 6) }, ClozeMasker.Windows(13, 10, 7).Select(w => (w.Start, w.Length)));
        Assert.Equal(new[] { (0, 7) }, ClozeMasker.Windows(7, 40, 5).Select(w => (w.Start, w.Length)));
        Assert.Equal(new[] { (0, 40) }, ClozeMasker.Windows(40, 40, 5).Select(w => (w.Start, w.Length)));
        Assert.Empty(ClozeMasker.Windows(0, 40, 5));
    }

    [Fact]
    public void Prefix_samples_cut_at_distinct_earlier_points_each_keeping_an_item_before_its_mask()
    {
        var rng = new Random(3);
        for (int trial = 0; trial < 200; trial++)
        {
            int len = 3 + trial % 40, k = 1 + trial % 7;
            var cuts = Trainer.PrefixCuts(len, k, rng).ToList();
            Assert.Equal(Math.Min(k, len - 2), cuts.Count);
            Assert.Equal(cuts.Distinct().Count(), cuts.Count);
            Assert.All(cuts, e => Assert.InRange(e, 2, len - 1));   // never the whole sequence: that is the last-item sample
        }
        Assert.Equal(new[] { 2, 3, 4 }, Trainer.PrefixCuts(5, 9, rng));   // fewer cuts than asked: every one
        // every cut is drawn: over many draws each of 2..9 appears
        var seen = new HashSet<int>();
        for (int i = 0; i < 400; i++) foreach (int e in Trainer.PrefixCuts(10, 2, rng)) seen.Add(e);
        Assert.Equal(Enumerable.Range(2, 8), seen.Order());
    }

    [Fact]
    public void Learning_rate_warms_up_linearly_then_decays_linearly_to_zero()
    {
        float At(long step) => LearningRateSchedule.At(step, 10, 110, 1f);
        Assert.Equal(0.1f, At(0), 5);
        Assert.Equal(0.5f, At(4), 5);
        Assert.Equal(1f, At(9), 5);
        Assert.Equal(1f, At(10), 5);
        Assert.Equal(0.5f, At(60), 5);
        Assert.Equal(0.01f, At(109), 5);
        Assert.Equal(0f, At(110), 5);
        Assert.Equal(0f, At(500), 5);
        Assert.Equal(2e-3f, LearningRateSchedule.At(0, 0, 100, 2e-3f), 7);   // no warmup: the peak at once
    }
}
