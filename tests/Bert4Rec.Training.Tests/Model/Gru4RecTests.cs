// GRU4Rec: the recurrence kernels against their loop references, every parameter's gradient against central differences,
// causality and padding independence, the empty-history state, the output identity, and determinism with dropout.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Kernels;
using Bert4Rec.Training.Model;

namespace Bert4Rec.Training.Tests.Model;

public class Gru4RecTests
{
    internal static ModelConfig Tiny(float dropout = 0f) => new()
    {
        Kind = ModelKind.Gru4Rec, ItemCount = 7, Hidden = 8, Heads = 1, Layers = 1, MaxLength = 5, HiddenDropout = dropout,
        AttentionDropout = 0f,
    };

    // two rows, one left-padded and one full; next-item labels at every non-pad position of row 1 and some of row 0
    private static readonly int[] Ids = [0, 0, 3, 6, 5, 2, 7, 4, 1, 3];
    private static readonly int[] Labels = [0, 0, 6, 0, 1, 7, 4, 1, 3, 2];

    private static Gru4RecModel Perturbed(ModelConfig cfg, int seed, int batch = 2)
    {
        var m = new Gru4RecModel(cfg, batch, 2);
        m.InitializeParameters((ulong)seed);
        var rng = new Random(seed);
        for (int i = 0; i < m.Parameters.Length; i++) m.Parameters[i] += (float)(rng.NextDouble() - 0.5) * 0.6f;
        return m;
    }

    private static float[] Randn(Random rng, int n, float scale) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray();

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 4)]
    [InlineData(7, 8)]
    [InlineData(5, 13)]
    [InlineData(4, 33)]
    public void Recurrence_kernels_equal_their_loop_references(int L, int d)
    {
        var rng = new Random(L * 100 + d);
        var gx = Randn(rng, L * 3 * d, 1.5f);
        var whh = Randn(rng, d * 3 * d, 0.8f);
        var bhh = Randn(rng, 3 * d, 0.5f);
        var dh = Randn(rng, L * d, 1f);
        var (h, g, hr) = (new float[L * d], new float[L * 3 * d], new float[L * d]);
        var (h0, g0, hr0) = (new float[L * d], new float[L * 3 * d], new float[L * d]);
        Gru.Forward(h, g, hr, gx, whh, bhh, L, d);
        Gru.ForwardNaive(h0, g0, hr0, gx, whh, bhh, L, d);
        AssertClose(h0, h, "h"); AssertClose(g0, g, "gates"); AssertClose(hr0, hr, "hr");
        var (dgx, dgh, dgx0, dgh0) = (new float[L * 3 * d], new float[L * 3 * d], new float[L * 3 * d], new float[L * 3 * d]);
        Gru.Backward(dgx, dgh, dh, h, g, hr, whh, L, d);
        Gru.BackwardNaive(dgx0, dgh0, dh, h0, g0, hr0, whh, L, d);
        AssertClose(dgx0, dgx, "dgx"); AssertClose(dgh0, dgh, "dgh");
        Assert.Throws<ArgumentException>(() => Gru.Forward(h, g, hr, gx.AsSpan(1).ToArray(), whh, bhh, L, d));
    }

    private static void AssertClose(float[] want, float[] got, string name)
    {
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(want[i] - got[i]) <= 1e-5 + 1e-4 * Math.Abs(want[i]), $"{name}[{i}]: reference {want[i]} fast {got[i]}");
    }

    [Fact]
    public void Every_parameter_gradient_matches_central_differences()
    {
        var cfg = Tiny();
        using var m = Perturbed(cfg, 7);
        var analytic = GradientCheck.AgainstCentralDifferences(m, Ids, Labels, 2, eps: 1e-3f);
        foreach (var t in m.Layout.Tensors)
            Assert.True(m.Layout.Slice(analytic, t.Name).ToArray().Any(g => g != 0f), $"{t.Name} has an all-zero gradient");
        // [PAD] and [MASK] are never an input nor a target: their rows get no gradient
        int d = cfg.Hidden;
        var dE = m.Layout.Slice(analytic, "tok_emb");
        Assert.All(dE[..d].ToArray(), g => Assert.Equal(0f, g));
        Assert.All(dE[(cfg.MaskId * d)..].ToArray(), g => Assert.Equal(0f, g));
    }

    [Fact]
    public void A_position_sees_only_earlier_items_and_pads_change_nothing()
    {
        var cfg = Tiny();
        using var m = Perturbed(cfg, 3, batch: 1);
        // the same prefix [3, 6], different later items; a label only at position 3 (predicting from item 6)
        var labels = new int[5]; labels[3] = 2;
        float a = m.EvalLoss(new[] { 0, 0, 3, 6, 5 }, labels, 1);
        Assert.Equal(a, m.EvalLoss(new[] { 0, 0, 3, 6, 1 }, labels, 1));
        Assert.NotEqual(a, m.EvalLoss(new[] { 0, 0, 4, 6, 5 }, labels, 1));
        // the state after a history does not depend on how many pads precede it: [3, 6] padded to 5 and to 7 positions
        var z5 = new float[cfg.Hidden];
        m.PredictLast(new[] { 0, 0, 0, 3, 6 }, 1, z5, Span<float>.Empty);
        using var longer = new Gru4RecModel(cfg with { MaxLength = 7 }, 1, 2);
        m.Parameters.CopyTo(longer.Parameters, 0);
        var z7 = new float[cfg.Hidden];
        longer.PredictLast(new[] { 0, 0, 0, 0, 0, 3, 6 }, 1, z7, Span<float>.Empty);
        Assert.Equal(z5, z7);
    }

    [Fact]
    public void PredictLast_gives_the_last_items_state_the_output_identity_and_a_zero_empty_state()
    {
        var cfg = Tiny();
        using var m = Perturbed(cfg, 5, batch: 3);
        int V = cfg.VocabSize, d = cfg.Hidden;
        var ids = new[] { 0, 0, 3, 6, 5, 0, 0, 0, 0, 0, 2, 7, 4, 1, 3 };
        var z = new float[3 * d];
        var logits = new float[3 * V];
        m.PredictLast(ids, 3, z, logits);
        OutputIdentity.AssertLogitsAreZDotEPlusBias(m, z, logits, 3);
        // an empty history's state is h_0 = 0, so its logits are the output bias
        Assert.All(z.AsSpan(d, d).ToArray(), x => Assert.Equal(0f, x));
        // the state is the GRU run by the loop reference over the row's items
        var w = m.Layout;
        var e = w.Slice(m.Parameters, "tok_emb");
        var gx = new float[3 * 3 * d];
        int[] items = [3, 6, 5];
        for (int t = 0; t < 3; t++)
            for (int j = 0; j < 3 * d; j++)
            {
                double s = w.Slice(m.Parameters, "gru.b_ih")[j];
                for (int i = 0; i < d; i++) s += e[items[t] * d + i] * w.Slice(m.Parameters, "gru.w_ih")[i * 3 * d + j];
                gx[t * 3 * d + j] = (float)s;
            }
        var (h, g, hr) = (new float[3 * d], new float[9 * d], new float[3 * d]);
        Gru.ForwardNaive(h, g, hr, gx, w.Slice(m.Parameters, "gru.w_hh").ToArray(), w.Slice(m.Parameters, "gru.b_hh").ToArray(), 3, d);
        for (int c = 0; c < d; c++) Assert.Equal(h[2 * d + c], z[c], 5);
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
        float[] Run(ulong seed, int threads)
        {
            using var m = new Gru4RecModel(cfg, 2, threads);
            m.InitializeParameters(11);
            m.TrainStep(Ids, Labels, 2, seed);
            return (float[])m.Gradients.Clone();
        }
        var a = Run(99, 2);
        Assert.Equal(a, Run(99, 2));
        Assert.NotEqual(a, Run(100, 2));
    }

    [Fact]
    public void A_gru4rec_config_has_one_layer()
    {
        var ex = Assert.Throws<ArgumentException>(() => new Gru4RecModel(Tiny() with { Layers = 2 }, 1, 1));
        Assert.Contains("Layers", ex.Message);
        Assert.IsType<Gru4RecModel>(SequenceModels.Create(Tiny(), 1, 1));
    }
}
