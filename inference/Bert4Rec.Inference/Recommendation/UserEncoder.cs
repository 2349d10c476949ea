// A request's user as the bundle's graphs read it: the raw user id through users.txt (user_index, -1 when unknown) and the
// user feature value ids (the known user's stored row from user_features.pb, OOV in every field of an unknown one, each field
// the request names replaced by its encoded value). One encoder per bundle, shared by stage one (a Two-Tower user tower) and
// stage two (a NeuMF or DeepFM ranker), so both stages read a request's user the same way.
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Bundle;

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
    /// <summary>In a batch, the index of the query whose user is at fault (-1: not from a batch).</summary>
    public int Query { get; init; } = -1;
}

/// <summary>A user encoded for the graphs: the user index (-1 = unknown) and the feature value ids (<see cref="UserEncoder.Width"/>).</summary>
public readonly record struct EncodedUser(int Index, long[] Features);

public sealed class UserEncoder
{
    /// <summary>The largest users.txt a bundle whose models fix no user count (a Two-Tower stage one alone) may hold.</summary>
    public const long MaxUserListBytes = 1L << 30;

    private readonly Vocabulary _users;
    private readonly FeatureTableInfo? _table;
    private readonly Dictionary<string, int>[] _valueIndex;
    private readonly Dictionary<string, int> _fieldByName;
    private readonly int[] _offsets;

    /// <summary>An encoder over a user list and its feature table (null: no user fields).</summary>
    public UserEncoder(Vocabulary users, FeatureTableInfo? table)
    {
        _users = users; _table = table;
        var fields = table?.Fields.ToArray() ?? [];
        _valueIndex = fields.Select(FeatureValues.Index).ToArray();
        _fieldByName = fields.Select((f, i) => (f.Name, i)).ToDictionary(p => p.Name, p => p.i, StringComparer.Ordinal);
        _offsets = new int[fields.Length];
        for (int i = 1; i < fields.Length; i++) _offsets[i] = _offsets[i - 1] + fields[i - 1].Width;
        Width = fields.Sum(f => f.Width);
    }

    /// <summary>The raw user ids the bundle knows (user_index i = entry i).</summary>
    public IReadOnlyList<string> UserIds => _users.RawIds;

    /// <summary>The user feature fields' names, in order.</summary>
    public IEnumerable<string> FieldNames => _table?.Fields.Select(f => f.Name) ?? [];

    /// <summary>The feature row's width: the sum of the fields' widths (0 without fields).</summary>
    public int Width { get; }

    /// <summary>
    /// Reads users.txt and, when <paramref name="userFeatures"/> names fields, user_features.pb of a verified manifest, each
    /// checked against the models that read them: <paramref name="userCount"/> users when a model fixes it (null: bounded by
    /// <see cref="MaxUserListBytes"/>), the table's fields and rows against <paramref name="userFeatures"/>. Any mismatch is a
    /// <see cref="BundleException"/> naming the file.
    /// </summary>
    public static UserEncoder Load(string dir, BundleManifest m, int? userCount, string userFeatures)
    {
        BundleFile Entry(string role) => BundleManifests.FileOfRole(m, role)
            ?? throw new BundleException(BundleLayout.Manifest, $"lists no {role} file", $"{dir}: the bundle's models read a request's user but the manifest lists no {role} file");
        var usersFile = Entry(BundleLayout.RoleUsers);
        long maxUsers = userCount is { } n ? (long)n * ModelBundle.MaxBytesPerVocabularyLine : MaxUserListBytes;
        Vocabulary users;
        try { users = Vocabulary.Parse(BundleManifests.ReadVerified(dir, usersFile, maxUsers), usersFile.Name); }
        catch (InvalidDataException e) { throw new BundleException(usersFile.Name, "not a valid user list", $"{Path.Combine(dir, usersFile.Name)}: {e.Message}", e); }
        if (userCount is { } want && users.Count != want)
            throw new BundleException(usersFile.Name, "user count differs from the model's", $"{Path.Combine(dir, usersFile.Name)}: {users.Count} users, the model has {want}");
        var uf = FeatureShape.Parse(userFeatures);
        FeatureTableInfo? table = null;
        if (uf.Length > 0)
        {
            var tableFile = Entry(BundleLayout.RoleUserFeatures);
            long maxTable = 16L * users.Count * uf.Sum(f => f.Width) + uf.Sum(f => (long)f.Vocab) * ModelBundle.MaxBytesPerVocabularyLine + (1 << 20);
            table = ParseTable(dir, tableFile, BundleManifests.ReadVerified(dir, tableFile, maxTable), users.Count, uf);
        }
        else if (BundleManifests.FileOfRole(m, BundleLayout.RoleUserFeatures) is { } stray)
            throw new BundleException(stray.Name, "a user feature table for models without user fields", $"{dir}: {stray.Name} is listed but no model of the bundle reads user fields");
        return new UserEncoder(users, table);
    }

    private static FeatureTableInfo ParseTable(string dir, BundleFile f, byte[] bytes, int rows, (int Vocab, int Width)[] fields)
    {
        string p = Path.Combine(dir, f.Name);
        FeatureTableInfo t;
        try { t = FeatureTableInfo.Parser.ParseFrom(bytes); }
        catch (Google.Protobuf.InvalidProtocolBufferException e) { throw new BundleException(f.Name, "not a valid feature table", $"{p}: not a valid feature table: {e.Message}", e); }
        BundleException Bad(string why) => new(f.Name, "the feature table does not match the model", $"{p}: {why}");
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
        if (t.Rows != rows) throw Bad($"{t.Rows} rows, the bundle has {rows} users");
        try { FeatureShape.CheckSlots(t.Slots.ToArray(), fields, t.Rows, "user"); }
        catch (ArgumentException e) { throw Bad(e.Message); }
        return t;
    }

    /// <summary>
    /// The request's user for the graphs: its index in users.txt (-1 when absent or unknown) and its feature value ids: the
    /// stored row of a known user (OOV in every field of an unknown one), each field the request names replaced by the
    /// request's value. A field the bundle does not have, or a value it cannot read, is a <see cref="UserFeatureException"/>.
    /// </summary>
    public EncodedUser Encode(UserContext user)
    {
        int index = !string.IsNullOrEmpty(user.UserId) && _users.TryGetIndex(user.UserId, out int u) ? u - 1 : -1;
        var slots = new int[Width];
        if (_table != null)
        {
            if (index >= 0) for (int k = 0; k < Width; k++) slots[k] = _table.Slots[index * Width + k];
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

    /// <summary>The first known user's id (null when the list is empty): the canaries' user.</summary>
    public string? FirstUserId => _users.Count > 0 ? _users.RawId(1) : null;
}
