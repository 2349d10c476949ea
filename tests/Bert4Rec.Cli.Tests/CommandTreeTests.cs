// The command lines of ./bert4rec, in process: `--help` works for every verb and sub-verb (the CLI's, `serve`, every
// `bench`), every flag the verbs had before System.CommandLine is still there, and bad values are refused naming the
// flag with exit code 2 before anything runs.
using System.CommandLine;
using Bert4Rec.Benchmarks;
using Bert4Rec.Cli;
using Bert4Rec.Contracts;
using Bert4Rec.Service;

namespace Bert4Rec.Cli.Tests;

public class CommandTreeTests
{
    /// <summary>The three executables' trees, each under `bert4rec` as the script runs them.</summary>
    private static IEnumerable<Command> Tops()
    {
        yield return CliCommands.Build();
        yield return BenchCommands.Build();
        var serve = CommandLines.Top("bert4rec", "serve");
        serve.Subcommands.Add(ServeCommand.Build());
        yield return serve;
    }

    private static IEnumerable<(Command Top, string[] Path, Command Command)> All(Command top, Command c, string[] path)
    {
        if (path.Length > 0) yield return (top, path, c);
        foreach (var s in c.Subcommands)
            foreach (var x in All(top, s, [.. path, s.Name])) yield return x;
    }

    private static Command Find(string path) =>
        Tops().SelectMany(t => All(t, t, [])).Single(x => string.Join(' ', x.Path) == path).Command;

    private static (int Code, string Out, string Err) Run(string path, params string[] args)
    {
        var top = Tops().First(t => All(t, t, []).Any(x => string.Join(' ', x.Path) == path));
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = CommandLines.Run(top, [.. path.Split(' '), .. args], o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static readonly string[] VerbNames =
    [
        "demo", "prepare", "train", "evaluate", "compare", "tune", "export", "index", "recommend", "serve",
        "bench", "bench train", "bench infer", "bench retrieval", "bench serve", "bench prepare",
    ];

    public static TheoryData<string> Verbs() => new(VerbNames);

    [Fact]
    public void The_trees_hold_every_verb_and_nothing_else()
    {
        var paths = Tops().SelectMany(t => All(t, t, [])).Select(x => string.Join(' ', x.Path)).Order().ToList();
        Assert.Equal(VerbNames.Order(), paths);
    }

    [Theory]
    [MemberData(nameof(Verbs))]
    public void Help_works_for_every_verb_and_lists_each_flag(string verb)
    {
        foreach (var flag in new[] { "--help", "-h" })
        {
            var (code, output, err) = Run(verb, flag);
            Assert.Equal((0, ""), (code, err));
            Assert.Contains($"bert4rec {verb}", output);
            foreach (var o in Find(verb).Options) Assert.Contains(o.Name, output);
            foreach (var s in Find(verb).Subcommands) Assert.Contains(s.Name, output);
        }
    }

    [Theory]
    // every flag each verb took before System.CommandLine (README, scripts and tests use them)
    [InlineData("demo", "--out --model --epochs --users --items --threads")]
    [InlineData("prepare", "--input --format --user-col --item-col --time-col --min-user --min-item --kcore-fixed-point --memory-mb --synthetic --users --items --seed --out "
        + "--user-features --item-features --user-feature-columns --item-feature-columns --feature-delimiter --feature-header --feature-min-count")]
    [InlineData("train", "--data --out --preset --preset-file --resume --epochs --batch --lr --warmup --hidden --heads --layers --max-len --mask-prob "
        + "--max-predictions --mask-token-rate --dropout --attn-dropout --weight-decay --clip --seed --threads --eval-every --eval-every-steps --patience "
        + "--val-users --checkpoint-every --window-stride --model --skip-test --engine --device --loss --negatives --negative-sampling --gbce-t --refit --features --hard-negatives --temperature")]
    [InlineData("evaluate", "--data --baseline --run --checkpoint --onnx --provider --split --keep-seen --seed --threads")]
    [InlineData("compare", "--data --models --budget --preset --preset-file --out --seed --resamples --threads --refit")]
    [InlineData("tune", "--data --out --preset --model --preset-file --budget --trials --seed --threads --resume")]
    [InlineData("export", "--checkpoint --run --vocab --data --out --full-catalog --triton --triton-name --triton-max-batch --stage-two")]
    [InlineData("index", "--bundle --factory --ef-search --nprobe --refine-factor --ef-construction")]
    [InlineData("recommend", "--bundle --history -k --k --candidates --include-seen --rerank --provider --threads --user-id --user-feature")]
    [InlineData("serve", "--bundle --model-root --version --poll --canary --canary-share --urls --grpc-urls --admin-urls --admin-token-file --max-history "
        + "--max-k --max-candidates --max-batch --max-body-bytes --max-concurrent --request-timeout --drain-delay --grace --provider --threads --log --log-format --access-log --otlp-endpoint --otlp-protocol")]
    [InlineData("bench train", "--model --engine --device --batch --seq --items --hidden --layers --heads --steps --threads --mask --groups --loss --negatives --torch")]
    [InlineData("bench infer", "--items --seq --hidden --layers --heads --candidates --iterations --torch --provider")]
    [InlineData("bench retrieval", "--items --dim --k --queries --factory --ef-construction --ef-search --nprobe --refine-factor --train --clusters --spread")]
    [InlineData("bench serve", "--protocol --format --concurrency --duration --bundle --items --seq --history --metrics")]
    public void Every_flag_the_verbs_had_is_still_there(string verb, string flags)
    {
        var names = Find(verb).Options.SelectMany(o => o.Aliases.Append(o.Name)).ToHashSet();
        foreach (var f in flags.Split(' ')) Assert.True(names.Contains(f), $"{verb} lost {f}");
    }

    [Theory]
    [InlineData("train", "--data d --out o --epochs zero", "--epochs: 'zero' is not an integer")]            // bad number
    [InlineData("train", "--data d --out o --lr 2", "--lr: 2 is out of range [1E-08, 1]")]                 // out of range
    [InlineData("train", "--data d --out o --epochz 3", "'--epochz'")]                                    // unknown flag
    [InlineData("train", "--out o", "--data")]                                                            // missing required
    [InlineData("train", "--data d --out o --engine pytorch", "--engine: 'pytorch' is not one of native, torchsharp")]
    [InlineData("evaluate", "--data d --split train", "--split: 'train' is not one of test, validation")]
    [InlineData("evaluate", "--data d --baseline random", "--baseline: 'random' is not one of pop, markov")]
    [InlineData("compare", "--data d --budget 30", "--budget: '30' needs a unit: 90s, 30m or 1.5h")]
    [InlineData("recommend", "--bundle b", "--history")]
    [InlineData("recommend", "--bundle b --history 1 -k 0", "-k: 0 is out of range [1, 10000]")]
    [InlineData("index", "--bundle b --efsearch 3", "'--efsearch'")]
    [InlineData("prepare", "--out o --min-user -1", "--min-user: -1 is out of range [0, inf]")]
    [InlineData("serve", "--bundle b --max-batch 0", "--max-batch: 0 is out of range [1, 100000]")]
    [InlineData("serve", "--bundle b --provider tpu", "--provider: 'tpu' is not one of cpu, cuda, auto")]
    [InlineData("serve", "--bundle b --grace 10", "--grace: '10' needs a unit")]
    [InlineData("bench train", "--steps 0", "--steps: 0 is out of range [1, inf]")]
    [InlineData("bench prepare", "--lines 0", "--lines: 0 is out of range [1, inf]")]
    [InlineData("prepare", "--out o --input x --memory-mb 0", "--memory-mb: 0 is out of range [1, inf]")]
    [InlineData("prepare", "--out o --synthetic --memory-mb 64", "--memory-mb: reads a log, which --synthetic does not")]
    [InlineData("bench train", "--loss softmax", "--loss: 'softmax' is not one of ce, sampled-ce, gbce")]
    [InlineData("bench retrieval", "--items 100000,lots", "--items: 'lots' is not an integer >= 1000")]
    [InlineData("bench serve", "--duration 601", "--duration: 601 is out of range [1, 600]")]
    public void Bad_values_are_refused_naming_the_flag_before_anything_runs(string verb, string args, string message)
    {
        var (code, output, err) = Run(verb, args.Split(' '));
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Contains(message, err);
        Assert.StartsWith($"bert4rec {verb}: ", err);
    }

    [Theory]
    // flags that are each fine but wrong together are refused by the verb, still naming a flag, with nothing read
    [InlineData("evaluate", "--data /nonexistent --baseline pop --run r", "give exactly one of --baseline, --run, --checkpoint or --onnx")]
    [InlineData("evaluate", "--data /nonexistent --baseline pop --provider cuda", "--provider: applies to --onnx only")]
    [InlineData("export", "--out o", "give --checkpoint FILE or --run DIR")]
    [InlineData("export", "--run r --out o --triton-name x", "--triton-name and --triton-max-batch go with --triton DIR")]
    [InlineData("export", "--run r --out o --stage-two s", "--stage-two RUN_DIR needs --data DIR (the dataset both runs trained on)")]
    [InlineData("recommend", "--bundle /nonexistent --history 1 --user-feature age", "--user-feature: 'age' is not NAME=VALUE")]
    [InlineData("recommend", "--bundle /nonexistent --history 1 --user-feature age=3 --user-feature age=4", "--user-feature: field 'age' given twice")]
    [InlineData("prepare", "--out o --synthetic --input x", "--input: reads a log, which --synthetic does not")]
    [InlineData("prepare", "--out o --input x --users 50", "--users: goes with --synthetic")]
    [InlineData("tune", "--data d --out o", "missing required flag --preset (or --preset-file)")]
    [InlineData("serve", "--urls http://127.0.0.1:0", "give --bundle DIR or --model-root DIR")]
    [InlineData("serve", "--bundle b --canary c", "--canary needs --model-root")]
    [InlineData("bench train", "--torch --loss gbce", "--torch: the PyTorch references train with full cross-entropy")]
    [InlineData("bench train", "--device cuda", "--device cuda needs --engine torchsharp")]
    public void Flags_wrong_together_are_refused_by_the_verb(string verb, string args, string message)
    {
        var (code, _, err) = Run(verb, args.Split(' '));
        Assert.Equal(2, code);
        Assert.Contains(message, err);
    }
}
