// `bert4rec recommend`: recommend for one history from a bundle, no server needed
using Bert4Rec.Contracts;

namespace Bert4Rec.Cli;

internal sealed class RecommendVerb : IVerb
{
    public string Name => "recommend";
    public string Summary => "recommend for one history from a bundle, no server needed";
    public string Usage => "  (not available yet: issue 7)";

    public int Run(CommandLine args)
    {
        Console.Error.WriteLine("bert4rec recommend: not available yet (issue 7)");
        return 3;
    }
}
