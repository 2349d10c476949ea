// Two-Tower on the native engine: central differences on every parameter (with and without feature fields, with the log-Q
// correction and a repeated target in the batch), the scorer against the towers' vectors, the layout and bad inputs, and a
// short training run that learns which items follow which history.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Model;
using Bert4Rec.Training.Pipeline;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Training.Tests.Model;

public class TwoTowerTests
{
    // 6 items, histories of 3; the same feature tables as NeuMfTests (3 users: "4x1,5x2"; items: "6x3")
    internal static ModelConfig Tiny(bool features) => new()
    {
        Kind = ModelKind.TwoTower, ItemCount = 6, Hidden = 4, Layers = 2, Heads = 1, MaxLength = 3,
        UserFeatures = features ? "4x1,5x2" : "", ItemFeatures = features ? "6x3" : "",
    };

    private static readonly float[] LogQ = [0f, -1.2f, -2.0f, -0.7f, -3.1f, -1.6f, -2.4f];

    internal static TwoTowerModel Build(bool features, int maxBatch = 8, float temperature = 0.5f)
    {
        var m = new TwoTowerModel(Tiny(features), features ? NeuMfTests.UserSlots : null, features ? NeuMfTests.ItemSlots : null, maxBatch, temperature, LogQ, 1);
        m.InitializeParameters(3);
        GradientCheck.Perturb(m.Layout, m.Parameters, 17);
        return m;
    }

    private static readonly int[] Users = [0, 1, 2, 0, 2];
    // left-padded rows of 3; one empty history (the user tower then sees only the user fields)
    private static readonly int[] Histories = [0, 2, 3, 0, 0, 0, 1, 5, 6, 0, 0, 4, 2, 2, 6];
    // item 2 is the target twice: each of the two is not a negative of the other
    private static readonly int[] Targets = [4, 2, 3, 2, 5];

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Every_parameter_gradient_matches_central_differences(bool features)
    {
        using var m = Build(features);
        float loss = m.TrainStep(Users, Histories, Targets, Users.Length);
        Assert.True(loss > 0 && float.IsFinite(loss), $"loss {loss}");
        // eps small enough that no ReLU changes side
        var analytic = GradientCheck.AgainstCentralDifferences(m.Layout, m.Parameters, m.Gradients,
            () => m.EvalLoss(Users, Histories, Targets, Users.Length), eps: 5e-4f);
        var emb = m.Layout.Slice(analytic, "item_emb").ToArray();
        Assert.All(emb[..4], g => Assert.Equal(0f, g));   // the pad item
        Assert.Contains(emb[4..], g => g != 0);
        Assert.Contains(m.Layout.Slice(analytic, "user.0.w").ToArray(), g => g != 0);
        if (features)
        {
            Assert.Contains(m.Layout.Slice(analytic, "user_feat.1").ToArray(), g => g != 0);
            Assert.Contains(m.Layout.Slice(analytic, "item_feat.0").ToArray(), g => g != 0);
        }
    }

    [Fact]
    public void The_loss_is_the_in_batch_softmax_with_the_log_q_correction()
    {
        using var m = Build(true, temperature: 0.25f);
        int[] users = [0, 1, 2], hist = [0, 2, 3, 0, 0, 0, 1, 5, 6], targets = [4, 2, 4];
        double loss = m.EvalLoss(users, hist, targets, 3);
        // by hand from the towers' vectors: s_ij = u_i . v_j / tau - log Q(t_j), the other row with the same target left out
        var u = new float[3 * 4];
        m.UserVectors(users, hist, u);
        var v = m.ItemVectors();
        double want = 0;
        for (int i = 0; i < 3; i++)
        {
            var s = new List<double>();
            double pos = 0;
            for (int j = 0; j < 3; j++)
            {
                if (j != i && targets[j] == targets[i]) continue;
                double dot = 0;
                for (int c = 0; c < 4; c++) dot += u[i * 4 + c] * v[targets[j] * 4 + c];
                double x = dot / 0.25 - LogQ[targets[j]];
                s.Add(x);
                if (j == i) pos = x;
            }
            double max = s.Max();
            want += max + Math.Log(s.Sum(x => Math.Exp(x - max))) - pos;
        }
        Assert.Equal(want / 3, loss, 4);
        // the vectors are unit length
        for (int b = 0; b < 3; b++) Assert.Equal(1.0, Math.Sqrt(Enumerable.Range(0, 4).Sum(c => (double)u[b * 4 + c] * u[b * 4 + c])), 5);
    }

    [Fact]
    public void The_scorer_ranks_by_the_dot_product_of_the_towers()
    {
        using var m = Build(true);
        var v = m.ItemVectors();
        Assert.All(v[..4], x => Assert.Equal(0f, x));
        var cases = new List<EvaluationCase> { new(2, [1, 3, 5, 6], 2), new(0, [], 4) };
        var scores = new float[2 * 7];
        new TwoTowerScorer(m).Score(cases, scores);
        var u = new float[2 * 4];
        m.UserVectors([2, 0], [3, 5, 6, 0, 0, 0], u);   // the last 3 items of the first history
        for (int b = 0; b < 2; b++)
        {
            Assert.Equal(float.NegativeInfinity, scores[b * 7]);
            for (int i = 1; i <= 6; i++)
                Assert.Equal(Enumerable.Range(0, 4).Sum(c => u[b * 4 + c] * v[i * 4 + c]), scores[b * 7 + i], 5);
        }
        // with user fields the scorer needs the cases' users
        Assert.Throws<NotSupportedException>(() => new TwoTowerScorer(m).Score(new List<int[]> { new[] { 1 } }, scores));
    }

    [Fact]
    public void The_layout_and_bad_inputs_are_checked()
    {
        var layout = new ParameterLayout(Tiny(true) with { Hidden = 8 });
        Assert.Equal([7, 8], layout["item_emb"].Shape);
        Assert.Equal([8 * 3, 8], layout["user.0.w"].Shape);   // history + two user fields
        Assert.Equal([8 * 2, 8], layout["item.0.w"].Shape);   // id + one item field
        Assert.Equal([8, 8], layout["item.1.w"].Shape);
        Assert.False(layout["user.1.b"].WeightDecay);
        Assert.Throws<ArgumentException>(() => (Tiny(true) with { UserCount = 3 }).Validate());
        Assert.Throws<ArgumentException>(() => new TwoTowerModel(Tiny(true), NeuMfTests.UserSlots[..4], NeuMfTests.ItemSlots, 4));
        Assert.Throws<ArgumentException>(() => new TwoTowerModel(Tiny(false), null, null, 4, 0.1f, [0f, 1f]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TwoTowerModel(Tiny(false), null, null, 4, 0f));
        using var m = Build(true);
        Assert.Throws<ArgumentOutOfRangeException>(() => m.TrainStep([3], [0, 0, 1], [1], 1));     // no such user row
        Assert.Throws<ArgumentOutOfRangeException>(() => m.TrainStep([0], [0, 0, 7], [1], 1));     // no such history item
        Assert.Throws<ArgumentOutOfRangeException>(() => m.TrainStep([0], [0, 0, 1], [0], 1));     // the pad as a target
        Assert.Throws<ArgumentException>(() => m.TrainStep([0, 1], [0, 0, 1], [1, 2], 2));         // one history row for two examples
        Assert.Throws<UsageException>(() => (TrainingConfig.FromPreset("ml-1m", "two-tower") with { Loss = "ce" }).Validate());
        Assert.Throws<UsageException>(() => (TrainingConfig.FromPreset("ml-1m", "sasrec") with { Loss = "in-batch" }).Validate());
    }

    [Fact]
    public void Training_learns_which_items_follow_which_history()
    {
        // two groups of users: one takes items 1..10, the other 11..20, in random order; no features
        var rng = new Random(1);
        var seqs = Enumerable.Range(0, 80).Select(u => Enumerable.Range(u % 2 == 0 ? 1 : 11, 10).OrderBy(_ => rng.Next()).Take(8).ToArray()).ToArray();
        var data = new SequenceDataset(new Vocabulary(Enumerable.Range(1, 20).Select(i => $"i{i}").ToArray()), Enumerable.Range(0, 80).Select(u => $"u{u}").ToArray(), seqs);
        var split = LeaveOneOut.Split(data);
        var cfg = TrainingConfig.FromPreset("synthetic", "two-tower") with { Hidden = 16, MaxLength = 8, Epochs = 20, Patience = 0, BatchSize = 32, LearningRate = 1e-2f, Temperature = 0.1f, Threads = 1 };
        var state = new Trainer(cfg, split, null, _ => { }).Run();
        using var model = ModelComparison.OpenModel(cfg, split, 64);
        state.BestParameters!.CopyTo(model.Parameters, 0);
        var test = Evaluator.Evaluate(ModelComparison.Scorer(model), split.Test, new EvaluationOptions());
        // with the user's 7 seen items excluded, 3 of the 13 candidates belong to the group: chance HR@5 is about 0.38
        Assert.True(test.Hr5 > 0.9, $"HR@5 {test.Hr5}");
    }
}
