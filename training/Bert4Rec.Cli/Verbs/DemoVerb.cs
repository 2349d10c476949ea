// `bert4rec demo`: generate data, train, evaluate, export, index, serve and query, end to end
using Bert4Rec.Contracts;

namespace Bert4Rec.Cli;

internal sealed class DemoVerb : IVerb
{
    public string Name => "demo";
    public string Summary => "generate data, train, evaluate, export, index, serve and query, end to end";
    public string Usage => "  (not available yet: issue 7)";

    public int Run(CommandLine args)
    {
        Console.Error.WriteLine("bert4rec demo: not available yet (issue 7)");
        return 3;
    }
}
