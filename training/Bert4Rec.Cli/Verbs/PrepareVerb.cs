// `bert4rec prepare`: read interaction logs, filter, split and save a prepared dataset
using Bert4Rec.Contracts;

namespace Bert4Rec.Cli;

internal sealed class PrepareVerb : IVerb
{
    public string Name => "prepare";
    public string Summary => "read interaction logs, filter, split and save a prepared dataset";
    public string Usage => "  (not available yet: issue 3)";

    public int Run(CommandLine args)
    {
        Console.Error.WriteLine("bert4rec prepare: not available yet (issue 3)");
        return 3;
    }
}
