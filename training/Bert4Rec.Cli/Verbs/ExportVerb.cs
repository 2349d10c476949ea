// `bert4rec export`: a training checkpoint -> an artifact bundle (model.onnx, vocab.txt, manifest).
using System.CommandLine;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Export;
using Bert4Rec.Training.Pipeline;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Cli;

internal sealed class ExportVerb : IVerb
{
    public Command Build()
    {
        var ckptOpt = Flags.String("--checkpoint", "a checkpoint or weights file", helpName: "FILE");
        var runOpt = Flags.String("--run", "a run folder: its best.bin, else checkpoint.bin; its vocab.txt and metrics.json are picked up", helpName: "DIR");
        var vocabOpt = Flags.String("--vocab", "the vocabulary (default: vocab.txt beside the checkpoint)", helpName: "FILE");
        var outOpt = Flags.Required("--out", "bundle folder (replaced atomically)", "DIR");
        var fullOpt = Flags.Flag("--full-catalog", "also write model_full.onnx (top-k over all items; for small catalogs and evaluation through ORT)");
        var tritonOpt = Flags.String("--triton", "also write a Triton Inference Server model repository: DIR/NAME/config.pbtxt, DIR/NAME/1/model.onnx", helpName: "DIR");
        var tritonNameOpt = Flags.String("--triton-name", "its model name (default: the model kind)", helpName: "NAME");
        var tritonBatchOpt = Flags.Int("--triton-max-batch", "its max_batch_size, with dynamic batching", 64, 1, 1 << 20);
        var stageTwoOpt = Flags.String("--stage-two", "a ranking feature-model run (neumf or deepfm) to rank stage one's candidates: a two-model bundle (with --data)", helpName: "RUN_DIR");
        var dataOpt = Flags.String("--data", "the prepared dataset the runs trained on: with --stage-two, and for a two-tower run (its feature tables fix the graph); its users and user features go into the bundle", helpName: "DIR");
        var c = new Command("export", "export a checkpoint to an artifact bundle (model.onnx, vocabulary, manifest); give --checkpoint or --run")
            { ckptOpt, runOpt, vocabOpt, dataOpt, outOpt, fullOpt, tritonOpt, tritonNameOpt, tritonBatchOpt, stageTwoOpt };
        c.SetAction(a =>
        {
            string? run = a.GetValue(runOpt);
            // a run folder: its best weights (best.bin), or the checkpoint of a run that has not validated yet
            string ckpt = a.GetValue(ckptOpt) ?? (run != null ? RunFolder.WeightsPath(run) : throw new UsageException("give --checkpoint FILE or --run DIR"));
            string? triton = a.GetValue(tritonOpt), tritonName = a.GetValue(tritonNameOpt);
            if (triton == null && (tritonName != null || a.Given(tritonBatchOpt))) throw new UsageException("--triton-name and --triton-max-batch go with --triton DIR");
            if (tritonName != null) TritonRepository.CheckName(tritonName);      // before the bundle is written
            string? stageTwo = a.GetValue(stageTwoOpt), data = a.GetValue(dataOpt);
            if (stageTwo != null && data == null) throw new UsageException("--stage-two RUN_DIR needs --data DIR (the dataset both runs trained on)");
            return Run(ckpt, a.GetValue(vocabOpt) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(ckpt))!, "vocab.txt"), a.GetValue(outOpt)!,
                a.GetValue(fullOpt), triton, tritonName, a.GetValue(tritonBatchOpt), stageTwo, data);
        });
        return c;
    }

    private static int Run(string ckpt, string vocabPath, string outDir, bool fullCatalog, string? triton, string? tritonName, int tritonMaxBatch,
                           string? stageTwoRun, string? dataDir)
    {
        var (cfg, weights, itemSlots) = RunFolder.LoadForExport(ckpt, dataDir);
        RunFolder.CheckVocabulary(ckpt, vocabPath);
        var vocab = Vocabulary.Load(vocabPath);
        var metrics = RunFolder.ReadTestMetrics(Path.GetDirectoryName(Path.GetFullPath(ckpt))!);
        var stageTwo = stageTwoRun != null ? LoadStageTwo(stageTwoRun, dataDir!, vocab) : null;
        // a Two-Tower user tower reads the request's user features: the dataset's users and their stored rows go with it
        BundleUsers? users = null;
        if (cfg.Kind == ModelKind.TwoTower && cfg.UserFeatures.Length > 0)
        {
            var data = Bert4Rec.Training.Data.SequenceDataset.Load(dataDir!);
            if (data.UserFeatures?.Shape != cfg.UserFeatures)
                throw new UsageException($"--data {dataDir}: its user features [{data.UserFeatures?.Shape ?? "none"}] are not the ones the two-tower run trained on [{cfg.UserFeatures}]");
            users = new BundleUsers(data.UserIds, data.UserFeatures);
        }
        if (stageTwo != null)
            foreach (var (k, v) in RunFolder.ReadTestMetrics(stageTwoRun!)) metrics["stage_two." + k] = v;
        BundleWriter.Write(outDir, cfg, weights, vocab, "bert4rec export " + string.Join(' ', Environment.GetCommandLineArgs().Skip(2)), metrics, Path.GetFullPath(ckpt), fullCatalog,
                           itemSlots, stageTwo, users);
        Console.WriteLine($"bundle written to {outDir}: {BundleLayout.Model}, {BundleLayout.Vocabulary}, {BundleLayout.Manifest} ({cfg.Kind.Name()}, {cfg.ItemCount} items, d={cfg.Hidden}, N={cfg.MaxLength})" +
                          (users != null ? $"; {users.UserIds.Count} users with user fields [{cfg.UserFeatures}] ({BundleLayout.Users}, {BundleLayout.UserFeatures})" : "") +
                          (stageTwo != null ? $"; stage two {stageTwo.Config.Kind.Name()} ({BundleLayout.StageTwoModel}, {stageTwo.UserIds.Count} users, user fields [{stageTwo.Config.UserFeatures}])" : ""));
        if (triton != null)
        {
            string name = tritonName ?? cfg.Kind.Name();
            TritonRepository.Write(triton, name, cfg, Path.Combine(outDir, BundleLayout.Model), tritonMaxBatch);
            Console.WriteLine($"Triton model repository written to {triton}: {name}/config.pbtxt, {name}/1/model.onnx");
        }
        return 0;
    }

    /// <summary>A feature-model run and the dataset it trained on, checked against stage one's vocabulary.</summary>
    private static StageTwoModel LoadStageTwo(string runDir, string dataDir, Vocabulary vocab)
    {
        string weightsPath = RunFolder.WeightsPath(runDir);
        RunFolder.CheckVocabulary(weightsPath, Path.Combine(runDir, RunLayout.Vocabulary));
        var data = Bert4Rec.Training.Data.SequenceDataset.Load(dataDir);
        // a feature model's layout depends on the data (its users and fields): the config comes from the run's and the split's
        var split = Bert4Rec.Training.Data.LeaveOneOut.Split(data);
        ModelConfig cfg;
        float[] weights;
        try
        {
            (cfg, weights) = Checkpoint.LoadWeights(weightsPath, (tc, n) => tc.Kind is not (ModelKind.NeuMf or ModelKind.DeepFm)
                ? throw new UsageException($"--stage-two {runDir}: a {tc.Kind.Name()} run; stage two is a ranking feature model (neumf or deepfm)")
                : n != split.ItemCount ? throw new UsageException($"--data {dataDir}: {split.ItemCount} items, the stage-two run trained on {n}")
                : PointwiseModels.Config(tc, split));
        }
        catch (InvalidDataException e) when (Checkpoint.IsLayoutMismatch(e))
        {
            throw new UsageException($"--data {dataDir}: its users or feature fields are not those {runDir} trained on ({e.Message})");
        }
        if (!data.Items.RawIds.SequenceEqual(vocab.RawIds))
            throw new UsageException($"--data {dataDir}: its items are not stage one's vocabulary ({data.Items.Count} against {vocab.Count} items, or another order): give the dataset both runs trained on");
        if (!Vocabulary.Load(Path.Combine(runDir, RunLayout.Vocabulary)).RawIds.SequenceEqual(vocab.RawIds))
            throw new UsageException($"--stage-two {runDir}: trained on other items than stage one (its vocab.txt differs)");
        if (data.UserIds.Count != cfg.UserCount)
            throw new UsageException($"--data {dataDir}: {data.UserIds.Count} users, the stage-two model knows {cfg.UserCount}: give the dataset it trained on");
        var users = cfg.UserFeatures.Length > 0 ? data.UserFeatures : null;
        var items = cfg.ItemFeatures.Length > 0 ? data.ItemFeatures : null;
        if (cfg.UserFeatures.Length > 0 && users?.Shape != cfg.UserFeatures)
            throw new UsageException($"--data {dataDir}: its user features [{users?.Shape ?? "none"}] are not the ones the stage-two model trained on [{cfg.UserFeatures}]");
        if (cfg.ItemFeatures.Length > 0 && items?.Shape != cfg.ItemFeatures)
            throw new UsageException($"--data {dataDir}: its item features [{items?.Shape ?? "none"}] are not the ones the stage-two model trained on [{cfg.ItemFeatures}]");
        return new StageTwoModel(cfg, weights, items?.Slots, data.UserIds, users);
    }
}
