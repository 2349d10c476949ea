// The writers (prepare, export, index) killed with SIGKILL at every rename they make (strace's fault injection,
// scripts/kill-at-rename.sh) each leave a usable old or new output, a plain re-run succeeds, and no temp folder is left.
// Small synthetic data (60 users x 8 items) and a one-epoch model keep it to about half a minute.
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Bert4Rec.Inference.Tests.Writers;

public sealed partial class KillAtRenameTests(ITestOutputHelper output)
{
    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Bert4Rec.Pipeline.sln"))) return d.FullName;
        throw new InvalidOperationException($"no Bert4Rec.Pipeline.sln above {AppContext.BaseDirectory}");
    }

    /// <summary>The CLI built in this test's configuration (the project reference builds it first).</summary>
    private static string CliDll(string root)
    {
        string config = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release";
        string dll = Path.Combine(root, "training", "Bert4Rec.Cli", "bin", config, "net10.0", "bert4rec.dll");
        Assert.True(File.Exists(dll), $"the bert4rec CLI is not built at {dll} (dotnet build Bert4Rec.Pipeline.sln -c {config})");
        return dll;
    }

    private static (int Code, string Out) Run(string file, IEnumerable<string> args, TimeSpan timeout, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var text = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (text) text.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (text) text.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} ran past {timeout.TotalSeconds} s:\n{text}");
        }
        p.WaitForExit();
        lock (text) return (p.ExitCode, text.ToString());
    }

    [GeneratedRegex(@"^\s*(?<writer>prepare|export|index): (?<n>\d+) renames", RegexOptions.Multiline)]
    private static partial Regex RenamesLine();

    [Fact]
    public void Every_writer_killed_at_every_rename_leaves_a_usable_output()
    {
        Assert.True(OperatingSystem.IsLinux(), "the kill test uses strace (Linux)");
        // strace is a setup dependency (scripts/setup.sh installs it); without it, or without ptrace, this test cannot run
        var probe = Run("/bin/sh", ["-c", "command -v strace >/dev/null || exit 127; strace -f -qq -o /dev/null true"], TimeSpan.FromSeconds(30));
        Assert.True(probe.Code == 0, probe.Code == 127
            ? "strace is not installed: run scripts/setup.sh (it installs the Debian package strace)"
            : $"strace cannot trace here (ptrace refused?): exit {probe.Code}: {probe.Out}");

        string root = RepoRoot(), cli = CliDll(root);
        var work = Directory.CreateTempSubdirectory("b4r-killtest-");
        try
        {
            string pairs = Path.Combine(work.FullName, "pairs.txt");
            using (var w = new StreamWriter(pairs))
                for (int u = 1; u <= 60; u++)
                    for (int t = 1; t <= 8; t++) w.WriteLine($"u{u} i{(u * 7 + t * 13) % 50 + 1}");
            string data = Path.Combine(work.FullName, "data"), run = Path.Combine(work.FullName, "run");
            var minute = TimeSpan.FromMinutes(1);
            var prep = Run("dotnet", [cli, "prepare", "--input", pairs, "--format", "pairs", "--out", data], minute);
            Assert.True(prep.Code == 0, $"prepare failed: {prep.Out}");
            var train = Run("dotnet", [cli, "train", "--data", data, "--out", run, "--preset", "synthetic", "--epochs", "1",
                "--hidden", "8", "--heads", "1", "--layers", "1", "--max-len", "8", "--threads", "1"], minute);
            Assert.True(train.Code == 0, $"train failed: {train.Out}");

            var (code, text) = Run(Path.Combine(root, "scripts", "kill-at-rename.sh"), [run, pairs], TimeSpan.FromMinutes(4),
                new Dictionary<string, string> { ["BERT4REC_CLI_DLL"] = cli });
            output.WriteLine(text);
            Assert.True(code == 0, $"kill-at-rename.sh exit {code}:\n{text}");
            var renames = RenamesLine().Matches(text).ToDictionary(m => m.Groups["writer"].Value, m => int.Parse(m.Groups["n"].Value));
            foreach (var writer in new[] { "prepare", "export", "index" })
                Assert.True(renames.TryGetValue(writer, out int n) && n >= 1, $"{writer}: no rename seen, nothing was interrupted:\n{text}");
            string line = text.Split('\n').Single(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
            var r = JsonDocument.Parse(line["RESULT ".Length..]).RootElement;
            int kills = r.GetProperty("kills").GetInt32();
            Assert.Equal(renames.Values.Sum(), kills);
            Assert.Equal(kills, r.GetProperty("killed").GetInt32());        // every injected kill really ended the writer
            Assert.Equal(0, r.GetProperty("unusable").GetInt32());
            Assert.Equal(kills, r.GetProperty("usable").GetInt32());
            Assert.Equal(kills, r.GetProperty("rerun_ok").GetInt32());
            Assert.Equal(0, r.GetProperty("leftovers").GetInt32());
        }
        finally { work.Delete(true); }
    }
}
