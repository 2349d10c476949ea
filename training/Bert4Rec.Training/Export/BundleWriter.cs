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

/// <summary>What a Two-Tower stage one needs to read a request's user: the dataset's user ids (line i of users.txt) and its
/// user feature table (a known user's stored row).</summary>
public sealed record BundleUsers(IReadOnlyList<string> UserIds, Features.FeatureTable Features);

public static class BundleWriter
{
    public static string ToolVersion => typeof(BundleWriter).Assembly.GetName().Version?.ToString() ?? "0";

    public const string FullCatalogModel = "model_full.onnx", RoleFullCatalog = "model_full";

    /// <summary>Writes the bundle; with <paramref name="fullCatalog"/> also model_full.onnx (item_ids, k -> item_scores, top_scores, top_items).
    /// A feature model with item fields needs the item feature table (<paramref name="itemFeatureSlots"/>); a Two-Tower stage
    /// one with user fields needs the users (<paramref name="users"/>: users.txt and user_features.pb, shared with stage two).</summary>
    public static void Write(string outDir, ModelConfig cfg, float[] parameters, Vocabulary vocab, string createdBy,
                             IReadOnlyDictionary<string, double>? metrics = null, string? sourceCheckpoint = null, bool fullCatalog = false,
                             int[]? itemFeatureSlots = null, StageTwoModel? stageTwo = null, BundleUsers? users = null)
    {
        if (vocab.Count != cfg.ItemCount) throw new ArgumentException($"vocabulary has {vocab.Count} items, the model {cfg.ItemCount}");
        if (stageTwo != null) CheckStageTwo(cfg, stageTwo);
        CheckUsers(cfg, users, stageTwo);
        // one users.txt and one user_features.pb serve both stages (the same dataset's, checked above)
        var userIds = stageTwo?.UserIds ?? (cfg.UserFeatures.Length > 0 ? users?.UserIds : null);
        var userTable = stageTwo?.UserFeatures ?? (cfg.UserFeatures.Length > 0 ? users?.Features : null);
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
                m.StageTwo = BundleManifests.ToShape(stageTwo.Config);
                m.Files.Add(BundleManifests.Describe(tmp, BundleLayout.RoleStageTwo, BundleLayout.StageTwoModel));
            }
            if (userIds != null)
            {
                AtomicFile.WriteAllBytes(Path.Combine(tmp, BundleLayout.Users), System.Text.Encoding.UTF8.GetBytes(string.Join('\n', userIds) + "\n"));
                m.Files.Add(BundleManifests.Describe(tmp, BundleLayout.RoleUsers, BundleLayout.Users));
            }
            if (userTable != null)
            {
                AtomicFile.WriteAllBytes(Path.Combine(tmp, BundleLayout.UserFeatures), Google.Protobuf.MessageExtensions.ToByteArray(userTable.ToInfo()));
                m.Files.Add(BundleManifests.Describe(tmp, BundleLayout.RoleUserFeatures, BundleLayout.UserFeatures));
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
        if (c.Kind is not (ModelKind.NeuMf or ModelKind.DeepFm) || !(stageOne.Kind.IsSequential() || stageOne.Kind == ModelKind.TwoTower))
            throw new ArgumentException($"a two-model bundle pairs a sequential or two-tower stage one with a ranking feature model (neumf, deepfm) as stage two; got {stageOne.Kind.Name()} and {c.Kind.Name()}");
        if (c.ItemCount != stageOne.ItemCount) throw new ArgumentException($"stage two has {c.ItemCount} items, stage one {stageOne.ItemCount}: train both on the same dataset");
        if (two.UserIds.Count != c.UserCount) throw new ArgumentException($"{two.UserIds.Count} user ids for a stage two of {c.UserCount} users");
        if (two.UserIds.Any(u => u.Length == 0 || u.Contains('\n') || u.Contains('\r'))) throw new ArgumentException("a user id is empty or holds a line break");
        string shape = two.UserFeatures?.Shape ?? "";
        if (shape != c.UserFeatures) throw new ArgumentException($"the user feature table's fields [{shape}] are not the model's [{c.UserFeatures}]");
        if (two.UserFeatures != null && two.UserFeatures.Rows != c.UserCount) throw new ArgumentException($"the user feature table has {two.UserFeatures.Rows} rows for {c.UserCount} users");
    }

    /// <summary>A Two-Tower stage one with user fields needs the users and their table, in its fields; with a stage two that
    /// has users too, both must be the same dataset's.</summary>
    private static void CheckUsers(ModelConfig stageOne, BundleUsers? users, StageTwoModel? two)
    {
        if (users == null)
        {
            if (stageOne.UserFeatures.Length > 0)
                throw new ArgumentException($"a {stageOne.Kind.Name()} stage one with user fields [{stageOne.UserFeatures}] needs the dataset's users and user feature table");
            return;
        }
        if (stageOne.Kind != ModelKind.TwoTower) throw new ArgumentException($"users go with a two-tower stage one, not {stageOne.Kind.Name()} (a stage two brings its own)");
        if (users.Features.Shape != stageOne.UserFeatures)
            throw new ArgumentException($"the user feature table's fields [{users.Features.Shape}] are not stage one's [{stageOne.UserFeatures}]");
        if (users.Features.Rows != users.UserIds.Count) throw new ArgumentException($"the user feature table has {users.Features.Rows} rows for {users.UserIds.Count} users");
        if (users.UserIds.Any(u => u.Length == 0 || u.Contains('\n') || u.Contains('\r'))) throw new ArgumentException("a user id is empty or holds a line break");
        if (two != null && stageOne.UserFeatures.Length > 0)
        {
            if (!two.UserIds.SequenceEqual(users.UserIds)) throw new ArgumentException("stage one's users are not stage two's: train both on the same dataset");
            if (two.UserFeatures != null && (two.UserFeatures.Shape != users.Features.Shape || !two.UserFeatures.Slots.SequenceEqual(users.Features.Slots)))
                throw new ArgumentException("stage one's user feature table is not stage two's: train both on the same dataset");
        }
    }

    /// <summary>Puts <paramref name="source"/> at <paramref name="target"/> without the target ever missing (see <see cref="AtomicFile.ReplaceDirectory"/>).</summary>
    public static void ReplaceDirectory(string source, string target) => AtomicFile.ReplaceDirectory(source, target);
}
