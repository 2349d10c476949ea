// The training loop: Cloze batches, AdamW with warmup/decay and clipping, validation with early stopping on NDCG@10,
// checkpoints for exact resume, and a run folder (config, metrics per epoch, chart).
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Model;
using Bert4Rec.Training.Optim;

namespace Bert4Rec.Training.Training;

public sealed record EpochRecord(int Epoch, long Step, double Loss, double LearningRate, double Seconds, double TokensPerSecond, RankingMetrics? Validation);

/// <summary>Where a run is, after an optimizer step: for progress displays (rate, ETA) and the plain progress lines.</summary>
public sealed record TrainingProgress(int Epoch, int Epochs, int StepInEpoch, int StepsPerEpoch, long GlobalStep, double Loss,
                                      double TokensPerSecond, float LearningRate, double EtaSeconds, RankingMetrics? LastValidation, double BestMetric)
{
    public string Eta
    {
        get
        {
            var t = TimeSpan.FromSeconds(Math.Clamp(EtaSeconds, 0, 8.6e7));
            return t.Days > 0 ? $"{t.Days}d {t:hh\\:mm\\:ss}" : $"{t:hh\\:mm\\:ss}";
        }
    }

    public override string ToString() =>
        $"epoch {Epoch}/{Epochs} step {StepInEpoch}/{StepsPerEpoch} (global {GlobalStep}) loss {Loss:F4} {TokensPerSecond:N0} tok/s lr {LearningRate:G3} ETA {Eta}" +
        (LastValidation is { } v ? $" | val NDCG@10 {v.Ndcg10:F4} HR@10 {v.Hr10:F4} (best {BestMetric:F4})" : "");
}

/// <summary>One validation of a run: when it happened (training wall seconds since this process started the run, validation
/// time included), where, and what it measured on the validation split.</summary>
public sealed record ValidationPoint(double Seconds, int Epoch, long Step, RankingMetrics Metrics);

public sealed class Trainer
{
    public const string CheckpointFile = RunLayout.Checkpoint, BestFile = RunLayout.BestWeights, ConfigFile = RunLayout.Config, MetricsFile = RunLayout.History, ChartFile = RunLayout.Chart;

    private readonly TrainingConfig _cfg;
    private readonly LeaveOneOutSplit _split;
    private readonly string? _runDir;
    private readonly Action<string> _log;
    private readonly IProgress<TrainingProgress>? _progress;
    public List<EpochRecord> History { get; } = [];
    /// <summary>Every validation of this process's part of the run, in order (for quality-against-time charts).</summary>
    public List<ValidationPoint> Validations { get; } = [];
    /// <summary>Wall-clock budget of this call of <see cref="Run"/>: when it is spent the run ends as an early stop does (best
    /// weights kept, state finished). Null = no budget.</summary>
    public TimeSpan? TimeBudget { get; init; }
    /// <summary>SHA-256 of the run's vocab.txt, recorded in checkpoint.bin and best.bin (export checks the file against it) and
    /// compared on resume; empty = not recorded.</summary>
    public string VocabularySha256 { get; init; } = "";
    /// <summary>True when the last <see cref="Run"/> ended because <see cref="TimeBudget"/> was spent.</summary>
    public bool BudgetSpent { get; private set; }
    /// <summary>Called after every optimizer step (and its checkpoint, if any) with the global step count; tests interrupt runs here.</summary>
    public Action<long>? AfterStep { get; init; }
    /// <summary>Seconds between plain progress lines through the log, when no progress receiver is given.</summary>
    public double ProgressSeconds { get; init; } = 30;
    /// <summary>Ends the run once this many optimizer steps are done (the learning-rate schedule still spans the config's
    /// epochs): a refit replays the validated run's length. Null = no such limit.</summary>
    public long? StopAtStep { get; init; }
    /// <summary>Builds the model (config, max batch, threads): the engine. Null = the native engine.</summary>
    public Func<ModelConfig, int, int, ITrainableModel>? ModelFactory { get; init; }

    /// <param name="log">Receives epoch summaries and notices (default: the console).</param>
    /// <param name="progress">Receives every optimizer step's <see cref="TrainingProgress"/> (a terminal display throttles and draws
    /// it); without one, a plain progress line goes to <paramref name="log"/> every <see cref="ProgressSeconds"/>.</param>
    public Trainer(TrainingConfig cfg, LeaveOneOutSplit split, string? runDir, Action<string>? log = null, IProgress<TrainingProgress>? progress = null)
    {
        cfg.Validate();
        _cfg = cfg; _split = split; _runDir = runDir; _log = log ?? Console.WriteLine;
        _progress = progress;
    }

    // Every random choice derives from (seed, stream, epoch or step, index) and nothing else, so a resumed run replays it exactly.
    private const int OrderStream = 1, MaskStream = 2, DropoutStream = 3, ValidationStream = 4, NegativeStream = 5, PrefixStream = 6;
    internal static int Mix(int a, int b, int c) => Kernels.Elementwise.StableSeed(a, b, c);
    private static int StreamSeed(int seed, int stream, int a, int b) => Mix(Mix(seed, stream, 0x5eed), a, b);
    /// <summary>Seed of the shuffle of epoch <paramref name="epoch"/>'s samples.</summary>
    public static int OrderSeed(int seed, int epoch) => StreamSeed(seed, OrderStream, epoch, 0);
    /// <summary>Seed of the masks of the sample at <paramref name="position"/> of epoch <paramref name="epoch"/>'s order.</summary>
    public static int MaskSeed(int seed, int epoch, int position) => StreamSeed(seed, MaskStream, epoch, position);
    /// <summary>Seed of the sampled negatives of optimizer step <paramref name="step"/>.</summary>
    public static int NegativeSeed(int seed, long step) => StreamSeed(seed, NegativeStream, (int)(step >> 31), (int)(step & int.MaxValue));
    /// <summary>Dropout seed of optimizer step <paramref name="step"/> (counted over the whole run).</summary>
    public static ulong DropoutSeed(int seed, long step) =>
        (ulong)(uint)StreamSeed(seed, DropoutStream, (int)(step >> 31), (int)(step & int.MaxValue)) << 32 | (uint)StreamSeed(seed, DropoutStream, (int)(step & int.MaxValue), -1);

    /// <summary>Epoch <paramref name="epoch"/>'s samples in their seeded order (<see cref="Training.EpochPlan"/>).</summary>
    private EpochPlan PlanOf(int epoch) => new(_cfg, _split.TrainSequences, epoch, OrderSeed(_cfg.Seed, epoch));

    /// <summary>Seed of the prefix samples' cuts of user <paramref name="user"/> in epoch <paramref name="epoch"/>.</summary>
    internal static int PrefixSeed(int seed, int epoch, int user) => StreamSeed(seed, PrefixStream, epoch, user);

    /// <summary>
    /// Ends of the prefix samples of a training sequence of <paramref name="len"/> items: <paramref name="k"/> distinct cuts in
    /// 2..len-1 (each prefix keeps at least one item before its masked last one; the whole sequence is the last-item sample
    /// already), or every cut when there are no more than k.
    /// </summary>
    internal static IEnumerable<int> PrefixCuts(int len, int k, Random rng)
    {
        int m = len - 2;                        // candidate ends 2..len-1
        if (m <= k) { for (int e = 2; e < len; e++) yield return e; yield break; }
        // Floyd's sampling of k distinct values in [0, m)
        var picked = new HashSet<int>();
        for (int j = m - k; j < m; j++) { int t = rng.Next(j + 1); picked.Add(picked.Contains(t) ? j : t); }
        foreach (int t in picked.Order()) yield return t + 2;
    }

    public int StepsPerEpoch() => checked((int)((PlanOf(0).Count + _cfg.BatchSize - 1) / _cfg.BatchSize));

    /// <summary>Trains (from <paramref name="resume"/> when given) and returns the final state; the best weights are in BestParameters.</summary>
    public TrainingState Run(TrainingState? resume = null, CancellationToken cancel = default)
    {
        var cfg = _cfg;
        int n = _split.ItemCount, N = cfg.MaxLength;
        if (n < 1) throw new InvalidDataException("the dataset has no items");
        bool pointwise = cfg.Kind is ModelKind.NeuMf or ModelKind.DeepFm;
        // a pointwise step takes each positive with its negatives
        using IParameterModel model = cfg.Kind == ModelKind.TwoTower ? TwoTowers.Create(cfg, TwoTowers.Config(cfg, _split), _split, cfg.BatchSize)
            : pointwise ? PointwiseModels.Create(PointwiseModels.Config(cfg, _split), _split, cfg.BatchSize * (1 + cfg.Negatives), cfg.Threads)
            : (ModelFactory ?? NativeModel.Create)(cfg.ToModelConfig(n), cfg.BatchSize, cfg.Threads);
        var sequential = model as ITrainableModel;
        var pointwiseModel = model as IPointwiseModel;
        var examples = pointwiseModel == null ? null
            : new PointwiseExamples(_split.TrainSequences, n, cfg.Negatives, pointwiseModel.HistoryLength > 0 ? model.Config : null, cfg.NegativeSampling == "popularity")
            {
                Hard = cfg.HardNegatives == 0 ? null
                    : HardNegatives.AfterEachItem(new MarkovScorer(_split.TrainSequences, n), TrainingConfig.HardNegativePool, cfg.HardNegatives),
            };
        var tower = model as TwoTowerModel;
        string lossName = cfg.ResolvedLoss(n);
        var opt = new AdamW(model.Layout, new AdamWSettings(WeightDecay: cfg.WeightDecay));
        TrainingState state;
        if (resume != null)
        {
            if (resume.ItemCount != n) throw new InvalidDataException($"the checkpoint has {resume.ItemCount} items, the dataset {n}: resume with the dataset it was trained on");
            if (resume.VocabularySha256.Length > 0 && VocabularySha256.Length > 0 && resume.VocabularySha256 != VocabularySha256)
                throw new InvalidDataException("the dataset's vocabulary differs from the checkpoint's: resume with the dataset it was trained on");
            if (resume.Config with { Threads = 0 } != cfg with { Threads = 0 })
                throw new InvalidOperationException("the checkpoint was written with other hyperparameters than this run's");
            resume.Parameters.CopyTo(model.Parameters, 0);
            resume.M.CopyTo(opt.M, 0); resume.V.CopyTo(opt.V, 0);
            opt.Step = resume.AdamStep;
            // the state must hold the live buffers of the model and optimizer, not the loaded copies
            state = new TrainingState
            {
                Config = cfg, ItemCount = n, VocabularySha256 = resume.VocabularySha256, Parameters = model.Parameters, M = opt.M, V = opt.V, AdamStep = resume.AdamStep,
                GlobalStep = resume.GlobalStep, Epoch = resume.Epoch, StepInEpoch = resume.StepInEpoch, BestMetric = resume.BestMetric,
                BestEpoch = resume.BestEpoch, BestStep = resume.BestStep, BadEvaluations = resume.BadEvaluations, BestParameters = resume.BestParameters,
                LastValidation = resume.LastValidation, Finished = resume.Finished,
            };
            _log($"resuming at epoch {state.Epoch + 1}, step {state.GlobalStep}" + (resume.Config.Threads != cfg.Threads ? $" (note: {cfg.Threads} threads instead of {resume.Config.Threads}; the result can differ in the last bits)" : ""));
        }
        else
        {
            model.InitializeParameters((ulong)cfg.Seed);
            state = new TrainingState { Config = cfg, ItemCount = n, VocabularySha256 = VocabularySha256, Parameters = model.Parameters, M = opt.M, V = opt.V };
        }
        if (_runDir != null) PrepareRunFolder(state.Epoch, resume != null);
        var validation = ValidationSubset();
        var sampler = lossName is "ce" or "bce" or "in-batch" ? null
            : new NegativeSampler(n, cfg.Negatives, cfg.NegativeSampling == "popularity", lossName == "gbce" ? SampledLossKind.Gbce : SampledLossKind.SampledCe,
                                  cfg.GbceT, _split.TrainSequences);
        if (cfg.Loss == "auto") _log($"loss auto: {lossName} ({n:N0} items; sampled above {TrainingConfig.AutoSampledItems:N0})");
        int stepsPerEpoch = StepsPerEpoch();
        long totalSteps = (long)stepsPerEpoch * cfg.Epochs;
        // warmup never lasts longer than one epoch: 100 steps are 7 epochs of a 943-user dataset at batch 128, measured to
        // delay ML-100k's validation NDCG@10 by as many epochs for nothing
        int warmup = (int)Math.Min(cfg.WarmupSteps, stepsPerEpoch);
        var ids = new int[pointwise ? 0 : cfg.BatchSize * N];
        var labels = new int[pointwise ? 0 : cfg.BatchSize * N];
        int perPositive = 1 + cfg.Negatives;
        var pwUsers = new int[pointwise ? cfg.BatchSize * perPositive : 0];
        var pwItems = new int[pwUsers.Length];
        var pwLabels = new float[pwUsers.Length];
        var pwHistories = new int[pwUsers.Length * (examples?.HistoryLength ?? 0)];
        var ttUsers = new int[tower != null ? cfg.BatchSize : 0];
        var ttHistories = new int[tower != null ? cfg.BatchSize * N : 0];
        var ttTargets = new int[ttUsers.Length];
        var runClock = Stopwatch.StartNew();
        var lastProgress = Stopwatch.StartNew();
        long stepsThisRun = 0;

        // Validation on the (seeded subset of the) validation split, full ranking; keeps the best weights and counts patience.
        void Validate(int epoch)
        {
            var scorer = ItemScorers.For(model);
            var val = Evaluator.Evaluate(scorer, validation, new EvaluationOptions { Protocol = EvaluationProtocol.Full });
            state.LastValidation = val;
            Validations.Add(new ValidationPoint(runClock.Elapsed.TotalSeconds, epoch + 1, state.GlobalStep, val));
            if (val.Ndcg10 > state.BestMetric)
            {
                state.BestMetric = val.Ndcg10; state.BestEpoch = epoch + 1; state.BestStep = state.GlobalStep; state.BadEvaluations = 0;
                state.BestParameters = (float[])model.Parameters.Clone();
                if (_runDir != null) Checkpoint.SaveWeights(Path.Combine(_runDir, BestFile), cfg, n, state.BestParameters, state.BestEpoch, state.BestStep, val.Ndcg10, state.VocabularySha256);
            }
            else if (cfg.Patience > 0 && ++state.BadEvaluations >= cfg.Patience)
            {
                _log($"early stop: validation NDCG@10 has not improved for {cfg.Patience} evaluations (best {state.BestMetric:F4} at epoch {state.BestEpoch}, step {state.BestStep})");
                state.Finished = true;
            }
        }

        for (int epoch = state.Epoch; epoch < cfg.Epochs && !state.Finished; epoch++)
        {
            var plan = PlanOf(epoch);
            var clock = Stopwatch.StartNew();
            double lossSum = 0; int lossCount = 0; long tokens = 0;
            RankingMetrics? epochValidation = null;
            for (int bi = state.StepInEpoch; bi < stepsPerEpoch && !state.Finished; bi++)
            {
                cancel.ThrowIfCancellationRequested();
                long start = (long)bi * cfg.BatchSize;
                int count = (int)Math.Min(cfg.BatchSize, plan.Count - start);
                Array.Clear(ids); Array.Clear(labels);
                for (int k = 0; k < count; k++)
                {
                    var s = plan[start + k];
                    var items = _split.TrainSequences[s.User].Slice(s.Start, s.Length);
                    if (tower != null)
                    {
                        TwoTowers.Fill(_split.TrainSequences[s.User], s.User, s.Start, tower.Config, ttUsers, ttHistories, ttTargets, k);
                        tokens++;
                    }
                    else if (examples != null)
                    {
                        // negatives drawn from the sample's own seed, as the Cloze masks
                        examples.Fill(s.User, s.Start, new Random(MaskSeed(cfg.Seed, epoch, (int)(start + k))), pwUsers, pwItems, pwLabels, k * perPositive, pwHistories);
                        tokens++;
                    }
                    else if (cfg.Kind == ModelKind.Bert4Rec)
                    {
                        var rng = new Random(MaskSeed(cfg.Seed, epoch, (int)(start + k)));
                        ClozeMasker.Mask(items, N, n, cfg.MaskProbability, cfg.MaxPredictions, cfg.MaskTokenRate, s.LastOnly, rng,
                            ids.AsSpan(k * N, N), labels.AsSpan(k * N, N));
                        tokens += s.Length;
                    }
                    else
                    {
                        NextItemSamples.Fill(items, N, ids.AsSpan(k * N, N), labels.AsSpan(k * N, N));
                        tokens += s.Length - 1;
                    }
                }
                float lr = LearningRateSchedule.At(state.GlobalStep, warmup, totalSteps, cfg.LearningRate);
                float loss = sequential != null
                    ? sequential.TrainStep(ids.AsSpan(0, count * N), labels.AsSpan(0, count * N), count, DropoutSeed(cfg.Seed, state.GlobalStep),
                                           sampler?.Draw(NegativeSeed(cfg.Seed, state.GlobalStep)))
                    : tower != null ? tower.TrainStep(ttUsers, ttHistories, ttTargets, count)
                    : pointwiseModel!.TrainStep(pwUsers, pwHistories.AsSpan(0, count * perPositive * examples!.HistoryLength), pwItems, pwLabels, count * perPositive);
                if (!float.IsFinite(loss)) throw new InvalidOperationException($"loss became {loss} at epoch {epoch + 1}, step {state.GlobalStep}; lower --lr");
                GradientClipping.ClipGlobalNorm(model.Gradients, cfg.ClipNorm);
                opt.Update(model.Parameters, model.Gradients, lr);
                state.GlobalStep++; state.StepInEpoch = bi + 1; state.AdamStep = opt.Step;
                stepsThisRun++;
                lossSum += loss; lossCount++;
                if (cfg.EvalEverySteps > 0 && state.GlobalStep % cfg.EvalEverySteps == 0 && validation.Count > 0)
                {
                    Validate(epoch);
                    epochValidation = state.LastValidation;
                }
                if (cfg.CheckpointEvery > 0 && state.GlobalStep % cfg.CheckpointEvery == 0 && _runDir != null)
                    Checkpoint.Save(Path.Combine(_runDir, CheckpointFile), state);
                AfterStep?.Invoke(state.GlobalStep);
                if (StopAtStep is { } stop && state.GlobalStep >= stop) state.Finished = true;
                if (TimeBudget is { } budget && runClock.Elapsed >= budget && !state.Finished)
                {
                    _log($"time budget of {budget.TotalSeconds:F0}s spent at epoch {epoch + 1}, step {state.GlobalStep}");
                    // one last validation, unless one just ran, so the weights trained since the last one are not wasted
                    if (validation.Count > 0 && Validations.LastOrDefault()?.Step != state.GlobalStep) { Validate(epoch); epochValidation = state.LastValidation; }
                    BudgetSpent = true; state.Finished = true;
                }
                if (_progress != null || lastProgress.Elapsed.TotalSeconds >= ProgressSeconds)
                {
                    lastProgress.Restart();
                    double rate = stepsThisRun / runClock.Elapsed.TotalSeconds;
                    var p = new TrainingProgress(epoch + 1, cfg.Epochs, bi + 1, stepsPerEpoch, state.GlobalStep, lossSum / lossCount,
                        tokens / clock.Elapsed.TotalSeconds, lr, (totalSteps - state.GlobalStep) / Math.Max(rate, 1e-9), state.LastValidation, state.BestMetric);
                    if (_progress != null) _progress.Report(p);
                    else _log(p.ToString());
                }
            }
            state.Epoch = epoch + 1; state.StepInEpoch = 0;
            if (cfg.EvalEverySteps == 0 && cfg.EvalEvery > 0 && (epoch + 1) % cfg.EvalEvery == 0 && validation.Count > 0 && !state.Finished)
            {
                Validate(epoch);
                epochValidation = state.LastValidation;
            }
            double secs = clock.Elapsed.TotalSeconds;
            var rec = new EpochRecord(epoch + 1, state.GlobalStep, lossCount > 0 ? lossSum / lossCount : double.NaN,
                LearningRateSchedule.At(Math.Max(0, state.GlobalStep - 1), warmup, totalSteps, cfg.LearningRate), secs, tokens / secs, epochValidation);
            History.Add(rec);
            _log($"epoch {rec.Epoch}: loss {rec.Loss:F4}, {rec.TokensPerSecond:N0} tok/s, {secs:F1}s" +
                 (epochValidation is { } ev ? $", validation NDCG@10 {ev.Ndcg10:F4} HR@10 {ev.Hr10:F4} (best {state.BestMetric:F4} at epoch {state.BestEpoch})" : ""));
            if (_runDir != null)
            {
                // checkpoint first: a kill between the two leaves the epoch's line missing, which the resumed run rewrites
                Checkpoint.Save(Path.Combine(_runDir, CheckpointFile), state);
                File.AppendAllText(Path.Combine(_runDir, MetricsFile), JsonSerializer.Serialize(rec) + "\n");
                TrainingChart.Write(Path.Combine(_runDir, ChartFile), ReadHistory(_runDir));
            }
        }
        state.Finished = true;
        if (state.BestParameters == null)
        {
            // no validation ran: the final weights are the ones to keep
            state.BestParameters = (float[])model.Parameters.Clone();
            state.BestEpoch = state.Epoch; state.BestStep = state.GlobalStep;
            if (_runDir != null) Checkpoint.SaveWeights(Path.Combine(_runDir, BestFile), cfg, n, state.BestParameters, state.BestEpoch, state.BestStep, double.NaN, state.VocabularySha256);
        }
        if (_runDir != null) Checkpoint.Save(Path.Combine(_runDir, CheckpointFile), state);
        return state;
    }

    /// <summary>config.json, and metrics.jsonl holding exactly the epochs the state has completed (a resumed run drops the lines of
    /// epochs it will redo; a new run starts an empty file).</summary>
    private void PrepareRunFolder(int epochsDone, bool resuming)
    {
        Directory.CreateDirectory(_runDir!);
        AtomicFile.WriteAllBytes(Path.Combine(_runDir!, ConfigFile), JsonSerializer.SerializeToUtf8Bytes(_cfg, new JsonSerializerOptions { WriteIndented = true }));
        var kept = resuming ? ReadHistory(_runDir!).Where(r => r.Epoch <= epochsDone).ToList() : [];
        AtomicFile.WriteAllBytes(Path.Combine(_runDir!, MetricsFile), System.Text.Encoding.UTF8.GetBytes(string.Concat(kept.Select(r => JsonSerializer.Serialize(r) + "\n"))));
    }

    /// <summary>The validation cases a run scores: all, or a seeded subset of <see cref="TrainingConfig.ValidationUsers"/>
    /// (in user order); only the chosen cases are made, so a small subset of a large log stays small, and all of them are
    /// the split's own list (its cases made batch by batch when validating).</summary>
    private IReadOnlyList<EvaluationCase> ValidationSubset()
    {
        var v = _split.Validation;
        if (_cfg.ValidationUsers <= 0 || v.Count <= _cfg.ValidationUsers) return v;
        var rng = new Random(StreamSeed(_cfg.Seed, ValidationStream, 0, 0));
        // the split's cases are in user order, so ordering the chosen indices orders the cases by user
        return Enumerable.Range(0, v.Count).OrderBy(_ => rng.Next()).Take(_cfg.ValidationUsers).Order().Select(i => v[i]).ToList();
    }

    /// <summary>All epoch records of a run folder (so a resumed run's chart shows the whole run).</summary>
    public static List<EpochRecord> ReadHistory(string runDir)
    {
        var p = Path.Combine(runDir, MetricsFile);
        if (!File.Exists(p)) return [];
        var list = new List<EpochRecord>();
        int line = 0;
        foreach (var l in File.ReadLines(p))
        {
            line++;
            if (l.Length == 0) continue;
            try { list.Add(JsonSerializer.Deserialize<EpochRecord>(l) ?? throw new JsonException("null record")); }
            catch (JsonException e) { throw new InvalidDataException($"{p}:{line}: not an epoch record ({e.Message})"); }
        }
        return list;
    }
}
