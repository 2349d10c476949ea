// The refit after a validated run: what it trains on, how long, where its weights go, and that compare's baselines are
// refit with the trained models so every tested model has seen the same items.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Pipeline;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Training.Tests.Pipeline;

public class RefitTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-refit-");
    public void Dispose() => _dir.Delete(true);

    private static SequenceDataset Dataset(params int[][] sequences)
    {
        int items = sequences.Max(s => s.Max());
        return new SequenceDataset(new Vocabulary(Enumerable.Range(1, items).Select(i => $"i{i}").ToArray()),
                                   Enumerable.Range(1, sequences.Length).Select(u => $"u{u}").ToArray(), sequences);
    }

    [Fact]
    public void The_refit_split_trains_on_every_item_before_the_test_item_and_validates_nothing()
    {
        var split = LeaveOneOut.Split(Dataset([1, 2, 3, 4, 5], [2, 3], [4, 1, 2]));
        var refit = LeaveOneOut.WithValidationItems(split);
        Assert.Equal([1, 2, 3, 4], refit.TrainSequences[0]);   // the validation item 4 is training data now
        Assert.Equal([2, 3], refit.TrainSequences[1]);         // under 3 items: no test case, everything was training data already
        Assert.Equal([4, 1], refit.TrainSequences[2]);
        Assert.Empty(refit.Validation);
        Assert.Same(split.Test, refit.Test);
        Assert.Equal([1, 2, 3], split.TrainSequences[0]);      // the validated split is left as it was
    }

    [Fact]
    public void A_refit_trains_the_given_steps_from_the_seed_and_its_weights_are_what_the_run_hands_on()
    {
        var data = SyntheticDataset.Generate(new SyntheticOptions { Users = 120, Items = 40, MinLength = 5, MaxLength = 15, Clusters = 3, Seed = 2 });
        var split = LeaveOneOut.Split(data);
        var cfg = TrainingConfig.FromPreset("synthetic", "sasrec") with { Hidden = 16, Layers = 1, MaxLength = 16, BatchSize = 32, Threads = 1, Refit = true };
        var logged = new List<string>();
        string final = Path.Combine(_dir.FullName, RunLayout.FinalWeights);
        var a = Refit.Run(cfg, split, 7, null, logged.Add, weightsPath: final);
        var b = Refit.Run(cfg, split, 7, null, _ => { });
        Assert.Equal(a, b);                                    // seeded: the same weights every time
        var c = Refit.Run(cfg, split, 6, null, _ => { });
        Assert.NotEqual(a, c);                                 // and the step count is what it trained for

        var (config, weights) = Checkpoint.LoadWeights(final);
        Assert.Equal(a, weights);
        Assert.Equal(split.ItemCount, config.ItemCount);
        Assert.Contains(logged, l => l.Contains("7 steps", StringComparison.Ordinal));
        Assert.DoesNotContain(logged, l => l.Contains("validation NDCG", StringComparison.Ordinal));

        File.WriteAllText(Path.Combine(_dir.FullName, RunLayout.BestWeights), "stand-in");
        Assert.Equal(final, RunFolder.WeightsPath(_dir.FullName));
        Assert.Equal(Path.Combine(_dir.FullName, RunLayout.BestWeights), RunFolder.WeightsPath(_dir.FullName, forValidation: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => Refit.Run(cfg, split, 0, null, _ => { }));
    }

    [Fact]
    public void Compare_refits_the_baselines_on_the_validation_items_too()
    {
        // user 1's validation item 3 follows 2; users 2..9 end in 2 -> 3. Only a Markov chain that counts validation items
        // has seen 2 -> 3 when it ranks their test item.
        var seqs = new List<int[]> { new[] { 1, 2, 3, 4 } };
        for (int u = 0; u < 8; u++) seqs.Add([5, 2, 3]);
        var data = Dataset([.. seqs]);
        var plain = ModelComparison.Run(data, new ComparisonOptions { Models = ["markov"], Refit = false, Resamples = 10 });
        var refit = ModelComparison.Run(data, new ComparisonOptions { Models = ["markov"], Refit = true, Resamples = 10 });
        Assert.False(plain.Models[0].Refit);
        Assert.True(refit.Models[0].Refit);
        Assert.Equal(plain.Models[0].ValidationNdcg10, refit.Models[0].ValidationNdcg10);   // validation never sees the refit
        Assert.True(refit.Models[0].Full.Hr1 >= 8.0 / 9, $"refit HR@1 {refit.Models[0].Full.Hr1}");
        Assert.True(plain.Models[0].Full.Hr1 < 0.5, $"plain HR@1 {plain.Models[0].Full.Hr1}");
        Assert.Contains("refit", refit.Markdown());
    }
}
