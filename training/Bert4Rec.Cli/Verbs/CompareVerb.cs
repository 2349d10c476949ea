// `bert4rec compare`: baselines and sequential models trained with their presets, on the same test users, with paired significance.
using System.CommandLine;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Pipeline;
using Bert4Rec.Training.Training;
using Spectre.Console;

namespace Bert4Rec.Cli;

internal sealed class CompareVerb : IVerb
{
    public Command Build()
    {
        var dataOpt = Flags.Required("--data", "a prepared dataset", "DIR");
        var modelsOpt = Flags.String("--models", "comma-separated: pop, markov, bert4rec, sasrec, gru4rec, neumf, deepfm, two-tower (default: the first five)", "pop,markov,bert4rec,sasrec,gru4rec", "LIST");
        var budgetOpt = Flags.Duration("--budget", "wall-clock training budget per trained model (default: none)");
        var presetOpt = Flags.String("--preset", "preset for every trained model (default: beauty for short sequences, ml-1m for long ones)", helpName: "NAME");
        presetOpt.CompletionSources.Add(TrainingConfig.PresetNames);
        var filesOpt = Flags.String("--preset-file", "whole configs (tune's preset.json, a run's config.json), each for its own model kind", helpName: "F1[,F2]");
        var outOpt = Flags.String("--out", "report.md, report.json, chart.png and runs/MODEL", Path.Combine("runs", "compare"), "DIR");
        var seedOpt = Flags.Int("--seed", "trainings, pop100 negatives and bootstrap", 42);
        var resamplesOpt = Flags.Int("--resamples", "bootstrap and sign-flip resamples", 10_000, 1, 10_000_000);
        var threadsOpt = Flags.Int("--threads", "compute threads (0 = one per core)", 0, 0, 256);
        var refitOpt = Flags.OnOff("--refit", "test every model after a refit on the validation items too (trained models for their best "
            + "validation's step count; baselines count them); default: each preset's own setting");
        var rerankOpt = Flags.String("--rerank", "two-stage rows ONE:TWO (e.g. markov:deepfm), both listed in --models: TWO reranks ONE's top candidates; the row is named ONE>TWO", helpName: "A:B[,C:D]");
        var candidatesOpt = Flags.Int("--rerank-candidates", "how many of stage one's unseen items stage two reranks", 200, 1, 1_000_000);
        var c = new Command("compare", """
            train several models within a budget and compare them on the same test users, with significance
            prints one table (full and pop100), each model against the best other one (paired NDCG@10 difference, 95 % CI,
            p-value), and a RESULT line
            """) { dataOpt, modelsOpt, budgetOpt, presetOpt, filesOpt, outOpt, seedOpt, resamplesOpt, threadsOpt, refitOpt, rerankOpt, candidatesOpt };
        c.SetAction(a => Run(a.GetValue(dataOpt)!, Split(a.GetValue(modelsOpt)), a.GetValue(budgetOpt), a.GetValue(presetOpt), Split(a.GetValue(filesOpt)),
            a.GetValue(outOpt)!, a.GetValue(seedOpt), a.GetValue(resamplesOpt), a.GetValue(threadsOpt), a.IsOn(refitOpt),
            Pairs(Split(a.GetValue(rerankOpt))), a.GetValue(candidatesOpt)));
        return c;
    }

    /// <summary>report.Table()'s rows as a Spectre.Console table (interactive terminals only).</summary>
    private static void PrintTable(ComparisonReport report)
    {
        var t = new Table { Border = TableBorder.Rounded, Title = new TableTitle($"test split, {report.TestUsers:N0} users") };
        t.AddColumns("model", "protocol");
        foreach (var c in new[] { "HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR", "train s", "best val at s" }) t.AddColumn(new TableColumn(c).RightAligned());
        foreach (var m in report.Models)
            foreach (var (r, first) in new[] { (m.Full, true), (m.Pop100, false) })
                t.AddRow(first ? Markup.Escape(m.Name) : "", r.Protocol, $"{r.Hr1:F4}", $"{r.Hr5:F4}", $"{r.Hr10:F4}", $"{r.Ndcg5:F4}", $"[bold]{r.Ndcg10:F4}[/]", $"{r.Mrr:F4}",
                    first ? $"{m.TrainSeconds:F1}" : "", first && m.BestValidationSeconds is { } b ? $"{b:F1}" : "");
        AnsiConsole.Write(t);
    }

    private static string[] Split(string? list) => (list ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static (string, string)[] Pairs(string[] entries) => entries.Select(e =>
    {
        var p = e.Split(':', StringSplitOptions.TrimEntries);
        return p.Length == 2 && p[0].Length > 0 && p[1].Length > 0 ? (p[0], p[1]) : throw new UsageException($"--rerank: '{e}' is not STAGE_ONE:STAGE_TWO (e.g. markov:deepfm)");
    }).ToArray();

    private static int Run(string dataDir, string[] models, TimeSpan? budget, string? preset, string[] files, string outDir, int seed, int resamples, int threads, bool? refit,
                           (string, string)[] reranks, int rerankCandidates)
    {
        if (preset != null) TrainingConfig.FromPreset(preset);   // an unknown name fails before the data loads
        var configs = files.Select(TrainingConfig.FromFile).ToList();
        var data = SequenceDataset.Load(dataDir);
        Console.WriteLine($"comparing {string.Join(", ", models)} on {dataDir}: {data.Statistics}");
        var report = ModelComparison.Run(data, new ComparisonOptions
        {
            Models = models, Budget = budget, Seed = seed, Preset = preset, Configs = configs, Threads = threads, OutDir = outDir,
            Resamples = resamples, Refit = refit, Reranks = reranks, RerankCandidates = rerankCandidates, DataName = Path.GetFileName(Path.GetFullPath(dataDir).TrimEnd('/')),
        });
        Console.WriteLine();
        if (Terminal.Interactive) PrintTable(report);
        else Console.Write(report.Table());
        if (report.Significance.Count > 0)
        {
            Console.WriteLine("paired NDCG@10 differences against the best other model (95 % bootstrap CI, sign-flip p):");
            foreach (var s in report.Significance) Console.WriteLine($"  {s}");
        }
        Console.WriteLine($"report: {Path.Combine(outDir, ComparisonReport.MarkdownFile)}, {ComparisonReport.JsonFile}, {ComparisonReport.ChartFile}");
        Console.WriteLine("RESULT " + report.ResultJson(outDir));
        return 0;
    }
}
