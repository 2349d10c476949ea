// Typed flags over System.CommandLine, shared by the CLI, the service host and the benchmarks: each value is parsed and
// range-checked as the command line is read, and every refusal names its flag; help, response files (@FILE) and shell
// completion come from System.CommandLine.
using System.CommandLine;
using System.CommandLine.Completions;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Bert4Rec.Contracts;

/// <summary>A bad flag or flag value; the message names the flag.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>Factories of typed options: the option's name is its flag (`--epochs`), its checks run while parsing.</summary>
public static class Flags
{
    /// <summary>A text value; <paramref name="fallback"/> when absent (null: no value).</summary>
    public static Option<string?> String(string name, string description, string? fallback = null, string? helpName = null) =>
        new(name) { Description = description, HelpName = helpName, DefaultValueFactory = fallback == null ? null : _ => fallback };

    /// <summary>A text value that must be given.</summary>
    public static Option<string> Required(string name, string description, string? helpName = null) =>
        new(name) { Description = description, HelpName = helpName, Required = true };

    /// <summary>A switch: `--name` alone is true; `--name true|false` also parses.</summary>
    public static Option<bool> Flag(string name, string description) => new(name) { Description = description };

    public static Option<int> Int(string name, string description, int fallback, int min = int.MinValue, int max = int.MaxValue) =>
        Number(name, description, fallback, min, max, "an integer", s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : null);

    public static Option<long> Long(string name, string description, long fallback, long min = long.MinValue, long max = long.MaxValue) =>
        Number(name, description, fallback, min, max, "an integer", s => long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v : null);

    public static Option<double> Double(string name, string description, double fallback, double min = double.NegativeInfinity, double max = double.PositiveInfinity) =>
        Number(name, description, fallback, min, max, "a number",
            s => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && !double.IsNaN(v) ? v : null);

    /// <summary>An integer whose default depends on other flags (a preset's value): null when absent.</summary>
    public static Option<int?> OptionalInt(string name, string description, int min = int.MinValue, int max = int.MaxValue) =>
        Optional<int>(name, description, min, max, "an integer", s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : null);

    /// <summary>A number whose default depends on other flags (a preset's value): null when absent.</summary>
    public static Option<double?> OptionalDouble(string name, string description, double min = double.NegativeInfinity, double max = double.PositiveInfinity) =>
        Optional<double>(name, description, min, max, "a number",
            s => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && !double.IsNaN(v) ? v : null);

    /// <summary>A duration with its unit: `90s`, `30m`, `1.5h` (a bare number is refused: seconds or minutes?). Null when absent.</summary>
    public static Option<TimeSpan?> Duration(string name, string description) => new(name)
    {
        Description = description, HelpName = "90s|30m|1.5h",
        CustomParser = r =>
        {
            if (r.Tokens.Count == 0) return null;
            string s = r.Tokens[0].Value;
            double unit = s.Length == 0 ? 0 : char.ToLowerInvariant(s[^1]) switch { 's' => 1, 'm' => 60, 'h' => 3600, _ => 0 };
            if (unit == 0) { r.AddError($"{name}: '{s}' needs a unit: 90s, 30m or 1.5h"); return null; }
            if (!double.TryParse(s.AsSpan(0, s.Length - 1), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v) || v <= 0 || v * unit > 1e8)
            {
                r.AddError($"{name}: '{s}' is not a positive duration such as 90s, 30m or 1.5h");
                return null;
            }
            return TimeSpan.FromSeconds(v * unit);
        },
    };

    /// <summary>One of <paramref name="values"/> (any letter case; the value returned is the listed spelling), offered by completion.</summary>
    public static Option<string> Choice(string name, string description, string fallback, params string[] values) =>
        Choice(name, description, fallback, values.Select(v => (v, v)).ToArray());

    /// <summary>One of the listed texts, mapped to its value (any letter case), offered by completion.</summary>
    public static Option<T> Choice<T>(string name, string description, T fallback, params (string Text, T Value)[] options)
    {
        var o = new Option<T>(name)
        {
            Description = description, HelpName = string.Join('|', options.Select(x => x.Text)), DefaultValueFactory = _ => fallback,
            CustomParser = r =>
            {
                if (r.Tokens.Count == 0) return fallback;
                string s = r.Tokens[0].Value;
                foreach (var (text, value) in options)
                    if (string.Equals(text, s, StringComparison.OrdinalIgnoreCase)) return value;
                r.AddError($"{name}: '{s}' is not one of {string.Join(", ", options.Select(x => x.Text))}");
                return fallback;
            },
        };
        o.CompletionSources.Add(options.Select(x => x.Text).ToArray());
        return o;
    }

    /// <summary>
    /// An `on|off` flag, read with <see cref="IsOn"/> (null when absent). Its value type is text, not bool: System.CommandLine
    /// lets a bool-typed option take only true/false as its value and would leave `off` behind as an unknown argument.
    /// </summary>
    public static Option<string?> OnOff(string name, string description) => Choice<string?>(name, description, null, ("on", "on"), ("off", "off"));

    /// <summary>An <see cref="OnOff"/> flag's value: true for on, false for off, null when absent.</summary>
    public static bool? IsOn(this ParseResult r, Option<string?> option) => r.GetValue(option) switch { "on" => true, "off" => false, _ => null };

    /// <summary>Whether <paramref name="option"/> was on the command line (not just its default).</summary>
    public static bool Given(this ParseResult r, Option option) => r.GetResult(option) is { Implicit: false };

    private static Option<T> Number<T>(string name, string description, T fallback, T min, T max, string what, Func<string, T?> parse)
        where T : struct, IComparable<T> => new(name)
    {
        Description = description, HelpName = HelpName<T>(), DefaultValueFactory = _ => fallback,
        CustomParser = r => r.Tokens.Count == 0 ? fallback : Check(r, name, min, max, what, parse) ?? fallback,
    };

    private static Option<T?> Optional<T>(string name, string description, T min, T max, string what, Func<string, T?> parse)
        where T : struct, IComparable<T> => new(name)
    {
        Description = description, HelpName = HelpName<T>(),
        CustomParser = r => r.Tokens.Count == 0 ? null : Check(r, name, min, max, what, parse),
    };

    /// <summary>What --help shows as a number flag's value: N for integers, X for real numbers.</summary>
    private static string HelpName<T>() => typeof(T) == typeof(double) ? "X" : "N";

    private static T? Check<T>(ArgumentResult r, string name, T min, T max, string what, Func<string, T?> parse) where T : struct, IComparable<T>
    {
        string s = r.Tokens[0].Value;
        if (parse(s) is not { } v) { r.AddError($"{name}: '{s}' is not {what}"); return null; }
        if (v.CompareTo(min) < 0 || v.CompareTo(max) > 0)
        {
            r.AddError($"{name}: {s} is out of range [{Format(min)}, {Format(max)}]");
            return null;
        }
        return v;
    }

    private static string Format<T>(T v) => v switch
    {
        int i when i == int.MinValue => "-inf", int i when i == int.MaxValue => "inf",
        long l when l == long.MinValue => "-inf", long l when l == long.MaxValue => "inf",
        double d when double.IsInfinity(d) => d > 0 ? "inf" : "-inf",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture), _ => v?.ToString() ?? "",
    };
}

/// <summary>
/// Runs a command tree the same way in every executable: `--help` on any command, parse errors as `PROG: message` lines
/// with exit code 2, <see cref="UsageException"/> from an action likewise, other failures as one `error:` line and exit
/// code 1 (never a stack trace). `[suggest] LINE` prints the completions of LINE's last word (the shell completion of
/// scripts/bert4rec-completion.bash).
/// </summary>
public static class CommandLines
{
    public const string SuggestToken = "[suggest]";

    /// <summary>A top-level command named <paramref name="name"/> with a --help option.</summary>
    public static Command Top(string name, string description) => new(name, description) { new HelpOption() };

    /// <summary>Adds `--help`/`-h` to every command below <paramref name="command"/> that lacks one.</summary>
    public static void AddHelp(Command command)
    {
        if (!command.Options.OfType<HelpOption>().Any()) command.Options.Add(new HelpOption());
        foreach (var c in command.Subcommands) AddHelp(c);
    }

    /// <summary>Parses <paramref name="args"/> with <paramref name="top"/> and runs the chosen command's action.</summary>
    /// <param name="expected">Exception types (besides <see cref="UsageException"/>) whose message alone explains the failure.</param>
    public static int Run(Command top, IReadOnlyList<string> args, TextWriter? output = null, TextWriter? error = null, Func<Exception, bool>? expected = null)
    {
        output ??= Console.Out;
        error ??= Console.Error;
        AddHelp(top);
        if (args.Count > 0 && args[0] == SuggestToken)
        {
            string line = args.Count > 1 ? args[1] : "";
            foreach (var item in Parse(top, line).GetCompletions(line.Length)) output.WriteLine(item.Label);
            return 0;
        }
        var result = Parse(top, args);
        string prog = Prog(result.CommandResult);
        if (result.Action is ParseErrorAction)
        {
            foreach (var e in result.Errors) error.WriteLine($"{prog}: {e.Message}");
            error.WriteLine($"{prog}: see {prog} --help");
            return 2;
        }
        try
        {
            // no signal handling of System.CommandLine's own: `serve` drains on SIGTERM/SIGINT itself, the other verbs stop at once
            return result.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
        }
        catch (UsageException e)
        {
            error.WriteLine($"{prog}: {e.Message}");
            error.WriteLine($"{prog}: see {prog} --help");
            return 2;
        }
        catch (Exception e) when (expected?.Invoke(e) == true)
        {
            error.WriteLine($"{prog}: error: {OneLine(e.Message)}");
            return 1;
        }
        catch (Exception e)
        {
            // anything else still ends in one line and a non-zero code; the type names what failed
            error.WriteLine($"{prog}: error: {e.GetType().Name}: {OneLine(e.Message)}");
            return 1;
        }
    }

    /// <summary>Parses without running; tests and the library entry points read values from the result.</summary>
    public static ParseResult Parse(Command top, IReadOnlyList<string> args) => top.Parse(args, Configuration);

    private static ParseResult Parse(Command top, string line) => top.Parse(line, Configuration);

    /// <summary>Parses <paramref name="args"/> and throws <see cref="UsageException"/> with the first error (for library code and tests).</summary>
    public static ParseResult ParseOrThrow(Command command, IReadOnlyList<string> args)
    {
        var r = Parse(command, args);
        if (r.Errors.Count > 0) throw new UsageException(r.Errors[0].Message);
        return r;
    }

    // response files: @FILE on the command line is replaced by FILE's tokens (one or more per line, # comments)
    private static readonly ParserConfiguration Configuration = new();

    /// <summary>"bert4rec train": the names from the top command down to <paramref name="r"/>'s.</summary>
    private static string Prog(CommandResult r)
    {
        var names = new List<string>();
        for (SymbolResult? s = r; s != null; s = s.Parent) if (s is CommandResult c) names.Add(c.Command.Name);
        names.Reverse();
        return string.Join(' ', names);
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}
