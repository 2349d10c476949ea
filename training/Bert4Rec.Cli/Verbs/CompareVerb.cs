// `bert4rec compare`: baselines and sequential models trained with their presets, on the same test users, with paired significance.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Pipeline;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Cli;

internal sealed class CompareVerb : IVerb
{
    public string Name => "compare";
    public string Summary => "train several models within a budget and compare them on the same test users, with significance";
    public string Usage => """
          --data DIR                 a prepared dataset
          --models LIST              comma-separated: pop, markov, bert4rec, sasrec, gru4rec, neumf (default: the first five)
          --budget TIME              wall-clock training budget per trained model: 90s, 30m, 1h (default: none)
          --preset NAME              preset for every trained model (default: beauty for short sequences, ml-1m for long ones)
          --preset-file F1[,F2]      whole configs (tune's preset.json, a run's config.json), each for its own model kind
          --out DIR                  report.md, report.json, chart.svg and runs/MODEL (default runs/compare)
          --seed S                   trainings, pop100 negatives and bootstrap (default 42)
          --resamples N              bootstrap and sign-flip resamples (default 10000)
          --threads N
          --refit on|off             test every model after a refit on the validation items too (trained models for their
                                     best validation's step count; baselines count them); default: each preset's own setting
        prints one table (full and pop100), each model against the best other one (paired NDCG@10 difference, 95 % CI,
        p-value), and a RESULT line
        """;

    public int Run(CommandLine a)
    {
        string dataDir = a.Required("data");
        var models = a.String("models", "pop,markov,bert4rec,sasrec,gru4rec").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var budget = a.Duration("budget");
        string? preset = a.String("preset");
        var files = (a.String("preset-file") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string outDir = a.String("out", Path.Combine("runs", "compare"));
        int seed = a.Int("seed", 42), resamples = a.Int("resamples", 10_000, 1, 10_000_000), threads = a.Int("threads", 0, 0, 256);
        bool? refit = a.Choice<bool?>("refit", null, ("on", true), ("off", false));
        a.EnsureAllUsed();
        if (preset != null) TrainingConfig.FromPreset(preset);   // an unknown name fails before the data loads
        var configs = files.Select(TrainingConfig.FromFile).ToList();
        var data = SequenceDataset.Load(dataDir);
        Console.WriteLine($"comparing {string.Join(", ", models)} on {dataDir}: {data.Statistics}");
        var report = ModelComparison.Run(data, new ComparisonOptions
        {
            Models = models, Budget = budget, Seed = seed, Preset = preset, Configs = configs, Threads = threads, OutDir = outDir,
            Resamples = resamples, Refit = refit, DataName = Path.GetFileName(Path.GetFullPath(dataDir).TrimEnd('/')),
        });
        Console.WriteLine();
        Console.Write(report.Table());
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
