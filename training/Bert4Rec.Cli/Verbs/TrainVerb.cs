// `bert4rec train`: BERT4Rec on a prepared dataset into a run folder; ends with test metrics under both protocols.
using System.Diagnostics;
using System.Text.Json;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Model;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Cli;

internal sealed class TrainVerb : IVerb
{
    public string Name => "train";
    public string Summary => "train BERT4Rec on a prepared dataset";
    public string Usage => """
          --data DIR --out RUN_DIR [--preset ml-1m|ml-20m|beauty|steam|synthetic] [--resume]
          --epochs --batch --lr --warmup --hidden --heads --layers --max-len --mask-prob --max-predictions
          --mask-token-rate --dropout --attn-dropout --weight-decay --clip --seed --threads
          --eval-every EPOCHS --patience N --val-users N --checkpoint-every STEPS --window-stride N
        """;

    public int Run(CommandLine a)
    {
        string dataDir = a.Required("data"), outDir = a.Required("out");
        var cfg = TrainingConfig.FromPreset(a.String("preset", "synthetic"));
        cfg = cfg with
        {
            Epochs = a.Int("epochs", cfg.Epochs, 1), BatchSize = a.Int("batch", cfg.BatchSize, 1, 4096),
            LearningRate = (float)a.Double("lr", cfg.LearningRate, 1e-8, 1), WarmupSteps = a.Int("warmup", cfg.WarmupSteps, 0),
            Hidden = a.Int("hidden", cfg.Hidden, 2), Heads = a.Int("heads", cfg.Heads, 1), Layers = a.Int("layers", cfg.Layers, 1),
            MaxLength = a.Int("max-len", cfg.MaxLength, 2, 4096), MaskProbability = (float)a.Double("mask-prob", cfg.MaskProbability, 0.001, 1),
            MaxPredictions = a.Int("max-predictions", cfg.MaxPredictions, 1), MaskTokenRate = (float)a.Double("mask-token-rate", cfg.MaskTokenRate, 0, 1),
            HiddenDropout = (float)a.Double("dropout", cfg.HiddenDropout, 0, 0.99), AttentionDropout = (float)a.Double("attn-dropout", cfg.AttentionDropout, 0, 0.99),
            WeightDecay = (float)a.Double("weight-decay", cfg.WeightDecay, 0, 10), ClipNorm = (float)a.Double("clip", cfg.ClipNorm, 0, 1e6),
            Seed = a.Int("seed", cfg.Seed), Threads = a.Int("threads", cfg.Threads, 0, 256), EvalEvery = a.Int("eval-every", cfg.EvalEvery, 0),
            Patience = a.Int("patience", cfg.Patience, 0), ValidationUsers = a.Int("val-users", cfg.ValidationUsers, 0),
            CheckpointEvery = a.Int("checkpoint-every", cfg.CheckpointEvery, 0), WindowStride = a.Int("window-stride", cfg.WindowStride, 0),
        };
        bool resume = a.Flag("resume");
        a.EnsureAllUsed();
        cfg.Validate();
        var data = SequenceDataset.Load(dataDir);
        var split = LeaveOneOut.Split(data);
        Directory.CreateDirectory(outDir);
        data.Items.Save(Path.Combine(outDir, SequenceDataset.VocabFile));
        TrainingState? from = null;
        string ckpt = Path.Combine(outDir, Trainer.CheckpointFile);
        if (resume)
        {
            from = Checkpoint.Load(ckpt);
            cfg = from.Config with { Threads = cfg.Threads };
        }
        else if (File.Exists(ckpt)) throw new UsageException($"{ckpt} exists: pass --resume to continue that run, or choose another --out");
        Console.WriteLine($"training {cfg.Preset} on {dataDir}: {data.Statistics}");
        var clock = Stopwatch.StartNew();
        var state = new Trainer(cfg, split, outDir).Run(from);
        double secs = clock.Elapsed.TotalSeconds;
        using var model = new Bert4RecModel(cfg.ToModelConfig(split.ItemCount), 256, cfg.Threads);
        (state.BestParameters ?? state.Parameters).CopyTo(model.Parameters, 0);
        var scorer = new ModelScorer(model);
        var pop = SequenceDataset.Popularity(split.TrainSequences, split.ItemCount);
        var full = Evaluator.Evaluate(scorer, split.Test, new EvaluationOptions { Protocol = EvaluationProtocol.Full });
        var p100 = Evaluator.Evaluate(scorer, split.Test, new EvaluationOptions { Protocol = EvaluationProtocol.Pop100, ItemPopularity = pop });
        Console.WriteLine($"test (best weights, epoch {state.BestEpoch}):");
        Console.WriteLine($"  {full}");
        Console.WriteLine($"  {p100}");
        var result = new Dictionary<string, object>
        {
            ["preset"] = cfg.Preset, ["epochs"] = state.Epoch, ["best_epoch"] = state.BestEpoch, ["seconds"] = Math.Round(secs, 1),
            ["full"] = full.ToDictionary(), ["pop100"] = p100.ToDictionary(),
        };
        AtomicFile.WriteAllBytes(Path.Combine(outDir, "metrics.json"), JsonSerializer.SerializeToUtf8Bytes(result, new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(result));
        return 0;
    }
}
