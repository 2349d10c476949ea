// `bert4rec bench <what>`: dispatches to one benchmark; every benchmark ends its output with one `RESULT {json}` line.
using Bert4Rec.Contracts;

var benches = new Dictionary<string, (string Issue, Func<CommandLine, int>? Run)>
{
    ["train"] = ("4", Bert4Rec.Benchmarks.TrainBench.Run),
    ["infer"] = ("5", Bert4Rec.Benchmarks.InferBench.Run),
    ["retrieval"] = ("6", Bert4Rec.Benchmarks.RetrievalBench.Run),
    ["serve"] = ("7", Bert4Rec.Benchmarks.ServeBench.Run),
};
// each benchmark's flags, printed by `bert4rec bench NAME --help` (and by `bert4rec bench --help`)
var usage = new Dictionary<string, string>
{
    ["train"] = """
          training tokens/s and peak RSS on generated batches (ML-1m shape by default)
          --model bert4rec|sasrec|gru4rec   (default bert4rec)      --engine native|torchsharp   --device cpu|cuda|auto (torchsharp)
          --batch B (256; 128 for sasrec/gru4rec)   --seq N (200)   --items n (3416)   --hidden d (64)   --layers L   --heads H
          --steps S (20)   --threads T (2)   --mask P (0.2, bert4rec)   --groups G (torchsharp length groups, 1)
          --loss ce|sampled-ce|gbce (ce)   --negatives K (1024)   --torch (run the PyTorch reference beside it; full CE only)
        """,
    ["infer"] = """
          ONNX Runtime latency of one recommend request (p50/p99)
          --items n (3416)   --seq N (200)   --hidden d (64)   --layers L (2)   --heads H (2)   --candidates C (100)
          --iterations I (2000)   --torch (the PyTorch reference beside it)
        """,
    ["retrieval"] = """
          FAISS recall@k, single-query latency, build time, file size and peak RSS against exact search
          --items N1,N2 (100000,1000000; 10000000 for the large case)   --dim D (65)   --k K (100)   --queries Q (500)
          --factory F (auto)   --ef-construction E (200)   --ef-search E1,... (128,256,512, HNSW)   --nprobe P1,... (16,32,64, IVF)
          --refine-factor F1,... (4, RFlat)   --train T (200000, IVF/PQ training vectors)   --clusters C (4096)   --spread S (0.7)
        """,
    ["serve"] = """
          loopback load on the service with a hot reload (throughput, p50/p99, errors)
          --protocol http|grpc|both (both)   --format json|protobuf|both (both)   --concurrency C (8)   --duration S (60)
          --bundle DIR (default: a generated one)   --items n (3416)   --seq N (200)   --history H (50)   --metrics on|off (on)
        """,
};
bool WantsHelp(IEnumerable<string> a) => a.Any(x => x is "--help" or "-h");
if (args.Length == 0 || !benches.TryGetValue(args[0], out var bench))
{
    bool help = args.Length > 0 && WantsHelp(args.Take(1));
    var w = help ? Console.Out : Console.Error;
    w.WriteLine($"usage: bert4rec bench <{string.Join("|", benches.Keys)}> [flags]   (bert4rec bench NAME --help lists a benchmark's flags)");
    if (help) foreach (var (name, text) in usage) w.WriteLine($"\n{name}:\n{text.TrimEnd()}");
    return help ? 0 : 2;
}
if (WantsHelp(args.Skip(1)))
{
    Console.WriteLine($"usage: bert4rec bench {args[0]} [flags]   (each run ends with one RESULT {{json}} line)\n{usage[args[0]].TrimEnd()}");
    return 0;
}
if (bench.Run == null)
{
    Console.Error.WriteLine($"bert4rec bench {args[0]}: not available yet (issue {bench.Issue})");
    return 3;
}
try { return bench.Run(new CommandLine(args.Skip(1))); }
catch (UsageException e) { Console.Error.WriteLine($"bert4rec bench {args[0]}: {e.Message}"); return 2; }
catch (Exception e) when (e is Bert4Rec.Inference.OnnxRuntime.OnnxRuntimeException or BundleException)
{
    Console.Error.WriteLine($"bert4rec bench {args[0]}: error: {e.Message}");
    return 1;
}
