// Holds the serving bundle and swaps it atomically on reload: a new version is loaded, verified and smoke-tested beside
// the old one; in-flight requests keep a lease on the bundle they started with, disposed only when its last lease ends.
// With a model root, versions are the complete folders under it (a manifest present) and a reload names one of them,
// never a path.
using System.Text.RegularExpressions;
using Bert4Rec.Contracts;
using Bert4Rec.Inference.OnnxRuntime;
using SessionOptions = Bert4Rec.Inference.OnnxRuntime.SessionOptions;
using Bert4Rec.Inference.Recommendation;

namespace Bert4Rec.Service;

public sealed partial class BundleHolder : IDisposable
{
    public sealed class Entry
    {
        private int _refs = 1;     // the holder's own reference
        public required ModelBundle Bundle { get; init; }
        public required Recommender Recommender { get; init; }
        /// <summary>The version's folder name (under the model root, or the single bundle's own name).</summary>
        public required string Name { get; init; }
        public bool TryAcquire()
        {
            while (true)
            {
                int r = Volatile.Read(ref _refs);
                if (r == 0) return false;
                if (Interlocked.CompareExchange(ref _refs, r + 1, r) == r) return true;
            }
        }
        public void Release() { if (Interlocked.Decrement(ref _refs) == 0) Bundle.Dispose(); }
    }

    /// <summary>A request's hold on one bundle.</summary>
    public readonly struct Lease(Entry entry) : IDisposable
    {
        public Recommender Recommender => entry.Recommender;
        public ModelBundle Bundle => entry.Bundle;
        public string Name => entry.Name;
        public void Dispose() => entry.Release();
    }

    private Entry? _current;
    private readonly SemaphoreSlim _reloadLock = new(1, 1);
    private readonly SessionOptions _sessionOptions;
    private readonly string? _root;         // full path of the model root, or null for a single bundle
    private readonly string? _single;       // the single bundle's folder when there is no model root
    private volatile bool _draining;

    /// <param name="modelRoot">a folder of version folders; null serves <paramref name="bundle"/> alone</param>
    public BundleHolder(SessionOptions sessionOptions, string? modelRoot, string? bundle = null)
    {
        _sessionOptions = sessionOptions;
        if (modelRoot != null)
        {
            if (!Directory.Exists(modelRoot)) throw new BundleException("", "model root not found", $"model root not found: {modelRoot}");
            _root = Path.GetFullPath(modelRoot).TrimEnd('/');
        }
        else _single = bundle ?? throw new ArgumentException("a bundle or a model root is required");
    }

    /// <summary>Serving: a bundle is loaded and the process is not draining.</summary>
    public bool Ready => !_draining && Volatile.Read(ref _current) != null;
    public bool Draining => _draining;
    /// <summary>Readiness off: load balancers stop sending; requests already here still run.</summary>
    public void StartDraining() => _draining = true;
    public long Reloads { get; private set; }
    public string? CurrentName => Volatile.Read(ref _current)?.Name;

    public Lease Acquire()
    {
        while (true)
        {
            var e = Volatile.Read(ref _current) ?? throw new NoBundleException();
            if (e.TryAcquire()) return new Lease(e);
        }
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
    private static partial Regex VersionName();

    /// <summary>True for a plain version folder name: letters, digits, '.', '_' and '-', not starting with a dot.</summary>
    public static bool IsVersionName(string name) => VersionName().IsMatch(name) && !name.Contains("..");

    /// <summary>Complete versions under the model root (real folders holding a manifest), oldest first; numeric names by value.</summary>
    public IReadOnlyList<string> Versions()
    {
        if (_root == null) return CurrentName is string n ? [n] : [];
        var names = new List<string>();
        foreach (var d in new DirectoryInfo(_root).EnumerateDirectories())
            if (IsVersionName(d.Name) && d.LinkTarget == null && File.Exists(Path.Combine(d.FullName, BundleLayout.Manifest)))
                names.Add(d.Name);
        return names.OrderBy(n => n.All(char.IsAsciiDigit) ? 0 : 1).ThenBy(n => n.All(char.IsAsciiDigit) ? n.PadLeft(100, '0') : n, StringComparer.Ordinal).ToList();
    }

    /// <summary>The folder of a named version; refuses anything that is not a real folder directly under the model root.</summary>
    private string FolderOf(string version, string field)
    {
        if (_root == null) throw new RequestError(field, "this service serves one bundle (no --model-root): reload takes no version");
        if (!IsVersionName(version)) throw new RequestError(field, "a version is a plain folder name (letters, digits, '.', '_', '-')");
        var dir = new DirectoryInfo(Path.Combine(_root, version));
        if (!dir.Exists || dir.LinkTarget != null || !File.Exists(Path.Combine(dir.FullName, BundleLayout.Manifest))) throw new VersionNotFound(field);
        return dir.FullName;
    }

    /// <summary>Loads the version (null: the newest complete one, or the single bundle) and swaps it in; on any error the old one keeps serving.</summary>
    public async Task<(ModelBundle Bundle, string Name)> ReloadAsync(string? version = null, string field = "version")
    {
        await _reloadLock.WaitAsync();
        try
        {
            string dir, name;
            if (_root == null)
            {
                if (!string.IsNullOrEmpty(version)) FolderOf(version, field);
                dir = _single!;
                name = Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/'));
            }
            else if (string.IsNullOrEmpty(version))
            {
                name = Versions().LastOrDefault() ?? throw new BundleException("", "no complete version under the model root", $"{_root}: no complete version (a folder holding {BundleLayout.Manifest})");
                dir = FolderOf(name, field);
            }
            else { name = version; dir = FolderOf(version, field); }
            var bundle = await Task.Run(() => ModelBundle.Load(dir, _sessionOptions));
            var entry = new Entry { Bundle = bundle, Recommender = new Recommender(bundle), Name = name };
            var old = Interlocked.Exchange(ref _current, entry);
            Reloads++;
            old?.Release();
            return (bundle, name);
        }
        finally { _reloadLock.Release(); }
    }

    public void Dispose() => Interlocked.Exchange(ref _current, null)?.Release();
}
