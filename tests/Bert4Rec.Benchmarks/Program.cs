// `bert4rec bench <what>`: dispatches to one benchmark; every benchmark ends its output with one `RESULT {json}` line.
using Bert4Rec.Contracts;

var benches = new Dictionary<string, (string Issue, Func<CommandLine, int>? Run)>
{
    ["train"] = ("4", Bert4Rec.Benchmarks.TrainBench.Run),
    ["infer"] = ("5", Bert4Rec.Benchmarks.InferBench.Run),
    ["retrieval"] = ("6", Bert4Rec.Benchmarks.RetrievalBench.Run),
    ["serve"] = ("7", Bert4Rec.Benchmarks.ServeBench.Run),
};
if (args.Length == 0 || !benches.TryGetValue(args[0], out var bench))
{
    Console.Error.WriteLine($"usage: bert4rec bench <{string.Join("|", benches.Keys)}> [flags]");
    return 2;
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
