// Entry points of the TorchSharp engine: device choice (cpu | cuda | auto) and the model of a config's kind.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Bert4Rec.Torch;

public static class TorchEngine
{
    public static readonly string[] DeviceChoices = ["cpu", "cuda", "auto"];

    /// <summary>Loads libtorch once; a load failure names what to run.</summary>
    public static void EnsureLoaded()
    {
        try { _ = torch.get_num_threads(); }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or NotSupportedException)
        {
            throw new InvalidOperationException(
                "TorchSharp could not load libtorch (libLibTorchSharp.so / libtorch_cpu.so beside the assemblies); rebuild with " +
                "./bert4rec (it runs scripts/setup.sh and patches libLibTorchSharp.so for Debian 12's libstdc++): " + (e.InnerException?.Message ?? e.Message), e);
        }
    }

    /// <summary>The device for --device: cpu, cuda (refused when libtorch has no usable CUDA), auto (CUDA where TorchSharp reports
    /// it, else the CPU after one warning through <paramref name="warn"/>).</summary>
    public static Device ResolveDevice(string choice, Action<string>? warn = null)
    {
        switch (choice)
        {
            case "cpu": EnsureLoaded(); return torch.CPU;
            case "cuda":
                EnsureLoaded();
                if (!torch.cuda.is_available())
                    throw new ArgumentException("--device cuda: TorchSharp reports no usable CUDA device (this build uses the CPU libtorch unless built with -p:TorchBackend=cuda-linux, and needs an NVIDIA driver)");
                return torch.CUDA;
            case "auto":
                EnsureLoaded();
                if (torch.cuda.is_available()) return torch.CUDA;
                warn?.Invoke("--device auto: no CUDA device usable by TorchSharp (CPU libtorch build, or no driver); training on the CPU");
                return torch.CPU;
            default:
                throw new ArgumentException($"--device must be one of {string.Join(", ", DeviceChoices)}, got '{choice}'");
        }
    }

    /// <summary>Model kinds with a TorchSharp module.</summary>
    public static readonly ModelKind[] Kinds = [ModelKind.Bert4Rec, ModelKind.SasRec, ModelKind.Gru4Rec];
    public static bool Supports(ModelKind kind) => Kinds.Contains(kind);

    public static TorchSequenceModel Create(ModelConfig config, int maxBatch, int threads, Device device) => config.Kind switch
    {
        ModelKind.Bert4Rec => new TorchBert4Rec(config, maxBatch, threads, device),
        ModelKind.SasRec => new TorchSasRec(config, maxBatch, threads, device),
        ModelKind.Gru4Rec => new TorchGru4Rec(config, maxBatch, threads, device),
        _ => throw new ArgumentException($"--engine torchsharp: model {config.Kind.Name()} has no TorchSharp module yet (bert4rec has); use --engine native"),
    };

    /// <summary>A factory for <c>Trainer.ModelFactory</c>.</summary>
    public static Func<ModelConfig, int, int, ITrainableModel> Factory(Device device) => (c, b, t) => Create(c, b, t, device);
}
