// `bert4rec train`: train BERT4Rec on a prepared dataset
using Bert4Rec.Contracts;

namespace Bert4Rec.Cli;

internal sealed class TrainVerb : IVerb
{
    public string Name => "train";
    public string Summary => "train BERT4Rec on a prepared dataset";
    public string Usage => "  (not available yet: issue 4)";

    public int Run(CommandLine args)
    {
        Console.Error.WriteLine("bert4rec train: not available yet (issue 4)");
        return 3;
    }
}
