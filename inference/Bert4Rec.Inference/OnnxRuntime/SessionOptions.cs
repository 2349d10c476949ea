// Session options of our ONNX Runtime session wrapper, mapped onto Microsoft.ML.OnnxRuntime's: threads, optimization
// level, optimized-model dump, and the execution provider (cpu | cuda | auto).
namespace Bert4Rec.Inference.OnnxRuntime;

public enum GraphOptimizationLevel { DisableAll = 0, Basic = 1, Extended = 2, All = 99 }

public enum ExecutionProvider { Cpu, Cuda, Auto }

public sealed record SessionOptions
{
    /// <summary>Threads inside one operator (0 = ORT's default: one per core).</summary>
    public int IntraOpThreads { get; init; }
    /// <summary>Threads across operators (0 = default).</summary>
    public int InterOpThreads { get; init; }
    public GraphOptimizationLevel OptimizationLevel { get; init; } = GraphOptimizationLevel.All;
    /// <summary>When set, ORT writes the optimized graph there (for inspection).</summary>
    public string? OptimizedModelPath { get; init; }
    /// <summary>cpu: CPU only. cuda: the CUDA execution provider or an error naming what is missing. auto: CUDA where the
    /// package has it and it starts, else CPU with one warning naming what was missing.</summary>
    public ExecutionProvider Provider { get; init; } = ExecutionProvider.Cpu;
    public int CudaDeviceId { get; init; }
    /// <summary>Receives warnings (e.g. the CUDA fallback). Defaults to standard error.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>The `--provider cpu|cuda|auto` flag every ONNX Runtime verb takes (serve, recommend, evaluate --onnx, bench infer).
    /// Its value is the flag's text; <see cref="ParseProvider"/> turns it into the provider.</summary>
    public static System.CommandLine.Option<string> ProviderOption() => Bert4Rec.Contracts.Flags.Choice("--provider",
        "ONNX Runtime's execution provider: cpu, cuda, or auto (CUDA where it starts, else the CPU after one warning)", "cpu", "cpu", "cuda", "auto");

    public static ExecutionProvider ParseProvider(string text) => text.ToLowerInvariant() switch
    {
        "cpu" => ExecutionProvider.Cpu,
        "cuda" => ExecutionProvider.Cuda,
        "auto" => ExecutionProvider.Auto,
        _ => throw new ArgumentException($"--provider must be cpu, cuda or auto, got '{text}'"),
    };
}
