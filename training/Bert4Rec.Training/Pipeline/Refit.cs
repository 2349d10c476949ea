// The refit after a validated run (TrainingConfig.Refit): the same config trained again from its seed on every item before
// the test item, for the number of optimizer steps at which validation peaked. `train` and `compare` both call it.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Model;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Training.Pipeline;

public static class Refit
{
    /// <summary>Whether a finished run refits: its config asks for it and a validation chose a step count.</summary>
    public static bool Applies(TrainingConfig cfg, TrainingState state) => cfg.Refit && state.BestStep > 0;

    /// <summary>The weights a finished run hands on to the test: the refit's (<see cref="Run"/> for the best validation's
    /// step count) when it <see cref="Applies"/>, else its best weights (its last ones if it never validated).</summary>
    public static float[] HandedOn(TrainingConfig cfg, LeaveOneOutSplit split, TrainingState state, TimeSpan? budget, Action<string> log,
                                   Func<ModelConfig, int, int, ITrainableModel>? modelFactory = null, string? weightsPath = null, string vocabularySha256 = "") =>
        Applies(cfg, state)
            ? Run(cfg, split, state.BestStep, budget, log, modelFactory, weightsPath, vocabularySha256)
            : state.BestParameters ?? state.Parameters;

    /// <summary>
    /// Trains <paramref name="cfg"/> from scratch on <see cref="LeaveOneOut.WithValidationItems"/> of <paramref name="split"/>
    /// for <paramref name="steps"/> optimizer steps (or until <paramref name="budget"/> is spent) and returns the final
    /// weights. No validation runs (the validation items are training data now) and nothing is written to a run folder
    /// but <paramref name="weightsPath"/> (final.bin), when given.
    /// </summary>
    public static float[] Run(TrainingConfig cfg, LeaveOneOutSplit split, long steps, TimeSpan? budget, Action<string> log,
                              Func<ModelConfig, int, int, ITrainableModel>? modelFactory = null, string? weightsPath = null, string vocabularySha256 = "")
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "a refit needs at least one step");
        var refitSplit = LeaveOneOut.WithValidationItems(split);
        log($"refit: training again on train + validation items for {steps:N0} steps (the best validation's)");
        var trainer = new Trainer(cfg, refitSplit, runDir: null, log) { StopAtStep = steps, TimeBudget = budget, ModelFactory = modelFactory };
        var state = trainer.Run();
        var weights = state.BestParameters ?? state.Parameters;
        if (state.GlobalStep < steps) log($"refit: the budget ended it at step {state.GlobalStep:N0} of {steps:N0}");
        if (weightsPath != null)
            Checkpoint.SaveWeights(weightsPath, cfg, split.ItemCount, weights, state.Epoch, state.GlobalStep, double.NaN, vocabularySha256);
        return weights;
    }
}
