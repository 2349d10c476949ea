// Entry point of the offline-job executable: dispatches the verbs of the `bert4rec` script, one class per verb in Verbs/.
using Bert4Rec.Cli;
using Bert4Rec.Contracts;

var verbs = new IVerb[]
{
    new DemoVerb(), new PrepareVerb(), new TrainVerb(), new EvaluateVerb(), new CompareVerb(), new TuneVerb(),
    new ExportVerb(), new IndexVerb(), new RecommendVerb(),
};

if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
{
    Console.WriteLine("usage: bert4rec <verb> [flags]   (bert4rec <verb> --help for a verb's flags)");
    foreach (var v in verbs) Console.WriteLine($"  {v.Name,-10} {v.Summary}");
    Console.WriteLine($"  {"serve",-10} run the online ranking service over a bundle");
    Console.WriteLine($"  {"bench",-10} benchmarks: train | infer | retrieval | serve");
    Console.WriteLine($"  {"test",-10} run the test suite");
    return args.Length == 0 ? 2 : 0;
}

var verb = verbs.FirstOrDefault(v => v.Name == args[0]);
if (verb == null)
{
    Console.Error.WriteLine($"bert4rec: unknown verb '{args[0]}' (try: bert4rec help)");
    return 2;
}
if (args.Skip(1).Any(a => a is "--help" or "-h"))
{
    Console.WriteLine($"bert4rec {verb.Name}: {verb.Summary}");
    Console.WriteLine(verb.Usage);
    return 0;
}
try
{
    return verb.Run(new CommandLine(args.Skip(1)));
}
catch (UsageException e)
{
    Console.Error.WriteLine($"bert4rec {verb.Name}: {e.Message}");
    Console.Error.WriteLine(verb.Usage);
    return 2;
}
catch (Exception e) when (e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException or DllNotFoundException or IOException or ArgumentException
                           or BundleException or Bert4Rec.Inference.OnnxRuntime.OnnxRuntimeException)
{
    Console.Error.WriteLine($"bert4rec {verb.Name}: error: {OneLine(e.Message)}");
    return 1;
}
catch (Exception e)
{
    // anything else still ends in one line and a non-zero code, never a stack trace (the type names what failed)
    Console.Error.WriteLine($"bert4rec {verb.Name}: error: {e.GetType().Name}: {OneLine(e.Message)}");
    return 1;
}

static string OneLine(string s) => s.ReplaceLineEndings(" ");
