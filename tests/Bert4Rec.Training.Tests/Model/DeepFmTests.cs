// DeepFM on the native engine: central differences on every parameter (with and without feature fields), the FM term against
// its pairwise definition, the fast all-items scoring against the per-example forward, bad inputs, and a short training run
// that learns what follows each item.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Model;
using Bert4Rec.Training.Pipeline;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Training.Tests.Model;

public class DeepFmTests
{
    // 3 users, 6 items, a history window of 3; the feature fields and rows of NeuMfTests
    internal static ModelConfig Tiny(bool features) => NeuMfTests.Tiny(features) with { Kind = ModelKind.DeepFm, MaxLength = 3 };

    internal static DeepFmModel Build(bool features, int maxBatch = 8) =>
        NeuMfTests.Spread(new DeepFmModel(Tiny(features), features ? NeuMfTests.UserSlots : null, features ? NeuMfTests.ItemSlots : null, maxBatch, 1));

    private static readonly int[] Users = [0, 1, 2, 0, 2, 1];
    private static readonly int[] Items = [1, 2, 6, 4, 3, 5];
    private static readonly float[] Labels = [1, 0, 1, 0, 0, 1];
    // windows of 3, left-padded: a full one, a partial one, an empty one (no history), ...
    private static readonly int[] Histories = [2, 5, 3, 0, 0, 4, 0, 0, 0, 6, 6, 1, 0, 1, 2, 3, 4, 5];

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Every_parameter_gradient_matches_central_differences(bool features)
    {
        using var m = Build(features);
        m.TrainStep(Users, Histories, Items, Labels, Users.Length);
        var analytic = GradientCheck.AgainstCentralDifferences(m.Layout, m.Parameters, m.Gradients,
            () => m.EvalLoss(Users, Histories, Items, Labels, Users.Length), eps: 5e-4f);
        // the rows no example touched get no gradient; the ones it did, some
        Assert.All(m.Layout.Slice(analytic, "item.emb").ToArray()[..4], g => Assert.Equal(0f, g));     // item row 0 is never an item
        Assert.NotEqual(0f, m.Layout.Slice(analytic, "last.emb")[0]);                                    // "no history" is learned
        Assert.All(m.Layout.Slice(analytic, "recent.emb").ToArray()[..4], g => Assert.Equal(0f, g));   // pads are skipped
        foreach (var name in new[] { "user.w", "recent.w", "mlp.0.w", "out.w" })
            Assert.Contains(m.Layout.Slice(analytic, name).ToArray(), g => g != 0);
        if (features) Assert.Contains(m.Layout.Slice(analytic, "item_feat.0.emb").ToArray(), g => g != 0);
    }

    [Fact]
    public void The_logit_is_bias_plus_first_order_plus_pairwise_interactions_plus_the_deep_part()
    {
        using var m = Build(true);
        int H = 3;
        var logits = new float[1];
        m.Logits([1], Histories.AsSpan(0, H), [2], logits);
        // the same logit with the deep part's output weights at zero: what is left is b + sum w_f + sum_{f<g} <e_f, e_g>
        var outW = m.Layout.Slice(m.Parameters, "out.w");
        var keep = outW.ToArray();
        outW.Clear();
        var fmOnly = new float[1];
        m.Logits([1], Histories.AsSpan(0, H), [2], fmOnly);
        keep.CopyTo(outW);
        var e = new List<float[]>();
        double first = m.Layout.Slice(m.Parameters, "out.b")[0];
        float[] Row(string table, int id) => m.Layout.Slice(m.Parameters, table + ".emb").Slice(id * 4, 4).ToArray();
        float W(string table, int id) => m.Layout.Slice(m.Parameters, table + ".w")[id];
        void Field(string name, params int[] ids)
        {
            var v = new float[4];
            foreach (int id in ids) for (int c = 0; c < 4; c++) v[c] += Row(name, id)[c] / ids.Length;
            e.Add(v);
            first += ids.Sum(id => W(name, id)) / ids.Length;
        }
        // user 1: slots [1 | 2, 4]; history [2, 5, 3]; item 2: slots [3, 4, 0]
        Field("user", 1); Field("user_feat.0", 1); Field("user_feat.1", 2, 4); Field("last", 3); Field("recent", 2, 5, 3);
        Field("item", 2); Field("item_feat.0", 3, 4);
        double pairs = 0;
        for (int f = 0; f < e.Count; f++)
            for (int g = f + 1; g < e.Count; g++)
                for (int c = 0; c < 4; c++) pairs += e[f][c] * e[g][c];
        Assert.Equal(first + pairs, fmOnly[0], 4);
        Assert.True(Math.Abs(logits[0] - fmOnly[0]) > 1e-3, "the deep part contributes");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Scoring_every_item_equals_the_per_example_forward(bool features)
    {
        using var m = Build(features);
        int[] users = [2, 0, 1];
        int[] windows = [0, 0, 0, 4, 4, 2, 5, 6, 1];
        var scores = new float[3 * 7];
        m.ScoreItems(users, windows, scores);
        for (int b = 0; b < 3; b++)
        {
            var logits = new float[6];
            var h = Enumerable.Range(0, 6).SelectMany(_ => windows.Skip(b * 3).Take(3)).ToArray();
            m.Logits(Enumerable.Repeat(users[b], 6).ToArray(), h, [1, 2, 3, 4, 5, 6], logits);
            for (int i = 1; i <= 6; i++) Assert.Equal(logits[i - 1], scores[b * 7 + i], 4);
            Assert.Equal(float.NegativeInfinity, scores[b * 7]);
        }
        // the evaluator's scorer reads each case's user and the latest MaxLength items of its history
        var cases = new List<EvaluationCase> { new(1, [3, 5, 6, 1], 2) };
        var row = new float[7];
        new PointwiseScorer(m).Score(cases, row);
        Assert.Equal(scores[2 * 7 + 4], row[4], 5);
    }

    [Fact]
    public void Bad_shapes_and_inputs_are_refused_with_what_was_wrong()
    {
        var layout = new ParameterLayout(Tiny(true) with { Hidden = 8, Layers = 3 });
        Assert.Equal([7 * 8, 32], layout["mlp.0.w"].Shape);    // 7 fields: user, 2 user features, last, recent, item, 1 item feature
        Assert.Equal([8, 1], layout["out.w"].Shape);
        Assert.Equal([7], layout["last.w"].Shape);
        Assert.False(layout["mlp.2.b"].WeightDecay);
        Assert.Throws<ArgumentException>(() => new ModelConfig { Kind = ModelKind.DeepFm, ItemCount = 3 }.Validate());
        Assert.Throws<ArgumentException>(() => new DeepFmModel(Tiny(true), NeuMfTests.UserSlots[..4], NeuMfTests.ItemSlots, 4));
        Assert.Throws<ArgumentException>(() => new DeepFmModel(NeuMfTests.Tiny(false), null, null, 4));
        using var m = Build(false);
        Assert.Throws<ArgumentOutOfRangeException>(() => m.TrainStep([3], [1], [1f], 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.TrainStep([0], [7], [1f], 1));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => m.TrainStep([0], [0, 0, 9], [1], [1f], 1));
        Assert.Contains("history item", e.Message);
        Assert.Throws<ArgumentException>(() => m.TrainStep([0], [0, 1], [1], [1f], 1));
        Assert.Throws<ArgumentException>(() => m.ScoreItems([0], [1, 2], new float[7]));
        var bad = Assert.Throws<UsageException>(() => (TrainingConfig.FromPreset("synthetic", "deepfm") with { Loss = "ce" }).Validate());
        Assert.Contains("deepfm", bad.Message);
    }

    [Fact]
    public void Hard_negatives_come_from_stage_ones_top_items_after_the_last_item_and_skip_seen_ones()
    {
        // chains 1 -> 2 -> ... -> 6: Markov's best item after i is i + 1
        var seqs = new[] { new[] { 1, 2, 3, 4, 5, 6 }, new[] { 2, 3, 4, 5 }, new[] { 3, 4, 5, 6 } };
        // Markov after 3: 4 (three transitions), then by popularity 5 (3 counts), then 2 and 6 (2 counts; the lower index first)
        var hard = HardNegatives.AfterEachItem(new MarkovScorer(seqs, 6), 3, 1);
        var rng = new Random(1);
        for (int t = 0; t < 20; t++)
        {
            Assert.True(hard.TryDraw(3, [1], rng, out int j));
            Assert.Contains(j, new[] { 4, 5, 2 });
        }
        Assert.True(hard.TryDraw(3, [4, 5], rng, out int only));
        Assert.Equal(2, only);
        Assert.False(hard.TryDraw(3, [2, 4, 5], rng, out _));           // every one seen: the sampled negatives take over
        Assert.False(hard.TryDraw(0, [], rng, out _));                  // no history: the same
        var examples = new PointwiseExamples(seqs, 6, 2) { Hard = hard };
        var (u, i, l) = (new int[3], new int[3], new float[3]);
        examples.Fill(2, 1, new Random(3), u, i, l, 0);                 // user 2's positive 4 after 3: the hard negative 2, one sampled
        Assert.Equal((4, 2), (i[0], i[1]));
        Assert.Contains(i[2], new[] { 1, 2 });
        Assert.Equal([1f, 0f, 0f], l);
        var bad = Assert.Throws<UsageException>(() => (TrainingConfig.FromPreset("synthetic", "deepfm") with { HardNegatives = 5 }).Validate());
        Assert.Contains("--hard-negatives", bad.Message);
        Assert.Throws<UsageException>(() => (TrainingConfig.FromPreset("synthetic", "sasrec") with { HardNegatives = 1 }).Validate());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Sampled_negatives_skip_the_users_own_items_unless_it_has_seen_every_item(bool popularity)
    {
        // user 0 has seen 7 of 8 items (one of them twice), so its only negative is 8; user 1 has seen all 8
        var seqs = new[] { new[] { 1, 2, 3, 2, 4, 5, 6, 7 }, new[] { 8, 7, 6, 5, 4, 3, 2, 1 } };
        var examples = new PointwiseExamples(new ArraySequences(seqs), 8, 4, popularity: popularity);
        var (u, i, l) = (new int[5], new int[5], new float[5]);
        var rng = new Random(7);
        for (int t = 0; t < 30; t++)
        {
            examples.Fill(0, t % 8, rng, u, i, l, 0);
            Assert.Equal(seqs[0][t % 8], i[0]);
            Assert.All(i[1..], j => Assert.Equal(8, j));
        }
        var drawn = new HashSet<int>();
        for (int t = 0; t < 40; t++) { examples.Fill(1, t % 8, rng, u, i, l, 0); drawn.UnionWith(i[1..]); }
        Assert.True(drawn.Count > 1, "a user who has seen every item still gets negatives");
        Assert.All(drawn, j => Assert.InRange(j, 1, 8));
    }

    [Theory]
    [InlineData("uniform", 0)]
    [InlineData("popularity", 0)]
    [InlineData("uniform", 2)]
    public void Training_learns_what_follows_the_last_item(string sampling, int hard)
    {
        // every user walks a chain i -> i+1 -> ... over 20 items from a random start: only the history fields can tell the next item
        var rng = new Random(1);
        var seqs = Enumerable.Range(0, 80).Select(_ => { int s = rng.Next(0, 20); return Enumerable.Range(0, 8).Select(t => 1 + (s + t) % 20).ToArray(); }).ToArray();
        var data = new SequenceDataset(new Vocabulary(Enumerable.Range(1, 20).Select(i => $"i{i}").ToArray()), Enumerable.Range(0, 80).Select(u => $"u{u}").ToArray(), seqs);
        var split = LeaveOneOut.Split(data);
        var cfg = TrainingConfig.FromPreset("synthetic", "deepfm") with
        {
            Hidden = 8, Layers = 2, MaxLength = 2, Epochs = 20, Patience = 0, BatchSize = 64, LearningRate = 1e-2f, Threads = 1, NegativeSampling = sampling,
            HardNegatives = hard,
        };
        var state = new Trainer(cfg, split, null, _ => { }).Run();
        using var model = ModelComparison.OpenModel(cfg, split, 64);
        state.BestParameters!.CopyTo(model.Parameters, 0);
        var test = Evaluator.Evaluate(ModelComparison.Scorer(model), split.Test, new EvaluationOptions());
        // 13 unseen candidates per user: chance HR@1 is under 0.1
        Assert.True(test.Hr1 > 0.8, $"HR@1 {test.Hr1}");
    }
}
