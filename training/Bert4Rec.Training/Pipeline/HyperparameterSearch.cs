// `tune` in one call: seeded successive halving over a preset's hyperparameters under a wall-clock budget, judged on
// validation NDCG@10 only, resumable from a state file; the winner becomes a preset file that `train --preset-file` reads.
//
// Trial 0 is the preset itself; the others draw the learning rate (log-uniform within 3x of the preset's), dropout, batch
// size and, for BERT4Rec, the masking rate (with max predictions = ceil(rate * N)). Rungs halve the field: with n trials
// there are R = 1 + ceil(log2 n) rungs of n, ceil(n/2), ... 1 trials; each rung gets budget / R, split evenly between
// its trials. A promoted trial continues its own training (weights, optimizer, schedule) where the last rung left it.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Training.Pipeline;

public sealed record SearchOptions
{
    /// <summary>The preset to tune (its seed seeds the draws and every trial's training).</summary>
    public required TrainingConfig Base { get; init; }
    /// <summary>Holds the state file, one folder per trial and the winner's preset file.</summary>
    public required string OutDir { get; init; }
    public TimeSpan Budget { get; init; } = TimeSpan.FromMinutes(60);
    public int Trials { get; init; } = 8;
    /// <summary>Continue the search whose state file is in <see cref="OutDir"/> (its settings must match these).</summary>
    public bool Resume { get; init; }
    public Action<string>? Log { get; init; }
    /// <summary>Called after every finished slice with (trial, rung), once its result is saved; tests interrupt searches here.</summary>
    public Action<int, int>? AfterSlice { get; init; }
}

/// <summary>One trial: its config, and per finished rung the best validation NDCG@10 so far.</summary>
public sealed class TrialRecord
{
    public int Id { get; set; }
    public required TrainingConfig Config { get; set; }
    /// <summary>Best validation NDCG@10 after each finished rung (entry k: after rung k).</summary>
    public List<double> Scores { get; set; } = [];
    public double Seconds { get; set; }
    public long Steps { get; set; }
    public int BestEpoch { get; set; }
    /// <summary>Why its training last ended: budget (it can go on), early stop or epochs (it is done).</summary>
    public string Stop { get; set; } = "";

    public int RungsDone => Scores.Count;
    public double? Score => Scores.Count > 0 ? Scores[^1] : null;
    public bool CanContinue => Stop is "" or "budget";
}

/// <summary>The resumable state of a search (tune.json).</summary>
public sealed class SearchState
{
    public int Version { get; set; } = 1;
    public required TrainingConfig Base { get; set; }
    public int Trials { get; set; }
    public double BudgetSeconds { get; set; }
    public int Users { get; set; }
    public int Items { get; set; }
    public List<TrialRecord> Records { get; set; } = [];
}

public sealed record SearchResult(TrialRecord Winner, IReadOnlyList<TrialRecord> Leaderboard, string PresetFile);

public static class HyperparameterSearch
{
    public const string StateFile = "tune.json", PresetFile = "preset.json", TrialsFolder = "trials";
    private const int DrawStream = 0x7e5e;

    private static readonly JsonSerializerOptions StateJson = new() { WriteIndented = true };

    /// <summary>Trials per rung: n, ceil(n/2), ..., 1.</summary>
    public static List<int> Rungs(int trials)
    {
        var r = new List<int> { trials };
        while (r[^1] > 1) r.Add((r[^1] + 1) / 2);
        return r;
    }

    /// <summary>The trial configs: the preset, then seeded draws around it (distinct from each other).</summary>
    public static List<TrainingConfig> Draw(TrainingConfig preset, int count)
    {
        var list = new List<TrainingConfig> { preset };
        var rng = new Random(Kernels.Elementwise.StableSeed(preset.Seed, DrawStream, count));
        float[] dropouts = [0.1f, 0.2f, 0.3f, 0.4f, 0.5f];
        int[] batches = [64, 128, 256];
        for (int tries = 0; list.Count < count && tries < 100 * count; tries++)
        {
            float lr = (float)Math.Round(preset.LearningRate * Math.Exp((rng.NextDouble() * 2 - 1) * Math.Log(3)), 6);
            var c = preset with
            {
                LearningRate = lr, HiddenDropout = dropouts[rng.Next(dropouts.Length)], BatchSize = batches[rng.Next(batches.Length)],
            };
            if (preset.Kind != ModelKind.Gru4Rec) c = c with { AttentionDropout = dropouts[rng.Next(dropouts.Length)] };
            if (preset.Kind == ModelKind.Bert4Rec)
            {
                int tenths = 1 + rng.Next(7);                                // masking rate 0.1 .. 0.7
                c = c with { MaskProbability = tenths / 10f, MaxPredictions = Math.Max(1, (tenths * preset.MaxLength + 9) / 10) };
            }
            c.Validate();
            if (!list.Contains(c)) list.Add(c);
        }
        return list;
    }

    public static SearchResult Run(LeaveOneOutSplit split, SearchOptions o)
    {
        var log = o.Log ?? Console.WriteLine;
        o.Base.Validate();
        if (o.Trials < 1) throw new UsageException($"--trials: {o.Trials} must be >= 1");
        if (o.Budget <= TimeSpan.Zero) throw new UsageException("--budget: must be positive");
        if (split.Validation.Count == 0) throw new InvalidDataException("no user has 3 items: there is no validation split to judge trials on");
        Directory.CreateDirectory(o.OutDir);
        string statePath = Path.Combine(o.OutDir, StateFile);
        SearchState state;
        if (o.Resume)
        {
            if (!File.Exists(statePath)) throw new UsageException($"--resume: {statePath} not found");
            state = Load(statePath);
            var expected = Fresh(split, o);
            if (state.Base with { Threads = 0 } != expected.Base with { Threads = 0 }) throw new UsageException($"--resume: {statePath} tunes another preset or seed; give the same --preset, --model and --seed");
            if (state.Trials != expected.Trials) throw new UsageException($"--resume: {statePath} has {state.Trials} trials, not {o.Trials}: give the same --trials");
            if (Math.Abs(state.BudgetSeconds - expected.BudgetSeconds) > 1e-6) throw new UsageException($"--resume: {statePath} has a budget of {state.BudgetSeconds}s: give the same --budget");
            if ((state.Users, state.Items) != (expected.Users, expected.Items)) throw new InvalidDataException($"{statePath}: tuned on {state.Users} users and {state.Items} items, this dataset has {expected.Users} and {expected.Items}");
            foreach (var r in state.Records) r.Config = r.Config with { Threads = o.Base.Threads };
            log($"resuming the search in {o.OutDir}: {state.Records.Sum(r => r.RungsDone)} slices done");
        }
        else
        {
            if (File.Exists(statePath)) throw new UsageException($"{statePath} exists: pass --resume to continue that search, or choose another --out");
            state = Fresh(split, o);
            Save(statePath, state);
        }

        var rungs = Rungs(state.Trials);
        double rungSeconds = state.BudgetSeconds / rungs.Count;
        log($"successive halving: {state.Trials} trials, rungs of {string.Join(", ", rungs)} trials, {rungSeconds:F0}s per rung");
        var field = state.Records.ToList();
        for (int k = 0; k < rungs.Count; k++)
        {
            if (k > 0)
            {
                // promotion by the score each trial had when the previous rung ended (stable under resume)
                field = field.OrderByDescending(r => r.Scores[k - 1]).ThenBy(r => r.Id).Take(rungs[k]).ToList();
                log($"rung {k + 1}/{rungs.Count}: trials {string.Join(", ", field.Select(r => r.Id))} go on, {rungSeconds / field.Count:F0}s each");
            }
            foreach (var r in field.OrderBy(r => r.Id))
            {
                if (r.RungsDone > k) continue;
                RunSlice(split, o, r, k, TimeSpan.FromSeconds(rungSeconds / field.Count), log);
                Save(statePath, state);
                if (k > 0) File.Delete(TrialState(o.OutDir, r.Id, k - 1));   // only now: the search state points past it
                o.AfterSlice?.Invoke(r.Id, k);
            }
            // trials that leave the field never train again: their state files go
            if (k + 1 < rungs.Count)
            {
                var next = field.OrderByDescending(r => r.Scores[k]).ThenBy(r => r.Id).Take(rungs[k + 1]).Select(r => r.Id).ToHashSet();
                foreach (var r in field.Where(r => !next.Contains(r.Id))) File.Delete(TrialState(o.OutDir, r.Id, k));
            }
        }

        var board = Leaderboard(state.Records);
        var winner = board[0];
        string presetPath = Path.Combine(o.OutDir, PresetFile);
        TrainingConfig.SaveFile(presetPath, winner.Config with { Preset = $"{o.Base.Preset}-tuned", Threads = 0 });
        return new SearchResult(winner, board, presetPath);
    }

    /// <summary>Best first: the trials that reached the latest rung, by their latest score; then those eliminated earlier.</summary>
    public static List<TrialRecord> Leaderboard(IEnumerable<TrialRecord> records) =>
        records.OrderByDescending(r => r.RungsDone).ThenByDescending(r => r.Score ?? double.NegativeInfinity).ThenBy(r => r.Id).ToList();

    public static string LeaderboardTable(IReadOnlyList<TrialRecord> board)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append("| rank | trial | rungs | seconds |       lr | batch | dropout | attn | mask | max pred | val NDCG@10 | stop       |\n");
        sb.Append("|-----:|------:|------:|--------:|---------:|------:|--------:|-----:|-----:|---------:|------------:|------------|\n");
        for (int i = 0; i < board.Count; i++)
        {
            var r = board[i];
            var c = r.Config;
            sb.Append(inv, $"| {i + 1,4} | {r.Id,5} | {r.RungsDone,5} | {r.Seconds,7:F1} | {c.LearningRate,8:G3} | {c.BatchSize,5} | {c.HiddenDropout,7:F2} | {c.AttentionDropout,4:F2} | ");
            sb.Append(inv, $"{(c.Kind == ModelKind.Bert4Rec ? c.MaskProbability.ToString("F2", inv) : "-"),4} | {(c.Kind == ModelKind.Bert4Rec ? c.MaxPredictions.ToString(inv) : "-"),8} | ");
            sb.Append(inv, $"{(r.Score is { } s ? s.ToString("F4", inv) : "-"),11} | {r.Stop,-10} |\n");
        }
        return sb.ToString();
    }

    public static string TrialDir(string outDir, int id) => Path.Combine(outDir, TrialsFolder, $"t{id:D2}");

    /// <summary>A trial's training state at the end of rung <paramref name="rung"/> (0-based), where the next rung starts.</summary>
    public static string TrialState(string outDir, int id, int rung) => Path.Combine(TrialDir(outDir, id), $"rung{rung + 1}.bin");

    private static SearchState Fresh(LeaveOneOutSplit split, SearchOptions o) => new()
    {
        Base = o.Base, Trials = o.Trials, BudgetSeconds = o.Budget.TotalSeconds, Users = split.TrainSequences.Count, Items = split.ItemCount,
        Records = Draw(o.Base, o.Trials).Select((c, i) => new TrialRecord { Id = i, Config = c }).ToList(),
    };

    /// <summary>Trains trial <paramref name="r"/> for one rung: from scratch in rung 0, else from the state its last finished
    /// rung saved (a slice cut short by a kill is redone from there). A trial that stopped early keeps its score.</summary>
    private static void RunSlice(LeaveOneOutSplit split, SearchOptions o, TrialRecord r, int rung, TimeSpan slice, Action<string> log)
    {
        string dir = TrialDir(o.OutDir, r.Id);
        if (!r.CanContinue)
        {
            log($"trial {r.Id}: stopped by {r.Stop} earlier; keeps validation NDCG@10 {r.Score:F4}");
            r.Scores.Add(r.Scores[^1]);
            return;
        }
        TrainingState? from = null;
        if (rung > 0)
        {
            from = Checkpoint.Load(TrialState(o.OutDir, r.Id, rung - 1));
            // the budget ended the last slice as an early stop would; this slice goes on (the rest of that epoch is skipped)
            from.Finished = false;
        }
        Directory.CreateDirectory(dir);
        log($"trial {r.Id} rung {rung + 1}: {slice.TotalSeconds:F0}s, lr {r.Config.LearningRate:G3}, batch {r.Config.BatchSize}, dropout {r.Config.HiddenDropout}/{r.Config.AttentionDropout}" +
            (r.Config.Kind == ModelKind.Bert4Rec ? $", mask {r.Config.MaskProbability} x{r.Config.MaxPredictions}" : ""));
        var trainer = new Trainer(r.Config, split, null, line => log($"[t{r.Id:D2}] {line}")) { TimeBudget = slice };
        var clock = Stopwatch.StartNew();
        var s = trainer.Run(from);
        r.Seconds += clock.Elapsed.TotalSeconds;
        r.Steps = s.GlobalStep;
        r.BestEpoch = s.BestEpoch;
        r.Stop = trainer.BudgetSpent ? "budget" : r.Config.Patience > 0 && s.BadEvaluations >= r.Config.Patience ? "early stop" : "epochs";
        Checkpoint.Save(TrialState(o.OutDir, r.Id, rung), s);
        r.Scores.Add(double.IsFinite(s.BestMetric) ? s.BestMetric : 0);
        log($"trial {r.Id} rung {rung + 1}: validation NDCG@10 {r.Scores[^1]:F4} after {r.Seconds:F0}s ({r.Steps} steps, {r.Stop})");
    }

    private static SearchState Load(string path)
    {
        try { return JsonSerializer.Deserialize<SearchState>(File.ReadAllBytes(path), StateJson) ?? throw new JsonException("null state"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a search state ({e.Message})"); }
    }

    private static void Save(string path, SearchState state) => AtomicFile.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(state, StateJson));
}
