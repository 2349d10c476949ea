// `bert4rec tune`: successive halving over a preset's hyperparameters on validation NDCG@10; prints the leaderboard and
// writes the winner as a preset file for `train --preset-file`.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Pipeline;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Cli;

internal sealed class TuneVerb : IVerb
{
    public string Name => "tune";
    public string Summary => "search a preset's hyperparameters (successive halving, validation NDCG@10) into a preset file";
    public string Usage => """
          --data DIR --out DIR       a prepared dataset; the search's folder (tune.json, trials/, preset.json)
          --preset NAME [--model bert4rec|sasrec|gru4rec] | --preset-file FILE   the starting point
          --budget TIME              total wall-clock budget: 90s, 30m, 1h (default 60m)
          --trials N                 configs in the first rung, the preset itself among them (default 8)
          --seed S                   draws and trainings (default: the preset's)
          --threads N
          --resume                   continue the search in --out (same flags)
        trials are judged on the validation split only; the test split is not read
        """;

    public int Run(CommandLine a)
    {
        string dataDir = a.Required("data"), outDir = a.Required("out");
        string? file = a.String("preset-file"), preset = a.String("preset"), model = a.String("model");
        if (file != null && (preset != null || model != null)) throw new UsageException("--preset-file: the file holds the preset and the model kind; drop --preset and --model");
        if (file == null && preset == null) throw new UsageException("missing required flag --preset (or --preset-file)");
        var cfg = file != null ? TrainingConfig.FromFile(file) : TrainingConfig.FromPreset(preset!, model ?? "bert4rec");
        cfg = cfg with { Seed = a.Int("seed", cfg.Seed), Threads = a.Int("threads", 0, 0, 256) };
        var budget = a.Duration("budget") ?? TimeSpan.FromMinutes(60);
        int trials = a.Int("trials", 8, 1, 1000);
        bool resume = a.Flag("resume");
        a.EnsureAllUsed();
        var data = SequenceDataset.Load(dataDir);
        Console.WriteLine($"tuning {cfg.Model} preset {cfg.Preset} on {dataDir}: {data.Statistics}");
        var result = HyperparameterSearch.Run(LeaveOneOut.Split(data), new SearchOptions
        {
            Base = cfg, OutDir = outDir, Budget = budget, Trials = trials, Resume = resume,
        });
        Console.WriteLine();
        Console.Write(HyperparameterSearch.LeaderboardTable(result.Leaderboard));
        Console.WriteLine($"winner: trial {result.Winner.Id}, validation NDCG@10 {result.Winner.Score:F4}; preset file {result.PresetFile}");
        Console.WriteLine($"  train with: bert4rec train --data {dataDir} --preset-file {result.PresetFile} --out RUN_DIR");
        Console.WriteLine("RESULT " + System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["model"] = cfg.Model, ["preset"] = cfg.Preset, ["trials"] = trials, ["winner"] = result.Winner.Id,
            ["validation_ndcg@10"] = result.Winner.Score is { } s ? Math.Round(s, 5) : null, ["seconds"] = Math.Round(result.Leaderboard.Sum(r => r.Seconds), 1),
            ["preset_file"] = result.PresetFile,
        }));
        return 0;
    }
}
