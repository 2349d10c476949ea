// The service side never carries or loads libtorch: only the training side (Bert4Rec.Torch, the CLI, the benchmarks and
// the Torch tests) references TorchSharp.
namespace Bert4Rec.Inference.Tests.Service;

public class NoLibTorchTests
{
    [Fact]
    public void Neither_the_service_output_nor_this_test_host_holds_or_maps_libtorch()
    {
        string[] torchFiles = ["TorchSharp.dll", "libLibTorchSharp.so", "libtorch_cpu.so", "libtorch.so", "libc10.so"];
        foreach (var f in torchFiles)
        {
            Assert.False(File.Exists(Path.Combine(AppContext.BaseDirectory, f)), $"{f} is in the service tests' output folder");
            Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(typeof(Bert4Rec.Service.ServiceOptions).Assembly.Location)!, f)), $"{f} is beside the service");
        }
        Assert.DoesNotContain(AppDomain.CurrentDomain.GetAssemblies(), a => a.GetName().Name == "TorchSharp");
        Assert.DoesNotContain(File.ReadLines("/proc/self/maps"), l => l.Contains("libtorch", StringComparison.Ordinal));
    }
}
