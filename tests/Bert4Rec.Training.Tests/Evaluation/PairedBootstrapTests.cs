// The paired comparison: its interval covers a planted difference at about its nominal rate, a zero difference gives an
// interval around 0 and a large p, the p-value is calibrated under the null, and per-case ranks agree with the averages.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;

namespace Bert4Rec.Training.Tests.Evaluation;

public class PairedBootstrapTests
{
    /// <summary>n users: A's values, and B's = A's minus <paramref name="delta"/> plus Gaussian noise of sd <paramref name="noise"/>.</summary>
    private static (double[] A, double[] B) Pairs(int n, double delta, double noise, int seed)
    {
        var rng = new Random(seed);
        var a = new double[n];
        var b = new double[n];
        for (int i = 0; i < n; i++)
        {
            a[i] = rng.NextDouble();
            double g = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            b[i] = a[i] - delta + noise * g;
        }
        return (a, b);
    }

    [Fact]
    public void A_known_difference_is_inside_the_interval_and_significant()
    {
        var (a, b) = Pairs(800, 0.05, 0.1, seed: 1);
        var r = PairedBootstrap.Compare(a, b, seed: 7);
        Assert.Equal(800, r.Users);
        Assert.InRange(0.05, r.Low, r.High);
        Assert.InRange(r.Difference, r.Low, r.High);
        Assert.True(r.Low > 0, $"interval {r.Low}..{r.High} should exclude 0");
        Assert.True(r.PValue < 1e-3, $"p {r.PValue}");
        Assert.Equal(1.0 / (1 + r.Resamples), r.PValue, 12);   // no flipped mean reaches a 30-sigma difference
        Assert.Equal(a.Average() - b.Average(), r.Difference, 12);
    }

    [Fact]
    public void Zero_difference_gives_an_interval_around_zero_and_a_large_p()
    {
        // B holds A's values for other users: the per-user differences are large, their mean is exactly 0
        var (a, _) = Pairs(500, 0, 0, seed: 2);
        var b = a.Reverse().ToArray();
        var r = PairedBootstrap.Compare(a, b, seed: 11);
        Assert.InRange(0.0, r.Low, r.High);
        Assert.True(r.High - r.Low > 0.02, $"interval {r.Low}..{r.High} should reflect the per-user spread");
        Assert.True(r.PValue > 0.5, $"p {r.PValue}");

        // identical models: every difference is 0
        var same = PairedBootstrap.Compare(a, a, seed: 11);
        Assert.Equal((0.0, 0.0, 0.0, 1.0), (same.Difference, same.Low, same.High, same.PValue));
    }

    [Fact]
    public void The_interval_covers_the_true_difference_at_about_its_level_and_p_is_calibrated_under_the_null()
    {
        const int Trials = 200;
        int covered = 0, falseAlarms = 0;
        for (int t = 0; t < Trials; t++)
        {
            var (a, b) = Pairs(120, 0.03, 0.2, seed: 100 + t);
            var r = PairedBootstrap.Compare(a, b, seed: t, resamples: 1000);
            if (r.Low <= 0.03 && 0.03 <= r.High) covered++;
            var (c, d) = Pairs(120, 0, 0.2, seed: 10_000 + t);
            if (PairedBootstrap.Compare(c, d, seed: t, resamples: 1000).PValue < 0.05) falseAlarms++;
        }
        // binomial(200, 0.95) lies in 180..197 with probability > 0.999; the percentile interval runs slightly narrow at n = 120
        Assert.InRange(covered, 176, 198);
        Assert.InRange(falseAlarms, 2, 22);
    }

    [Fact]
    public void The_same_seed_gives_the_same_result_and_bad_input_is_refused()
    {
        var (a, b) = Pairs(300, 0.01, 0.3, seed: 4);
        Assert.Equal(PairedBootstrap.Compare(a, b, seed: 5), PairedBootstrap.Compare(a, b, seed: 5));
        Assert.NotEqual(PairedBootstrap.Compare(a, b, seed: 5).Low, PairedBootstrap.Compare(a, b, seed: 6).Low);
        Assert.Throws<ArgumentException>(() => PairedBootstrap.Compare(a, b[..10], seed: 1));
        Assert.Throws<ArgumentException>(() => PairedBootstrap.Compare([], [], seed: 1));
        Assert.Throws<ArgumentException>(() => PairedBootstrap.Compare([double.NaN], [0.0], seed: 1));
    }

    [Fact]
    public void Per_case_ranks_average_to_the_evaluators_metrics()
    {
        var data = SyntheticDataset.Generate(new SyntheticOptions { Users = 300, Items = 80, Seed = 9 });
        var split = LeaveOneOut.Split(data);
        var scorer = new MarkovScorer(split.TrainSequences, split.ItemCount);
        var pop = SequenceDataset.Popularity(split.TrainSequences, split.ItemCount);
        foreach (var o in new[] { new EvaluationOptions(), new EvaluationOptions { Protocol = EvaluationProtocol.Pop100, ItemPopularity = pop } })
        {
            var ranks = Evaluator.Ranks(scorer, split.Test, o);
            Assert.Equal(split.Test.Count, ranks.Length);
            Assert.Equal(Evaluator.Evaluate(scorer, split.Test, o), RankingMetrics.FromRanks(Evaluator.Label(o), ranks));
            Assert.Equal(RankingMetrics.FromRanks("x", ranks).Ndcg10, PairedBootstrap.Ndcg(ranks).Average(), 12);
        }
    }

    [Theory]
    [InlineData(0.12, 10_000, "0.120")]
    [InlineData(0.0007, 10_000, "0.0007")]             // a small p is printed as it is, not as a bound
    [InlineData(1.0 / 10_001, 10_000, "<= 0.0001")]    // the floor of a sign-flip test with 10,000 resamples is a bound
    [InlineData(1.0 / 501, 500, "<= 0.0020")]
    public void P_values_are_printed_as_computed_and_the_tests_floor_as_a_bound(double p, int resamples, string text) =>
        Assert.Equal(text, PairedDifference.FormatP(p, resamples));
}
