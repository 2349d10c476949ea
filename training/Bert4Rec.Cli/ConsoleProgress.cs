// Draws the trainer's progress. On an interactive terminal: a Spectre.Console progress bar over the run's steps whose
// description carries the epoch, loss, rate (tokens/s) and ETA, with the trainer's log lines printed above it. When the
// output is redirected: a plain line every 30 seconds, as before (CI and the tests parse them). The library reports;
// only the CLI draws.
using System.Diagnostics;
using Bert4Rec.Training.Training;
using Spectre.Console;

namespace Bert4Rec.Cli;

internal sealed class ConsoleProgress : IProgress<TrainingProgress>
{
    private readonly Stopwatch _since = Stopwatch.StartNew();
    private ProgressTask? _task;

    /// <summary>Runs <paramref name="work"/> (the training) with this display; <paramref name="log"/> receives a writer for
    /// the trainer's log lines that keeps them above the bar.</summary>
    public static T Run<T>(Func<ConsoleProgress, Action<string>, T> work)
    {
        var progress = new ConsoleProgress();
        if (!Terminal.Interactive) return work(progress, Console.WriteLine);
        return AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                progress._task = ctx.AddTask("starting", autoStart: true, maxValue: 1);
                var result = work(progress, line => AnsiConsole.WriteLine(line));
                progress._task.Value = progress._task.MaxValue;
                return result;
            });
    }

    public void Report(TrainingProgress p)
    {
        if (_task == null)
        {
            if (_since.Elapsed.TotalSeconds < 30) return;
            _since.Restart();
            Console.WriteLine(p);
            return;
        }
        // the bar covers every step of the run's epoch bound; early stopping ends it sooner (the bar then jumps to the end)
        _task.MaxValue = Math.Max(1, (double)p.Epochs * p.StepsPerEpoch);
        _task.Value = Math.Min(_task.MaxValue, (double)(p.Epoch - 1) * p.StepsPerEpoch + p.StepInEpoch);
        _task.Description = Markup.Escape($"epoch {p.Epoch}/{p.Epochs} step {p.StepInEpoch}/{p.StepsPerEpoch} loss {p.Loss:F4} {p.TokensPerSecond:N0} tok/s ETA {p.Eta}" +
                                          (p.LastValidation is { } v ? $" | best NDCG@10 {p.BestMetric:F4}" : ""));
    }
}

/// <summary>Whether output goes to a person (Spectre.Console's progress and tables) or to a file or pipe (plain lines, as parsed by CI).</summary>
internal static class Terminal
{
    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Ranking metrics as a table: one row per (protocol, metrics, seconds), the six metrics right-aligned (fits 80 columns).</summary>
    public static void MetricsTable(string title, IReadOnlyList<(string Label, Bert4Rec.Contracts.RankingMetrics M, double? Seconds)> rows)
    {
        var t = new Table { Title = new TableTitle(Markup.Escape($"{title}, {rows[0].M.Users:N0} users")), Border = TableBorder.Rounded };
        t.AddColumn("protocol");
        foreach (var c in new[] { "HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR" }) t.AddColumn(new TableColumn(c).RightAligned());
        if (rows.Any(r => r.Seconds != null)) t.AddColumn(new TableColumn("s").RightAligned());
        foreach (var (label, m, secs) in rows)
        {
            var cells = new List<string> { Markup.Escape(label), $"{m.Hr1:F4}", $"{m.Hr5:F4}", $"{m.Hr10:F4}", $"{m.Ndcg5:F4}", $"[bold]{m.Ndcg10:F4}[/]", $"{m.Mrr:F4}" };
            if (rows.Any(r => r.Seconds != null)) cells.Add(secs is { } s ? $"{s:F2}" : "");
            t.AddRow(cells.ToArray());
        }
        AnsiConsole.Write(t);
    }
}
