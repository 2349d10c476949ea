// sequences.bin opened through a read-only memory map: each user's items are a ReadOnlySpan<int> straight over the
// file (the page cache holds them, not the managed heap), found through one offset per user. Opening checks the header,
// that the lengths add up to the file's size, the SHA-256 and every item's range, reading the file once without
// copying it. SequenceDataset.Load keeps the store as the dataset's sequences (a SequenceView), so training reads the
// pages it needs and the managed heap does not grow with the log.
using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Security.Cryptography;

namespace Bert4Rec.Training.Data;

public sealed unsafe class SequenceStore : SequenceView, IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly int* _items;
    private readonly long[] _offsets;   // user u's items are _items[_offsets[u] .. _offsets[u + 1])
    private bool _disposed;

    /// <summary>Users.</summary>
    public override int Count { get; }
    /// <summary>Catalog size n (items are 1..n).</summary>
    public int ItemCount { get; }
    public override long Interactions => _offsets[^1];

    private SequenceStore(string path, long size)
    {
        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        try
        {
            _view = _map.CreateViewAccessor(0, size, MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _base = p + _view.PointerOffset;
            var head = new ReadOnlySpan<byte>(_base, SequenceFileWriter.HeaderBytes);
            if (BinaryPrimitives.ReadUInt32LittleEndian(head) != SequenceFileWriter.Magic)
                throw new InvalidDataException($"{path}: not a prepared dataset (bad magic or too short)");
            long body = size - SequenceFileWriter.HashBytes;
            var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            for (long o = 0; o < body; o += 1 << 24) hash.AppendData(new ReadOnlySpan<byte>(_base + o, (int)Math.Min(1 << 24, body - o)));
            if (!hash.GetHashAndReset().AsSpan().SequenceEqual(new ReadOnlySpan<byte>(_base + body, SequenceFileWriter.HashBytes)))
                throw new InvalidDataException($"{path}: checksum mismatch (the file is corrupt or truncated)");
            int version = BinaryPrimitives.ReadInt32LittleEndian(head[4..]);
            if (version != SequenceFileWriter.Version) throw new InvalidDataException($"{path}: version {version}, this build reads {SequenceFileWriter.Version}");
            ItemCount = BinaryPrimitives.ReadInt32LittleEndian(head[8..]);
            Count = BinaryPrimitives.ReadInt32LittleEndian(head[12..]);
            long itemsAt = SequenceFileWriter.HeaderBytes + 4L * Count;
            if (ItemCount < 0 || Count < 0 || itemsAt > body) throw new InvalidDataException($"{path}: header out of range");
            _offsets = new long[Count + 1];
            var lengths = (int*)(_base + SequenceFileWriter.HeaderBytes);
            for (int u = 0; u < Count; u++)
            {
                int n = BinaryPrimitives.ReadInt32LittleEndian(new ReadOnlySpan<byte>(lengths + u, 4));
                if (n < 0) throw new InvalidDataException($"{path}: user {u + 1} has length {n}");
                _offsets[u + 1] = _offsets[u] + n;
            }
            if (itemsAt + 4 * _offsets[^1] != body) throw new InvalidDataException($"{path}: lengths do not match the file size");
            _items = (int*)(_base + itemsAt);
            for (int u = 0; u < Count; u++)
                foreach (int i in this[u])
                    if (i < 1 || i > ItemCount) throw new InvalidDataException($"{path}: user {u + 1}: item index {i} outside 1..{ItemCount}");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Maps and checks <paramref name="path"/> (a sequences.bin).</summary>
    public static SequenceStore Open(string path)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("sequences.bin is little-endian; this machine is not");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: not found", path);
        long size = new FileInfo(path).Length;
        if (size < SequenceFileWriter.HeaderBytes + SequenceFileWriter.HashBytes) throw new InvalidDataException($"{path}: not a prepared dataset (bad magic or too short)");
        return new SequenceStore(path, size);
    }

    /// <summary>User <paramref name="user"/>'s items (1..n) in time order, read from the map (valid until Dispose).</summary>
    public override ReadOnlySpan<int> this[int user]
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if ((uint)user >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(user), user, $"user index must be in 0..{Count - 1}");
            long start = _offsets[user];
            return new ReadOnlySpan<int>(_items + start, (int)(_offsets[user + 1] - start));
        }
    }

    public override int Length(int user) => this[user].Length;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_view != null)
        {
            if (_base != null) _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }
}
