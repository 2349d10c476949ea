// The contract of one CLI verb.
using System.CommandLine;

namespace Bert4Rec.Cli;

internal interface IVerb
{
    /// <summary>The verb's command: its typed options (which System.CommandLine parses, checks and lists in --help) and
    /// its action, which returns the exit code and throws <see cref="Bert4Rec.Contracts.UsageException"/> for flags that
    /// are wrong together.</summary>
    Command Build();
}
