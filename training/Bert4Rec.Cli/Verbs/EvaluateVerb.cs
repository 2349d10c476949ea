// `bert4rec evaluate`: a trained run or a baseline under both protocols (full ranking, pop100), as a table and a RESULT line.
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
    public string Name => "evaluate";
    public string Summary => "evaluate a model or a baseline (full ranking and pop100)";
    public string Usage => """
          --data DIR            a prepared dataset
          --baseline pop|markov | --run DIR (a training run folder) | --checkpoint FILE
                                | --onnx FILE (a full-catalog model_full.onnx, scored through ONNX Runtime)
          --provider cpu|cuda|auto  --onnx: ONNX Runtime's execution provider (default cpu; auto falls back to cpu)
          --split test|validation   (default test)
          --keep-seen           full protocol: keep the history's items in the ranking
          --seed S              pop100 negative sampling seed (default 42)
          --threads N
        """;

    public int Run(CommandLine a)
    {
        var data = SequenceDataset.Load(a.Required("data"));
        string? baseline = a.String("baseline"), run = a.String("run"), ckpt = a.String("checkpoint"), onnx = a.String("onnx");
        string splitName = a.String("split", "test");
        bool keepSeen = a.Flag("keep-seen");
        int seed = a.Int("seed", 42), threads = a.Int("threads", 0, 0);
        var provider = Inference.OnnxRuntime.SessionOptions.ProviderFlag(a);
        a.EnsureAllUsed();
        if (onnx == null && a.Has("provider")) throw new UsageException("--provider: applies to --onnx only");
        if ((baseline != null ? 1 : 0) + (run != null ? 1 : 0) + (ckpt != null ? 1 : 0) + (onnx != null ? 1 : 0) != 1)
            throw new UsageException("give exactly one of --baseline, --run, --checkpoint or --onnx");
        if (splitName is not ("test" or "validation")) throw new UsageException($"--split: '{splitName}' is not test or validation");
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
            scorer = baseline switch
            {
                "pop" => new PopularityScorer(split.TrainSequences, split.ItemCount),
                "markov" => new MarkovScorer(split.TrainSequences, split.ItemCount),
                _ => throw new UsageException($"--baseline: '{baseline}' is not pop or markov"),
            };
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
        foreach (var proto in new[] { EvaluationProtocol.Full, EvaluationProtocol.Pop100 })
        {
            var clock = Stopwatch.StartNew();
            var m = Evaluator.Evaluate(scorer, cases, new EvaluationOptions { Protocol = proto, ExcludeSeen = !keepSeen, Seed = seed, ItemPopularity = pop });
            Console.WriteLine($"  {m}   ({clock.Elapsed.TotalSeconds:F2}s)");
            results[m.Protocol] = m.ToDictionary();
        }
        model?.Dispose();
        session?.Dispose();
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(results));
        return 0;
    }
}
