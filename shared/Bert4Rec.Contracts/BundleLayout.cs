// File names inside an artifact bundle folder (see DESIGN.md, "Artifact bundle").
namespace Bert4Rec.Contracts;

public static class BundleLayout
{
    public const int FormatVersion = 1;
    public const string Model = "model.onnx";
    public const string Index = "items.faiss";
    public const string Vocabulary = "vocab.txt";
    public const string Manifest = "manifest.pb";
    public const string ManifestJson = "manifest.json";

    public const string RoleModel = "model";
    public const string RoleIndex = "index";
    public const string RoleVocabulary = "vocabulary";

    /// <summary>The stage-two ranker of a two-model bundle and what it needs to read a request's user.</summary>
    public const string StageTwoModel = "stage_two.onnx", Users = "users.txt", UserFeatures = "user_features.pb";
    public const string RoleStageTwo = "stage_two_model", RoleUsers = "users", RoleUserFeatures = "user_features";
}

/// <summary>File names inside a training run folder: written by the trainer and `train`, read by `evaluate`, `export`,
/// `compare` and `tune`.</summary>
public static class RunLayout
{
    public const string Config = "config.json";
    public const string History = "metrics.jsonl";
    public const string Chart = "loss.png";
    public const string Checkpoint = "checkpoint.bin";
    public const string BestWeights = "best.bin";
    /// <summary>The refit's weights (trained on the validation items too; see TrainingConfig.Refit): what a refit run hands on.</summary>
    public const string FinalWeights = "final.bin";
    public const string Vocabulary = "vocab.txt";
    /// <summary>The test-split metrics of the best weights (<c>{"full": {...}, "pop100": {...}, ...}</c>).</summary>
    public const string TestMetrics = "metrics.json";
}
