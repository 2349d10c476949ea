// `--engine native|torchsharp` and `--device cpu|cuda|auto`, shared by `train` and `bench train`.
using System.CommandLine;
using Bert4Rec.Contracts;
using Bert4Rec.Training.Model;

namespace Bert4Rec.Torch;

public sealed record EngineChoice(string Engine, string Device)
{
    public bool IsTorch => Engine == "torchsharp";
    /// <summary>What RESULT lines and metrics.json record: native, or torchsharp-cpu / torchsharp-cuda.</summary>
    public string Label { get; private set; } = "native";

    /// <summary>`--engine` and `--device` as typed options; <see cref="Read"/> makes the choice (nothing is loaded yet).</summary>
    public sealed class Options
    {
        public readonly Option<string> Engine = Flags.Choice("--engine", "native (own C# kernels + OpenBLAS) or torchsharp (libtorch autograd)", "native", "native", "torchsharp");
        public readonly Option<string> Device = Flags.Choice("--device", "torchsharp only: auto = CUDA where TorchSharp reports it, else the CPU with a warning", "cpu", "cpu", "cuda", "auto");

        public void AddTo(Command command) { command.Options.Add(Engine); command.Options.Add(Device); }

        /// <summary>Both flags; a device other than cpu for the native engine is refused naming the flag.</summary>
        public EngineChoice Read(ParseResult r)
        {
            string engine = r.GetValue(Engine)!, device = r.GetValue(Device)!;
            if (r.Given(Device) && engine == "native" && device != "cpu")
                throw new UsageException($"--device {device} needs --engine torchsharp (the native engine runs on the CPU only)");
            return new EngineChoice(engine, device);
        }
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
