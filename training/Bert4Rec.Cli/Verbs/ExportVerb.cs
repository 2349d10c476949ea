// `bert4rec export`: export a checkpoint to an artifact bundle (model.onnx, vocabulary, manifest)
using Bert4Rec.Contracts;

namespace Bert4Rec.Cli;

internal sealed class ExportVerb : IVerb
{
    public string Name => "export";
    public string Summary => "export a checkpoint to an artifact bundle (model.onnx, vocabulary, manifest)";
    public string Usage => "  (not available yet: issue 5)";

    public int Run(CommandLine args)
    {
        Console.Error.WriteLine("bert4rec export: not available yet (issue 5)");
        return 3;
    }
}
