// `bert4rec index`: build the FAISS index of a bundle
using Bert4Rec.Contracts;

namespace Bert4Rec.Cli;

internal sealed class IndexVerb : IVerb
{
    public string Name => "index";
    public string Summary => "build the FAISS index of a bundle";
    public string Usage => "  (not available yet: issue 6)";

    public int Run(CommandLine args)
    {
        Console.Error.WriteLine("bert4rec index: not available yet (issue 6)");
        return 3;
    }
}
