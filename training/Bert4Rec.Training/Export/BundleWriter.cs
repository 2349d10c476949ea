// Writes an artifact bundle folder (model.onnx, vocab.txt, manifest) into a temporary folder and renames it into place.
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Bundle;

namespace Bert4Rec.Training.Export;

public static class BundleWriter
{
    public static string ToolVersion => typeof(BundleWriter).Assembly.GetName().Version?.ToString() ?? "0";

    public const string FullCatalogModel = "model_full.onnx", RoleFullCatalog = "model_full";

    /// <summary>Writes the bundle; with <paramref name="fullCatalog"/> also model_full.onnx (item_ids, k -> item_scores, top_scores, top_items).
    /// A feature model with item fields needs the item feature table (<paramref name="itemFeatureSlots"/>).</summary>
    public static void Write(string outDir, ModelConfig cfg, float[] parameters, Vocabulary vocab, string createdBy,
                             IReadOnlyDictionary<string, double>? metrics = null, string? sourceCheckpoint = null, bool fullCatalog = false,
                             int[]? itemFeatureSlots = null)
    {
        if (vocab.Count != cfg.ItemCount) throw new ArgumentException($"vocabulary has {vocab.Count} items, the model {cfg.ItemCount}");
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

    /// <summary>Puts <paramref name="source"/> at <paramref name="target"/> without the target ever missing (see <see cref="AtomicFile.ReplaceDirectory"/>).</summary>
    public static void ReplaceDirectory(string source, string target) => AtomicFile.ReplaceDirectory(source, target);
}
