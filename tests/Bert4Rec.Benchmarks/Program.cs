// `bert4rec bench <what>`: dispatches to one benchmark; every benchmark ends its output with one `RESULT {json}` line.
// The ./bert4rec script passes the arguments after `bench`; they are parsed under `bert4rec bench` so that help and
// errors name the command as it was typed.
using Bert4Rec.Benchmarks;
using Bert4Rec.Contracts;

var top = BenchCommands.Build();
if (args.Length > 0 && args[0] == CommandLines.SuggestToken) return CommandLines.Run(top, args);
if (args.Length == 0) { CommandLines.Run(top, ["bench", "--help"]); return 2; }
return CommandLines.Run(top, ["bench", .. args], expected: e => e is Bert4Rec.Inference.OnnxRuntime.OnnxRuntimeException or BundleException);

namespace Bert4Rec.Benchmarks
{
    internal static class BenchCommands
    {
        /// <summary>`bert4rec bench` with its benchmarks.</summary>
        public static System.CommandLine.Command Build()
        {
            var top = CommandLines.Top("bert4rec", "benchmarks of ./bert4rec");
            top.Subcommands.Add(new System.CommandLine.Command("bench", "benchmarks; each run ends with one RESULT {json} line")
                { TrainBench.Build(), InferBench.Build(), RetrievalBench.Build(), ServeBench.Build(), PrepareBench.Build() });
            return top;
        }
    }
}
