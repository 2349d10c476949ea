// The contract of one CLI verb.
using Bert4Rec.Contracts;

namespace Bert4Rec.Cli;

internal interface IVerb
{
    string Name { get; }
    string Summary { get; }
    /// <summary>Flags, one per line, shown by --help and after a usage error.</summary>
    string Usage { get; }
    /// <summary>Runs the verb; returns the process exit code. Throw <see cref="UsageException"/> for bad flags.</summary>
    int Run(CommandLine args);
}
