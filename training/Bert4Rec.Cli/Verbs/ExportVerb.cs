// `bert4rec export`: a training checkpoint -> an artifact bundle (model.onnx, vocab.txt, manifest).
using System.Text.Json;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Export;
using Bert4Rec.Training.Pipeline;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Cli;

internal sealed class ExportVerb : IVerb
{
    public string Name => "export";
    public string Summary => "export a checkpoint to an artifact bundle (model.onnx, vocabulary, manifest)";
    public string Usage => """
          --checkpoint FILE | --run DIR   (the run's best.bin, else checkpoint.bin; its vocab.txt and metrics.json are picked up)
          --vocab FILE                    (default: vocab.txt beside the checkpoint)
          --out DIR                       bundle folder (replaced atomically)
          --full-catalog                  also write model_full.onnx (top-k over all items; for small catalogs and evaluation through ORT)
          --triton DIR                    also write a Triton Inference Server model repository: DIR/NAME/config.pbtxt, DIR/NAME/1/model.onnx
          --triton-name NAME              its model name (default: the model kind)
          --triton-max-batch B            its max_batch_size, with dynamic batching (default 64)
        """;

    public int Run(CommandLine a)
    {
        string? run = a.String("run");
        // a run folder: its best weights (best.bin), or the checkpoint of a run that has not validated yet
        string ckpt = a.String("checkpoint") ?? (run != null
            ? RunFolder.WeightsPath(run)
            : throw new UsageException("give --checkpoint FILE or --run DIR"));
        string vocabPath = a.String("vocab") ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(ckpt))!, "vocab.txt");
        string outDir = a.Required("out");
        bool fullCatalog = a.Flag("full-catalog");
        string? triton = a.String("triton");
        string? tritonName = a.String("triton-name");
        int tritonMaxBatch = a.Int("triton-max-batch", 64, 1, 1 << 20);
        if (triton == null && (tritonName != null || a.Has("triton-max-batch"))) throw new UsageException("--triton-name and --triton-max-batch go with --triton DIR");
        if (tritonName != null) TritonRepository.CheckName(tritonName);      // before the bundle is written
        a.EnsureAllUsed();
        var (cfg, weights) = Checkpoint.LoadWeights(ckpt);
        RunFolder.CheckVocabulary(ckpt, vocabPath);
        var vocab = Vocabulary.Load(vocabPath);
        var metrics = RunFolder.ReadTestMetrics(Path.GetDirectoryName(Path.GetFullPath(ckpt))!);
        BundleWriter.Write(outDir, cfg, weights, vocab, "bert4rec export " + string.Join(' ', Environment.GetCommandLineArgs().Skip(2)), metrics, Path.GetFullPath(ckpt), fullCatalog);
        Console.WriteLine($"bundle written to {outDir}: {BundleLayout.Model}, {BundleLayout.Vocabulary}, {BundleLayout.Manifest} ({cfg.Kind.Name()}, {cfg.ItemCount} items, d={cfg.Hidden}, N={cfg.MaxLength})");
        if (triton != null)
        {
            string name = tritonName ?? cfg.Kind.Name();
            TritonRepository.Write(triton, name, cfg, Path.Combine(outDir, BundleLayout.Model), tritonMaxBatch);
            Console.WriteLine($"Triton model repository written to {triton}: {name}/config.pbtxt, {name}/1/model.onnx");
        }
        return 0;
    }
}
