// `bert4rec train`: BERT4Rec on a prepared dataset into a run folder; ends with test metrics under both protocols.
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Bert4Rec.Contracts;
using Bert4Rec.Torch;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Model;
using Bert4Rec.Training.Pipeline;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Cli;

internal sealed class TrainVerb : IVerb
{
    public Command Build()
    {
        var data = Flags.Required("--data", "a prepared dataset", "DIR");
        var outDir = Flags.Required("--out", "the run folder", "RUN_DIR");
        var resume = Flags.Flag("--resume", "continue the run in --out after a crash or kill (its own hyperparameters)");
        var skipTest = Flags.Flag("--skip-test", "do not read the test split at the end (for tuning on validation)");
        var hyper = new TrainingFlags();
        var engineFlags = new EngineChoice.Options();
        var c = new Command("train", """
            train a model (bert4rec, sasrec, gru4rec; neumf, deepfm, two-tower) on a prepared dataset
            both engines write the same run folder and checkpoints; a run may be resumed with either engine
            run folder: config.json, metrics.jsonl, loss.png, checkpoint.bin (full state, for --resume), best.bin (best weights),
            vocab.txt, final.bin (the refit's weights, with --refit on), metrics.json (test split, full and pop100, of the weights
            the run hands on: final.bin, else best.bin)
            """) { data, outDir, resume, skipTest };
        hyper.AddTo(c);
        engineFlags.AddTo(c);
        c.SetAction(r => Run(r, r.GetValue(data)!, r.GetValue(outDir)!, r.GetValue(resume), r.GetValue(skipTest), hyper, engineFlags));
        return c;
    }

    private static int Run(ParseResult a, string dataDir, string outDir, bool resume, bool skipTest, TrainingFlags hyper, EngineChoice.Options engineFlags)
    {
        string ckpt = Path.Combine(outDir, Trainer.CheckpointFile);
        // a resumed run keeps its checkpoint's hyperparameters: flags that repeat them are accepted, changed ones refused
        // (only the thread count may change, at the cost of bitwise equality)
        TrainingState? from = resume ? Checkpoint.Load(ckpt) : null;
        var cfg = hyper.Read(a, out var given, from?.Config);
        var engine = engineFlags.Read(a);
        if (from != null)
        {
            var changed = TrainingConfig.ChangedFlags(cfg, from.Config);
            if (changed.Count > 0)
                throw new UsageException($"--resume continues {ckpt} with its own hyperparameters; --{string.Join(", --", changed)} differ from the run's (drop them)");
        }
        else if (File.Exists(ckpt)) throw new UsageException($"{ckpt} exists: pass --resume to continue that run, or choose another --out");
        // the engine is loaded (and the device resolved) before anything is written, so a refusal leaves no run folder behind
        var factory = engine.Factory(cfg.Kind, w => Console.Error.WriteLine("bert4rec train: warning: " + w));
        var data = SequenceDataset.Load(dataDir);
        var split = LeaveOneOut.Split(data);
        Directory.CreateDirectory(outDir);
        // the run's vocab.txt; a resumed run keeps its own and the trainer refuses a dataset whose vocabulary differs
        string vocabPath = Path.Combine(outDir, SequenceDataset.VocabFile);
        string vocabSha;
        if (from == null) { data.Items.Save(vocabPath); vocabSha = BundleManifests.Sha256(vocabPath); }
        else
        {
            string probe = Path.GetTempFileName();
            try { data.Items.Save(probe); vocabSha = BundleManifests.Sha256(probe); }
            finally { File.Delete(probe); }
        }
        Console.WriteLine($"training {cfg.Preset} on {dataDir} ({engine.Label} engine): {data.Statistics}");
        var clock = Stopwatch.StartNew();
        var state = ConsoleProgress.Run((progress, log) => new Trainer(cfg, split, outDir, log, progress)
        {
            VocabularySha256 = vocabSha,
            ModelFactory = factory,
        }.Run(from));
        double secs = clock.Elapsed.TotalSeconds;
        if (skipTest)
        {
            // tuning runs: choices are made on the validation split only; the test split stays unread
            var done = new Dictionary<string, object>
            {
                ["model"] = cfg.Model, ["engine"] = engine.Label, ["preset"] = cfg.Preset, ["epochs"] = state.Epoch, ["best_epoch"] = state.BestEpoch, ["seconds"] = Math.Round(secs, 1),
                ["validation_ndcg@10"] = Math.Round(state.BestMetric, 5),
            };
            Console.WriteLine("RESULT " + JsonSerializer.Serialize(done));
            return 0;
        }
        bool refit = Refit.Applies(cfg, state);
        var weights = Refit.HandedOn(cfg, split, state, null, Console.WriteLine, factory, Path.Combine(outDir, RunLayout.FinalWeights), vocabSha);
        secs = clock.Elapsed.TotalSeconds;
        using var model = ModelComparison.OpenModel(cfg, split, 256);
        weights.CopyTo(model.Parameters, 0);
        var scorer = ModelComparison.Scorer(model);
        var (full, p100, recall200) = RunFolder.EvaluateTest(scorer, split);
        // the NCF paper's protocol beside the project's two (He et al. 2017: 100 uniformly drawn negatives)
        var uniform = !cfg.Kind.IsSequential() ? Evaluator.Evaluate(scorer, split.Test, new EvaluationOptions { Protocol = EvaluationProtocol.Uniform100 }) : null;
        string title = refit ? $"test (refit weights, {state.BestStep:N0} steps on train + validation items)" : $"test (best weights, epoch {state.BestEpoch})";
        if (Terminal.Interactive)
            Terminal.MetricsTable(title, [(full.Protocol, full, null), (p100.Protocol, p100, null), .. uniform != null ? new[] { (uniform.Protocol, uniform, (double?)null) } : []]);
        else
        {
            Console.WriteLine(title + ":");
            Console.WriteLine($"  {full}");
            Console.WriteLine($"  {p100}");
            if (uniform != null) Console.WriteLine($"  {uniform}");
        }
        Console.WriteLine($"  full recall@{RankingMetrics.StageOneK} {recall200:F4} (test items in the full ranking's top {RankingMetrics.StageOneK}: a stage one's recall)");
        var facts = new Dictionary<string, object>
        {
            ["model"] = cfg.Model, ["engine"] = engine.Label, ["preset"] = cfg.Preset, ["epochs"] = state.Epoch, ["steps"] = state.GlobalStep, ["best_epoch"] = state.BestEpoch, ["best_step"] = state.BestStep, ["seconds"] = Math.Round(secs, 1),
            ["refit"] = refit, ["full_recall@200"] = Math.Round(recall200, 5),
        };
        RunFolder.WriteTestMetrics(outDir, full, p100, facts);
        var result = new Dictionary<string, object>(facts) { ["full"] = full.ToDictionary(), ["pop100"] = p100.ToDictionary() };
        if (uniform != null) result["uniform100"] = uniform.ToDictionary();
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(result));
        return 0;
    }
}
