// tune: the rung schedule and the seeded draws, a search whose preset file `train --preset-file` accepts, and a search
// interrupted after a slice that resumes with exactly the slices it had not finished.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Pipeline;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Training.Tests.Pipeline;

public class TuneTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-tune-");
    public void Dispose() => _dir.Delete(true);

    private static readonly LeaveOneOutSplit Split = LeaveOneOut.Split(
        SyntheticDataset.Generate(new SyntheticOptions { Users = 240, Items = 60, MinLength = 5, MaxLength = 20, Clusters = 4, Seed = 5 }));

    private static TrainingConfig Tiny(string model = "bert4rec") => TrainingConfig.FromPreset("synthetic", model) with
    {
        Hidden = 16, Heads = 1, Layers = 1, MaxLength = 20, MaxPredictions = 6, BatchSize = 64, Epochs = 200, Patience = 0, Threads = 1, Seed = 3,
    };

    [Fact]
    public void Rungs_halve_the_field_and_draws_are_seeded_distinct_and_start_with_the_preset()
    {
        Assert.Equal([8, 4, 2, 1], HyperparameterSearch.Rungs(8));
        Assert.Equal([5, 3, 2, 1], HyperparameterSearch.Rungs(5));
        Assert.Equal([1], HyperparameterSearch.Rungs(1));
        var preset = TrainingConfig.FromPreset("beauty");
        var a = HyperparameterSearch.Draw(preset, 12);
        Assert.Equal(12, a.Count);
        Assert.Equal(preset, a[0]);
        Assert.Equal(a, HyperparameterSearch.Draw(preset, 12));
        Assert.NotEqual(a, HyperparameterSearch.Draw(preset with { Seed = 1 }, 12).Select(c => c with { Seed = preset.Seed }));
        Assert.Equal(12, a.Distinct().Count());
        foreach (var c in a.Skip(1))
        {
            c.Validate();
            Assert.InRange(c.LearningRate, preset.LearningRate / 3.01f, preset.LearningRate * 3.01f);
            Assert.Equal((int)Math.Ceiling(Math.Round(c.MaskProbability * 10) * c.MaxLength / 10.0), c.MaxPredictions);   // max predictions follow the rate
            Assert.Equal((preset.Hidden, preset.Layers, preset.MaxLength, preset.Seed), (c.Hidden, c.Layers, c.MaxLength, c.Seed));
        }
        var sasrec = TrainingConfig.FromPreset("beauty", "sasrec");
        Assert.All(HyperparameterSearch.Draw(sasrec, 6), c => Assert.Equal((sasrec.MaskProbability, sasrec.MaxPredictions), (c.MaskProbability, c.MaxPredictions)));
        var gru = TrainingConfig.FromPreset("beauty", "gru4rec");
        Assert.All(HyperparameterSearch.Draw(gru, 6), c => Assert.Equal((gru.AttentionDropout, gru.Layers), (c.AttentionDropout, c.Layers)));
    }

    [Fact]
    public void Tune_writes_a_preset_file_that_train_accepts()
    {
        string outDir = Path.Combine(_dir.FullName, "tune");
        var lines = new List<string>();
        var result = HyperparameterSearch.Run(Split, new SearchOptions { Base = Tiny(), OutDir = outDir, Budget = TimeSpan.FromSeconds(3), Trials = 3, Log = lines.Add });

        Assert.Equal(3, result.Leaderboard.Count);
        Assert.Equal(result.Winner, result.Leaderboard[0]);
        Assert.Equal(3, result.Winner.RungsDone);                                      // rungs of 3, 2, 1 trials
        Assert.Equal([3, 2, 1], result.Leaderboard.Select(r => r.RungsDone));
        Assert.All(result.Leaderboard, r => Assert.All(r.Scores, s => Assert.InRange(s, 0, 1)));
        Assert.Contains(lines, l => l.StartsWith("[t0", StringComparison.Ordinal) && l.Contains("time budget"));
        // the winner went on from its own state; only its last rung's state file is left
        Assert.True(File.Exists(HyperparameterSearch.TrialState(outDir, result.Winner.Id, 2)));
        Assert.False(File.Exists(HyperparameterSearch.TrialState(outDir, result.Winner.Id, 0)));

        var cfg = TrainingFlags.Parse(["--preset-file", result.PresetFile, "--epochs", "1", "--threads", "1"], out var given);
        Assert.Equal(result.Winner.Config with { Preset = "synthetic-tuned", Epochs = 1 }, cfg);
        Assert.Equal(["epochs", "threads"], given.Order());
        var state = new Trainer(cfg, Split, null, _ => { }).Run();
        Assert.Equal(1, state.Epoch);
    }

    [Fact]
    public void An_interrupted_search_resumes_with_the_slices_it_had_not_finished()
    {
        string outDir = Path.Combine(_dir.FullName, "resume");
        var o = new SearchOptions { Base = Tiny("sasrec"), OutDir = outDir, Budget = TimeSpan.FromSeconds(3), Trials = 3, Log = _ => { } };
        var first = new List<(int, int)>();
        var e = Assert.Throws<OperationCanceledException>(() => HyperparameterSearch.Run(Split, o with
        {
            AfterSlice = (t, k) => { first.Add((t, k)); if (first.Count == 4) throw new OperationCanceledException("killed"); },
        }));
        Assert.Equal([(0, 0), (1, 0), (2, 0)], first.Take(3));
        Assert.Equal(1, first[3].Item2);

        // a second search into the same folder must say so; a resume must keep the settings
        Assert.Contains("--resume", Assert.Throws<UsageException>(() => HyperparameterSearch.Run(Split, o)).Message);
        Assert.Contains("--trials", Assert.Throws<UsageException>(() => HyperparameterSearch.Run(Split, o with { Resume = true, Trials = 4 })).Message);
        Assert.Contains("--budget", Assert.Throws<UsageException>(() => HyperparameterSearch.Run(Split, o with { Resume = true, Budget = TimeSpan.FromSeconds(4) })).Message);

        var second = new List<(int, int)>();
        var result = HyperparameterSearch.Run(Split, o with { Resume = true, AfterSlice = (t, k) => second.Add((t, k)) });
        Assert.Equal(6, first.Count + second.Count);                                   // 3 + 2 + 1 slices, none twice
        Assert.Empty(first.Intersect(second));
        Assert.Equal(1, second[0].Item2);
        Assert.Equal(3, result.Winner.RungsDone);
        Assert.True(File.Exists(result.PresetFile));
        Assert.Equal("sasrec", TrainingConfig.FromFile(result.PresetFile).Model);
    }

    [Theory]
    [InlineData("{\"Hidden\": 32, \"Colour\": 1}", "--preset-file")]
    [InlineData("[1, 2]", "--preset-file")]
    [InlineData("{\"Hidden\": 32, \"Heads\": 3}", "--heads")]
    public void Bad_preset_files_are_refused_naming_the_flag(string json, string flag)
    {
        string p = Path.Combine(_dir.FullName, "p.json");
        File.WriteAllText(p, json);
        Assert.Contains(flag, Assert.Throws<UsageException>(() => TrainingConfig.FromFile(p)).Message);
        Assert.Contains("--preset-file", Assert.Throws<UsageException>(() => TrainingFlags.Parse(["--preset-file", p, "--preset", "beauty"], out _)).Message);
    }
}
