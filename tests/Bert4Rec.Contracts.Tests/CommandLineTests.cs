// Typed flags over System.CommandLine: values parse, refusals name the flag (bad number, unknown flag, missing required,
// out of range, bad duration, bad choice), response files expand, and completion offers flags and choices.
using System.CommandLine;
using Bert4Rec.Contracts;

namespace Bert4Rec.Contracts.Tests;

public class CommandLineTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-cmdline-");
    public void Dispose() => _dir.Delete(true);

    private readonly Option<int> _epochs = Flags.Int("--epochs", "epochs", 1, min: 1, max: 100);
    private readonly Option<double> _lr = Flags.Double("--lr", "learning rate", 1e-3, 0, 1);
    private readonly Option<int> _offset = Flags.Int("--offset", "an offset", 0);
    private readonly Option<bool> _verbose = Flags.Flag("--verbose", "talk");
    private readonly Option<string> _data = Flags.Required("--data", "a dataset", "DIR");
    private readonly Option<TimeSpan?> _budget = Flags.Duration("--budget", "a budget");
    private readonly Option<string> _engine = Flags.Choice("--engine", "the engine", "native", "native", "torchsharp");
    private readonly Option<int> _k = Flags.Int("-k", "results", 10, 1);

    /// <summary>`bert4rec run` with the options above; its action records the values it was given.</summary>
    private (Command Top, Func<ParseResult?> Seen) Tree()
    {
        ParseResult? seen = null;
        var run = new Command("run", "a test verb") { _epochs, _lr, _offset, _verbose, _data, _budget, _engine, _k };
        run.SetAction(r => { seen = r; return 0; });
        var top = CommandLines.Top("bert4rec", "test");
        top.Subcommands.Add(run);
        return (top, () => seen);
    }

    private (int Code, string Out, string Err, ParseResult? Seen) Run(params string[] args)
    {
        var (top, seen) = Tree();
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = CommandLines.Run(top, ["run", .. args], o, e);
        return (code, o.ToString(), e.ToString(), seen());
    }

    [Fact]
    public void Values_switches_equals_signs_negative_numbers_and_defaults_parse()
    {
        var (code, _, err, r) = Run("--data", "d", "--epochs", "3", "--lr=0.01", "--verbose", "--offset", "-5", "-k", "7", "--budget", "90s", "--engine", "TorchSharp");
        Assert.Equal((0, ""), (code, err));
        Assert.Equal((3, 0.01, true, -5, 7), (r!.GetValue(_epochs), r.GetValue(_lr), r.GetValue(_verbose), r.GetValue(_offset), r.GetValue(_k)));
        Assert.Equal((TimeSpan.FromSeconds(90), "torchsharp"), (r.GetValue(_budget), r.GetValue(_engine)));
        var (_, _, _, d) = Run("--data", "d");
        Assert.Equal((1, 1e-3, false, (TimeSpan?)null, "native"), (d!.GetValue(_epochs), d.GetValue(_lr), d.GetValue(_verbose), d.GetValue(_budget), d.GetValue(_engine)));
        Assert.False(d.Given(_epochs));
        Assert.True(r.Given(_epochs));
    }

    [Theory]
    [InlineData("--epochs three", "--epochs: 'three' is not an integer")]            // bad number
    [InlineData("--lr 1e-3x", "--lr: '1e-3x' is not a number")]
    [InlineData("--epochs 0", "--epochs: 0 is out of range [1, 100]")]               // out of range
    [InlineData("--epochs 101", "--epochs: 101 is out of range [1, 100]")]
    [InlineData("--epochz 3", "'--epochz'")]                                          // unknown flag
    [InlineData("--budget 30", "--budget: '30' needs a unit")]                        // seconds or minutes?
    [InlineData("--budget -5m", "--budget: '-5m' is not a positive duration")]
    [InlineData("--engine pytorch", "--engine: 'pytorch' is not one of native, torchsharp")]
    [InlineData("--epochs", "--epochs")]                                              // no value
    [InlineData("--epochs 3 --epochs 4", "--epochs")]                                 // given twice
    public void Refusals_name_the_flag_and_exit_with_code_2(string args, string message)
    {
        var (code, _, err, seen) = Run(["--data", "d", .. args.Split(' ')]);
        Assert.Equal(2, code);
        Assert.Null(seen);                                  // the action never ran
        Assert.Contains(message, err);
        Assert.StartsWith("bert4rec run: ", err);
        Assert.Contains("see bert4rec run --help", err);
    }

    [Fact]
    public void A_missing_required_flag_is_named()
    {
        var (code, _, err, _) = Run("--epochs", "3");
        Assert.Equal(2, code);
        Assert.Contains("--data", err);
        Assert.Contains("required", err);
    }

    [Fact]
    public void Usage_exceptions_from_an_action_exit_2_and_other_failures_exit_1_in_one_line()
    {
        var top = CommandLines.Top("bert4rec", "test");
        var bad = new Command("bad");
        bad.SetAction((Func<ParseResult, int>)(_ => throw new UsageException("--x: wrong together with --y")));
        var broken = new Command("broken");
        broken.SetAction((Func<ParseResult, int>)(_ => throw new InvalidOperationException("line one\nline two")));
        top.Subcommands.Add(bad);
        top.Subcommands.Add(broken);
        var e = new StringWriter();
        Assert.Equal(2, CommandLines.Run(top, ["bad"], TextWriter.Null, e));
        Assert.StartsWith("bert4rec bad: --x: wrong together with --y", e.ToString());
        e = new StringWriter();
        Assert.Equal(1, CommandLines.Run(top, ["broken"], TextWriter.Null, e));
        Assert.Equal("bert4rec broken: error: InvalidOperationException: line one line two", e.ToString().TrimEnd());
    }

    [Fact]
    public void Help_lists_every_flag_with_its_description_and_default()
    {
        var (code, output, err, seen) = Run("--help");
        Assert.Equal((0, "", (ParseResult?)null), (code, err, seen));
        foreach (var name in new[] { "--epochs", "--lr", "--data", "--budget", "--engine", "-k", "a dataset" }) Assert.Contains(name, output);
        Assert.Contains("bert4rec run", output);
        Assert.Contains("[default: 1]", output);
    }

    [Fact]
    public void A_response_file_supplies_flags()
    {
        string rsp = Path.Combine(_dir.FullName, "train.rsp");
        File.WriteAllText(rsp, "--data d\n# a comment\n--epochs 4\n--lr 0.02\n");
        var (code, _, err, r) = Run($"@{rsp}", "--verbose");
        Assert.Equal((0, ""), (code, err));
        Assert.Equal(("d", 4, 0.02, true), (r!.GetValue(_data), r.GetValue(_epochs), r.GetValue(_lr), r.GetValue(_verbose)));
        var (missing, _, merr, _) = Run($"@{Path.Combine(_dir.FullName, "none.rsp")}");
        Assert.Equal(2, missing);
        Assert.Contains("none.rsp", merr);
    }

    [Fact]
    public void Completion_offers_verbs_flags_and_choices()
    {
        string Complete(string line)
        {
            var o = new StringWriter();
            Assert.Equal(0, CommandLines.Run(Tree().Top, [CommandLines.SuggestToken, line], o, TextWriter.Null));
            return o.ToString();
        }
        Assert.Contains("run", Complete("bert4rec r").Split('\n', StringSplitOptions.TrimEntries));
        var flags = Complete("bert4rec run --e").Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["--engine", "--epochs"], flags.Order());
        var engines = Complete("bert4rec run --engine ").Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["native", "torchsharp"], engines.Order());
    }

    [Fact]
    public void ParseOrThrow_throws_the_first_error_naming_the_flag()
    {
        var c = new Command("x") { _epochs };
        Assert.Contains("--epochs", Assert.Throws<UsageException>(() => CommandLines.ParseOrThrow(c, ["--epochs", "x"])).Message);
        Assert.Equal(5, CommandLines.ParseOrThrow(c, ["--epochs", "5"]).GetValue(_epochs));
    }
}
