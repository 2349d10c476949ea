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
        var dataOpt = Flags.String("--data", "two-tower: the prepared dataset the run trained on (its feature tables fix the graph)", helpName: "DIR");
        var outOpt = Flags.Required("--out", "bundle folder (replaced atomically)", "DIR");
        var fullOpt = Flags.Flag("--full-catalog", "also write model_full.onnx (top-k over all items; for small catalogs and evaluation through ORT)");
        var tritonOpt = Flags.String("--triton", "also write a Triton Inference Server model repository: DIR/NAME/config.pbtxt, DIR/NAME/1/model.onnx", helpName: "DIR");
        var tritonNameOpt = Flags.String("--triton-name", "its model name (default: the model kind)", helpName: "NAME");
        var tritonBatchOpt = Flags.Int("--triton-max-batch", "its max_batch_size, with dynamic batching", 64, 1, 1 << 20);
        var c = new Command("export", "export a checkpoint to an artifact bundle (model.onnx, vocabulary, manifest); give --checkpoint or --run")
            { ckptOpt, runOpt, vocabOpt, dataOpt, outOpt, fullOpt, tritonOpt, tritonNameOpt, tritonBatchOpt };
        c.SetAction(a =>
        {
            string? run = a.GetValue(runOpt);
            // a run folder: its best weights (best.bin), or the checkpoint of a run that has not validated yet
            string ckpt = a.GetValue(ckptOpt) ?? (run != null ? RunFolder.WeightsPath(run) : throw new UsageException("give --checkpoint FILE or --run DIR"));
            string? triton = a.GetValue(tritonOpt), tritonName = a.GetValue(tritonNameOpt);
            if (triton == null && (tritonName != null || a.Given(tritonBatchOpt))) throw new UsageException("--triton-name and --triton-max-batch go with --triton DIR");
            if (tritonName != null) TritonRepository.CheckName(tritonName);      // before the bundle is written
            return Run(ckpt, a.GetValue(vocabOpt) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(ckpt))!, "vocab.txt"), a.GetValue(outOpt)!,
                a.GetValue(fullOpt), triton, tritonName, a.GetValue(tritonBatchOpt), a.GetValue(dataOpt));
        });
        return c;
    }

    private static int Run(string ckpt, string vocabPath, string outDir, bool fullCatalog, string? triton, string? tritonName, int tritonMaxBatch, string? data)
    {
        var (cfg, weights, itemSlots) = RunFolder.LoadForExport(ckpt, data);
        RunFolder.CheckVocabulary(ckpt, vocabPath);
        var vocab = Vocabulary.Load(vocabPath);
        var metrics = RunFolder.ReadTestMetrics(Path.GetDirectoryName(Path.GetFullPath(ckpt))!);
        BundleWriter.Write(outDir, cfg, weights, vocab, "bert4rec export " + string.Join(' ', Environment.GetCommandLineArgs().Skip(2)), metrics, Path.GetFullPath(ckpt), fullCatalog,
                           itemSlots);
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
