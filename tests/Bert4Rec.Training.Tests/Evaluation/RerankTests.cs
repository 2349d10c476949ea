// Two stages: stage two reorders stage one's top-K unseen items and everything else follows in stage one's order; compare's
// ONE>TWO rows reuse the listed models and bad pairs are refused naming --rerank.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Pipeline;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Training.Tests.Evaluation;

public class RerankTests
{
    /// <summary>Fixed scores per item (the same row for every case).</summary>
    private sealed class Fixed(float[] row) : IItemScorer
    {
        public int ItemCount => row.Length - 1;
        public int PreferredBatchSize => 4;
        public void Score(IReadOnlyList<int[]> histories, Span<float> scores)
        {
            for (int b = 0; b < histories.Count; b++) row.CopyTo(scores.Slice(b * row.Length, row.Length));
        }
    }

    // stage one prefers 8 > 7 > ... > 1; stage two prefers 1 > 2 > ... > 8
    private static readonly Fixed One = new([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    private static readonly Fixed Two = new([0, 8, 7, 6, 5, 4, 3, 2, 1]);

    [Fact]
    public void Stage_two_orders_the_candidates_and_the_rest_keeps_stage_ones_order()
    {
        // history {8}: candidates (K = 3) are 7, 6, 5; reranked 5, 6, 7, then 4, 3, 2, 1
        var r = new RerankScorer(One, Two, 3);
        var cases = new List<EvaluationCase> { new(0, [8], 5), new(1, [8], 7), new(2, [8], 4), new(3, [8], 1) };
        var ranks = Evaluator.Ranks(r, cases, new EvaluationOptions());
        Assert.Equal([1, 3, 4, 7], ranks);
        Assert.Equal(0.5, r.StageOneRecall, 9);
        // K beyond the catalog: stage two alone, seen items still never candidates
        var all = Evaluator.Ranks(new RerankScorer(One, Two, 100), cases, new EvaluationOptions());
        Assert.Equal([5, 7, 4, 1], all);
        Assert.Throws<ArgumentOutOfRangeException>(() => new RerankScorer(One, Two, 0));
        Assert.Throws<ArgumentException>(() => new RerankScorer(One, new Fixed([0, 1]), 3));
    }

    [Fact]
    public void Compare_adds_a_two_stage_row_from_the_listed_models_and_refuses_bad_pairs()
    {
        var data = SyntheticDataset.Generate(new SyntheticOptions { Users = 120, Items = 40, MinLength = 5, MaxLength = 15, Clusters = 3, Seed = 3 });
        var deepfm = TrainingConfig.FromPreset("synthetic", "deepfm") with { Hidden = 8, Layers = 2, Epochs = 2, Patience = 0, Threads = 1 };
        var logged = new List<string>();
        var report = ModelComparison.Run(data, new ComparisonOptions
        {
            Models = ["markov", "deepfm"], Configs = [deepfm], Reranks = [("markov", "deepfm")], RerankCandidates = 10, Resamples = 50, Log = logged.Add,
        });
        Assert.Equal(["markov", "deepfm", "markov>deepfm"], report.Models.Select(m => m.Name));
        Assert.Equal(3, report.Significance.Count);
        Assert.Contains(logged, l => l.StartsWith("test markov>deepfm: stage one's recall@10 of the test item", StringComparison.Ordinal));
        var two = report.Models[2];
        Assert.Equal(report.Models[0].TrainSeconds + report.Models[1].TrainSeconds, two.TrainSeconds, 9);

        foreach (var (pairs, k) in new[] { (new[] { ("markov", "sasrec") }, 10), (new[] { ("markov", "markov") }, 10), (new[] { ("markov", "deepfm") }, 0),
                                           (new[] { ("markov", "deepfm"), ("markov", "deepfm") }, 10) })
        {
            var e = Assert.Throws<UsageException>(() => ModelComparison.Run(data, new ComparisonOptions
                { Models = ["markov", "deepfm"], Configs = [deepfm], Reranks = pairs, RerankCandidates = k }));
            Assert.Contains("--rerank", e.Message);
        }
    }
}
