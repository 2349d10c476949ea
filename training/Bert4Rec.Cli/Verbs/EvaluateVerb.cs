// `bert4rec evaluate`: a trained run or a baseline under both protocols (full ranking, pop100), as a table and a RESULT line.
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Onnx;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Model;
using Bert4Rec.Training.Pipeline;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Cli;

internal sealed class EvaluateVerb : IVerb
{
    public Command Build()
    {
        var dataOpt = Flags.Required("--data", "a prepared dataset", "DIR");
        var baselineOpt = Flags.Choice<string?>("--baseline", "a baseline: pop or markov", null, ("pop", "pop"), ("markov", "markov"));
        var runOpt = Flags.String("--run", "a training run folder (its best weights)", helpName: "DIR");
        var ckptOpt = Flags.String("--checkpoint", "a checkpoint or weights file", helpName: "FILE");
        var onnxOpt = Flags.String("--onnx", "a full-catalog model_full.onnx, scored through ONNX Runtime", helpName: "FILE");
        var providerOpt = Inference.OnnxRuntime.SessionOptions.ProviderOption();
        providerOpt.Description = "--onnx: " + providerOpt.Description;
        var splitOpt = Flags.Choice("--split", "which split to score", "test", "test", "validation");
        var keepSeenOpt = Flags.Flag("--keep-seen", "full protocol: keep the history's items in the ranking");
        var seedOpt = Flags.Int("--seed", "pop100 negative sampling seed", 42);
        var threadsOpt = Flags.Int("--threads", "compute threads (0 = one per core)", 0, 0);
        var c = new Command("evaluate", "evaluate a model or a baseline (full ranking and pop100); give one of --baseline, --run, --checkpoint, --onnx")
            { dataOpt, baselineOpt, runOpt, ckptOpt, onnxOpt, providerOpt, splitOpt, keepSeenOpt, seedOpt, threadsOpt };
        c.SetAction(a =>
        {
            string? baseline = a.GetValue(baselineOpt), run = a.GetValue(runOpt), ckpt = a.GetValue(ckptOpt), onnx = a.GetValue(onnxOpt);
            if (onnx == null && a.Given(providerOpt)) throw new UsageException("--provider: applies to --onnx only");
            if ((baseline != null ? 1 : 0) + (run != null ? 1 : 0) + (ckpt != null ? 1 : 0) + (onnx != null ? 1 : 0) != 1)
                throw new UsageException("give exactly one of --baseline, --run, --checkpoint or --onnx");
            return Run(SequenceDataset.Load(a.GetValue(dataOpt)!), baseline, run, ckpt, onnx, Inference.OnnxRuntime.SessionOptions.ParseProvider(a.GetValue(providerOpt)!), a.GetValue(splitOpt)!,
                a.GetValue(keepSeenOpt), a.GetValue(seedOpt), a.GetValue(threadsOpt));
        });
        return c;
    }

    private static int Run(SequenceDataset data, string? baseline, string? run, string? ckpt, string? onnx, Inference.OnnxRuntime.ExecutionProvider provider,
                           string splitName, bool keepSeen, int seed, int threads)
    {
        var split = LeaveOneOut.Split(data);
        var cases = splitName == "test" ? split.Test : split.Validation;
        IItemScorer scorer;
        string what;
        SequenceModel? model = null;
        Inference.OnnxRuntime.InferenceSession? session = null;
        if (onnx != null)
        {
            session = new Inference.OnnxRuntime.InferenceSession(onnx, new Inference.OnnxRuntime.SessionOptions { IntraOpThreads = threads, Provider = provider });
            var meta = session.Input(ModelIo.ItemIds);
            var scoresMeta = session.Output(ModelIo.ItemScores);
            if (scoresMeta.Dimensions.Length != 2 || scoresMeta.Dimensions[1] != split.ItemCount)
                throw new InvalidDataException($"{onnx}: item_scores has shape [{string.Join(",", scoresMeta.Dimensions)}], the dataset has {split.ItemCount} items");
            // the scorer uses the config for the input rule only, which depends on the kind ([MASK] or not): the file records it
            var kind = OnnxWeights.Kind(OnnxWeights.ReadModel(onnx), onnx);
            var cfg = new ModelConfig { Kind = kind, ItemCount = split.ItemCount, MaxLength = (int)meta.Dimensions[1] };
            scorer = new OnnxItemScorer(session, cfg);
            what = $"{kind.Name()} (onnx)";
        }
        else if (baseline != null)
        {
            scorer = baseline == "pop" ? new PopularityScorer(split.TrainSequences, split.ItemCount) : new MarkovScorer(split.TrainSequences, split.ItemCount);
            what = baseline;
        }
        else
        {
            // a run folder: the weights it hands on (RunFolder.WeightsPath; never the refit's for the validation split)
            string path = ckpt ?? RunFolder.WeightsPath(run!, forValidation: splitName == "validation");
            var (cfg, weights) = Checkpoint.LoadWeights(path);
            if (cfg.ItemCount != split.ItemCount) throw new InvalidDataException($"{path}: model has {cfg.ItemCount} items, dataset {split.ItemCount}");
            model = SequenceModels.Create(cfg, 256, threads);
            weights.CopyTo(model.Parameters, 0);
            scorer = new ModelScorer(model);
            what = cfg.Kind.Name();
        }
        var pop = SequenceDataset.Popularity(split.TrainSequences, split.ItemCount);
        var results = new Dictionary<string, object> { ["model"] = what, ["split"] = splitName };
        Console.WriteLine($"{what} on the {splitName} split ({cases.Count:N0} users, {split.ItemCount:N0} items)");
        var rows = new List<(string, RankingMetrics, double?)>();
        foreach (var proto in new[] { EvaluationProtocol.Full, EvaluationProtocol.Pop100 })
        {
            var clock = Stopwatch.StartNew();
            var m = Evaluator.Evaluate(scorer, cases, new EvaluationOptions { Protocol = proto, ExcludeSeen = !keepSeen, Seed = seed, ItemPopularity = pop });
            if (!Terminal.Interactive) Console.WriteLine($"  {m}   ({clock.Elapsed.TotalSeconds:F2}s)");
            rows.Add((m.Protocol, m, clock.Elapsed.TotalSeconds));
            results[m.Protocol] = m.ToDictionary();
        }
        if (Terminal.Interactive) Terminal.MetricsTable($"{what}, {splitName} split", rows);
        model?.Dispose();
        session?.Dispose();
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(results));
        return 0;
    }
}
