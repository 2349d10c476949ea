// Holds the serving bundle and swaps it atomically on reload: a new version is loaded, verified and smoke-tested beside
// the old one; in-flight requests keep a lease on the bundle they started with, disposed only when its last lease ends.
// With a model root, versions are the complete folders under it (a manifest present) and a reload names one of them,
// never a path. A canary is a second version served beside the primary to a share of callers, chosen by a stable hash
// of the caller's user key (requests without a key go to the primary); both swap under the same rules.
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

    public const string PrimaryArm = "primary";
    public const string CanaryArm = "canary";
    /// <summary>The longest user key accepted (characters).</summary>
    public const int MaxUserKeyLength = 256;

    /// <summary>A request's hold on one bundle, and which arm it is.</summary>
    public readonly struct Lease(Entry entry, string arm) : IDisposable
    {
        public Recommender Recommender => entry.Recommender;
        public ModelBundle Bundle => entry.Bundle;
        public string Name => entry.Name;
        /// <summary><see cref="PrimaryArm"/> or <see cref="CanaryArm"/>.</summary>
        public string Arm => arm;
        public void Dispose() => entry.Release();
    }

    /// <summary>What is served: the primary, and optionally a canary answering <see cref="Share"/> of the user keys. Swapped as one.</summary>
    private sealed record Serving(Entry Primary, Entry? Canary, double Share);

    private Serving? _state;
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
    public bool Ready => !_draining && Volatile.Read(ref _state) != null;
    public bool Draining => _draining;
    /// <summary>Readiness off: load balancers stop sending; requests already here still run.</summary>
    public void StartDraining() => _draining = true;
    public long Reloads { get; private set; }
    public string? CurrentName => Volatile.Read(ref _state)?.Primary.Name;
    /// <summary>The canary's version, or null when there is none.</summary>
    public string? CanaryName => Volatile.Read(ref _state)?.Canary?.Name;
    /// <summary>The share of user keys the canary answers (0 without a canary).</summary>
    public double CanaryShare => Volatile.Read(ref _state) is { Canary: not null } st ? st.Share : 0;

    /// <summary>The versions served now: (arm, version folder, model version) of the primary and the canary if any.</summary>
    public IReadOnlyList<(string Arm, string Version, string ModelVersion)> Served()
    {
        var st = Volatile.Read(ref _state);
        if (st == null) return [];
        var primary = (PrimaryArm, st.Primary.Name, st.Primary.Bundle.Version);
        return st.Canary is { } c ? [primary, (CanaryArm, c.Name, c.Bundle.Version)] : [primary];
    }

    /// <summary>
    /// Where a user key falls in [0, 1): the first 8 bytes of SHA-256 over its UTF-8 bytes, big-endian, over 2^64. Stable
    /// across processes, machines and versions; a key is in the canary when its point is below the share, so raising the
    /// share only adds keys to the canary.
    /// </summary>
    public static double SplitPoint(string userKey)
    {
        Span<byte> hash = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(userKey), hash);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(hash) / 18446744073709551616.0;
    }

    /// <summary>A lease on the arm this user key goes to (no key, or no canary: the primary).</summary>
    public Lease Acquire(string? userKey = null)
    {
        while (true)
        {
            var st = Volatile.Read(ref _state) ?? throw new NoBundleException();
            bool canary = st.Canary != null && !string.IsNullOrEmpty(userKey) && SplitPoint(userKey) < st.Share;
            var e = canary ? st.Canary! : st.Primary;
            if (e.TryAcquire()) return new Lease(e, canary ? CanaryArm : PrimaryArm);
            // that entry was swapped out and released meanwhile: read the new state
        }
    }

    /// <summary>Swaps the served state in (callers hold the reload lock) and releases the entries it no longer holds.</summary>
    private void Swap(Serving next)
    {
        var old = Interlocked.Exchange(ref _state, next);
        if (old == null) return;
        if (!ReferenceEquals(old.Primary, next.Primary) && !ReferenceEquals(old.Primary, next.Canary)) old.Primary.Release();
        if (old.Canary != null && !ReferenceEquals(old.Canary, next.Primary) && !ReferenceEquals(old.Canary, next.Canary)) old.Canary.Release();
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
            var st = Volatile.Read(ref _state);
            if (st?.Canary is { } canary && canary.Name == name)
            {
                // promoting the canary: it becomes the primary as it is (already verified and serving), and the split ends
                Swap(new Serving(canary, null, 0));
                Reloads++;
                return (canary.Bundle, name);
            }
            var bundle = await Task.Run(() => ModelBundle.Load(dir, _sessionOptions));
            var entry = new Entry { Bundle = bundle, Recommender = new Recommender(bundle), Name = name };
            Swap(new Serving(entry, st?.Canary, st?.Share ?? 0));
            Reloads++;
            return (bundle, name);
        }
        finally { _reloadLock.Release(); }
    }

    /// <summary>
    /// Serves <paramref name="version"/> as the canary to <paramref name="share"/> of the user keys (loaded, verified and
    /// smoke-tested like any version; on any error the state before keeps serving). Null or empty ends the canary; the
    /// canary already served only changes its share.
    /// </summary>
    public async Task SetCanaryAsync(string? version, double share, string field = "version", string shareField = "share")
    {
        if (_root == null) throw new RequestError(field, "a canary needs a model root (--model-root): this service serves one bundle");
        if (double.IsNaN(share) || share < 0 || share > 1) throw new RequestError(shareField, $"share must be in 0..1, got {share}");
        await _reloadLock.WaitAsync();
        try
        {
            var st = Volatile.Read(ref _state) ?? throw new NoBundleException();
            if (string.IsNullOrEmpty(version)) { Swap(st with { Canary = null, Share = 0 }); return; }
            if (version == st.Primary.Name) throw new RequestError(field, "the canary must be another version than the primary");
            if (st.Canary?.Name == version) { Swap(st with { Share = share }); return; }
            string dir = FolderOf(version, field);
            var bundle = await Task.Run(() => ModelBundle.Load(dir, _sessionOptions));
            var entry = new Entry { Bundle = bundle, Recommender = new Recommender(bundle), Name = version };
            Swap(st with { Canary = entry, Share = share });
        }
        finally { _reloadLock.Release(); }
    }

    public void Dispose()
    {
        var st = Interlocked.Exchange(ref _state, null);
        st?.Primary.Release();
        st?.Canary?.Release();
    }
}
