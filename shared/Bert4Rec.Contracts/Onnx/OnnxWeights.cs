// Reads named initializers back out of an exported model.onnx (e.g. the item vectors for the FAISS index).
using System.Runtime.InteropServices;
using Google.Protobuf;

namespace Bert4Rec.Contracts.Onnx;

public static class OnnxWeights
{
    public static OnnxModel ReadModel(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX model not found: {path}", path);
        try { return OnnxModel.Parser.ParseFrom(SafeFiles.ReadAllBytes(path, int.MaxValue)); }
        catch (InvalidProtocolBufferException e) { throw new InvalidDataException($"{path}: not an ONNX model ({e.Message})", e); }
    }

    /// <summary>The metadata key under which the exporter records the model kind.</summary>
    public const string KindKey = "kind";

    /// <summary>The model kind recorded in an exported model's metadata; a model without one predates kinds and is BERT4Rec.</summary>
    public static ModelKind Kind(OnnxModel model, string path = "model")
    {
        string? name = model.MetadataProps.FirstOrDefault(p => p.Key == KindKey)?.Value;
        return ModelKinds.TryParse(name, out var kind) ? kind : throw new InvalidDataException($"{path}: model kind '{name}' is not one of bert4rec, sasrec, gru4rec");
    }

    /// <summary>A float initializer's values and dims.</summary>
    public static (float[] Values, long[] Dims) Initializer(OnnxModel model, string name, string path = "model")
    {
        var t = model.Graph?.Initializer.FirstOrDefault(i => i.Name == name)
            ?? throw new InvalidDataException($"{path}: no initializer named '{name}'");
        if (t.DataType != (int)OnnxTensor.Types.DataType.Float) throw new InvalidDataException($"{path}: initializer '{name}' is not float");
        long count = t.Dims.Aggregate(1L, (a, b) => a * b);
        float[] v;
        if (!t.RawData.IsEmpty)
        {
            if (t.RawData.Length != count * 4) throw new InvalidDataException($"{path}: initializer '{name}' has {t.RawData.Length} bytes for {count} floats");
            v = MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray();
        }
        else
        {
            if (t.FloatData.Count != count) throw new InvalidDataException($"{path}: initializer '{name}' has {t.FloatData.Count} values for {count}");
            v = t.FloatData.ToArray();
        }
        return (v, t.Dims.ToArray());
    }

    /// <summary>The initializer of a Two-Tower graph that holds the item tower's vectors (n+1, d), row 0 the pad.</summary>
    public const string ItemVectorsName = "item_vectors";

    /// <summary>The vectors FAISS indexes, row-major (n, dim) for items v = 1..n, so that inner products with user_vector are the
    /// model's scores: a sequential model's w_v = [E[v], b_O[v]] (dim d+1); a Two-Tower graph's item tower outputs (dim d).</summary>
    public static (float[] Vectors, int Count, int Dimension) ReadItemVectors(string modelOnnxPath) => ItemVectors(ReadModel(modelOnnxPath), modelOnnxPath);

    /// <summary>Parses a model already read (and verified) into memory; <paramref name="name"/> only labels errors.</summary>
    public static OnnxModel ParseModel(byte[] bytes, string name)
    {
        try { return OnnxModel.Parser.ParseFrom(bytes); }
        catch (InvalidProtocolBufferException e) { throw new InvalidDataException($"{name}: not an ONNX model ({e.Message})", e); }
    }

    /// <summary>The item vectors of a parsed model (see <see cref="ReadItemVectors(string)"/>).</summary>
    public static (float[] Vectors, int Count, int Dimension) ItemVectors(OnnxModel m, string modelOnnxPath)
    {
        if (m.Graph?.Initializer.Any(i => i.Name == ItemVectorsName) == true)
        {
            var (iv, dims) = Initializer(m, ItemVectorsName, modelOnnxPath);
            if (dims.Length != 2 || dims[0] < 2 || dims[1] < 1)
                throw new InvalidDataException($"{modelOnnxPath}: {ItemVectorsName} [{string.Join(",", dims)}] is not (items + 1, d)");
            int rows = (int)dims[0], dd = (int)dims[1];
            return (iv.AsSpan(dd).ToArray(), rows - 1, dd);
        }
        var (e, ed) = Initializer(m, "tok_emb", modelOnnxPath);
        var (b, bd) = Initializer(m, "out_bias", modelOnnxPath);
        if (ed.Length != 2 || bd.Length != 1 || bd[0] != ed[0] || ed[0] < 3)
            throw new InvalidDataException($"{modelOnnxPath}: tok_emb [{string.Join(",", ed)}] and out_bias [{string.Join(",", bd)}] do not fit together");
        int V = (int)ed[0], d = (int)ed[1], n = V - 2, dim = d + 1;
        var w = new float[(long)n * dim];
        for (int v = 1; v <= n; v++)
        {
            e.AsSpan(v * d, d).CopyTo(w.AsSpan((v - 1) * dim, d));
            w[(v - 1) * dim + d] = b[v];
        }
        return (w, n, dim);
    }
}
