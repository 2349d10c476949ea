// Finite-difference checks of the whole model's backward pass, and the consistency properties of its forward pass.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Model;

namespace Bert4Rec.Training.Tests.Model;

public class ModelGradientTests
{
    internal static ModelConfig Tiny(float dropout = 0f) => new()
    {
        ItemCount = 7, Hidden = 8, Heads = 2, Layers = 2, MaxLength = 5, HiddenDropout = dropout, AttentionDropout = dropout,
        LayerNormEpsilon = 1e-5f,
    };

    // two rows: one left-padded, one full; labels at a few non-pad positions
    internal static (int[] Ids, int[] Labels) TinyBatch(int mask)
    {
        var ids = new[] { 0, 0, 3, mask, 5, 2, mask, 4, 1, mask };
        var labels = new[] { 0, 0, 0, 6, 0, 0, 7, 0, 0, 2 };
        return (ids, labels);
    }

    [Fact]
    public void Every_parameter_gradient_matches_central_differences()
    {
        var cfg = Tiny();
        using var m = new Bert4RecModel(cfg, maxBatch: 2, threads: 2);
        m.InitializeParameters(7);
        // larger weights than the 0.02 init so that every path carries signal
        var rng = new Random(3);
        for (int i = 0; i < m.Parameters.Length; i++) m.Parameters[i] += (float)(rng.NextDouble() - 0.5) * 0.6f;
        var (ids, labels) = TinyBatch(cfg.MaskId);
        GradientCheck.AgainstCentralDifferences(m, ids, labels, 2, eps: 1e-2f);
    }

    [Theory]
    [InlineData(ModelKind.Bert4Rec)]
    [InlineData(ModelKind.SasRec)]
    public void The_output_layer_in_blocks_of_rows_gives_the_loss_and_gradients_of_one_block(ModelKind kind)
    {
        var cfg = Tiny() with { Kind = kind };
        using var m = SequenceModels.Create(cfg, 2, 2);
        m.InitializeParameters(9);
        int[] ids = kind == ModelKind.Bert4Rec ? TinyBatch(cfg.MaskId).Ids : [0, 0, 3, 6, 5, 2, 7, 4, 1, 3];
        int[] labels = kind == ModelKind.Bert4Rec ? TinyBatch(cfg.MaskId).Labels : [0, 0, 6, 5, 1, 7, 4, 1, 3, 2];
        m.OutputBlock = 1000;
        float whole = m.TrainStep(ids, labels, 2, 0);
        var g = (float[])m.Gradients.Clone();
        foreach (int rows in new[] { 1, 2, 3 })
        {
            m.OutputBlock = rows;
            Assert.Equal(whole, m.TrainStep(ids, labels, 2, 0), 5);
            for (int i = 0; i < g.Length; i++) Assert.Equal(g[i], m.Gradients[i], 5);
            Assert.Equal(whole, m.EvalLoss(ids, labels, 2), 5);
        }
    }

    [Fact]
    public void Gradients_of_pad_token_and_mask_columns_are_zero_where_they_must_be()
    {
        var cfg = Tiny();
        using var m = new Bert4RecModel(cfg, 2, 1);
        m.InitializeParameters(1);
        var (ids, labels) = TinyBatch(cfg.MaskId);
        m.TrainStep(ids, labels, 2, 0);
        var tok = m.Layout.Slice(m.Gradients, "tok_emb");
        Assert.All(tok[..cfg.Hidden].ToArray(), g => Assert.Equal(0f, g));       // [PAD] row never used
        var ob = m.Layout.Slice(m.Gradients, "out_bias");
        Assert.Equal(0f, ob[0]);
        Assert.Equal(0f, ob[cfg.MaskId]);
    }

    [Fact]
    public void PredictLast_equals_the_forward_at_the_last_position_and_ignores_extra_padding()
    {
        var cfg = Tiny() with { MaxLength = 6 };
        using var m = new Bert4RecModel(cfg, 3, 2);
        m.InitializeParameters(5);
        int V = cfg.VocabSize, d = cfg.Hidden;
        // the same history [3,5,1] + mask, with 2 and 1 pads; and a full row
        var ids = new[] { 0, 0, 3, 5, 1, cfg.MaskId, 0, 3, 5, 1, 2, cfg.MaskId, 4, 4, 2, 6, 7, cfg.MaskId };
        var z = new float[3 * d];
        var logits = new float[3 * V];
        m.PredictLast(ids, 3, z, logits);
        // logits = z . E + b
        var e = m.Layout.Slice(m.Parameters, "tok_emb");
        var b = m.Layout.Slice(m.Parameters, "out_bias");
        for (int r = 0; r < 3; r++)
            for (int v = 0; v < V; v++)
            {
                double s = b[v];
                for (int c = 0; c < d; c++) s += z[r * d + c] * e[v * d + c];
                Assert.Equal(s, logits[r * V + v], 4);
            }
        // extra padding: the same history in a longer row (2 more pads) of a model whose last 6 positions carry this
        // model's position embeddings gives the same state; pad keys are masked, so the extra pads change nothing
        var cfg8 = cfg with { MaxLength = 8 };
        using var m8 = new Bert4RecModel(cfg8, 1, 2);
        m8.InitializeParameters(9);
        foreach (var t in m.Layout.Tensors)
        {
            var src = m.Layout.Slice(m.Parameters, t.Name);
            var dst = m8.Layout.Slice(m8.Parameters, t.Name);
            if (t.Name == "pos_emb") src.CopyTo(dst[(2 * d)..]);     // rows 2..7 of the longer table; rows 0..1 keep their own values
            else src.CopyTo(dst);
        }
        var z8 = new float[d];
        m8.PredictLast(new[] { 0, 0, 0, 0, 3, 5, 1, cfg.MaskId }, 1, z8, Span<float>.Empty);
        for (int c = 0; c < d; c++) Assert.Equal(z[c], z8[c], 4);
        // a row's result does not depend on other rows in the batch
        var z1 = new float[d];
        m.PredictLast(ids.AsSpan(0, 6), 1, z1, Span<float>.Empty);
        for (int c = 0; c < d; c++) Assert.Equal(z[c], z1[c], 5);
        // eval loss at the last position equals -log softmax over items of the predicted logits
        var labels = new int[6]; labels[5] = 4;
        float loss = m.EvalLoss(ids.AsSpan(0, 6), labels, 1);
        double max = double.MinValue, sum = 0;
        for (int v = 1; v <= cfg.ItemCount; v++) max = Math.Max(max, logits[v]);
        for (int v = 1; v <= cfg.ItemCount; v++) sum += Math.Exp(logits[v] - max);
        Assert.Equal(Math.Log(sum) + max - logits[4], loss, 4);
    }

    [Fact]
    public void Same_seed_gives_bitwise_identical_gradients_with_dropout()
    {
        var cfg = Tiny(dropout: 0.3f);
        var (ids, labels) = TinyBatch(cfg.MaskId);
        float[] Run(int threads, ulong seed)
        {
            using var m = new Bert4RecModel(cfg, 2, threads);
            m.InitializeParameters(11);
            m.TrainStep(ids, labels, 2, seed);
            return (float[])m.Gradients.Clone();
        }
        var a = Run(2, 99);
        Assert.Equal(a, Run(2, 99));
        Assert.NotEqual(a, Run(2, 100));
    }

    [Fact]
    public void Malformed_batches_are_refused_with_the_row_and_position()
    {
        var cfg = Tiny();
        using var m = new Bert4RecModel(cfg, 2, 1);
        var labels = new int[10];
        Assert.Contains("left-padded", Assert.Throws<ArgumentException>(() => m.TrainStep(new[] { 1, 0, 2, 3, 4, 1, 2, 3, 4, 5 }, labels, 2, 0)).Message);
        Assert.Contains("outside the vocabulary", Assert.Throws<ArgumentException>(() => m.TrainStep(new[] { 1, 2, 3, 4, 99, 1, 2, 3, 4, 5 }, labels, 2, 0)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => m.TrainStep(new int[15], new int[15], 3, 0));
        var badLabels = new int[10]; badLabels[0] = 1;
        Assert.Contains("[PAD]", Assert.Throws<ArgumentException>(() => m.TrainStep(new[] { 0, 0, 3, 4, 5, 1, 2, 3, 4, 5 }, badLabels, 2, 0)).Message);
        Assert.Contains("all [PAD]", Assert.Throws<ArgumentException>(() => m.PredictLast(new int[5], 1, new float[8], Span<float>.Empty)).Message);
    }
}
