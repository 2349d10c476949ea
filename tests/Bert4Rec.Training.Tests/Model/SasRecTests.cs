// SASRec: every parameter's gradient against central differences, causality, the empty-history state, the output
// identity, determinism with dropout, and the next-item samples the trainer feeds it.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Model;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Training.Tests.Model;

public class SasRecTests
{
    internal static ModelConfig Tiny(float dropout = 0f) => new()
    {
        Kind = ModelKind.SasRec, ItemCount = 7, Hidden = 8, Heads = 2, Layers = 2, MaxLength = 5, HiddenDropout = dropout,
        AttentionDropout = dropout, LayerNormEpsilon = 1e-5f,
    };

    // two rows, one left-padded and one full; next-item labels at every non-pad position of row 1 and some of row 0
    private static readonly int[] Ids = [0, 0, 3, 6, 5, 2, 7, 4, 1, 3];
    private static readonly int[] Labels = [0, 0, 6, 5, 1, 7, 4, 1, 3, 2];

    private static SasRecModel Perturbed(ModelConfig cfg, int seed, int batch = 2)
    {
        var m = new SasRecModel(cfg, batch, 2);
        m.InitializeParameters((ulong)seed);
        var rng = new Random(seed);
        for (int i = 0; i < m.Parameters.Length; i++) m.Parameters[i] += (float)(rng.NextDouble() - 0.5) * 0.6f;
        return m;
    }

    [Fact]
    public void Every_parameter_gradient_matches_central_differences()
    {
        var cfg = Tiny();
        using var m = Perturbed(cfg, 7);
        // smaller steps than BERT4Rec's check: ReLU has kinks, and a step across one is not a derivative
        var analytic = GradientCheck.AgainstCentralDifferences(m, Ids, Labels, 2, eps: 1e-3f);
        // the signal reaches every tensor (a gradient that is zero everywhere would pass the comparison trivially)
        foreach (var t in m.Layout.Tensors)
            Assert.True(m.Layout.Slice(analytic, t.Name).ToArray().Any(g => g != 0f), $"{t.Name} has an all-zero gradient");
    }

    [Fact]
    public void A_position_sees_only_itself_and_earlier_items()
    {
        var cfg = Tiny();
        using var m = Perturbed(cfg, 3, batch: 1);
        // the same prefix [3, 6], different later items; a label only at position 3 (predicting from item 6)
        var labels = new int[5]; labels[3] = 2;
        float a = m.EvalLoss(new[] { 0, 0, 3, 6, 5 }, labels, 1);
        float b = m.EvalLoss(new[] { 0, 0, 3, 6, 1 }, labels, 1);
        Assert.Equal(a, b);
        // and the earlier item does matter
        float c = m.EvalLoss(new[] { 0, 0, 4, 6, 5 }, labels, 1);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void PredictLast_gives_the_last_items_state_the_output_identity_and_the_empty_history_state()
    {
        var cfg = Tiny();
        using var m = Perturbed(cfg, 5, batch: 3);
        int V = cfg.VocabSize, d = cfg.Hidden;
        var ids = new[] { 0, 0, 3, 6, 5, 0, 0, 0, 0, 0, 2, 7, 4, 1, 3 };
        var z = new float[3 * d];
        var logits = new float[3 * V];
        m.PredictLast(ids, 3, z, logits);
        OutputIdentity.AssertLogitsAreZDotEPlusBias(m, z, logits, 3);
        // an empty history's state is LN_last(0) = the final LayerNorm's bias
        Assert.Equal(m.Layout.Slice(m.Parameters, "ln_last.b").ToArray(), z.AsSpan(d, d).ToArray());
        // a row's result does not depend on the other rows
        var z1 = new float[d];
        m.PredictLast(ids.AsSpan(10, 5), 1, z1, Span<float>.Empty);
        for (int c = 0; c < d; c++) Assert.Equal(z[2 * d + c], z1[c], 5);
        // the loss at the last position is -log softmax over items of those logits
        OutputIdentity.AssertLastPositionLossIsLogSoftmax(m, ids.AsSpan(0, 5), logits.AsSpan(0, V), 4);
    }

    [Fact]
    public void Same_seed_gives_bitwise_identical_gradients_with_dropout()
    {
        var cfg = Tiny(dropout: 0.3f);
        float[] Run(ulong seed)
        {
            using var m = new SasRecModel(cfg, 2, 2);
            m.InitializeParameters(11);
            m.TrainStep(Ids, Labels, 2, seed);
            return (float[])m.Gradients.Clone();
        }
        var a = Run(99);
        Assert.Equal(a, Run(99));
        Assert.NotEqual(a, Run(100));
    }

    [Fact]
    public void Next_item_samples_shift_the_window_by_one()
    {
        var ids = new int[5]; var labels = new int[5];
        NextItemSamples.Fill(new[] { 4, 8, 2 }, 5, ids, labels);
        Assert.Equal(new[] { 0, 0, 0, 4, 8 }, ids);
        Assert.Equal(new[] { 0, 0, 0, 8, 2 }, labels);
        NextItemSamples.Fill(new[] { 1, 2, 3, 4, 5, 6 }, 5, ids, labels);
        Assert.Equal(new[] { 1, 2, 3, 4, 5 }, ids);
        Assert.Equal(new[] { 2, 3, 4, 5, 6 }, labels);
        Assert.Throws<ArgumentException>(() => NextItemSamples.Fill(new[] { 1 }, 5, ids, labels));
        Assert.Throws<ArgumentException>(() => NextItemSamples.Fill(new int[7], 5, ids, labels));
    }

    [Fact]
    public void The_input_rule_keeps_the_last_N_items_without_a_mask()
    {
        var cfg = Tiny();
        var row = new int[5];
        ModelInput.Fill(new[] { 1, 2, 3, 4, 5, 6, 7 }, cfg, row);
        Assert.Equal(new[] { 3, 4, 5, 6, 7 }, row);
        ModelInput.Fill(new[] { 2, 3 }, cfg, row);
        Assert.Equal(new[] { 0, 0, 0, 2, 3 }, row);
        ModelInput.Fill(new[] { 2, 3 }, cfg with { Kind = ModelKind.Bert4Rec }, row);
        Assert.Equal(new[] { 0, 0, 2, 3, cfg.MaskId }, row);
    }
}
