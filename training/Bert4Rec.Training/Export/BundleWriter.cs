// Writes an artifact bundle folder (model.onnx, vocab.txt, manifest) into a temporary folder and renames it into place.
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Bundle;

namespace Bert4Rec.Training.Export;

/// <summary>
/// The stage-two ranker of a two-model bundle: a feature model's config and weights, its item feature table (the graph's
/// constant), the dataset's user ids (line i = user_index i) and user feature table (null when the model has no user fields).
/// </summary>
public sealed record StageTwoModel(ModelConfig Config, float[] Parameters, int[]? ItemFeatureSlots, IReadOnlyList<string> UserIds,
                                   Features.FeatureTable? UserFeatures);

public static class BundleWriter
{
    public static string ToolVersion => typeof(BundleWriter).Assembly.GetName().Version?.ToString() ?? "0";

    public const string FullCatalogModel = "model_full.onnx", RoleFullCatalog = "model_full";

    /// <summary>Writes the bundle; with <paramref name="fullCatalog"/> also model_full.onnx (item_ids, k -> item_scores, top_scores, top_items).
    /// A feature model with item fields needs the item feature table (<paramref name="itemFeatureSlots"/>).</summary>
    public static void Write(string outDir, ModelConfig cfg, float[] parameters, Vocabulary vocab, string createdBy,
                             IReadOnlyDictionary<string, double>? metrics = null, string? sourceCheckpoint = null, bool fullCatalog = false,
                             int[]? itemFeatureSlots = null, StageTwoModel? stageTwo = null)
    {
        if (vocab.Count != cfg.ItemCount) throw new ArgumentException($"vocabulary has {vocab.Count} items, the model {cfg.ItemCount}");
        if (stageTwo != null) CheckStageTwo(cfg, stageTwo);
        string full = Path.GetFullPath(outDir).TrimEnd('/');
        string tmp = AtomicFile.TempFolderFor(full);
        Directory.CreateDirectory(tmp);
        try
        {
            OnnxExporter.Export(cfg, parameters, Path.Combine(tmp, BundleLayout.Model), ToolVersion, itemFeatureSlots: itemFeatureSlots);
            vocab.Save(Path.Combine(tmp, BundleLayout.Vocabulary));
            if (fullCatalog) OnnxExporter.Export(cfg, parameters, Path.Combine(tmp, FullCatalogModel), ToolVersion, fullCatalog: true);
            var m = new BundleManifest
            {
                FormatVersion = BundleLayout.FormatVersion, Model = BundleManifests.ToShape(cfg), CreatedBy = createdBy,
                ToolVersion = ToolVersion, CreatedAt = DateTime.UtcNow.ToString("O"), OnnxOpset = OnnxExporter.Opset,
                SourceCheckpoint = sourceCheckpoint ?? "",
            };
            m.Files.Add(BundleManifests.Describe(tmp, BundleLayout.RoleModel, BundleLayout.Model));
            m.Files.Add(BundleManifests.Describe(tmp, BundleLayout.RoleVocabulary, BundleLayout.Vocabulary));
            if (fullCatalog) m.Files.Add(BundleManifests.Describe(tmp, RoleFullCatalog, FullCatalogModel));
            if (stageTwo != null)
            {
                OnnxExporter.Export(stageTwo.Config, stageTwo.Parameters, Path.Combine(tmp, BundleLayout.StageTwoModel), ToolVersion,
                                    itemFeatureSlots: stageTwo.ItemFeatureSlots);
                AtomicFile.WriteAllBytes(Path.Combine(tmp, BundleLayout.Users), System.Text.Encoding.UTF8.GetBytes(string.Join('\n', stageTwo.UserIds) + "\n"));
                m.StageTwo = BundleManifests.ToShape(stageTwo.Config);
                m.Files.Add(BundleManifests.Describe(tmp, BundleLayout.RoleStageTwo, BundleLayout.StageTwoModel));
                m.Files.Add(BundleManifests.Describe(tmp, BundleLayout.RoleUsers, BundleLayout.Users));
                if (stageTwo.UserFeatures != null)
                {
                    AtomicFile.WriteAllBytes(Path.Combine(tmp, BundleLayout.UserFeatures), Google.Protobuf.MessageExtensions.ToByteArray(stageTwo.UserFeatures.ToInfo()));
                    m.Files.Add(BundleManifests.Describe(tmp, BundleLayout.RoleUserFeatures, BundleLayout.UserFeatures));
                }
            }
            if (metrics != null) foreach (var (k, v) in metrics) m.Metrics[k] = v;
            BundleManifests.Write(tmp, m);
            ReplaceDirectory(tmp, full);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
            throw;
        }
    }

    /// <summary>A stage-two model must be a feature model over the same items, with a row for every user it knows.</summary>
    private static void CheckStageTwo(ModelConfig stageOne, StageTwoModel two)
    {
        var c = two.Config;
        if (c.Kind is not (ModelKind.NeuMf or ModelKind.DeepFm) || !stageOne.Kind.IsSequential())
            throw new ArgumentException($"a two-model bundle pairs a sequential stage one with a ranking feature model (neumf, deepfm) as stage two; got {stageOne.Kind.Name()} and {c.Kind.Name()}");
        if (c.ItemCount != stageOne.ItemCount) throw new ArgumentException($"stage two has {c.ItemCount} items, stage one {stageOne.ItemCount}: train both on the same dataset");
        if (two.UserIds.Count != c.UserCount) throw new ArgumentException($"{two.UserIds.Count} user ids for a stage two of {c.UserCount} users");
        if (two.UserIds.Any(u => u.Length == 0 || u.Contains('\n') || u.Contains('\r'))) throw new ArgumentException("a user id is empty or holds a line break");
        string shape = two.UserFeatures?.Shape ?? "";
        if (shape != c.UserFeatures) throw new ArgumentException($"the user feature table's fields [{shape}] are not the model's [{c.UserFeatures}]");
        if (two.UserFeatures != null && two.UserFeatures.Rows != c.UserCount) throw new ArgumentException($"the user feature table has {two.UserFeatures.Rows} rows for {c.UserCount} users");
    }

    /// <summary>Puts <paramref name="source"/> at <paramref name="target"/> without the target ever missing (see <see cref="AtomicFile.ReplaceDirectory"/>).</summary>
    public static void ReplaceDirectory(string source, string target) => AtomicFile.ReplaceDirectory(source, target);
}
