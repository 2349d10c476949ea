// sequences.bin, written as a stream: magic "B4RS", version, item count, user count, each user's length, then each
// user's items (all int32 little-endian), then the SHA-256 of everything before it. The lengths come first, so a
// writer knows every length before the first item (both prepare paths do), and a reader can find any user's items
// from the lengths alone.
using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Bert4Rec.Training.Data;

public sealed class SequenceFileWriter
{
    public const uint Magic = 0x53523442; // "B4RS"
    public const int Version = 1;
    public const int HeaderBytes = 16, HashBytes = 32;

    private readonly Stream _out;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly byte[] _buffer = new byte[1 << 16];
    private int _used;
    private long _remaining;

    /// <summary>Writes the header and the lengths; then exactly sum(<paramref name="lengths"/>) items must follow before <see cref="Finish"/>.</summary>
    public SequenceFileWriter(Stream output, int itemCount, IReadOnlyList<int> lengths)
    {
        _out = output;
        Int((int)Magic); Int(Version); Int(itemCount); Int(lengths.Count);
        foreach (int n in lengths) { Int(n); _remaining += n; }
    }

    public void Write(int item)
    {
        if (--_remaining < 0) throw new InvalidOperationException("more items than the lengths announced");
        Int(item);
    }

    public void Write(ReadOnlySpan<int> items)
    {
        foreach (int i in items) Write(i);
    }

    /// <summary>Checks that every announced item was written and appends the checksum.</summary>
    public void Finish()
    {
        if (_remaining != 0) throw new InvalidOperationException($"{_remaining} items fewer than the lengths announced");
        Flush();
        _out.Write(_hash.GetHashAndReset());
        _out.Flush();
    }

    private void Int(int v)
    {
        if (_used + 4 > _buffer.Length) Flush();
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(_used), v);
        _used += 4;
    }

    private void Flush()
    {
        _hash.AppendData(_buffer, 0, _used);
        _out.Write(_buffer, 0, _used);
        _used = 0;
    }
}
