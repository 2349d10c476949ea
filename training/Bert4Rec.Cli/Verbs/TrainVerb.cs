// `bert4rec train`: BERT4Rec on a prepared dataset into a run folder; ends with test metrics under both protocols.
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
    public string Name => "train";
    public string Summary => "train a model (bert4rec, sasrec, gru4rec; neumf) on a prepared dataset";
    public string Usage => """
          --data DIR --out RUN_DIR [--preset ml-1m|ml-20m|beauty|steam|synthetic | --preset-file FILE] [--resume]
          --preset-file FILE              a whole config as JSON (tune's preset.json, a run's config.json); flags override it
          --epochs --batch --lr --warmup --hidden --heads --layers --max-len --mask-prob --max-predictions
          --mask-token-rate --dropout --attn-dropout --weight-decay --clip --seed --threads
          --eval-every EPOCHS | --eval-every-steps STEPS  --patience EVALUATIONS --val-users N
          --checkpoint-every STEPS --window-stride N --model bert4rec|sasrec|gru4rec|neumf
          --features on|off               neumf: embed the dataset's user and item feature fields (default on); --negatives K
                                          are its sampled negatives per positive (preset 4), --hidden its predictive factors
          --skip-test                     do not read the test split at the end (for tuning on validation)
          --refit on|off                  after training, train again from the start on the validation items too, for the best
                                          validation's step count; test and hand on those weights (final.bin)
          --engine native|torchsharp      native (own C# kernels + OpenBLAS, default) or TorchSharp (libtorch autograd; bert4rec)
          --device cpu|cuda|auto          torchsharp only: auto = CUDA where TorchSharp reports it, else the CPU with a warning
        both engines write the same run folder and checkpoints; a run may be resumed with either engine
        run folder: config.json, metrics.jsonl, loss.svg, checkpoint.bin (full state, for --resume), best.bin (best weights),
        vocab.txt, final.bin (the refit's weights, with --refit on), metrics.json (test split, full and pop100, of the weights
        the run hands on: final.bin, else best.bin)
        """;

    public int Run(CommandLine a)
    {
        string dataDir = a.Required("data"), outDir = a.Required("out");
        bool resume = a.Flag("resume");
        bool skipTest = a.Flag("skip-test");
        string ckpt = Path.Combine(outDir, Trainer.CheckpointFile);
        // a resumed run keeps its checkpoint's hyperparameters: flags that repeat them are accepted, changed ones refused
        // (only the thread count may change, at the cost of bitwise equality)
        TrainingState? from = resume ? Checkpoint.Load(ckpt) : null;
        var cfg = TrainingConfig.FromCommandLine(a, out var given, from?.Config);
        var engine = EngineChoice.Read(a);
        a.EnsureAllUsed();
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
        var progress = new ConsoleProgress();
        var state = new Trainer(cfg, split, outDir, line => { progress.Close(); Console.WriteLine(line); }, progress)
        {
            VocabularySha256 = vocabSha,
            ModelFactory = factory,
        }.Run(from);
        progress.Close();
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
        var weights = state.BestParameters ?? state.Parameters;
        bool refit = cfg.Refit && state.BestStep > 0;
        if (refit)
            weights = Refit.Run(cfg, split, state.BestStep, null, Console.WriteLine, factory, Path.Combine(outDir, RunLayout.FinalWeights), vocabSha);
        secs = clock.Elapsed.TotalSeconds;
        using var model = ModelComparison.OpenModel(cfg, split, 256);
        weights.CopyTo(model.Parameters, 0);
        var scorer = ModelComparison.Scorer(model);
        var (full, p100) = RunFolder.EvaluateTest(scorer, split);
        Console.WriteLine(refit ? $"test (refit weights, {state.BestStep:N0} steps on train + validation items):" : $"test (best weights, epoch {state.BestEpoch}):");
        Console.WriteLine($"  {full}");
        Console.WriteLine($"  {p100}");
        // the NCF paper's protocol beside the project's two (He et al. 2017: 100 uniformly drawn negatives)
        var uniform = cfg.Kind == ModelKind.NeuMf ? Evaluator.Evaluate(scorer, split.Test, new EvaluationOptions { Protocol = EvaluationProtocol.Uniform100 }) : null;
        if (uniform != null) Console.WriteLine($"  {uniform}");
        var facts = new Dictionary<string, object>
        {
            ["model"] = cfg.Model, ["engine"] = engine.Label, ["preset"] = cfg.Preset, ["epochs"] = state.Epoch, ["steps"] = state.GlobalStep, ["best_epoch"] = state.BestEpoch, ["best_step"] = state.BestStep, ["seconds"] = Math.Round(secs, 1),
            ["refit"] = refit,
        };
        RunFolder.WriteTestMetrics(outDir, full, p100, facts);
        var result = new Dictionary<string, object>(facts) { ["full"] = full.ToDictionary(), ["pop100"] = p100.ToDictionary() };
        if (uniform != null) result["uniform100"] = uniform.ToDictionary();
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(result));
        return 0;
    }
}
