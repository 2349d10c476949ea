// Holds the serving bundle and swaps it atomically on reload: a new bundle is loaded and verified beside the old one;
// in-flight requests keep a lease on the bundle they started with, which is disposed only when its last lease ends.
using Bert4Rec.Inference.OnnxRuntime;
using SessionOptions = Bert4Rec.Inference.OnnxRuntime.SessionOptions;
using Bert4Rec.Inference.Recommendation;

namespace Bert4Rec.Service;

public sealed class BundleHolder : IDisposable
{
    public sealed class Entry
    {
        private int _refs = 1;     // the holder's own reference
        public required ModelBundle Bundle { get; init; }
        public required Recommender Recommender { get; init; }
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
        public void Dispose() => entry.Release();
    }

    private Entry? _current;
    private readonly SemaphoreSlim _reloadLock = new(1, 1);
    private readonly SessionOptions _sessionOptions;
    public string? BundlePath { get; private set; }
    public long Reloads { get; private set; }

    public BundleHolder(SessionOptions sessionOptions) => _sessionOptions = sessionOptions;

    public bool Ready => Volatile.Read(ref _current) != null;

    public Lease Acquire()
    {
        while (true)
        {
            var e = Volatile.Read(ref _current) ?? throw new NoBundleException();
            if (e.TryAcquire()) return new Lease(e);
        }
    }

    /// <summary>Loads <paramref name="path"/> (or the current path) and swaps it in; on any error the old bundle keeps serving and the error is thrown.</summary>
    public async Task<ModelBundle> ReloadAsync(string? path = null)
    {
        await _reloadLock.WaitAsync();
        try
        {
            path ??= BundlePath ?? throw new InvalidOperationException("no bundle path to reload");
            var bundle = await Task.Run(() => ModelBundle.Load(path, _sessionOptions));
            var entry = new Entry { Bundle = bundle, Recommender = new Recommender(bundle) };
            var old = Interlocked.Exchange(ref _current, entry);
            BundlePath = path;
            Reloads++;
            old?.Release();
            return bundle;
        }
        finally { _reloadLock.Release(); }
    }

    public void Dispose() => Interlocked.Exchange(ref _current, null)?.Release();
}
