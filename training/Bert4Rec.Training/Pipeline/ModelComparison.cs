// `compare` in one call: train every listed model with its preset (a wall-clock budget each), then score all of them on the
// same test users under both protocols, and set each against the best other one, paired over users.
using System.Diagnostics;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Evaluation;
using Bert4Rec.Training.Model;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Training.Pipeline;

public sealed record ComparisonOptions
{
    /// <summary>Baselines (pop, markov) and model kinds (bert4rec, sasrec, gru4rec, neumf, deepfm), in the order of the table.</summary>
    public required IReadOnlyList<string> Models { get; init; }
    /// <summary>Wall-clock budget of each trained model (null: until early stopping or the preset's epochs).</summary>
    public TimeSpan? Budget { get; init; }
    /// <summary>Seeds the trainings, the pop100 negatives and the bootstrap.</summary>
    public int Seed { get; init; } = 42;
    /// <summary>The preset every trained model uses; null: <see cref="TrainingConfig.PresetFor"/> by the data's shape.</summary>
    public string? Preset { get; init; }
    /// <summary>Whole configs (preset files) that replace the preset for their model kind.</summary>
    public IReadOnlyList<TrainingConfig> Configs { get; init; } = [];
    public int Threads { get; init; }
    /// <summary>Where report.md, report.json, chart.png and runs/MODEL go; null writes nothing.</summary>
    public string? OutDir { get; init; }
    public int Resamples { get; init; } = 10_000;
    /// <summary>Refit every model before the test (see <see cref="TrainingConfig.Refit"/>): trained models train again on the
    /// validation items too, for their best validation's step count, and the baselines count them; null = each config's own
    /// setting, with the baselines refit when any trained model is.</summary>
    public bool? Refit { get; init; }
    /// <summary>How the report names the data (its folder).</summary>
    public string DataName { get; init; } = "data";
    public Action<string>? Log { get; init; }
    /// <summary>Two-stage rows (stage one, stage two), both named in <see cref="Models"/>: stage two reranks stage one's top
    /// <see cref="RerankCandidates"/> unseen items (<see cref="RerankScorer"/>); the row is named "ONE>TWO".</summary>
    public IReadOnlyList<(string StageOne, string StageTwo)> Reranks { get; init; } = [];
    public int RerankCandidates { get; init; } = 200;
}

public static class ModelComparison
{
    public const string Pop = "pop", Markov = "markov";
    public const string RunsFolder = "runs";

    /// <summary>Every name <see cref="ComparisonOptions.Models"/> accepts.</summary>
    public static IReadOnlyList<string> Names => [Pop, Markov, .. ModelKinds.All.Select(k => k.Name())];

    /// <summary>The config a trained model of <paramref name="kind"/> uses: its preset file if one was given, else the named
    /// preset, else the preset for the data's shape; seeded and threaded as the comparison.</summary>
    public static TrainingConfig ConfigFor(ModelKind kind, DatasetStatistics stats, ComparisonOptions o)
    {
        var cfg = o.Configs.LastOrDefault(c => c.Kind == kind)
                  ?? TrainingConfig.FromPreset(o.Preset ?? TrainingConfig.PresetFor(kind, stats), kind.Name());
        cfg = cfg with { Seed = o.Seed, Threads = o.Threads, Refit = o.Refit ?? cfg.Refit };
        cfg.Validate();
        return cfg;
    }

    public static ComparisonReport Run(SequenceDataset data, ComparisonOptions o)
    {
        var log = o.Log ?? Console.WriteLine;
        var names = o.Models.Select(m => m.Trim().ToLowerInvariant()).ToList();
        if (names.Count == 0) throw new UsageException("--models: name at least one model");
        foreach (var m in names)
            if (!Names.Contains(m)) throw new UsageException($"--models: '{m}' is not one of {string.Join(", ", Names)}");
        if (names.Distinct().Count() != names.Count) throw new UsageException("--models: a model is named twice");
        if (o.Resamples < 1) throw new UsageException($"--resamples: {o.Resamples} must be >= 1");
        CheckReranks(o, names);
        var split = LeaveOneOut.Split(data);
        if (split.Test.Count == 0) throw new InvalidDataException("no user has 3 items: nothing to validate and test on");
        int n = split.ItemCount;

        // every config is checked, and every model kind built once, before anything trains
        var configs = new Dictionary<string, TrainingConfig>();
        foreach (var m in names.Where(m => m is not (Pop or Markov)))
        {
            var cfg = ConfigFor(ModelKinds.Parse(m), data.Statistics, o);
            try { using var probe = OpenModel(cfg, split, 1); }
            catch (NotSupportedException e) { throw new UsageException($"--models: {m}: {e.Message}"); }
            configs[m] = cfg;
        }

        // training: the validation split only (a refit then trains on the validation items with what validation chose)
        bool refitBaselines = o.Refit ?? configs.Values.Any(c => c.Refit);
        var fitted = new List<Fitted>();
        foreach (var m in names)
        {
            log($"== {m}");
            fitted.Add(configs.TryGetValue(m, out var cfg) ? Train(m, cfg, split, o, log) : Baseline(m, split, refitBaselines));
        }
        foreach (var (one, two) in o.Reranks)
            fitted.Add(Rerank(fitted[names.IndexOf(one.Trim().ToLowerInvariant())], fitted[names.IndexOf(two.Trim().ToLowerInvariant())], o.RerankCandidates));

        // the test split, read once, on the same users for every model
        var popularity = SequenceDataset.Popularity(split.TrainSequences, n);
        var full = new EvaluationOptions { Protocol = EvaluationProtocol.Full, Seed = o.Seed };
        var pop100 = new EvaluationOptions { Protocol = EvaluationProtocol.Pop100, Seed = o.Seed, ItemPopularity = popularity };
        var uniform100 = new EvaluationOptions { Protocol = EvaluationProtocol.Uniform100, Seed = o.Seed };
        var models = new List<ComparedModel>();
        var perUser = new List<double[]>();
        foreach (var f in fitted)
        {
            var clock = Stopwatch.StartNew();
            int[] fullRanks, sampledRanks;
            using (var scorer = f.OpenScorer())
            {
                fullRanks = Evaluator.Ranks(scorer.Scorer, split.Test, full);
                sampledRanks = Evaluator.Ranks(scorer.Scorer, split.Test, pop100);
                if (scorer.Scorer is RerankScorer r) log($"test {f.Result.Name}: stage one's recall@{r.Candidates} of the test item {r.StageOneRecall:F4}");
            }
            var model = f.Result with
            {
                Full = RankingMetrics.FromRanks(Evaluator.Label(full), fullRanks),
                Pop100 = RankingMetrics.FromRanks(Evaluator.Label(pop100), sampledRanks),
                Recall200 = RankingMetrics.RecallAt(fullRanks, RankingMetrics.StageOneK),
            };
            log($"test {model.Name}: {model.Full.Ndcg10:F4} full NDCG@10, {model.Pop100.Ndcg10:F4} pop100 NDCG@10, {model.Recall200:F4} full recall@200 ({clock.Elapsed.TotalSeconds:F1}s)");
            if (f.Result.Name == ModelKind.NeuMf.Name() || f.Result.Name == ModelKind.DeepFm.Name())
            {
                // the NCF paper's own protocol, for checking NeuMF against its paper (the report's table keeps the project's two)
                using var scorer = f.OpenScorer();
                log($"test {model.Name}: {Evaluator.Evaluate(scorer.Scorer, split.Test, uniform100)}");
            }
            models.Add(model);
            perUser.Add(PairedBootstrap.Ndcg(fullRanks));
        }

        var report = new ComparisonReport
        {
            Data = o.DataName, Statistics = data.Statistics, BudgetSeconds = o.Budget?.TotalSeconds, Seed = o.Seed, TestUsers = split.Test.Count,
            Models = models, Significance = Significance(models, perUser, o.Seed, o.Resamples),
        };
        if (o.OutDir != null) report.Write(o.OutDir);
        return report;
    }

    /// <summary>Each model against the best other one (highest full-ranking NDCG@10; the earlier listed on a tie). A pair
    /// is resampled once: the reverse line is its mirror image.</summary>
    public static List<SignificanceLine> Significance(IReadOnlyList<ComparedModel> models, IReadOnlyList<double[]> perUser, int seed, int resamples)
    {
        var lines = new List<SignificanceLine>();
        var done = new Dictionary<(int, int), PairedDifference>();
        for (int i = 0; i < models.Count; i++)
        {
            int best = -1;
            for (int j = 0; j < models.Count; j++)
                if (j != i && (best < 0 || models[j].Full.Ndcg10 > models[best].Full.Ndcg10)) best = j;
            if (best < 0) break;
            PairedDifference r;
            if (done.TryGetValue((best, i), out var mirror))
                r = mirror with { MeanA = mirror.MeanB, MeanB = mirror.MeanA, Difference = -mirror.Difference, Low = -mirror.High, High = -mirror.Low };
            else done[(i, best)] = r = PairedBootstrap.Compare(perUser[i], perUser[best], seed, resamples);
            lines.Add(new SignificanceLine(models[i].Name, models[best].Name, models[i].Full.Protocol, r));
        }
        return lines;
    }

    /// <summary>A scorer for the test pass, and what it holds (a model built from the kept weights).</summary>
    private sealed class OpenedScorer(IItemScorer scorer, IDisposable? owned) : IDisposable
    {
        public IItemScorer Scorer => scorer;
        public void Dispose() => owned?.Dispose();
    }

    private static void CheckReranks(ComparisonOptions o, List<string> names)
    {
        if (o.Reranks.Count == 0) return;
        if (o.RerankCandidates < 1) throw new UsageException($"--rerank-candidates: {o.RerankCandidates} must be >= 1");
        foreach (var (one, two) in o.Reranks)
        {
            string a = one.Trim().ToLowerInvariant(), b = two.Trim().ToLowerInvariant();
            foreach (var x in new[] { a, b })
                if (!names.Contains(x)) throw new UsageException($"--rerank {one}:{two}: '{x}' is not in --models ({string.Join(",", names)}); list both stages there");
            if (a == b) throw new UsageException($"--rerank {one}:{two}: stage one and stage two are the same model");
        }
        if (o.Reranks.Select(r => (r.StageOne.Trim().ToLowerInvariant(), r.StageTwo.Trim().ToLowerInvariant())).Distinct().Count() != o.Reranks.Count)
            throw new UsageException("--rerank: a pair is named twice");
    }

    /// <summary>Stage two reranking stage one's candidates, from the two models' own test-time weights (nothing trains again);
    /// the row has no preset or curve of its own (the two models' rows have them).</summary>
    private static Fitted Rerank(Fitted one, Fitted two, int candidates) => new(
        new ComparedModel
        {
            Name = $"{one.Result.Name}>{two.Result.Name}", Full = NotYet, Pop100 = NotYet,
            TrainSeconds = one.Result.TrainSeconds + two.Result.TrainSeconds, Refit = one.Result.Refit && two.Result.Refit,
        },
        () =>
        {
            var a = one.OpenScorer();
            var b = two.OpenScorer();
            return new OpenedScorer(new RerankScorer(a.Scorer, b.Scorer, candidates), new Both(a, b));
        });

    private sealed class Both(IDisposable a, IDisposable b) : IDisposable
    {
        public void Dispose() { a.Dispose(); b.Dispose(); }
    }

    /// <summary>A trained or counted model: what the report says about its training, and how to score with it.</summary>
    private sealed record Fitted(ComparedModel Result, Func<OpenedScorer> OpenScorer);

    private static readonly RankingMetrics NotYet = new("", 0, 0, 0, 0, 0, 0, 0);

    /// <summary>A counted baseline: validated on counts of the train split; tested on counts that include the validation
    /// items when <paramref name="refit"/>, as the refit trained models are.</summary>
    private static Fitted Baseline(string name, LeaveOneOutSplit split, bool refit)
    {
        var clock = Stopwatch.StartNew();
        IItemScorer Count(SequenceView sequences) =>
            name == Pop ? new PopularityScorer(sequences, split.ItemCount) : new MarkovScorer(sequences, split.ItemCount);
        var scorer = Count(split.TrainSequences);
        var testScorer = refit ? Count(LeaveOneOut.WithValidationItems(split).TrainSequences) : scorer;
        double secs = clock.Elapsed.TotalSeconds;
        var val = Evaluator.Evaluate(scorer, split.Validation, new EvaluationOptions { Protocol = EvaluationProtocol.Full });
        return new Fitted(new ComparedModel { Name = name, Full = NotYet, Pop100 = NotYet, TrainSeconds = secs, ValidationNdcg10 = val.Ndcg10, Refit = refit },
            () => new OpenedScorer(testScorer, null));
    }

    /// <summary>Trains one model kind (the one line that knows about trainers); its run folder is OutDir/runs/NAME.</summary>
    private static Fitted Train(string name, TrainingConfig cfg, LeaveOneOutSplit split, ComparisonOptions o, Action<string> log)
    {
        string? runDir = o.OutDir == null ? null : Path.Combine(o.OutDir, RunsFolder, name);
        log($"training {name} with preset {cfg.Preset}" + (o.Budget is { } b ? $" for at most {b.TotalSeconds:F0}s" : ""));
        var trainer = new Trainer(cfg, split, runDir, line => log($"[{name}] {line}")) { TimeBudget = o.Budget };
        var clock = Stopwatch.StartNew();
        var state = trainer.Run();
        var weights = Refit.HandedOn(cfg, split, state, o.Budget, line => log($"[{name}] {line}"),
                                     weightsPath: runDir == null ? null : Path.Combine(runDir, RunLayout.FinalWeights));
        double secs = clock.Elapsed.TotalSeconds;
        string stop = trainer.BudgetSpent ? "budget" : cfg.Patience > 0 && state.BadEvaluations >= cfg.Patience ? "early stop" : "epochs";
        var result = new ComparedModel
        {
            Name = name, Preset = cfg.Preset, Full = NotYet, Pop100 = NotYet, TrainSeconds = secs,
            BestValidationSeconds = trainer.Validations.FirstOrDefault(v => v.Step == state.BestStep)?.Seconds,
            BestEpoch = state.BestEpoch, ValidationNdcg10 = double.IsFinite(state.BestMetric) ? state.BestMetric : null, Stop = stop,
            Refit = Refit.Applies(cfg, state),
            Curve = trainer.Validations.Select(v => new CurvePoint(v.Seconds, v.Epoch, v.Step, v.Metrics.Ndcg10)).ToList(),
        };
        return new Fitted(result, () =>
        {
            var model = OpenModel(cfg, split, 256);
            weights.CopyTo(model.Parameters, 0);
            return new OpenedScorer(Scorer(model), model);
        });
    }

    /// <summary>An untrained model of a config's kind over the split (a pointwise model needs its users and features).</summary>
    public static IParameterModel OpenModel(TrainingConfig cfg, LeaveOneOutSplit split, int maxBatch) => cfg.Kind switch
    {
        ModelKind.NeuMf or ModelKind.DeepFm => PointwiseModels.Create(PointwiseModels.Config(cfg, split), split, maxBatch, cfg.Threads),
        ModelKind.TwoTower => TwoTowers.Create(cfg, TwoTowers.Config(cfg, split), split, maxBatch),
        _ => new NativeModel(SequenceModels.Create(cfg.ToModelConfig(split.ItemCount), maxBatch, cfg.Threads)),
    };

    /// <summary>The evaluation scorer of a model of any kind.</summary>
    public static IItemScorer Scorer(IParameterModel model) => ItemScorers.For(model);
}
