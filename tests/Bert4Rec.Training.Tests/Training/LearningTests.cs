// End-to-end training checks: the model learns the synthetic data's planted structure, and training is deterministic
// and resumable bitwise.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Model;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Training.Tests.Training;

public class LearningTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-train-");
    public void Dispose() => _dir.Delete(true);

    internal static LeaveOneOutSplit SmallSynthetic() =>
        LeaveOneOut.Split(SyntheticDataset.Generate(new SyntheticOptions { Users = 800, Items = 200, MinLength = 8, MaxLength = 30, Seed = 5 }));

    [Fact]
    public void A_short_run_beats_popularity_by_at_least_twice_on_synthetic_data()
    {
        var split = SmallSynthetic();
        var cfg = TrainingConfig.FromPreset("synthetic") with { Epochs = 14, MaxLength = 30, Threads = 2, Patience = 0, EvalEvery = 2 };
        var state = new Trainer(cfg, split, null, _ => { }).Run();
        using var model = new Bert4RecModel(cfg.ToModelConfig(split.ItemCount), 256, 2);
        state.BestParameters!.CopyTo(model.Parameters, 0);
        var opts = new EvaluationOptions { Protocol = EvaluationProtocol.Full };
        var ours = Evaluator.Evaluate(new ModelScorer(model), split.Test, opts);
        var pop = Evaluator.Evaluate(new PopularityScorer(split.TrainSequences, split.ItemCount), split.Test, opts);
        Assert.True(ours.Ndcg10 >= 2 * pop.Ndcg10, $"BERT4Rec NDCG@10 {ours.Ndcg10:F4} vs popularity {pop.Ndcg10:F4}");
    }

    [Fact]
    public void Resuming_from_a_mid_run_checkpoint_ends_at_the_same_weights_bitwise()
    {
        var split = SmallSynthetic();
        var cfg = TrainingConfig.FromPreset("synthetic") with { Epochs = 3, MaxLength = 30, Threads = 2, Patience = 0, EvalEvery = 0 };
        var full = new Trainer(cfg, split, null, _ => { }).Run();

        string run = Path.Combine(_dir.FullName, "run");
        var cancel = new CancellationTokenSource();
        int epochs = 0;
        // stop after the first epoch's checkpoint, as a kill would
        var interrupted = new Trainer(cfg with { Epochs = 3 }, split, run, m => { if (m.StartsWith("epoch ")) { epochs++; if (epochs == 1) cancel.Cancel(); } });
        Assert.ThrowsAny<OperationCanceledException>(() => interrupted.Run(cancel: cancel.Token));
        var saved = Checkpoint.Load(Path.Combine(run, Trainer.CheckpointFile));
        Assert.Equal(1, saved.Epoch);
        var resumed = new Trainer(cfg, split, run, _ => { }).Run(saved);
        Assert.Equal(full.Parameters, resumed.Parameters);
    }

    [Fact]
    public void Corrupt_and_truncated_checkpoints_are_refused_clearly()
    {
        var split = SmallSynthetic();
        var cfg = TrainingConfig.FromPreset("synthetic") with { Epochs = 1, MaxLength = 20, Threads = 1, EvalEvery = 0 };
        string run = Path.Combine(_dir.FullName, "run");
        new Trainer(cfg, split, run, _ => { }).Run();
        string p = Path.Combine(run, Trainer.CheckpointFile);
        var ok = Checkpoint.LoadWeights(p);
        Assert.Equal(split.ItemCount, ok.Config.ItemCount);
        var bytes = File.ReadAllBytes(p);
        bytes[bytes.Length / 3] ^= 1;
        File.WriteAllBytes(p, bytes);
        Assert.Contains("checksum", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(p)).Message);
        File.WriteAllBytes(p, bytes.AsSpan(0, 100).ToArray());
        Assert.Throws<InvalidDataException>(() => Checkpoint.Load(p));
        File.WriteAllText(p, "hello");
        Assert.Contains("not a BERT4Rec checkpoint", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(p)).Message);
    }

    [Fact]
    public void Masking_respects_rho_the_cap_and_the_last_item_sample()
    {
        var items = Enumerable.Range(1, 40).ToArray();
        var ids = new int[50]; var labels = new int[50];
        int masked = 0;
        var rng = new Random(1);
        for (int r = 0; r < 200; r++)
        {
            ClozeMasker.Mask(items, 50, 100, 0.2f, 5, 1f, false, rng, ids, labels);
            int k = labels.Count(l => l != 0);
            Assert.InRange(k, 1, 5);
            masked += k;
            for (int t = 0; t < 10; t++) Assert.Equal(0, ids[t]);                 // left padding
            for (int t = 10; t < 50; t++) Assert.Equal(labels[t] != 0 ? 101 : items[t - 10], ids[t]);
        }
        ClozeMasker.Mask(items, 50, 100, 0.2f, 5, 1f, true, rng, ids, labels);
        Assert.Equal(40, labels[49]);
        Assert.Equal(101, ids[49]);
        Assert.Single(labels, l => l != 0);
        // windows of 40 ending at 100, 95, ... until one starts at 0
        Assert.Equal(Enumerable.Range(0, 13).Select(i => (60 - 5 * i, 40)).ToList(), ClozeMasker.Windows(100, 40, 5).Select(w => (w.Start, w.Length)).ToList());
        Assert.Equal(new[] { (0, 7) }, ClozeMasker.Windows(7, 40, 5).Select(w => (w.Start, w.Length)));
        Assert.Equal(1f, Bert4Rec.Training.Optim.LearningRateSchedule.At(9, 10, 110, 1f), 5);
        Assert.Equal(0.5f, Bert4Rec.Training.Optim.LearningRateSchedule.At(60, 10, 110, 1f), 5);
    }
}

public class TrainingConfigTests
{
    [Theory]
    [InlineData("heads", 3)]
    [InlineData("mask-prob", 0)]
    [InlineData("epochs", 0)]
    [InlineData("dropout", 1)]
    public void Invalid_hyperparameters_are_refused_naming_the_flag(string flag, double value)
    {
        var cfg = TrainingConfig.FromPreset("ml-1m");
        cfg = flag switch
        {
            "heads" => cfg with { Heads = (int)value },
            "mask-prob" => cfg with { MaskProbability = (float)value },
            "epochs" => cfg with { Epochs = (int)value },
            _ => cfg with { HiddenDropout = (float)value },
        };
        var e = Assert.Throws<UsageException>(() => cfg.Validate());
        Assert.Contains("--" + flag, e.Message);
    }

    [Fact]
    public void Presets_follow_the_design_table_and_unknown_presets_are_refused()
    {
        var b = TrainingConfig.FromPreset("beauty");
        Assert.Equal((64, 2, 2, 50, 0.6f, 30, 0.5f, 0.2f), (b.Hidden, b.Heads, b.Layers, b.MaxLength, b.MaskProbability, b.MaxPredictions, b.HiddenDropout, b.AttentionDropout));
        var s = TrainingConfig.FromPreset("steam");
        Assert.Equal((256, 8, 50, 0.4f), (s.Hidden, s.Heads, s.MaxLength, s.MaskProbability));
        Assert.Contains("--preset", Assert.Throws<UsageException>(() => TrainingConfig.FromPreset("imdb")).Message);
    }
}
