// Helpers to assemble ONNX graphs through our schema subset: named nodes, float/int64 initializers, typed inputs/outputs.
using System.Runtime.InteropServices;
using Google.Protobuf;

namespace Bert4Rec.Contracts.Onnx;

/// <summary>Builds one ONNX graph node by node; every node gets a unique name.</summary>
public sealed class OnnxGraphBuilder
{
    private int _counter;
    public OnnxGraph Graph { get; }

    public OnnxGraphBuilder(string name) => Graph = new OnnxGraph { Name = name };

    /// <summary>Adds a node and returns its (first) output name.</summary>
    public string Node(string opType, IEnumerable<string> inputs, string? output = null, string domain = "", params OnnxAttribute[] attributes)
    {
        output ??= $"{opType.ToLowerInvariant()}_{_counter}";
        var n = new OnnxNode { OpType = opType, Name = $"{opType}_{_counter++}", Domain = domain };
        n.Input.AddRange(inputs);
        n.Output.Add(output);
        n.Attribute.AddRange(attributes);
        Graph.Node.Add(n);
        return output;
    }

    /// <summary>Adds a node with several outputs.</summary>
    public string[] NodeMulti(string opType, IEnumerable<string> inputs, int outputs, string domain = "", params OnnxAttribute[] attributes)
    {
        var n = new OnnxNode { OpType = opType, Name = $"{opType}_{_counter}", Domain = domain };
        n.Input.AddRange(inputs);
        var names = Enumerable.Range(0, outputs).Select(i => $"{opType.ToLowerInvariant()}_{_counter}_{i}").ToArray();
        _counter++;
        n.Output.AddRange(names);
        n.Attribute.AddRange(attributes);
        Graph.Node.Add(n);
        return names;
    }

    public string Initializer(string name, ReadOnlySpan<float> values, params long[] dims)
    {
        Graph.Initializer.Add(FloatTensor(name, values, dims));
        return name;
    }

    public string Initializer(string name, ReadOnlySpan<long> values, params long[] dims)
    {
        var t = new OnnxTensor { Name = name, DataType = (int)OnnxTensor.Types.DataType.Int64, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values)) };
        t.Dims.AddRange(dims);
        Graph.Initializer.Add(t);
        return name;
    }

    /// <summary>A scalar or 1-D int64 constant as an initializer with a generated name.</summary>
    public string Int64s(params long[] values) => Initializer($"const_i64_{_counter++}", values, values.Length);

    /// <summary>A float scalar constant (rank 0).</summary>
    public string Scalar(float value) => Initializer($"const_f32_{_counter++}", new[] { value });

    /// <summary>The mean of <paramref name="table"/>'s rows over the non-pad (non-zero) ids of <paramref name="ids"/> along
    /// <paramref name="axis"/>: ids [..., w] -> [..., dim], zeros where every id is the pad (the feature models' embedding bag).</summary>
    public string MeanOfRows(string table, string ids, int axis)
    {
        string mask = Node("Cast", [Node("Greater", [ids, Int64s(0)])], null, "", Int("to", (long)OnnxTensor.Types.DataType.Float));
        string rows = Node("Gather", [table, ids], null, "", Int("axis", 0));
        string sum = Node("ReduceSum", [Node("Mul", [rows, Node("Unsqueeze", [mask, Int64s(axis + 1)])]), Int64s(axis)], null, "", Int("keepdims", 0));
        string count = Node("Max", [Node("ReduceSum", [mask, Int64s(axis)], null, "", Int("keepdims", 1)), Scalar(1f)]);
        return Node("Div", [sum, count]);
    }

    public static OnnxTensor FloatTensor(string name, ReadOnlySpan<float> values, params long[] dims)
    {
        var t = new OnnxTensor { Name = name, DataType = (int)OnnxTensor.Types.DataType.Float, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values)) };
        t.Dims.AddRange(dims);
        return t;
    }

    /// <summary>A graph input or output of element type <paramref name="elemType"/>; dims are numbers or symbolic names.</summary>
    public static ValueInfo Value(string name, OnnxTensor.Types.DataType elemType, params object[] dims)
    {
        var shape = new TensorShape();
        foreach (var d in dims)
            shape.Dim.Add(d switch
            {
                string s => new TensorShape.Types.Dimension { DimParam = s },
                int i => new TensorShape.Types.Dimension { DimValue = i },
                long l => new TensorShape.Types.Dimension { DimValue = l },
                _ => throw new ArgumentException($"dimension must be int, long or string, got {d}"),
            });
        return new ValueInfo { Name = name, Type = new TypeDescription { TensorType = new TypeDescription.Types.Tensor { ElemType = (int)elemType, Shape = shape } } };
    }

    public static OnnxAttribute Int(string name, long v) => new() { Name = name, Type = OnnxAttribute.Types.AttributeType.Int, I = v };
    public static OnnxAttribute Float(string name, float v) => new() { Name = name, Type = OnnxAttribute.Types.AttributeType.Float, F = v };
    public static OnnxAttribute Ints(string name, params long[] v)
    {
        var a = new OnnxAttribute { Name = name, Type = OnnxAttribute.Types.AttributeType.Ints };
        a.Ints.AddRange(v);
        return a;
    }
    public static OnnxAttribute String(string name, string v) => new() { Name = name, Type = OnnxAttribute.Types.AttributeType.String, S = ByteString.CopyFromUtf8(v) };

    /// <summary>Wraps the graph into a model with the given opset (default domain) and IR version 8.</summary>
    public OnnxModel ToModel(int opset, string producerVersion, params (string Domain, int Version)[] extraOpsets)
    {
        var m = new OnnxModel { IrVersion = 8, ProducerName = "Bert4Rec.Pipeline", ProducerVersion = producerVersion, Graph = Graph };
        m.OpsetImport.Add(new OperatorSetId { Domain = "", Version = opset });
        foreach (var (d, v) in extraOpsets) m.OpsetImport.Add(new OperatorSetId { Domain = d, Version = v });
        return m;
    }
}
