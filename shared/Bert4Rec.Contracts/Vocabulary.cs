// The item vocabulary: raw item ids (as they appear in the user's logs) <-> dense indices 1..n; 0 is [PAD], n+1 is [MASK].
using System.Text;

namespace Bert4Rec.Contracts;

/// <summary>
/// Maps raw item ids to dense indices. Index 0 is [PAD]; items are 1..Count; Count + 1 is [MASK].
/// On disk: UTF-8 text, one raw id per line, line k holds the raw id of index k.
/// </summary>
public sealed class Vocabulary
{
    private readonly string[] _rawIds;                  // _rawIds[i - 1] is the raw id of index i
    private readonly Dictionary<string, int> _index;

    public Vocabulary(IReadOnlyList<string> rawIdsInIndexOrder)
    {
        ArgumentNullException.ThrowIfNull(rawIdsInIndexOrder);
        _rawIds = new string[rawIdsInIndexOrder.Count];
        _index = new Dictionary<string, int>(rawIdsInIndexOrder.Count, StringComparer.Ordinal);
        for (int i = 0; i < _rawIds.Length; i++)
        {
            string id = rawIdsInIndexOrder[i] ?? throw new ArgumentException($"raw id at index {i + 1} is null");
            CheckRawId(id, $"index {i + 1}");
            if (!_index.TryAdd(id, i + 1))
                throw new ArgumentException($"raw id '{id}' appears twice (indices {_index[id]} and {i + 1})");
            _rawIds[i] = id;
        }
    }

    /// <summary>n: number of items.</summary>
    public int Count => _rawIds.Length;
    public int MaskId => Count + 1;

    /// <summary>The raw id of item index <paramref name="index"/> (1..Count).</summary>
    public string RawId(int index) =>
        index >= 1 && index <= Count ? _rawIds[index - 1] : throw new ArgumentOutOfRangeException(nameof(index), index, $"item index must be in 1..{Count}");

    public bool TryGetIndex(string rawId, out int index) => _index.TryGetValue(rawId, out index);

    public int IndexOf(string rawId) =>
        _index.TryGetValue(rawId, out int i) ? i : throw new KeyNotFoundException($"unknown item id '{rawId}'");

    public IReadOnlyList<string> RawIds => _rawIds;

    /// <summary>Writes the vocabulary atomically (temporary file, then rename).</summary>
    public void Save(string path)
    {
        var sb = new StringBuilder(_rawIds.Length * 8);
        foreach (var id in _rawIds) sb.Append(id).Append('\n');
        AtomicFile.WriteAllBytes(path, new UTF8Encoding(false).GetBytes(sb.ToString()));
    }

    /// <summary>Reads a vocabulary file (a regular file; invalid UTF-8 is refused, never replaced).</summary>
    public static Vocabulary Load(string path)
    {
        if (!File.Exists(path) && !SafeFiles.IsSymbolicLink(path)) throw new FileNotFoundException($"vocabulary file not found: {path}", path);
        byte[] bytes;
        try { bytes = SafeFiles.ReadAllBytes(path, int.MaxValue); }
        catch (UnsafeFileException e) { throw new InvalidDataException($"{path}: {e.Reason}", e); }
        return Parse(bytes, path);
    }

    /// <summary>
    /// Parses vocabulary text already in memory; <paramref name="name"/> labels errors, which name the line but never
    /// quote it (the caller decides whether its path may be shown).
    /// </summary>
    public static Vocabulary Parse(byte[] bytes, string name)
    {
        string text;
        try { text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes); }
        catch (DecoderFallbackException) { throw new InvalidDataException($"{name}: not valid UTF-8"); }
        if (text.Length > 0 && text[0] == '\uFEFF') text = text[1..];
        if (text.EndsWith('\n')) text = text[..^1];
        var ids = new List<string>();
        int line = 0;
        foreach (var raw in text.Length == 0 ? [] : text.Split('\n'))
        {
            line++;
            string id = raw.EndsWith('\r') ? raw[..^1] : raw;
            if (id.Length == 0) throw new InvalidDataException($"{name}:{line}: empty raw item id");
            foreach (char c in id)
                if (char.IsWhiteSpace(c) || char.IsControl(c))
                    throw new InvalidDataException($"{name}:{line}: the raw id contains whitespace or a control character");
            ids.Add(id);
        }
        var seen = new Dictionary<string, int>(ids.Count, StringComparer.Ordinal);
        for (int i = 0; i < ids.Count; i++)
            if (!seen.TryAdd(ids[i], i + 1)) throw new InvalidDataException($"{name}:{i + 1}: the raw id appears twice (lines {seen[ids[i]]} and {i + 1})");
        return new Vocabulary(ids);
    }

    private static void CheckRawId(string id, string where)
    {
        if (id.Length == 0) throw new ArgumentException($"empty raw id at {where}");
        foreach (char c in id)
            if (char.IsWhiteSpace(c) || char.IsControl(c))
                throw new ArgumentException($"raw id '{id}' at {where} contains whitespace or a control character");
    }
}
