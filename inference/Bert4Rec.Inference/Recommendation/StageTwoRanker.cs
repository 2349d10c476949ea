// The stage-two ranker of a two-model bundle: a feature model's ONNX graph (stage_two.onnx) that rescores stage one's
// candidates with the user's id and features. Its inputs are the ones the manifest declares, fed by name (GraphInputs):
// user_index and user_features from the bundle's UserEncoder, item_ids (the history row) and candidate_ids.
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Bundle;
using Bert4Rec.Inference.OnnxRuntime;

namespace Bert4Rec.Inference.Recommendation;

public sealed class StageTwoRanker : IDisposable
{
    public ModelConfig Config { get; }
    public InferenceSession Session { get; }
    /// <summary>The graph's inputs as the manifest declares them, in order.</summary>
    public IReadOnlyList<GraphInput> Inputs { get; }
    /// <summary>True when the graph reads user_index: an unknown user cannot be ranked by it (stage one's order stands).</summary>
    public bool NeedsKnownUser { get; }
    private readonly UserEncoder _users;

    private StageTwoRanker(ModelConfig cfg, InferenceSession session, IReadOnlyList<GraphInput> inputs, UserEncoder users)
    {
        Config = cfg; Session = session; Inputs = inputs; _users = users;
        NeedsKnownUser = inputs.Any(i => i.Name == ModelIo.UserIndex);
    }

    /// <summary>The raw user ids the ranker knows (user_index i = entry i).</summary>
    public IReadOnlyList<string> UserIds => _users.UserIds;

    /// <summary>The user feature fields' names, in order.</summary>
    public IEnumerable<string> FieldNames => Config.UserFeatures.Length > 0 ? _users.FieldNames : [];

    /// <summary>The stage-two config of a verified manifest, checked against stage one's item count.</summary>
    internal static ModelConfig ConfigOf(string dir, BundleManifest m, int itemCount)
    {
        ModelConfig cfg;
        try { cfg = BundleManifests.ToConfig(m.StageTwo); cfg.Validate(); }
        catch (Exception e) when (e is ArgumentException or BundleException) { throw new BundleException(BundleLayout.Manifest, "stage_two config invalid", $"{dir}: manifest stage_two config invalid: {e.Message}", e); }
        if (cfg.Kind is not (ModelKind.NeuMf or ModelKind.DeepFm)) throw new BundleException(BundleLayout.Manifest, "stage_two is not a ranking feature model", $"{dir}: manifest stage_two is a {cfg.Kind.Name()}, not neumf or deepfm");
        if (cfg.ItemCount != itemCount) throw new BundleException(BundleLayout.Manifest, "stage_two's items differ from stage one's", $"{dir}: stage_two has {cfg.ItemCount} items, stage one {itemCount}");
        return cfg;
    }

    /// <summary>
    /// Loads stage two of a verified manifest: its graph (inputs checked against the declaration), reading users through the
    /// bundle's <paramref name="users"/> (loaded for this config); any mismatch is a <see cref="BundleException"/> naming the file.
    /// </summary>
    internal static StageTwoRanker Load(string dir, BundleManifest m, ModelConfig cfg, UserEncoder users, SessionOptions options)
    {
        var modelFile = BundleManifests.FileOfRole(m, BundleLayout.RoleStageTwo)
            ?? throw new BundleException(BundleLayout.Manifest, $"lists no {BundleLayout.RoleStageTwo} file", $"{dir}: the manifest has a stage_two but lists no {BundleLayout.RoleStageTwo} file");
        long paramBytes = 4 * new ParameterLayout(cfg).TotalSize;
        long maxModel = paramBytes + paramBytes / 4 + 8L * (cfg.ItemCount + 1) * FeatureShape.Parse(cfg.ItemFeatures).Sum(f => f.Width) + (16 << 20);
        byte[] bytes = BundleManifests.ReadVerified(dir, modelFile, maxModel);
        string path = Path.Combine(dir, modelFile.Name);
        InferenceSession session;
        try { session = new InferenceSession(bytes, path, options); }
        catch (OnnxRuntimeException e) { throw new BundleException(modelFile.Name, "ONNX Runtime cannot load the model", e.Message, e); }
        try
        {
            var inputs = GraphInputs.Of(cfg, m.StageTwo);
            GraphInputs.Check(session, inputs, modelFile.Name, cfg);
            var ranker = new StageTwoRanker(cfg, session, inputs, users);
            ranker.Canary(modelFile.Name);
            return ranker;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>True when the graph can rank for this user (it reads no user_index, or the user is known).</summary>
    public bool CanRank(EncodedUser user) => !NeedsKnownUser || user.Index >= 0;

    /// <summary>
    /// Scores each row's candidates (item indices) in one ONNX Runtime run; rows must be rankable (<see cref="CanRank"/>).
    /// Shorter candidate lists are padded (their pads' scores are dropped).
    /// </summary>
    public float[][] Score(IReadOnlyList<EncodedUser> users, IReadOnlyList<IReadOnlyList<int>> histories, IReadOnlyList<IReadOnlyList<int>> candidates)
    {
        int B = users.Count;
        var result = new float[B][];
        if (B == 0) return result;
        int C = Math.Max(1, candidates.Max(c => c.Count));
        var scores = new float[B * C];
        Session.Run(GraphInputs.Feed(Inputs, Config, users, histories, candidates, C), new[] { NamedTensor.Float(ModelIo.Scores, scores, B, C) });
        for (int b = 0; b < B; b++) result[b] = scores.AsSpan(b * C, candidates[b].Count).ToArray();
        return result;
    }

    /// <summary>The smoke test: the first user (or an anonymous one), a short history and a few candidates give finite scores.</summary>
    private void Canary(string name)
    {
        var user = _users.Encode(NeedsKnownUser ? new UserContext(_users.FirstUserId) : UserContext.Anonymous);
        var history = Enumerable.Range(1, Math.Min(3, Config.ItemCount)).ToList();
        var cands = Enumerable.Range(1, Math.Min(4, Config.ItemCount)).ToList();
        float[] s;
        try { s = Score([user], [history], [cands])[0]; }
        catch (Exception e) when (e is OnnxRuntimeException or ArgumentException) { throw new BundleException(name, "the canary request failed", $"{name}: the canary request failed: {e.Message}", e); }
        if (s.Any(x => !float.IsFinite(x)))
            throw new BundleException(name, "the canary request gave non-finite outputs (NaN or Inf weights)", $"{name}: the canary request gave NaN or Inf scores");
    }

    public void Dispose() => Session.Dispose();
}
