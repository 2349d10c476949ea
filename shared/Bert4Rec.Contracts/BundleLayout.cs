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
}
