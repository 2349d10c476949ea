// The stage-two ranker of a two-model bundle: a feature model's ONNX graph (stage_two.onnx) that rescores stage one's
// candidates with the user's id and features. Its inputs are the ones the manifest declares, fed by name: user_index (the
// user's line in users.txt), user_features (the user's stored value ids, overridden field by field by the request's
// values; OOV for what is unknown), item_ids (the history row) and candidate_ids.
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Bundle;
using Bert4Rec.Inference.OnnxRuntime;

namespace Bert4Rec.Inference.Recommendation;

/// <summary>A request's user: a raw user id (null or empty = anonymous) and raw feature values by field name (a multi-hot
/// field's values '|'-separated).</summary>
public sealed record UserContext(string? UserId = null, IReadOnlyDictionary<string, string>? Features = null)
{
    public static readonly UserContext Anonymous = new();
}

/// <summary>A request's user features that the bundle cannot read: <see cref="Field"/> names the request field (e.g.
/// "user_features.age"); the message is fit for a caller.</summary>
public sealed class UserFeatureException(string field, string message) : ArgumentException(message)
{
    public string Field { get; } = field;
}

/// <summary>A user encoded for the stage-two graph: the user index (-1 = unknown) and the feature value ids.</summary>
public readonly record struct EncodedUser(int Index, long[] Features);

public sealed class StageTwoRanker : IDisposable
{
    private static readonly HashSet<string> Feedable = [ModelIo.UserIndex, ModelIo.UserFeatures, ModelIo.ItemIds, ModelIo.CandidateIds];

    public ModelConfig Config { get; }
    public InferenceSession Session { get; }
    /// <summary>The graph's inputs as the manifest declares them, in order.</summary>
    public IReadOnlyList<GraphInput> Inputs { get; }
    /// <summary>True when the graph reads user_index: an unknown user cannot be ranked by it (stage one's order stands).</summary>
    public bool NeedsKnownUser { get; }
    private readonly Vocabulary _users;
    private readonly FeatureTableInfo? _table;
    private readonly Dictionary<string, int>[] _valueIndex;
    private readonly Dictionary<string, int> _fieldByName;
    private readonly int[] _offsets;
    private readonly int _width;

    private StageTwoRanker(ModelConfig cfg, InferenceSession session, IReadOnlyList<GraphInput> inputs, Vocabulary users, FeatureTableInfo? table)
    {
        Config = cfg; Session = session; Inputs = inputs; _users = users; _table = table;
        NeedsKnownUser = inputs.Any(i => i.Name == ModelIo.UserIndex);
        var fields = table?.Fields.ToArray() ?? [];
        _valueIndex = fields.Select(FeatureValues.Index).ToArray();
        _fieldByName = fields.Select((f, i) => (f.Name, i)).ToDictionary(p => p.Name, p => p.i, StringComparer.Ordinal);
        _offsets = new int[fields.Length];
        for (int i = 1; i < fields.Length; i++) _offsets[i] = _offsets[i - 1] + fields[i - 1].Width;
        _width = fields.Sum(f => f.Width);
    }

    /// <summary>The raw user ids the ranker knows (user_index i = entry i).</summary>
    public IReadOnlyList<string> UserIds => _users.RawIds;

    /// <summary>The user feature fields' names, in order.</summary>
    public IEnumerable<string> FieldNames => _table?.Fields.Select(f => f.Name) ?? [];

    /// <summary>
    /// Loads stage two of a verified manifest: its shape, graph (inputs checked against the declaration), users and user
    /// feature table; any mismatch is a <see cref="BundleException"/> naming the file. Stage one's item count bounds it.
    /// </summary>
    internal static StageTwoRanker Load(string dir, BundleManifest m, int itemCount, SessionOptions options)
    {
        var shape = m.StageTwo;
        ModelConfig cfg;
        try { cfg = BundleManifests.ToConfig(shape); cfg.Validate(); }
        catch (Exception e) when (e is ArgumentException or BundleException) { throw new BundleException(BundleLayout.Manifest, "stage_two config invalid", $"{dir}: manifest stage_two config invalid: {e.Message}", e); }
        if (cfg.Kind.IsSequential()) throw new BundleException(BundleLayout.Manifest, "stage_two is not a feature model", $"{dir}: manifest stage_two is a {cfg.Kind.Name()}, not a feature model");
        if (cfg.ItemCount != itemCount) throw new BundleException(BundleLayout.Manifest, "stage_two's items differ from stage one's", $"{dir}: stage_two has {cfg.ItemCount} items, stage one {itemCount}");
        BundleFile Entry(string role) => BundleManifests.FileOfRole(m, role)
            ?? throw new BundleException(BundleLayout.Manifest, $"lists no {role} file", $"{dir}: the manifest has a stage_two but lists no {role} file");
        var uf = FeatureShape.Parse(cfg.UserFeatures);
        var itf = FeatureShape.Parse(cfg.ItemFeatures);
        long paramBytes = 4 * new ParameterLayout(cfg).TotalSize;
        long maxModel = paramBytes + paramBytes / 4 + 8L * (cfg.ItemCount + 1) * itf.Sum(f => f.Width) + (16 << 20);
        var modelFile = Entry(BundleLayout.RoleStageTwo);
        var usersFile = Entry(BundleLayout.RoleUsers);
        var users = ParseUsers(dir, usersFile, BundleManifests.ReadVerified(dir, usersFile, (long)cfg.UserCount * ModelBundle.MaxBytesPerVocabularyLine));
        if (users.Count != cfg.UserCount)
            throw new BundleException(usersFile.Name, "user count differs from the stage-two model's", $"{Path.Combine(dir, usersFile.Name)}: {users.Count} users, the stage-two model has {cfg.UserCount}");
        FeatureTableInfo? table = null;
        if (uf.Length > 0)
        {
            var tableFile = Entry(BundleLayout.RoleUserFeatures);
            long maxTable = 16L * cfg.UserCount * uf.Sum(f => f.Width) + uf.Sum(f => (long)f.Vocab) * ModelBundle.MaxBytesPerVocabularyLine + (1 << 20);
            table = ParseTable(dir, tableFile, BundleManifests.ReadVerified(dir, tableFile, maxTable), cfg, uf);
        }
        byte[] bytes = BundleManifests.ReadVerified(dir, modelFile, maxModel);
        string path = Path.Combine(dir, modelFile.Name);
        InferenceSession session;
        try { session = new InferenceSession(bytes, path, options); }
        catch (OnnxRuntimeException e) { throw new BundleException(modelFile.Name, "ONNX Runtime cannot load the model", e.Message, e); }
        try
        {
            CheckInputs(session, shape, modelFile.Name, cfg);
            var ranker = new StageTwoRanker(cfg, session, shape.Inputs.ToList(), users, table);
            ranker.Canary(modelFile.Name);
            return ranker;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static Vocabulary ParseUsers(string dir, BundleFile f, byte[] bytes)
    {
        try { return Vocabulary.Parse(bytes, f.Name); }
        catch (InvalidDataException e) { throw new BundleException(f.Name, "not a valid user list", $"{Path.Combine(dir, f.Name)}: {e.Message}", e); }
    }

    private static FeatureTableInfo ParseTable(string dir, BundleFile f, byte[] bytes, ModelConfig cfg, (int Vocab, int Width)[] fields)
    {
        string p = Path.Combine(dir, f.Name);
        FeatureTableInfo t;
        try { t = FeatureTableInfo.Parser.ParseFrom(bytes); }
        catch (Google.Protobuf.InvalidProtocolBufferException e) { throw new BundleException(f.Name, "not a valid feature table", $"{p}: not a valid feature table: {e.Message}", e); }
        BundleException Bad(string why) => new(f.Name, "the feature table does not match the stage-two model", $"{p}: {why}");
        if (t.Fields.Count != fields.Length) throw Bad($"{t.Fields.Count} fields, the model has {fields.Length}");
        for (int i = 0; i < fields.Length; i++)
        {
            var x = t.Fields[i];
            if (x.Width != fields[i].Width || x.Values.Count + FeatureValues.FirstValue != fields[i].Vocab)
                throw Bad($"field {i} ('{x.Name}') is {x.Values.Count + FeatureValues.FirstValue}x{x.Width}, the model's is {fields[i].Vocab}x{fields[i].Width}");
            if (x.Kind == "numeric" && x.Boundaries.Count + 1 > x.Values.Count)
                throw Bad($"numeric field '{x.Name}' has {x.Boundaries.Count + 1} buckets but {x.Values.Count} values");
            if (x.Kind is not ("categorical" or "multi_hot" or "numeric")) throw Bad($"field '{x.Name}' has kind '{x.Kind}'");
            if (x.Name.Length == 0 || t.Fields.Take(i).Any(y => y.Name == x.Name)) throw Bad($"field {i} has an empty or repeated name");
        }
        if (t.Rows != cfg.UserCount) throw Bad($"{t.Rows} rows, the model has {cfg.UserCount} users");
        try { FeatureShape.CheckSlots(t.Slots.ToArray(), fields, t.Rows, "user"); }
        catch (ArgumentException e) { throw Bad(e.Message); }
        return t;
    }

    private static void CheckInputs(InferenceSession s, ModelShape shape, string name, ModelConfig cfg)
    {
        var declared = shape.Inputs.Select(i => i.Name).ToList();
        if (!declared.SequenceEqual(s.Inputs.Select(i => i.Name)))
            throw new BundleException(name, "the graph's inputs differ from the manifest's", $"{s.ModelPath}: inputs [{string.Join(", ", s.Inputs.Select(i => i.Name))}], the manifest declares [{string.Join(", ", declared)}]");
        foreach (var i in shape.Inputs)
        {
            if (!Feedable.Contains(i.Name))
                throw new BundleException(name, $"the graph reads an input this service cannot feed ('{i.Name}')", $"{s.ModelPath}: input '{i.Name}' is not one of {string.Join(", ", Feedable)}");
            if (i.ElementType != "int64") throw new BundleException(name, $"input '{i.Name}' is not int64", $"{s.ModelPath}: input '{i.Name}' is {i.ElementType}");
        }
        if (!declared.Contains(ModelIo.CandidateIds)) throw new BundleException(name, "the graph reads no candidate_ids", $"{s.ModelPath}: no candidate_ids input");
        var item = shape.Inputs.FirstOrDefault(i => i.Name == ModelIo.ItemIds);
        if (item != null && (item.Dims.Count != 2 || item.Dims[1] != cfg.MaxLength.ToString(System.Globalization.CultureInfo.InvariantCulture)))
            throw new BundleException(name, "item_ids is not [batch, N]", $"{s.ModelPath}: item_ids dims [{string.Join(",", item.Dims)}], expected [batch, {cfg.MaxLength}]");
        var output = s.Outputs.FirstOrDefault(o => o.Name == ModelIo.Scores)
            ?? throw new BundleException(name, "the model has no output 'scores'", $"{s.ModelPath}: no output 'scores'");
        if (output.ElementType != TensorElementType.Float) throw new BundleException(name, "scores is not float", $"{s.ModelPath}: scores is {output.ElementType}");
    }

    /// <summary>
    /// The request's user for the graph: its index in users.txt (-1 when absent or unknown) and its feature value ids: the
    /// stored row of a known user (OOV in every field of an unknown one), each field the request names replaced by the
    /// request's value. A field the model does not have, or a value it cannot read, is a <see cref="UserFeatureException"/>.
    /// </summary>
    public EncodedUser Encode(UserContext user)
    {
        int index = !string.IsNullOrEmpty(user.UserId) && _users.TryGetIndex(user.UserId, out int u) ? u - 1 : -1;
        var slots = new int[_width];
        if (_table != null)
        {
            if (index >= 0) for (int k = 0; k < _width; k++) slots[k] = _table.Slots[index * _width + k];
            else foreach (int o in _offsets) slots[o] = FeatureValues.Oov;
        }
        if (user.Features != null)
            foreach (var (name, value) in user.Features)
            {
                if (!_fieldByName.TryGetValue(name, out int f))
                    throw new UserFeatureException($"user_features.{name}",
                        _table == null ? "this model reads no user features" : $"not a user field of this model (its fields: {string.Join(", ", FieldNames)})");
                var field = _table!.Fields[f];
                try { FeatureValues.Encode(field, _valueIndex[f], value ?? "", slots.AsSpan(_offsets[f], field.Width)); }
                catch (ArgumentException e) { throw new UserFeatureException($"user_features.{name}", e.Message); }
            }
        return new EncodedUser(index, slots.Select(x => (long)x).ToArray());
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
        int C = Math.Max(1, candidates.Max(c => c.Count)), N = Config.MaxLength;
        var feeds = new List<NamedTensor>();
        foreach (var input in Inputs)
            switch (input.Name)
            {
                case ModelIo.UserIndex:
                    feeds.Add(NamedTensor.Int64(input.Name, users.Select(u => (long)(u.Index >= 0 ? u.Index : throw new ArgumentException("stage two needs a known user"))).ToArray(), B));
                    break;
                case ModelIo.UserFeatures:
                    feeds.Add(NamedTensor.Int64(input.Name, users.SelectMany(u => u.Features).ToArray(), B, _width));
                    break;
                case ModelIo.ItemIds:
                    var rows = new long[B * N];
                    for (int b = 0; b < B; b++) ModelInput.Row(histories[b], Config).CopyTo(rows, b * N);
                    feeds.Add(NamedTensor.Int64(input.Name, rows, B, N));
                    break;
                default:
                    var cands = new long[B * C];
                    for (int b = 0; b < B; b++)
                        for (int j = 0; j < C; j++) cands[b * C + j] = j < candidates[b].Count ? candidates[b][j] : 1;
                    feeds.Add(NamedTensor.Int64(input.Name, cands, B, C));
                    break;
            }
        var scores = new float[B * C];
        Session.Run(feeds.ToArray(), new[] { NamedTensor.Float(ModelIo.Scores, scores, B, C) });
        for (int b = 0; b < B; b++) result[b] = scores.AsSpan(b * C, candidates[b].Count).ToArray();
        return result;
    }

    /// <summary>The smoke test: the first user (or an anonymous one), a short history and a few candidates give finite scores.</summary>
    private void Canary(string name)
    {
        var user = NeedsKnownUser ? Encode(new UserContext(_users.RawId(1))) : Encode(UserContext.Anonymous);
        var history = Enumerable.Range(1, Math.Min(3, Config.ItemCount)).ToList();
        var cands = Enumerable.Range(1, Math.Min(4, Config.ItemCount)).ToList();
        float[] s;
        try { s = Score([user], [history], [cands])[0]; }
        catch (OnnxRuntimeException e) { throw new BundleException(name, "the canary request failed", $"{name}: the canary request failed: {e.Message}", e); }
        if (s.Any(x => !float.IsFinite(x)))
            throw new BundleException(name, "the canary request gave non-finite outputs (NaN or Inf weights)", $"{name}: the canary request gave NaN or Inf scores");
    }

    public void Dispose() => Session.Dispose();
}
