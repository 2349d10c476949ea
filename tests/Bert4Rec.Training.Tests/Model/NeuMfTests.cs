// NeuMF on the native engine: central differences on every parameter (with and without feature fields), the fast
// all-items scoring against the per-example forward, the layout, and a short training run that learns planted preferences.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Model;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Training.Tests.Model;

public class NeuMfTests
{
    // 3 users, 6 items; user fields: a categorical (vocab 4) and a multi-hot of width 2 (vocab 5); item field: multi-hot width 3 (vocab 6)
    internal static ModelConfig Tiny(bool features) => new()
    {
        Kind = ModelKind.NeuMf, ItemCount = 6, UserCount = 3, Hidden = 4, Layers = 2, Heads = 1,
        UserFeatures = features ? "4x1,5x2" : "", ItemFeatures = features ? "6x3" : "",
    };

    internal static readonly int[] UserSlots = [2, 3, 0, 1, 2, 4, 3, 4, 2];
    internal static readonly int[] ItemSlots = [0, 0, 0, 2, 0, 0, 3, 4, 0, 1, 0, 0, 2, 3, 5, 5, 0, 0, 4, 2, 3];

    internal static NeuMfModel Build(bool features, int maxBatch = 8)
    {
        var m = new NeuMfModel(Tiny(features), features ? UserSlots : null, features ? ItemSlots : null, maxBatch, 1);
        m.InitializeParameters(5);
        GradientCheck.Perturb(m.Layout, m.Parameters, 11);
        return m;
    }

    private static readonly int[] Users = [0, 1, 2, 0, 2, 1];
    private static readonly int[] Items = [1, 2, 6, 4, 3, 5];
    private static readonly float[] Labels = [1, 0, 1, 0, 0, 1];

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Every_parameter_gradient_matches_central_differences(bool features)
    {
        using var m = Build(features);
        m.TrainStep(Users, Items, Labels, Users.Length);
        // eps small enough that no ReLU of the tower changes side
        var analytic = GradientCheck.AgainstCentralDifferences(m.Layout, m.Parameters, m.Gradients, () => m.EvalLoss(Users, Items, Labels, Users.Length), eps: 5e-4f);
        // the rows no example touched get no gradient; the ones it did, some
        var gu = m.Layout.Slice(analytic, "gmf.item").ToArray();
        Assert.All(gu[..4], g => Assert.Equal(0f, g));   // item row 0 (pad)
        Assert.Contains(m.Layout.Slice(analytic, "mlp.user").ToArray(), g => g != 0);
        if (features) Assert.Contains(m.Layout.Slice(analytic, "item_feat.0").ToArray(), g => g != 0);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Scoring_every_item_equals_the_per_example_forward(bool features)
    {
        using var m = Build(features);
        var scores = new float[3 * 7];
        m.ScoreItems([2, 0, 1], scores);
        int[] users = [2, 0, 1];
        for (int b = 0; b < 3; b++)
        {
            var logits = new float[6];
            m.Logits(Enumerable.Repeat(users[b], 6).ToArray(), [1, 2, 3, 4, 5, 6], logits);
            for (int i = 1; i <= 6; i++) Assert.Equal(logits[i - 1], scores[b * 7 + i], 4);
        }
        // the evaluator's scorer reads each case's user
        var cases = new List<EvaluationCase> { new(1, [3], 2) };
        var row = new float[7];
        new PointwiseScorer(m).Score(cases, row);
        Assert.Equal(scores[2 * 7 + 4], row[4], 5);
    }

    [Fact]
    public void The_layout_follows_the_papers_tower_and_bad_shapes_are_refused()
    {
        var layout = new ParameterLayout(Tiny(true) with { Hidden = 8, Layers = 3 });
        Assert.Equal([2 * 32 + 8 * 3, 32], layout["mlp.0.w"].Shape);   // m = 8 * 2^2 = 32 per side, three fields of f = 8
        Assert.Equal([16, 8], layout["mlp.2.w"].Shape);
        Assert.Equal([16, 1], layout["out.w"].Shape);
        Assert.Equal([7, 8], layout["gmf.item"].Shape);
        Assert.False(layout["mlp.1.b"].WeightDecay);
        Assert.Throws<ArgumentException>(() => new ModelConfig { Kind = ModelKind.NeuMf, ItemCount = 3 }.Validate());
        Assert.Throws<ArgumentException>(() => (Tiny(false) with { UserFeatures = "4x0" }).Validate());
        Assert.Throws<ArgumentException>(() => new ModelConfig { ItemCount = 3, UserCount = 2 }.Validate());
        Assert.Throws<ArgumentException>(() => new NeuMfModel(Tiny(true), UserSlots[..4], ItemSlots, 4));
        var badSlots = (int[])ItemSlots.Clone(); badSlots[5] = 6;
        Assert.Throws<ArgumentException>(() => new NeuMfModel(Tiny(true), UserSlots, badSlots, 4));
        using var m = Build(false);
        Assert.Throws<ArgumentOutOfRangeException>(() => m.TrainStep([3], [1], [1f], 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => m.TrainStep([0], [7], [1f], 1));
    }

    [Fact]
    public void Training_learns_which_items_each_user_group_prefers()
    {
        // two user groups: even users take items 1..10, odd users items 11..20, in random order
        var rng = new Random(1);
        var seqs = Enumerable.Range(0, 60).Select(u => Enumerable.Range(u % 2 == 0 ? 1 : 11, 10).OrderBy(_ => rng.Next()).Take(8).ToArray()).ToArray();
        var data = new SequenceDataset(new Vocabulary(Enumerable.Range(1, 20).Select(i => $"i{i}").ToArray()), Enumerable.Range(0, 60).Select(u => $"u{u}").ToArray(), seqs);
        var split = LeaveOneOut.Split(data);
        var cfg = TrainingConfig.FromPreset("synthetic", "neumf") with { Hidden = 8, Layers = 2, Epochs = 15, Patience = 0, BatchSize = 64, LearningRate = 1e-2f, Threads = 1 };
        var state = new Trainer(cfg, split, null, _ => { }).Run();
        using var model = Bert4Rec.Training.Pipeline.ModelComparison.OpenModel(cfg, split, 64);
        state.BestParameters!.CopyTo(model.Parameters, 0);
        var test = Evaluator.Evaluate(Bert4Rec.Training.Pipeline.ModelComparison.Scorer(model), split.Test, new EvaluationOptions());
        // with the user's 7 seen items excluded, 3 of the 13 candidates belong to the group: chance HR@5 is about 0.38
        Assert.True(test.Hr5 > 0.9, $"HR@5 {test.Hr5}");
    }
}
