// End-to-end training checks: the model learns the synthetic data's planted structure, training is deterministic, and a run
// interrupted between checkpoints resumes to the same weights bitwise; the run folder holds what it promises.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Model;
using Bert4Rec.Training.Training;
using Xunit.Abstractions;

namespace Bert4Rec.Training.Tests.Training;

public class LearningTests(ITestOutputHelper output) : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-train-");
    public void Dispose() => _dir.Delete(true);

    internal static LeaveOneOutSplit SmallSynthetic() =>
        LeaveOneOut.Split(SyntheticDataset.Generate(new SyntheticOptions { Users = 800, Items = 200, MinLength = 8, MaxLength = 30, Seed = 5 }));

    private static TrainingConfig Small(int epochs) =>
        TrainingConfig.FromPreset("synthetic") with { Epochs = epochs, MaxLength = 30, Threads = 2, Patience = 0, EvalEvery = 0 };

    [Fact]
    public void A_short_run_beats_popularity_by_at_least_twice_on_synthetic_data()
    {
        var split = SmallSynthetic();
        var cfg = Small(14) with { EvalEvery = 2 };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var state = new Trainer(cfg, split, null, _ => { }).Run();
        double secs = clock.Elapsed.TotalSeconds;
        using var model = new Bert4RecModel(cfg.ToModelConfig(split.ItemCount), 256, 2);
        state.BestParameters!.CopyTo(model.Parameters, 0);
        var opts = new EvaluationOptions { Protocol = EvaluationProtocol.Full };
        var ours = Evaluator.Evaluate(new ModelScorer(model), split.Test, opts);
        var pop = Evaluator.Evaluate(new PopularityScorer(split.TrainSequences, split.ItemCount), split.Test, opts);
        output.WriteLine($"{cfg.Epochs} epochs, {state.GlobalStep} steps in {secs:F1}s; best validation NDCG@10 {state.BestMetric:F4} at epoch {state.BestEpoch}");
        output.WriteLine($"test full: BERT4Rec NDCG@10 {ours.Ndcg10:F4} HR@10 {ours.Hr10:F4}; popularity NDCG@10 {pop.Ndcg10:F4} HR@10 {pop.Hr10:F4}; ratio {ours.Ndcg10 / pop.Ndcg10:F2}x");
        Assert.True(ours.Ndcg10 >= 2 * pop.Ndcg10, $"BERT4Rec NDCG@10 {ours.Ndcg10:F4} vs popularity {pop.Ndcg10:F4}");
    }

    [Theory]
    [InlineData(17)]   // mid-epoch, three steps after the step-14 checkpoint: those steps are lost, as with kill -9
    [InlineData(26)]   // just after an epoch's end
    public void A_run_interrupted_between_checkpoints_resumes_to_the_same_weights_bitwise(int killAtStep)
    {
        var split = SmallSynthetic();
        // validation every 5 steps, with patience, so the early-stopping state and best weights travel through the checkpoint too
        var cfg = Small(3) with { CheckpointEvery = 7, EvalEverySteps = 5, Patience = 50, ValidationUsers = 200 };
        Assert.Equal(13, new Trainer(cfg, split, null, _ => { }).StepsPerEpoch());
        // prefix samples add up to k samples per user (fewer for users with few cuts) and so more steps
        Assert.True(new Trainer(cfg with { PrefixSamples = 2 }, split, null, _ => { }).StepsPerEpoch() > 13);
        var full = new Trainer(cfg, split, null, _ => { }).Run();

        string run = Path.Combine(_dir.FullName, "run");
        var interrupted = new Trainer(cfg, split, run, _ => { }) { AfterStep = s => { if (s == killAtStep) throw new OperationCanceledException("killed"); } };
        Assert.Throws<OperationCanceledException>(() => interrupted.Run());
        var saved = Checkpoint.Load(Path.Combine(run, Trainer.CheckpointFile));
        Assert.True(saved.GlobalStep < killAtStep && saved.GlobalStep > 0, $"checkpoint at step {saved.GlobalStep}");
        var resumed = new Trainer(cfg, split, run, _ => { }).Run(saved);

        Assert.Equal(full.GlobalStep, resumed.GlobalStep);
        Assert.Equal(full.Parameters, resumed.Parameters);
        Assert.Equal(full.M, resumed.M);
        Assert.Equal(full.V, resumed.V);
        Assert.Equal(full.BestParameters, resumed.BestParameters);
        Assert.Equal((full.BestMetric, full.BestStep), (resumed.BestMetric, resumed.BestStep));
        // metrics.jsonl holds each epoch once, as if the run had not been interrupted
        Assert.Equal([1, 2, 3], Trainer.ReadHistory(run).Select(r => r.Epoch));
    }

    [Fact]
    public void Training_is_deterministic_and_the_seed_matters()
    {
        var split = SmallSynthetic();
        var cfg = Small(1);
        var a = new Trainer(cfg, split, null, _ => { }).Run();
        var b = new Trainer(cfg, split, null, _ => { }).Run();
        var c = new Trainer(cfg with { Seed = 43 }, split, null, _ => { }).Run();
        Assert.Equal(a.Parameters, b.Parameters);
        Assert.NotEqual(a.Parameters, c.Parameters);
    }

    [Fact]
    public void The_run_folder_holds_config_metrics_chart_checkpoint_and_best_weights()
    {
        var split = SmallSynthetic();
        var cfg = Small(2) with { MaxLength = 20, EvalEvery = 1, ValidationUsers = 100 };
        string run = Path.Combine(_dir.FullName, "run");
        var state = new Trainer(cfg, split, run, _ => { }).Run();
        var history = Trainer.ReadHistory(run);
        Assert.Equal([1, 2], history.Select(h => h.Epoch));
        Assert.All(history, h => { Assert.NotNull(h.Validation); Assert.True(double.IsFinite(h.Loss) && h.Loss > 0); });
        Assert.Equal(100, history[0].Validation!.Users);
        using (var png = Png.Read(Path.Combine(run, Trainer.ChartFile), PngChart.Width, PngChart.Height))
            Assert.True(Png.Count(png, PngChart.Palette[1]) > 50, "the validation line is drawn");
        Assert.Equal(cfg, System.Text.Json.JsonSerializer.Deserialize<TrainingConfig>(File.ReadAllText(Path.Combine(run, Trainer.ConfigFile))));
        var (mc, best) = Checkpoint.LoadWeights(Path.Combine(run, Trainer.BestFile));
        Assert.Equal(split.ItemCount, mc.ItemCount);
        Assert.Equal(state.BestParameters, best);
        Assert.Equal(best, Checkpoint.LoadWeights(Path.Combine(run, Trainer.CheckpointFile)).Parameters);
        // best.bin holds weights only: it cannot be resumed from, and says so
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(Path.Combine(run, Trainer.BestFile)));
        Assert.Contains("weights only", e.Message);
    }

    [Fact]
    public void A_checkpoint_round_trips_every_field()
    {
        var cfg = Small(3) with { MaxLength = 10, Hidden = 8, Heads = 2, Layers = 1 };
        long size = new Bert4Rec.Contracts.ParameterLayout(cfg.ToModelConfig(12)).TotalSize;
        float[] Fill(int k) => Enumerable.Range(0, (int)size).Select(i => (float)Math.Sin(i * k + 0.5)).ToArray();
        var s = new TrainingState
        {
            Config = cfg, ItemCount = 12, Parameters = Fill(1), M = Fill(2), V = Fill(3), AdamStep = 41, GlobalStep = 42, Epoch = 2, StepInEpoch = 5,
            BestMetric = 0.125, BestEpoch = 2, BestStep = 30, BadEvaluations = 1, BestParameters = Fill(4), Finished = false,
            LastValidation = new Bert4Rec.Contracts.RankingMetrics("full", 10, 0.1, 0.2, 0.3, 0.15, 0.2, 0.12),
        };
        string p = Path.Combine(_dir.FullName, "c.bin");
        Checkpoint.Save(p, s);
        var r = Checkpoint.Load(p);
        Assert.Equal(s.Config, r.Config);
        Assert.Equal((s.ItemCount, s.AdamStep, s.GlobalStep, s.Epoch, s.StepInEpoch, s.BestMetric, s.BestEpoch, s.BestStep, s.BadEvaluations, s.Finished),
                     (r.ItemCount, r.AdamStep, r.GlobalStep, r.Epoch, r.StepInEpoch, r.BestMetric, r.BestEpoch, r.BestStep, r.BadEvaluations, r.Finished));
        Assert.Equal(s.Parameters, r.Parameters); Assert.Equal(s.M, r.M); Assert.Equal(s.V, r.V); Assert.Equal(s.BestParameters, r.BestParameters);
        Assert.Equal(s.LastValidation, r.LastValidation);
        Assert.Equal(s.BestParameters, Checkpoint.LoadWeights(p).Parameters);
        // AtomicFile's temporary name (.c.bin.tmp-PID-ID) is gone once the rename is done
        Assert.DoesNotContain(Directory.GetFiles(_dir.FullName), f => Path.GetFileName(f).StartsWith(".c.bin.tmp-", StringComparison.Ordinal));
        Assert.StartsWith(".c.bin.tmp-", Path.GetFileName(AtomicFile.TempPathFor(p)));     // the name checked is the name used
    }

    [Fact]
    public void The_checkpoints_record_the_vocabulary_and_export_refuses_another_one()
    {
        var split = SmallSynthetic();
        string run = Path.Combine(_dir.FullName, "vocab-run");
        Directory.CreateDirectory(run);
        string vocab = Path.Combine(run, "vocab.txt");
        var items = new Vocabulary(Enumerable.Range(1, split.ItemCount).Select(i => $"item{i}").ToArray());
        items.Save(vocab);
        string sha = BundleManifests.Sha256(vocab);
        new Trainer(Small(1) with { MaxLength = 20, Threads = 1 }, split, run, _ => { }) { VocabularySha256 = sha }.Run();
        foreach (var f in new[] { Trainer.CheckpointFile, Trainer.BestFile })
        {
            Assert.Equal(sha, Checkpoint.VocabularySha256(Path.Combine(run, f)));
            Bert4Rec.Training.Pipeline.RunFolder.CheckVocabulary(Path.Combine(run, f), vocab);     // the run's own: accepted
        }
        // two lines swapped: same ids, other indices
        var lines = File.ReadAllLines(vocab);
        (lines[0], lines[1]) = (lines[1], lines[0]);
        File.WriteAllLines(vocab, lines);
        var e = Assert.Throws<InvalidDataException>(() => Bert4Rec.Training.Pipeline.RunFolder.CheckVocabulary(Path.Combine(run, Trainer.BestFile), vocab));
        Assert.Contains("not the vocabulary", e.Message);
        // resuming on a dataset with another vocabulary is refused
        var state = Checkpoint.Load(Path.Combine(run, Trainer.CheckpointFile));
        Assert.Throws<InvalidDataException>(() => new Trainer(state.Config, split, run, _ => { }) { VocabularySha256 = new string('0', 64) }.Run(state));
    }

    [Fact]
    public void Corrupt_truncated_and_foreign_checkpoints_are_refused_clearly()
    {
        var split = SmallSynthetic();
        string run = Path.Combine(_dir.FullName, "run");
        new Trainer(Small(1) with { MaxLength = 20, Threads = 1 }, split, run, _ => { }).Run();
        string p = Path.Combine(run, Trainer.CheckpointFile);
        Assert.Equal(split.ItemCount, Checkpoint.LoadWeights(p).Config.ItemCount);
        var good = File.ReadAllBytes(p);
        // a layout other than the one the arrays were written for (a feature model meeting other users or fields) is
        // marked as such, which export turns into a usage error naming the dataset; other corruption is not so marked
        var layout = Assert.Throws<InvalidDataException>(() => Checkpoint.LoadWeights(p, (c, n) => c.ToModelConfig(n + 1)));
        Assert.True(Checkpoint.IsLayoutMismatch(layout));
        Assert.Contains("the config's layout needs", layout.Message);

        var flipped = (byte[])good.Clone();
        flipped[flipped.Length / 3] ^= 1;
        File.WriteAllBytes(p, flipped);
        var checksum = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(p));
        Assert.Contains("checksum", checksum.Message);
        Assert.False(Checkpoint.IsLayoutMismatch(checksum));

        File.WriteAllBytes(p, good.AsSpan(0, good.Length - 1000).ToArray());
        Assert.Contains("corrupt or truncated", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(p)).Message);
        // a body cut short by less than the checksum's 32 bytes, with a valid checksum of its own: the last array's floats
        // must not be read out of the checksum that follows the content
        var cut = good.AsSpan(0, good.Length - 32 - 16).ToArray();
        File.WriteAllBytes(p, [.. cut, .. System.Security.Cryptography.SHA256.HashData(cut)]);
        Assert.Contains("truncated checkpoint", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(p)).Message);
        File.WriteAllBytes(p, good.AsSpan(0, 20).ToArray());
        Assert.Contains(p, Assert.Throws<InvalidDataException>(() => Checkpoint.LoadWeights(p)).Message);

        var otherVersion = (byte[])good.Clone();
        otherVersion[4] = 99;
        File.WriteAllBytes(p, otherVersion);
        Assert.Contains("version 99", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(p)).Message);

        File.WriteAllText(p, "hello, not a checkpoint");
        Assert.Contains("not a BERT4Rec checkpoint", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(p)).Message);
        Assert.Contains("not found", Assert.Throws<FileNotFoundException>(() => Checkpoint.Load(p + ".missing")).Message);
    }

    [Fact]
    public void Resuming_with_other_hyperparameters_or_another_dataset_is_refused()
    {
        var split = SmallSynthetic();
        string run = Path.Combine(_dir.FullName, "run");
        var cfg = Small(1) with { MaxLength = 20 };
        var state = new Trainer(cfg, split, run, _ => { }).Run();
        Assert.Throws<InvalidOperationException>(() => new Trainer(cfg with { LearningRate = 0.5f }, split, run, _ => { }).Run(state));
        var other = LeaveOneOut.Split(SyntheticDataset.Generate(new SyntheticOptions { Users = 100, Items = 50, Seed = 1 }));
        Assert.Contains("items", Assert.Throws<InvalidDataException>(() => new Trainer(cfg, other, run, _ => { }).Run(state)).Message);
    }
}
