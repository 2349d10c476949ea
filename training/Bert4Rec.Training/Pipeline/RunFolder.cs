// The library side of a training run folder (RunLayout's files): which weights a run hands on, the model they make, and
// the test metrics record that `train` writes and `export` carries into the bundle manifest.
using System.Text.Json;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Model;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Training.Pipeline;

public static class RunFolder
{
    /// <summary>The weights a run hands on: its refit's weights (final.bin) when it refit, else its best weights (best.bin), else
    /// the checkpoint of a run that has not validated yet. <paramref name="forValidation"/> skips final.bin, which was trained
    /// on the validation items.</summary>
    public static string WeightsPath(string runDir, bool forValidation = false)
    {
        string final = Path.Combine(runDir, RunLayout.FinalWeights);
        if (!forValidation && File.Exists(final)) return final;
        string best = Path.Combine(runDir, RunLayout.BestWeights);
        return File.Exists(best) ? best : Path.Combine(runDir, RunLayout.Checkpoint);
    }

    /// <summary>Refuses a vocabulary file that is not the one the weights were trained with (when the weights record it).</summary>
    public static void CheckVocabulary(string weightsPath, string vocabPath)
    {
        string want = Checkpoint.VocabularySha256(weightsPath);
        if (want.Length == 0) return;
        string got = BundleManifests.Sha256(vocabPath);
        if (got != want)
            throw new InvalidDataException($"{vocabPath}: not the vocabulary {Path.GetFileName(weightsPath)} was trained with (SHA-256 differs): exporting it would map item indices to the wrong raw ids");
    }

    /// <summary>The model of a checkpoint or weights file (any kind), its weights loaded, for batches of up to <paramref name="maxBatch"/>.</summary>
    public static SequenceModel LoadModel(string weightsPath, int maxBatch = 256, int threads = 0)
    {
        var (cfg, weights) = Checkpoint.LoadWeights(weightsPath);
        var model = SequenceModels.Create(cfg, maxBatch, threads);
        weights.CopyTo(model.Parameters, 0);
        return model;
    }

    /// <summary>
    /// What `export` needs of a checkpoint or weights file: the model config, the weights and, for a Two-Tower run, the item
    /// feature table. A Two-Tower run's layout depends on the dataset's feature fields, so it needs <paramref name="dataDir"/>
    /// (the prepared dataset it trained on); its vocabulary must be the checkpoint's. Other kinds ignore the data.
    /// </summary>
    public static (ModelConfig Config, float[] Weights, int[]? ItemSlots) LoadForExport(string weightsPath, string? dataDir)
    {
        LeaveOneOutSplit? split = null;
        ModelConfig Of(TrainingConfig tc, int items)
        {
            if (tc.Kind.IsSequential()) return tc.ToModelConfig(items);
            if (tc.Kind != ModelKind.TwoTower)
                throw new UsageException($"{weightsPath}: a {tc.Kind.Name()} model ranks candidates but cannot find them; export a sequential run and give this one as --stage-two RUN_DIR --data DIR");
            if (dataDir == null) throw new UsageException($"--data: {weightsPath} is a two-tower run; give the prepared dataset it trained on (its feature tables fix the graph)");
            var data = SequenceDataset.Load(dataDir);
            string probe = Path.GetTempFileName();
            try
            {
                data.Items.Save(probe);
                string want = Checkpoint.VocabularySha256(weightsPath);
                if (want.Length > 0 && BundleManifests.Sha256(probe) != want)
                    throw new InvalidDataException($"{dataDir}: not the dataset {Path.GetFileName(weightsPath)} was trained on (its vocabulary differs)");
            }
            finally { File.Delete(probe); }
            split = LeaveOneOut.Split(data);
            if (split.ItemCount != items) throw new InvalidDataException($"{dataDir}: {split.ItemCount} items, {weightsPath} was trained on {items}");
            return TwoTowers.Config(tc, split);
        }
        var (cfg, weights) = Checkpoint.LoadWeights(weightsPath, Of);
        return (cfg, weights, cfg.ItemFeatures.Length > 0 ? split?.ItemFeatures?.Slots : null);
    }

    /// <summary>Both protocols on the test split for one scorer, and the full ranking's recall@200 (the stage-one recall): what
    /// `train` reports and writes as metrics.json.</summary>
    public static (RankingMetrics Full, RankingMetrics Pop100, double Recall200) EvaluateTest(IItemScorer scorer, LeaveOneOutSplit split, int seed = 42)
    {
        var pop = SequenceDataset.Popularity(split.TrainSequences, split.ItemCount);
        var fullOptions = new EvaluationOptions { Protocol = EvaluationProtocol.Full, Seed = seed };
        var ranks = Evaluator.Ranks(scorer, split.Test, fullOptions);
        var p100 = Evaluator.Evaluate(scorer, split.Test, new EvaluationOptions { Protocol = EvaluationProtocol.Pop100, ItemPopularity = pop, Seed = seed });
        return (RankingMetrics.FromRanks(Evaluator.Label(fullOptions), ranks), p100, RankingMetrics.RecallAt(ranks, RankingMetrics.StageOneK));
    }

    /// <summary>Writes metrics.json: the test metrics under "full" and "pop100" beside the run's other facts.</summary>
    public static void WriteTestMetrics(string runDir, RankingMetrics full, RankingMetrics pop100, IReadOnlyDictionary<string, object> facts)
    {
        var record = new Dictionary<string, object>(facts) { ["full"] = full.ToDictionary(), ["pop100"] = pop100.ToDictionary() };
        AtomicFile.WriteAllBytes(Path.Combine(runDir, RunLayout.TestMetrics), JsonSerializer.SerializeToUtf8Bytes(record, new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>The test metrics of metrics.json flattened as "test.full.ndcg@10" etc. (empty when the run has none).</summary>
    public static Dictionary<string, double> ReadTestMetrics(string runDir)
    {
        var metrics = new Dictionary<string, double>();
        string path = Path.Combine(runDir, RunLayout.TestMetrics);
        if (!File.Exists(path)) return metrics;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            foreach (var proto in new[] { "full", "pop100" })
                if (doc.RootElement.TryGetProperty(proto, out var m))
                    foreach (var p in m.EnumerateObject())
                        if (p.Value.ValueKind == JsonValueKind.Number) metrics[$"test.{proto}.{p.Name}"] = p.Value.GetDouble();
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a test metrics record ({e.Message})"); }
        return metrics;
    }
}
