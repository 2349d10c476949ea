// The end every feature model's graph shares (NeuMF, Two-Tower): the int64 inputs the manifest declares, the outputs, and the
// model with its kind and shape in the metadata.
using Bert4Rec.Contracts;
using Bert4Rec.Contracts.Onnx;
using DT = Bert4Rec.Contracts.Onnx.OnnxTensor.Types.DataType;

namespace Bert4Rec.Training.Export;

internal static class FeatureModelGraph
{
    public static OnnxModel Finish(OnnxGraphBuilder g, ModelConfig cfg, IEnumerable<ValueInfo> outputs, string producerVersion, string doc,
                                   params (string Key, string Value)[] metadata)
    {
        foreach (var (name, _, dims) in ModelIo.FeatureModelInputs(cfg))
            g.Graph.Input.Add(OnnxGraphBuilder.Value(name, DT.Int64, dims.Select(x => int.TryParse(x, out int n) ? (object)n : x).ToArray()));
        foreach (var o in outputs) g.Graph.Output.Add(o);
        var model = g.ToModel(OnnxExporter.Opset, producerVersion);
        model.DocString = doc;
        model.MetadataProps.Add(new StringEntry { Key = OnnxWeights.KindKey, Value = cfg.Kind.Name() });
        foreach (var (k, v) in metadata) model.MetadataProps.Add(new StringEntry { Key = k, Value = v });
        return model;
    }
}
