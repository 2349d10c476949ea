// `--engine native|torchsharp` and `--device cpu|cuda|auto`, shared by `train` and `bench train`.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Model;

namespace Bert4Rec.Torch;

public sealed record EngineChoice(string Engine, string Device)
{
    public const string Usage = "--engine native|torchsharp  --device cpu|cuda|auto (torchsharp only; default cpu)";
    public bool IsTorch => Engine == "torchsharp";
    /// <summary>What RESULT lines and metrics.json record: native, or torchsharp-cpu / torchsharp-cuda.</summary>
    public string Label { get; private set; } = "native";

    /// <summary>Reads both flags; bad values are refused naming the flag (nothing is loaded yet).</summary>
    public static EngineChoice Read(CommandLine a)
    {
        string engine = a.Choice("engine", "native", ("native", "native"), ("torchsharp", "torchsharp"));
        bool deviceGiven = a.Has("device");
        string device = a.Choice("device", "cpu", ("cpu", "cpu"), ("cuda", "cuda"), ("auto", "auto"));
        if (deviceGiven && engine == "native" && device != "cpu")
            throw new UsageException($"--device {device} needs --engine torchsharp (the native engine runs on the CPU only)");
        return new EngineChoice(engine, device);
    }

    /// <summary>The model factory for <c>Trainer.ModelFactory</c>: null for the native engine; for torchsharp, libtorch is loaded
    /// and the device resolved now, so a missing CUDA or an unsupported kind fails before any training.</summary>
    public Func<ModelConfig, int, int, ITrainableModel>? Factory(ModelKind kind, Action<string> warn)
    {
        if (!IsTorch) return null;
        if (!TorchEngine.Supports(kind))
            throw new UsageException($"--engine torchsharp: model {kind.Name()} has no TorchSharp module yet (modules: {string.Join(", ", TorchEngine.Kinds.Select(k => k.Name()))}); use --engine native");
        var device = TorchEngine.ResolveDevice(Device, warn);
        Label = "torchsharp-" + device.type.ToString().ToLowerInvariant();
        return TorchEngine.Factory(device);
    }
}
