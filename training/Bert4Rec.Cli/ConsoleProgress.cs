// Draws the trainer's progress: on a terminal one line rewritten in place (at most 4 times a second, and at each epoch's
// end); when the output is redirected, a plain line every 30 seconds. The library reports; only the CLI draws.
using System.Diagnostics;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Cli;

internal sealed class ConsoleProgress : IProgress<TrainingProgress>
{
    private readonly bool _terminal = !Console.IsOutputRedirected;
    private readonly Stopwatch _since = Stopwatch.StartNew();
    private bool _open;

    public void Report(TrainingProgress p)
    {
        bool epochEnd = p.StepInEpoch == p.StepsPerEpoch;
        if (!_terminal)
        {
            if (_since.Elapsed.TotalSeconds < 30) return;
            _since.Restart();
            Console.WriteLine(p);
            return;
        }
        if (!epochEnd && _since.Elapsed.TotalSeconds < 0.25) return;
        _since.Restart();
        Console.Write("\r" + p + "\u001b[K");
        _open = !epochEnd;
        if (epochEnd) Console.WriteLine();
    }

    /// <summary>Ends a line left open (before other output).</summary>
    public void Close()
    {
        if (_open) Console.WriteLine();
        _open = false;
    }
}
