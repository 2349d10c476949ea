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

    public static Vocabulary Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"vocabulary file not found: {path}", path);
        var ids = new List<string>();
        int line = 0;
        foreach (var raw in File.ReadLines(path, Encoding.UTF8))
        {
            line++;
            if (raw.Length == 0) throw new InvalidDataException($"{path}:{line}: empty raw item id");
            try { CheckRawId(raw, $"line {line}"); }
            catch (ArgumentException e) { throw new InvalidDataException($"{path}:{line}: {e.Message}"); }
            ids.Add(raw);
        }
        try { return new Vocabulary(ids); }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: {e.Message}"); }
    }

    private static void CheckRawId(string id, string where)
    {
        if (id.Length == 0) throw new ArgumentException($"empty raw id at {where}");
        foreach (char c in id)
            if (char.IsWhiteSpace(c) || char.IsControl(c))
                throw new ArgumentException($"raw id '{id}' at {where} contains whitespace or a control character");
    }
}
