// The complete training state in one checksummed file, written atomically: config, weights, Adam moments, step
// counters, early-stopping state and the best weights. Resuming from it replays the same masks, order and dropout,
// because those derive from (seed, epoch, step) only. best.bin uses the same format with the weights alone.
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bert4Rec.Contracts;

namespace Bert4Rec.Training.Training;

public sealed class TrainingState
{
    public required TrainingConfig Config { get; init; }
    public required int ItemCount { get; init; }
    /// <summary>SHA-256 (hex) of the run's vocab.txt, tying the weights' item indices to their raw ids; empty when unknown.</summary>
    public string VocabularySha256 { get; init; } = "";
    public required float[] Parameters { get; init; }
    public required float[] M { get; init; }
    public required float[] V { get; init; }
    public long AdamStep { get; set; }
    public long GlobalStep { get; set; }
    public int Epoch { get; set; }            // epochs fully completed
    public int StepInEpoch { get; set; }      // batches done in the current epoch
    public double BestMetric { get; set; } = double.NegativeInfinity;
    public int BestEpoch { get; set; } = -1;
    public long BestStep { get; set; } = -1;
    public int BadEvaluations { get; set; }
    public float[]? BestParameters { get; set; }
    public RankingMetrics? LastValidation { get; set; }
    public bool Finished { get; set; }
}

/// <summary>
/// File layout (little-endian): magic "B4RC", version, kind (0 = full training state, 1 = weights only), the training
/// config as JSON, the item count, the kind's fields, then SHA-256 of everything before it.
/// </summary>
public static class Checkpoint
{
    private const uint Magic = 0x43523442; // "B4RC"
    private const int Version = 3;           // 3 added the vocabulary hash; version 2 files are still read
    private const byte FullState = 0, WeightsOnly = 1;

    public static void Save(string path, TrainingState s) => Write(path, w =>
    {
        w.Write(FullState);
        w.Write(JsonSerializer.Serialize(s.Config));
        w.Write(s.ItemCount);
        w.Write(s.VocabularySha256);
        w.Write(s.AdamStep); w.Write(s.GlobalStep); w.Write(s.Epoch); w.Write(s.StepInEpoch);
        w.Write(s.BestMetric); w.Write(s.BestEpoch); w.Write(s.BestStep); w.Write(s.BadEvaluations); w.Write(s.Finished);
        w.Write(s.LastValidation != null ? JsonSerializer.Serialize(s.LastValidation) : "");
        WriteFloats(w, s.Parameters); WriteFloats(w, s.M); WriteFloats(w, s.V);
        w.Write(s.BestParameters != null);
        if (s.BestParameters != null) WriteFloats(w, s.BestParameters);
    });

    /// <summary>Writes weights alone (best.bin): enough for evaluation and export, not for resuming.</summary>
    public static void SaveWeights(string path, TrainingConfig config, int itemCount, float[] parameters, int epoch, long step, double metric,
                                   string vocabularySha256 = "") => Write(path, w =>
    {
        w.Write(WeightsOnly);
        w.Write(JsonSerializer.Serialize(config));
        w.Write(itemCount);
        w.Write(vocabularySha256);
        w.Write(epoch); w.Write(step); w.Write(metric);
        WriteFloats(w, parameters);
    });

    /// <summary>Reads a full training state (checkpoint.bin) for --resume. <paramref name="modelConfig"/> gives the model config
    /// of (training config, item count) where the config alone does not fix the layout (feature models: the data's fields).</summary>
    public static TrainingState Load(string path, Func<TrainingConfig, int, ModelConfig>? modelConfig = null)
    {
        var (kind, cfg, items, vocab, r) = Open(path);
        using var _ = r;
        if (kind != FullState)
            throw new InvalidDataException($"{path}: holds weights only (best weights); resume from the run's {Trainer.CheckpointFile}");
        return Read(path, () =>
        {
            long adam = r.ReadInt64(), global = r.ReadInt64();
            int epoch = r.ReadInt32(), sie = r.ReadInt32();
            double best = r.ReadDouble();
            int bestEpoch = r.ReadInt32();
            long bestStep = r.ReadInt64();
            int bad = r.ReadInt32();
            bool finished = r.ReadBoolean();
            string lastVal = r.ReadString();
            long expected = ExpectedSize(cfg, items, modelConfig);
            var p = ReadFloats(r, path, "weights", expected); var m = ReadFloats(r, path, "Adam first moments", expected);
            var v = ReadFloats(r, path, "Adam second moments", expected);
            float[]? bp = r.ReadBoolean() ? ReadFloats(r, path, "best weights", expected) : null;
            if (adam < 0 || global < 0 || epoch < 0 || sie < 0 || epoch > cfg.Epochs)
                throw new InvalidDataException($"{path}: inconsistent counters (epoch {epoch}, step {global}, Adam step {adam})");
            return new TrainingState
            {
                Config = cfg, ItemCount = items, VocabularySha256 = vocab, Parameters = p, M = m, V = v, AdamStep = adam, GlobalStep = global, Epoch = epoch,
                StepInEpoch = sie, BestMetric = best, BestEpoch = bestEpoch, BestStep = bestStep, BadEvaluations = bad, BestParameters = bp,
                LastValidation = lastVal.Length > 0 ? JsonSerializer.Deserialize<RankingMetrics>(lastVal) : null, Finished = finished,
            };
        });
    }

    /// <summary>For evaluation and the exporter: the model config and the weights to use (the best weights when validation kept some).
    /// Reads checkpoint.bin or best.bin.</summary>
    public static (ModelConfig Config, float[] Parameters) LoadWeights(string path, Func<TrainingConfig, int, ModelConfig>? modelConfig = null)
    {
        var (kind, cfg, items, _, r) = Open(path);
        using var _ = r;
        modelConfig ??= (c, n) => c.ToModelConfig(n);
        if (kind == FullState)
        {
            r.Dispose();
            var s = Load(path, modelConfig);
            return (modelConfig(s.Config, s.ItemCount), s.BestParameters ?? s.Parameters);
        }
        return Read(path, () =>
        {
            r.ReadInt32(); r.ReadInt64(); r.ReadDouble();
            var p = ReadFloats(r, path, "weights", ExpectedSize(cfg, items, modelConfig));
            return (modelConfig(cfg, items), p);
        });
    }

    /// <summary>Streams the file through SHA-256 into a temporary file and renames it onto <paramref name="path"/>: memory stays
    /// at a write buffer whatever the size of the weights (a million-item SASRec's checkpoint is about 1 GB), and readers see
    /// the old file or the whole new one.</summary>
    private static void Write(string path, Action<BinaryWriter> body) => AtomicFile.Write(path, fs =>
    {
        using var sha = SHA256.Create();
        using (var hashed = new CryptoStream(fs, sha, CryptoStreamMode.Write, leaveOpen: true))
        using (var w = new BinaryWriter(hashed, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic); w.Write(Version);
            body(w);
            w.Flush();
            hashed.FlushFinalBlock();
        }
        fs.Write(sha.Hash!);
    });

    /// <summary>The SHA-256 of the vocabulary the weights were trained with (empty for files written before it was recorded).</summary>
    public static string VocabularySha256(string path)
    {
        var (_, _, _, vocab, r) = Open(path);
        r.Dispose();
        return vocab;
    }

    /// <summary>Checks the file's magic, version and checksum by streaming it once, then returns a reader positioned after
    /// the header fields, over the file itself (the caller disposes it): no copy of the file is held in memory.</summary>
    private static (byte Kind, TrainingConfig Config, int Items, string Vocabulary, BinaryReader Reader) Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint not found: {path}", path);
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            long length = fs.Length;
            Span<byte> head = stackalloc byte[8];
            if (length < 4 || fs.ReadAtLeast(head[..4], 4, throwOnEndOfStream: false) < 4 || BitConverter.ToUInt32(head) != Magic)
                throw new InvalidDataException($"{path}: not a BERT4Rec checkpoint (bad magic)");
            if (length < 4 + 4 + 1 + 32)
                throw new InvalidDataException($"{path}: truncated checkpoint ({length} bytes)");
            fs.ReadExactly(head[4..8]);
            int version = BitConverter.ToInt32(head[4..]);
            if (version is not (2 or Version)) throw new InvalidDataException($"{path}: checkpoint format version {version}; this build reads versions 2 and {Version}");
            if (!ChecksumMatches(fs, length))
                throw new InvalidDataException($"{path}: checksum mismatch (the checkpoint is corrupt or truncated)");
            fs.Position = 8;
            var r = new BinaryReader(new BoundedReadStream(fs, length - 32), Encoding.UTF8);
            return Read(path, () =>
            {
                byte kind = r.ReadByte();
                if (kind is not (FullState or WeightsOnly)) throw new InvalidDataException($"{path}: unknown checkpoint kind {kind}");
                TrainingConfig cfg;
                try { cfg = JsonSerializer.Deserialize<TrainingConfig>(r.ReadString()) ?? throw new InvalidDataException($"{path}: empty config"); }
                catch (JsonException e) { throw new InvalidDataException($"{path}: unreadable training config: {e.Message}"); }
                int items = r.ReadInt32();
                if (items < 1) throw new InvalidDataException($"{path}: item count {items}");
                string vocab = version >= 3 ? r.ReadString() : "";
                try { cfg.Validate(); }
                catch (UsageException e) { throw new InvalidDataException($"{path}: invalid training config ({e.Message})"); }
                return (kind, cfg, items, vocab, r);
            });
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    /// <summary>Whether the SHA-256 of everything before the last 32 bytes equals those bytes, read in 1 MiB pieces.</summary>
    private static bool ChecksumMatches(FileStream fs, long length)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        fs.Position = 0;
        for (long left = length - 32; left > 0;)
        {
            int n = fs.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (n <= 0) return false;
            hash.AppendData(buffer, 0, n);
            left -= n;
        }
        Span<byte> stored = stackalloc byte[32];
        fs.ReadExactly(stored);
        return hash.GetHashAndReset().AsSpan().SequenceEqual(stored);
    }

    /// <summary>A read-only view of a stream that ends at <c>end</c> (the checksum after it is not content), so that a length
    /// field pointing past the content reads as a truncated file.</summary>
    private sealed class BoundedReadStream(Stream inner, long end) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => end;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer) => inner.Read(buffer[..(int)Math.Min(buffer.Length, Math.Max(0, end - inner.Position))]);
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing) { if (disposing) inner.Dispose(); base.Dispose(disposing); }
    }

    private static T Read<T>(string path, Func<T> read)
    {
        try { return read(); }
        catch (EndOfStreamException) { throw new InvalidDataException($"{path}: truncated checkpoint"); }
    }

    private static long ExpectedSize(TrainingConfig cfg, int items, Func<TrainingConfig, int, ModelConfig>? modelConfig) =>
        new ParameterLayout(modelConfig?.Invoke(cfg, items) ?? cfg.ToModelConfig(items)).TotalSize;

    private const string LayoutMismatchKey = "Bert4Rec.CheckpointLayoutMismatch";

    /// <summary>Whether <paramref name="e"/> says a checkpoint's arrays do not have the sizes its config's parameter layout
    /// gives, as when a feature model's weights meet a dataset with other users or feature fields than it trained on.
    /// (InvalidDataException is sealed, so the mark is on the exception's Data rather than a type of its own.)</summary>
    public static bool IsLayoutMismatch(Exception e) => e is InvalidDataException && e.Data.Contains(LayoutMismatchKey);

    private static void WriteFloats(BinaryWriter w, float[] a)
    {
        w.Write(a.Length);
        w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()));
    }

    private static float[] ReadFloats(BinaryReader r, string path, string what, long expected)
    {
        int n = r.ReadInt32();
        if (n != expected)
        {
            var e = new InvalidDataException($"{path}: {what} hold {n} floats, the config's layout needs {expected}");
            e.Data[LayoutMismatchKey] = true;
            throw e;
        }
        if ((long)n * 4 > r.BaseStream.Length - r.BaseStream.Position) throw new EndOfStreamException();
        var a = new float[n];
        r.BaseStream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()));
        return a;
    }
}
