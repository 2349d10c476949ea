// The hyperparameter flags of `bert4rec train` (and what `tune` shares of them) as typed options: each one's range is
// checked while parsing; absent ones keep the preset's (or the preset file's, or the resumed run's) value.
using System.CommandLine;
using Bert4Rec.Contracts;

namespace Bert4Rec.Training.Training;

public sealed class TrainingFlags
{
    public readonly Option<string?> Preset = Flags.String("--preset", $"data shape: {string.Join(", ", TrainingConfig.PresetNames)} (default synthetic)", helpName: "NAME");
    public readonly Option<string?> PresetFile = Flags.String("--preset-file", "a whole config as JSON (tune's preset.json, a run's config.json); flags override it", helpName: "FILE");
    public readonly Option<string?> Model = Flags.String("--model", "bert4rec, sasrec, gru4rec, neumf, deepfm or two-tower (default bert4rec)", helpName: "KIND");
    private readonly Option<int?> _epochs = Flags.OptionalInt("--epochs", "upper bound on epochs (early stopping ends sooner)", 1);
    private readonly Option<int?> _batch = Flags.OptionalInt("--batch", "sequences per optimizer step", 1, 4096);
    private readonly Option<double?> _lr = Flags.OptionalDouble("--lr", "peak learning rate (AdamW)", 1e-8, 1);
    private readonly Option<int?> _warmup = Flags.OptionalInt("--warmup", "linear warmup steps (at most one epoch)", 0);
    private readonly Option<int?> _hidden = Flags.OptionalInt("--hidden", "hidden size d", 2, 4096);
    private readonly Option<int?> _heads = Flags.OptionalInt("--heads", "attention heads (must divide --hidden)", 1, 256);
    private readonly Option<int?> _layers = Flags.OptionalInt("--layers", "transformer blocks (gru4rec: 1)", 1, 64);
    private readonly Option<int?> _maxLen = Flags.OptionalInt("--max-len", "sequence length N", 2, 4096);
    private readonly Option<double?> _maskProb = Flags.OptionalDouble("--mask-prob", "bert4rec: share of items masked", 0.001, 1);
    private readonly Option<int?> _maxPredictions = Flags.OptionalInt("--max-predictions", "bert4rec: masked positions per sequence at most", 1);
    private readonly Option<double?> _maskTokenRate = Flags.OptionalDouble("--mask-token-rate", "bert4rec: share of masked positions shown as [MASK] (the rest: half random, half kept)", 0, 1);
    private readonly Option<double?> _dropout = Flags.OptionalDouble("--dropout", "hidden dropout", 0, 0.99);
    private readonly Option<double?> _attnDropout = Flags.OptionalDouble("--attn-dropout", "attention dropout", 0, 0.99);
    private readonly Option<double?> _weightDecay = Flags.OptionalDouble("--weight-decay", "AdamW weight decay (not on LayerNorm and biases)", 0, 10);
    private readonly Option<double?> _clip = Flags.OptionalDouble("--clip", "global gradient-norm clip (0 = off)", 0, 1e6);
    private readonly Option<int?> _seed = Flags.OptionalInt("--seed", "initialisation, masks, dropout and shuffling");
    private readonly Option<int?> _threads = Flags.OptionalInt("--threads", "compute threads (0 = one per core)", 0, 256);
    private readonly Option<int?> _evalEvery = Flags.OptionalInt("--eval-every", "validate every this many epochs (0 = never)", 0);
    private readonly Option<int?> _evalEverySteps = Flags.OptionalInt("--eval-every-steps", "validate every this many steps instead (0 = off)", 0);
    private readonly Option<int?> _patience = Flags.OptionalInt("--patience", "validations without improvement before stopping (0 = never)", 0);
    private readonly Option<int?> _valUsers = Flags.OptionalInt("--val-users", "validate on at most this many users (0 = all)", 0);
    private readonly Option<int?> _checkpointEvery = Flags.OptionalInt("--checkpoint-every", "write a checkpoint every this many steps (0 = at epoch ends)", 0);
    private readonly Option<int?> _prefixSamples = Flags.OptionalInt("--prefix-samples", "bert4rec: extra samples per user and epoch, each masking only the item at a random earlier cut of the sequence", 0);
    private readonly Option<int?> _windowStride = Flags.OptionalInt("--window-stride", "stride of the windows over sequences longer than N (0 = N/10)", 0);
    private readonly Option<string?> _loss = Flags.String("--loss", $"{string.Join(", ", TrainingConfig.LossNames)} (auto: ce up to {TrainingConfig.AutoSampledItems:N0} items)", helpName: "LOSS");
    private readonly Option<int?> _negatives = Flags.OptionalInt("--negatives", "sampled losses: negatives per step", 1, 1_000_000);
    private readonly Option<string?> _negativeSampling = Flags.String("--negative-sampling", "sampled losses: uniform or popularity (log-Q corrected)", helpName: "HOW");
    private readonly Option<double?> _gbceT = Flags.OptionalDouble("--gbce-t", "gbce: calibration t", 0, 1);
    private readonly Option<string?> _refit = Flags.OnOff("--refit", "after training, train again from the start on the validation items too, for the "
        + "best validation's step count; test and hand on those weights (final.bin); default: the preset's");
    private readonly Option<int?> _hardNegatives = Flags.OptionalInt("--hard-negatives", "neumf, deepfm: of the --negatives per positive, how many "
        + $"come from a Markov stage one's top {TrainingConfig.HardNegativePool} after the positive's last history item (default 0)", 0, 1_000_000);
    private readonly Option<string?> _features = Flags.OnOff("--features", "neumf, deepfm, two-tower: embed the dataset's user and item feature fields (default on); "
        + "neumf, deepfm: --negatives K are its sampled negatives per positive (preset 4), --hidden its predictive factors; deepfm: --max-len its history window");
    private readonly Option<double?> _temperature = Flags.OptionalDouble("--temperature", "two-tower: tau of the in-batch softmax (cosine / tau)", 1e-4, 100);

    public TrainingFlags()
    {
        foreach (var (o, values) in new (Option<string?>, string[])[]
                 { (Model, ModelKinds.All.Select(k => k.Name()).ToArray()), (Preset, TrainingConfig.PresetNames), (_loss, TrainingConfig.LossNames), (_negativeSampling, TrainingConfig.SamplingNames) })
            o.CompletionSources.Add(values);
    }

    /// <summary>The hyperparameter options (every flag but --preset, --preset-file and --model), in help order.</summary>
    private IEnumerable<Option> Hyperparameters =>
    [
        _epochs, _batch, _lr, _warmup, _hidden, _heads, _layers, _maxLen, _maskProb, _maxPredictions, _maskTokenRate, _dropout, _attnDropout,
        _weightDecay, _clip, _seed, _threads, _evalEvery, _evalEverySteps, _patience, _valUsers, _checkpointEvery, _windowStride, _prefixSamples,
        _loss, _negatives, _negativeSampling, _gbceT, _refit, _features, _hardNegatives, _temperature,
    ];

    /// <summary>Adds --preset, --preset-file, --model and every hyperparameter flag to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Preset, PresetFile, Model }.Concat(Hyperparameters)) command.Options.Add(o);
    }

    /// <summary>
    /// A preset (default synthetic) overridden by the hyperparameter flags. <paramref name="given"/> lists the hyperparameter
    /// flags (without dashes) that were present. With <paramref name="resumed"/> (a checkpoint's config) the flags override
    /// that config instead of a preset, and --preset or --model may only repeat what the run used.
    /// </summary>
    public TrainingConfig Read(ParseResult r, out List<string> given, TrainingConfig? resumed = null)
    {
        given = new Option[] { Model }.Concat(Hyperparameters).Where(r.Given).Select(o => o.Name.TrimStart('-')).ToList();
        string? file = r.GetValue(PresetFile), preset = r.GetValue(Preset), model = r.GetValue(Model);
        TrainingConfig cfg;
        if (resumed != null)
        {
            if (file != null) throw new UsageException("--preset-file: a resumed run keeps its own config; drop --preset-file");
            if (preset != null && !string.Equals(preset, resumed.Preset, StringComparison.OrdinalIgnoreCase))
                throw new UsageException($"--preset: the run was trained with preset '{resumed.Preset}', not '{preset}'");
            if (model != null && !string.Equals(model, resumed.Model, StringComparison.OrdinalIgnoreCase))
                throw new UsageException($"--model: the run trains {resumed.Model}, not '{model}'");
            cfg = resumed;
        }
        else if (file != null)
        {
            if (preset != null) throw new UsageException("--preset-file: give --preset or --preset-file, not both");
            cfg = TrainingConfig.FromFile(file);
            if (model != null)
            {
                if (!ModelKinds.TryParse(model, out var kind)) throw new UsageException($"--model: '{model}' is not one of {string.Join(", ", ModelKinds.All.Select(k => k.Name()))}");
                cfg = cfg with { Model = kind.Name() };
            }
        }
        else cfg = TrainingConfig.FromPreset(preset ?? "synthetic", model ?? "bert4rec");
        cfg = cfg with
        {
            Epochs = r.GetValue(_epochs) ?? cfg.Epochs, BatchSize = r.GetValue(_batch) ?? cfg.BatchSize,
            LearningRate = (float?)r.GetValue(_lr) ?? cfg.LearningRate, WarmupSteps = r.GetValue(_warmup) ?? cfg.WarmupSteps,
            Hidden = r.GetValue(_hidden) ?? cfg.Hidden, Heads = r.GetValue(_heads) ?? cfg.Heads, Layers = r.GetValue(_layers) ?? cfg.Layers,
            MaxLength = r.GetValue(_maxLen) ?? cfg.MaxLength, MaskProbability = (float?)r.GetValue(_maskProb) ?? cfg.MaskProbability,
            MaxPredictions = r.GetValue(_maxPredictions) ?? cfg.MaxPredictions, MaskTokenRate = (float?)r.GetValue(_maskTokenRate) ?? cfg.MaskTokenRate,
            HiddenDropout = (float?)r.GetValue(_dropout) ?? cfg.HiddenDropout, AttentionDropout = (float?)r.GetValue(_attnDropout) ?? cfg.AttentionDropout,
            WeightDecay = (float?)r.GetValue(_weightDecay) ?? cfg.WeightDecay, ClipNorm = (float?)r.GetValue(_clip) ?? cfg.ClipNorm,
            Seed = r.GetValue(_seed) ?? cfg.Seed, Threads = r.GetValue(_threads) ?? cfg.Threads, EvalEvery = r.GetValue(_evalEvery) ?? cfg.EvalEvery,
            EvalEverySteps = r.GetValue(_evalEverySteps) ?? cfg.EvalEverySteps, Patience = r.GetValue(_patience) ?? cfg.Patience,
            ValidationUsers = r.GetValue(_valUsers) ?? cfg.ValidationUsers, CheckpointEvery = r.GetValue(_checkpointEvery) ?? cfg.CheckpointEvery,
            WindowStride = r.GetValue(_windowStride) ?? cfg.WindowStride, PrefixSamples = r.GetValue(_prefixSamples) ?? cfg.PrefixSamples,
            Loss = r.GetValue(_loss)?.ToLowerInvariant() ?? cfg.Loss, Negatives = r.GetValue(_negatives) ?? cfg.Negatives,
            NegativeSampling = r.GetValue(_negativeSampling)?.ToLowerInvariant() ?? cfg.NegativeSampling, GbceT = (float?)r.GetValue(_gbceT) ?? cfg.GbceT,
            Refit = r.IsOn(_refit) ?? cfg.Refit, Features = r.IsOn(_features) ?? cfg.Features, HardNegatives = r.GetValue(_hardNegatives) ?? cfg.HardNegatives,
            Temperature = (float?)r.GetValue(_temperature) ?? cfg.Temperature,
        };
        cfg.Validate();
        return cfg;
    }

    /// <summary>Parses <paramref name="args"/> as `train`'s hyperparameter flags alone and reads the config (for tests and tools).</summary>
    public static TrainingConfig Parse(IReadOnlyList<string> args, out List<string> given, TrainingConfig? resumed = null)
    {
        var flags = new TrainingFlags();
        var command = new Command("train");
        flags.AddTo(command);
        return flags.Read(CommandLines.ParseOrThrow(command, args), out given, resumed);
    }
}
