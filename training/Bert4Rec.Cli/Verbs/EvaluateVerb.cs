// `bert4rec evaluate`: evaluate a model or a baseline (full ranking and pop100)
using Bert4Rec.Contracts;

namespace Bert4Rec.Cli;

internal sealed class EvaluateVerb : IVerb
{
    public string Name => "evaluate";
    public string Summary => "evaluate a model or a baseline (full ranking and pop100)";
    public string Usage => "  (not available yet: issue 3)";

    public int Run(CommandLine args)
    {
        Console.Error.WriteLine("bert4rec evaluate: not available yet (issue 3)");
        return 3;
    }
}
