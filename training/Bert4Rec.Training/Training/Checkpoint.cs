// The complete training state in one checksummed file, written atomically: config, weights, Adam moments, step
// counters, early-stopping state and the best weights. Resuming from it replays the same masks and dropout.
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bert4Rec.Contracts;

namespace Bert4Rec.Training.Training;

public sealed class TrainingState
{
    public required TrainingConfig Config { get; init; }
    public required int ItemCount { get; init; }
    public required float[] Parameters { get; init; }
    public required float[] M { get; init; }
    public required float[] V { get; init; }
    public long AdamStep { get; set; }
    public long GlobalStep { get; set; }
    public int Epoch { get; set; }            // epochs fully completed
    public int StepInEpoch { get; set; }      // batches done in the current epoch
    public double BestMetric { get; set; } = double.NegativeInfinity;
    public int BestEpoch { get; set; } = -1;
    public int BadEvaluations { get; set; }
    public float[]? BestParameters { get; set; }
    public bool Finished { get; set; }
}

public static class Checkpoint
{
    private const uint Magic = 0x43523442; // "B4RC"
    private const int Version = 1;
    private static readonly JsonSerializerOptions Json = new() { IncludeFields = false };

    public static void Save(string path, TrainingState s)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic); w.Write(Version);
            w.Write(JsonSerializer.Serialize(s.Config, Json));
            w.Write(s.ItemCount);
            w.Write(s.AdamStep); w.Write(s.GlobalStep); w.Write(s.Epoch); w.Write(s.StepInEpoch);
            w.Write(s.BestMetric); w.Write(s.BestEpoch); w.Write(s.BadEvaluations); w.Write(s.Finished);
            WriteFloats(w, s.Parameters); WriteFloats(w, s.M); WriteFloats(w, s.V);
            w.Write(s.BestParameters != null);
            if (s.BestParameters != null) WriteFloats(w, s.BestParameters);
        }
        byte[] body = ms.ToArray();
        byte[] all = new byte[body.Length + 32];
        body.CopyTo(all, 0);
        SHA256.HashData(body, all.AsSpan(body.Length));
        AtomicFile.WriteAllBytes(path, all);
    }

    public static TrainingState Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint not found: {path}", path);
        byte[] all = File.ReadAllBytes(path);
        if (all.Length < 40 || BitConverter.ToUInt32(all, 0) != Magic)
            throw new InvalidDataException($"{path}: not a BERT4Rec checkpoint (bad magic)");
        var body = all.AsSpan(0, all.Length - 32);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(all.AsSpan(all.Length - 32)))
            throw new InvalidDataException($"{path}: checksum mismatch (the checkpoint is corrupt or truncated)");
        try
        {
            using var r = new BinaryReader(new MemoryStream(all, 0, all.Length - 32), Encoding.UTF8);
            r.ReadUInt32();
            int version = r.ReadInt32();
            if (version != Version) throw new InvalidDataException($"{path}: checkpoint version {version}, this build reads {Version}");
            var cfg = JsonSerializer.Deserialize<TrainingConfig>(r.ReadString(), Json) ?? throw new InvalidDataException($"{path}: empty config");
            int items = r.ReadInt32();
            long adam = r.ReadInt64(), global = r.ReadInt64();
            int epoch = r.ReadInt32(), sie = r.ReadInt32();
            double best = r.ReadDouble();
            int bestEpoch = r.ReadInt32(), bad = r.ReadInt32();
            bool finished = r.ReadBoolean();
            var p = ReadFloats(r); var m = ReadFloats(r); var v = ReadFloats(r);
            float[]? bp = r.ReadBoolean() ? ReadFloats(r) : null;
            long expected = new ParameterLayout(cfg.ToModelConfig(items)).TotalSize;
            if (p.Length != expected || m.Length != expected || v.Length != expected || (bp != null && bp.Length != expected))
                throw new InvalidDataException($"{path}: parameter count {p.Length} does not match the config's layout ({expected})");
            return new TrainingState
            {
                Config = cfg, ItemCount = items, Parameters = p, M = m, V = v, AdamStep = adam, GlobalStep = global, Epoch = epoch,
                StepInEpoch = sie, BestMetric = best, BestEpoch = bestEpoch, BadEvaluations = bad, BestParameters = bp, Finished = finished,
            };
        }
        catch (EndOfStreamException) { throw new InvalidDataException($"{path}: truncated checkpoint"); }
    }

    /// <summary>For the exporter: the model config and the weights to export (the best weights when validation kept some).</summary>
    public static (ModelConfig Config, float[] Parameters) LoadWeights(string path)
    {
        var s = Load(path);
        return (s.Config.ToModelConfig(s.ItemCount), s.BestParameters ?? s.Parameters);
    }

    private static void WriteFloats(BinaryWriter w, float[] a)
    {
        w.Write(a.Length);
        w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()));
    }

    private static float[] ReadFloats(BinaryReader r)
    {
        int n = r.ReadInt32();
        if (n < 0 || (long)n * 4 > r.BaseStream.Length - r.BaseStream.Position) throw new EndOfStreamException();
        var a = new float[n];
        r.Read(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()));
        return a;
    }
}
