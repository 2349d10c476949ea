// `bert4rec tune`: successive halving over a preset's hyperparameters on validation NDCG@10; prints the leaderboard and
// writes the winner as a preset file for `train --preset-file`.
using System.CommandLine;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Pipeline;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Cli;

internal sealed class TuneVerb : IVerb
{
    public Command Build()
    {
        var dataOpt = Flags.Required("--data", "a prepared dataset", "DIR");
        var outOpt = Flags.Required("--out", "the search's folder (tune.json, trials/, preset.json)", "DIR");
        var presetOpt = Flags.String("--preset", "the starting preset", helpName: "NAME");
        presetOpt.CompletionSources.Add(TrainingConfig.PresetNames);
        var modelOpt = Flags.Choice<string?>("--model", "with --preset: the model kind (default bert4rec)", null, ("bert4rec", "bert4rec"), ("sasrec", "sasrec"), ("gru4rec", "gru4rec"));
        var fileOpt = Flags.String("--preset-file", "the starting point as a whole config (instead of --preset and --model)", helpName: "FILE");
        var budgetOpt = Flags.Duration("--budget", "total wall-clock budget (default 60m)");
        var trialsOpt = Flags.Int("--trials", "configs in the first rung, the preset itself among them", 8, 1, 1000);
        var seedOpt = Flags.OptionalInt("--seed", "draws and trainings (default: the preset's)");
        var threadsOpt = Flags.Int("--threads", "compute threads (0 = one per core)", 0, 0, 256);
        var resumeOpt = Flags.Flag("--resume", "continue the search in --out (same flags)");
        var c = new Command("tune", """
            search a preset's hyperparameters (successive halving, validation NDCG@10) into a preset file
            trials are judged on the validation split only; the test split is not read
            """) { dataOpt, outOpt, presetOpt, modelOpt, fileOpt, budgetOpt, trialsOpt, seedOpt, threadsOpt, resumeOpt };
        c.SetAction(a =>
        {
            string? file = a.GetValue(fileOpt), preset = a.GetValue(presetOpt), model = a.GetValue(modelOpt);
            if (file != null && (preset != null || model != null)) throw new UsageException("--preset-file: the file holds the preset and the model kind; drop --preset and --model");
            if (file == null && preset == null) throw new UsageException("missing required flag --preset (or --preset-file)");
            var cfg = file != null ? TrainingConfig.FromFile(file) : TrainingConfig.FromPreset(preset!, model ?? "bert4rec");
            cfg = cfg with { Seed = a.GetValue(seedOpt) ?? cfg.Seed, Threads = a.GetValue(threadsOpt) };
            return Run(a.GetValue(dataOpt)!, a.GetValue(outOpt)!, cfg, a.GetValue(budgetOpt) ?? TimeSpan.FromMinutes(60), a.GetValue(trialsOpt), a.GetValue(resumeOpt));
        });
        return c;
    }

    private static int Run(string dataDir, string outDir, TrainingConfig cfg, TimeSpan budget, int trials, bool resume)
    {
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
