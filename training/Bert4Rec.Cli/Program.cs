// Entry point of the offline-job executable: the verbs of the `bert4rec` script, one class per verb in Verbs/, parsed by
// System.CommandLine (see Contracts' CommandLines for the error conventions and shell completion).
using System.CommandLine;
using Bert4Rec.Cli;
using Bert4Rec.Contracts;

var top = CliCommands.Build();
// `bert4rec` alone prints the verbs and fails (as before); `bert4rec help` is `bert4rec --help`
if (args.Length == 0) { CommandLines.Run(top, ["--help"]); return 2; }
return CommandLines.Run(top, args is ["help"] ? ["--help"] : args, expected: e => e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException
    or DllNotFoundException or IOException or ArgumentException or BundleException or Bert4Rec.Inference.OnnxRuntime.OnnxRuntimeException);

namespace Bert4Rec.Cli
{
    internal static class CliCommands
    {
        public static readonly IVerb[] Verbs =
        [
            new DemoVerb(), new PrepareVerb(), new TrainVerb(), new EvaluateVerb(), new CompareVerb(), new TuneVerb(),
            new ExportVerb(), new IndexVerb(), new RecommendVerb(),
        ];

        /// <summary>`bert4rec` and its verbs. serve, bench and test are other executables the script runs; they are named here for --help.</summary>
        public static Command Build()
        {
            var top = CommandLines.Top("bert4rec", """
                train-then-serve sequential recommender (BERT4Rec, SASRec, GRU4Rec); `bert4rec VERB --help` lists a verb's flags
                also, through ./bert4rec: serve (the online ranking service), bench train|infer|retrieval|serve|prepare (benchmarks), test (every test)
                """);
            foreach (var v in Verbs) top.Subcommands.Add(v.Build());
            return top;
        }
    }
}
