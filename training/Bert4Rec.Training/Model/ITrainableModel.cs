// The surface the trainer, validation and the benchmarks use from a model: one flat parameter buffer and one flat gradient
// buffer laid out by ParameterLayout (so AdamW, clipping, checkpoints and the exporter are shared by every engine), a training
// step that fills the gradients and returns the loss, and the eval-mode prediction at the last position. The native engine
// (SequenceModel, through NativeModel) and the TorchSharp engine (training/Bert4Rec.Torch) implement it.
using Bert4Rec.Contracts;

namespace Bert4Rec.Training.Model;

/// <summary>What the trainer's optimizer, clipping and checkpoints need of any model: the flat parameters and gradients.</summary>
public interface IParameterModel : IDisposable
{
    ModelConfig Config { get; }
    ParameterLayout Layout { get; }
    /// <summary>All parameters, laid out by <see cref="Layout"/>; the optimizer updates this array in place between steps.</summary>
    float[] Parameters { get; }
    /// <summary>Gradients, same layout; overwritten by each training step.</summary>
    float[] Gradients { get; }
    /// <summary>Rows (sequential models) or examples (pointwise models) one step or prediction takes at most.</summary>
    int MaxBatch { get; }
    /// <summary>Fills <see cref="Parameters"/> with the kind's initialisation.</summary>
    void InitializeParameters(ulong seed);
}

/// <summary>A sequential model: trained on item rows with labels, predicting from each row's last position.</summary>
public interface ITrainableModel : IParameterModel
{
    /// <summary>Train-mode forward, mean cross-entropy at positions with labels &gt; 0, backward into <see cref="Gradients"/>.</summary>
    float TrainStep(ReadOnlySpan<int> inputIds, ReadOnlySpan<int> labels, int batch, ulong dropoutSeed);
    /// <summary><see cref="TrainStep(ReadOnlySpan{int}, ReadOnlySpan{int}, int, ulong)"/> with the loss over a sampled set of items
    /// (null = cross-entropy over all items).</summary>
    float TrainStep(ReadOnlySpan<int> inputIds, ReadOnlySpan<int> labels, int batch, ulong dropoutSeed, SampledObjective? sampled);
    /// <summary>Eval-mode z (B,d) at each row's last position and, unless <paramref name="logits"/> is empty, logits (B,V).</summary>
    void PredictLast(ReadOnlySpan<int> inputIds, int batch, Span<float> z, Span<float> logits);
}

/// <summary>A pointwise model (NeuMF): trained on (user, item, label) examples with binary cross-entropy, scoring every item
/// for known users.</summary>
public interface IPointwiseModel : IParameterModel
{
    /// <summary>Forward over <paramref name="count"/> examples, mean binary cross-entropy of their logits against
    /// <paramref name="labels"/> (0 or 1), backward into <see cref="IParameterModel.Gradients"/>; returns the loss.</summary>
    float TrainStep(ReadOnlySpan<int> users, ReadOnlySpan<int> items, ReadOnlySpan<float> labels, int count);
    /// <summary>Eval-mode logits of items 0..n for each user: <paramref name="scores"/> is (users, n+1); column 0 is unused.</summary>
    void ScoreItems(ReadOnlySpan<int> users, Span<float> scores);

    /// <summary>History items each example carries (DeepFM's history fields); 0 = the model reads no history (NeuMF).</summary>
    int HistoryLength => 0;
    /// <summary><see cref="TrainStep(ReadOnlySpan{int}, ReadOnlySpan{int}, ReadOnlySpan{float}, int)"/> with each example's
    /// history window: (count, <see cref="HistoryLength"/>) items, the latest last, left-padded with 0 (<see cref="ModelInput.Fill"/>).</summary>
    float TrainStep(ReadOnlySpan<int> users, ReadOnlySpan<int> histories, ReadOnlySpan<int> items, ReadOnlySpan<float> labels, int count) =>
        TrainStep(users, items, labels, count);
    /// <summary><see cref="ScoreItems(ReadOnlySpan{int}, Span{float})"/> with each user's history window (users, <see cref="HistoryLength"/>).</summary>
    void ScoreItems(ReadOnlySpan<int> users, ReadOnlySpan<int> histories, Span<float> scores) => ScoreItems(users, scores);
}

/// <summary>The native engine (<see cref="SequenceModel"/>) as an <see cref="ITrainableModel"/>; disposing it disposes the model.</summary>
public sealed class NativeModel(SequenceModel model) : ITrainableModel
{
    public SequenceModel Model { get; } = model;
    public ModelConfig Config => Model.Config;
    public ParameterLayout Layout => Model.Layout;
    public float[] Parameters => Model.Parameters;
    public float[] Gradients => Model.Gradients;
    public int MaxBatch => Model.MaxBatch;
    public void InitializeParameters(ulong seed) => Model.InitializeParameters(seed);
    public float TrainStep(ReadOnlySpan<int> inputIds, ReadOnlySpan<int> labels, int batch, ulong dropoutSeed) => Model.TrainStep(inputIds, labels, batch, dropoutSeed);
    public float TrainStep(ReadOnlySpan<int> inputIds, ReadOnlySpan<int> labels, int batch, ulong dropoutSeed, SampledObjective? sampled) =>
        Model.TrainStep(inputIds, labels, batch, dropoutSeed, sampled);
    public void PredictLast(ReadOnlySpan<int> inputIds, int batch, Span<float> z, Span<float> logits) => Model.PredictLast(inputIds, batch, z, logits);
    public void Dispose() => Model.Dispose();

    /// <summary>The native model of a config's kind (the default engine).</summary>
    public static ITrainableModel Create(ModelConfig config, int maxBatch, int threads) => new NativeModel(SequenceModels.Create(config, maxBatch, threads));
}
