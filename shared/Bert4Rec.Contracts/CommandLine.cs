// A small, strict command-line parser shared by the CLI, the service host and the benchmarks: unknown or malformed flags are errors.
using System.Globalization;

namespace Bert4Rec.Contracts;

/// <summary>A bad flag or flag value; the message names the flag.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// Parses `--name value`, `--name=value` and boolean `--flag`. Call the getters for every flag a verb knows, then
/// <see cref="EnsureAllUsed"/> so that a misspelt flag is reported instead of silently ignored.
/// </summary>
public sealed class CommandLine
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);
    public IReadOnlyList<string> Positionals { get; }

    public CommandLine(IEnumerable<string> args)
    {
        var pos = new List<string>();
        var list = args.ToList();
        for (int i = 0; i < list.Count; i++)
        {
            string a = list[i];
            if (a.StartsWith("--", StringComparison.Ordinal) && a.Length > 2)
            {
                string name = a[2..];
                string? value = null;
                int eq = name.IndexOf('=');
                if (eq >= 0) { value = name[(eq + 1)..]; name = name[..eq]; }
                else if (i + 1 < list.Count && !IsFlagToken(list[i + 1])) value = list[++i];
                if (!_values.TryAdd(name, value)) throw new UsageException($"flag --{name} given twice");
            }
            else if (a.StartsWith('-') && a.Length == 2 && char.IsLetter(a[1]))
            {
                // single-letter alias: -k 10
                string name = a[1..];
                string? value = i + 1 < list.Count ? list[++i] : null;
                if (!_values.TryAdd(name, value)) throw new UsageException($"flag -{name} given twice");
            }
            else pos.Add(a);
        }
        Positionals = pos;
    }

    /// <summary>`--name` or a single-letter alias `-k`; a negative number such as `-5` is a value, not a flag.</summary>
    private static bool IsFlagToken(string t) =>
        (t.StartsWith("--", StringComparison.Ordinal) && t.Length > 2) || (t.Length == 2 && t[0] == '-' && char.IsLetter(t[1]));

    public bool Has(string name) { _used.Add(name); return _values.ContainsKey(name); }

    public bool Flag(string name)
    {
        _used.Add(name);
        if (!_values.TryGetValue(name, out var v)) return false;
        if (v == null) return true;
        return v.ToLowerInvariant() switch
        {
            "true" or "1" or "yes" => true,
            "false" or "0" or "no" => false,
            _ => throw new UsageException($"--{name}: expected true or false, got '{v}'"),
        };
    }

    public string? String(string name)
    {
        _used.Add(name);
        if (!_values.TryGetValue(name, out var v)) return null;
        return v ?? throw new UsageException($"--{name} needs a value");
    }

    public string String(string name, string fallback) => String(name) ?? fallback;

    public string Required(string name) => String(name) ?? throw new UsageException($"missing required flag --{name}");

    public int Int(string name, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        var s = String(name);
        if (s == null) return fallback;
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v))
            throw new UsageException($"--{name}: '{s}' is not an integer");
        if (v < min || v > max) throw new UsageException($"--{name}: {v} is out of range [{min}, {max}]");
        return v;
    }

    public long Long(string name, long fallback, long min = long.MinValue, long max = long.MaxValue)
    {
        var s = String(name);
        if (s == null) return fallback;
        if (!long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v))
            throw new UsageException($"--{name}: '{s}' is not an integer");
        if (v < min || v > max) throw new UsageException($"--{name}: {v} is out of range [{min}, {max}]");
        return v;
    }

    public double Double(string name, double fallback, double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        var s = String(name);
        if (s == null) return fallback;
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || double.IsNaN(v))
            throw new UsageException($"--{name}: '{s}' is not a number");
        if (v < min || v > max) throw new UsageException($"--{name}: {v} is out of range [{min}, {max}]");
        return v;
    }

    /// <summary>A duration with its unit: `90s`, `30m`, `1.5h` (a bare number is refused: seconds or minutes?).</summary>
    public TimeSpan? Duration(string name)
    {
        var s = String(name);
        if (s == null) return null;
        double unit = s.Length == 0 ? 0 : char.ToLowerInvariant(s[^1]) switch { 's' => 1, 'm' => 60, 'h' => 3600, _ => 0 };
        if (unit == 0) throw new UsageException($"--{name}: '{s}' needs a unit: 90s, 30m or 1.5h");
        if (!double.TryParse(s.AsSpan(0, s.Length - 1), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v) || v <= 0 || v * unit > 1e8)
            throw new UsageException($"--{name}: '{s}' is not a positive duration such as 90s, 30m or 1.5h");
        return TimeSpan.FromSeconds(v * unit);
    }

    public T Choice<T>(string name, T fallback, params (string Text, T Value)[] options)
    {
        var s = String(name);
        if (s == null) return fallback;
        foreach (var (text, value) in options)
            if (string.Equals(text, s, StringComparison.OrdinalIgnoreCase)) return value;
        throw new UsageException($"--{name}: '{s}' is not one of {string.Join(", ", options.Select(o => o.Text))}");
    }

    /// <summary>Throws for any flag that no getter asked about, and for unexpected positional arguments.</summary>
    public void EnsureAllUsed(int allowedPositionals = 0)
    {
        foreach (var k in _values.Keys)
            if (!_used.Contains(k)) throw new UsageException($"unknown flag --{k}");
        if (Positionals.Count > allowedPositionals)
            throw new UsageException($"unexpected argument '{Positionals[allowedPositionals]}'");
    }
}
