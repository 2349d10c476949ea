// Reading, writing and verifying an artifact bundle's manifest (protobuf, plus a JSON rendering for people).
using System.Security.Cryptography;
using Bert4Rec.Contracts.Bundle;
using Google.Protobuf;

namespace Bert4Rec.Contracts;

/// <summary>
/// A bundle that is missing a file, has a file whose hash or size differs from its manifest, or an unreadable manifest.
/// The message is for the operator (it may name paths); <see cref="FileName"/> and <see cref="Reason"/> are what a remote
/// caller may see: a plain file name inside the bundle and a short cause, never file content, hashes or paths.
/// </summary>
public sealed class BundleException : Exception
{
    public BundleException(string message, Exception? inner = null) : base(message, inner) { }
    public BundleException(string fileName, string reason, string message, Exception? inner = null) : base(message, inner)
    {
        FileName = fileName;
        Reason = reason;
    }
    /// <summary>The file at fault, a plain name inside the bundle; "" for the bundle as a whole.</summary>
    public string FileName { get; } = "";
    public string Reason { get; } = "not a valid bundle";
}

public static class BundleManifests
{
    /// <summary>Lower-case hex SHA-256 of a file, streamed.</summary>
    public static string Sha256(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(fs));
    }

    /// <summary>A manifest entry for <paramref name="fileName"/> in <paramref name="bundleDir"/>, hashed now.</summary>
    public static BundleFile Describe(string bundleDir, string role, string fileName)
    {
        string p = Path.Combine(bundleDir, fileName);
        return new BundleFile { Role = role, Name = fileName, Sha256 = Sha256(p), SizeBytes = new FileInfo(p).Length };
    }

    /// <summary>Writes manifest.pb and manifest.json into <paramref name="bundleDir"/>, each atomically.</summary>
    public static void Write(string bundleDir, BundleManifest manifest)
    {
        AtomicFile.WriteAllBytes(Path.Combine(bundleDir, BundleLayout.ManifestJson),
            System.Text.Encoding.UTF8.GetBytes(JsonFormatter.Default.Format(manifest) + "\n"));
        AtomicFile.WriteAllBytes(Path.Combine(bundleDir, BundleLayout.Manifest), manifest.ToByteArray());
    }

    /// <summary>The largest manifest.pb a loader reads.</summary>
    public const long MaxManifestBytes = 16 << 20;

    /// <summary>
    /// Reads manifest.pb of <paramref name="bundleDir"/> (a regular file of at most <see cref="MaxManifestBytes"/>); a
    /// missing, oversized or unparsable manifest is a <see cref="BundleException"/>.
    /// </summary>
    public static BundleManifest Read(string bundleDir)
    {
        const string name = BundleLayout.Manifest;
        if (!Directory.Exists(bundleDir)) throw new BundleException("", "bundle folder not found", $"bundle folder not found: {bundleDir}");
        string p = Path.Combine(bundleDir, name);
        if (!File.Exists(p) && !SafeFiles.IsSymbolicLink(p))
            throw new BundleException(name, "missing", $"{p}: manifest missing (is {bundleDir} a bundle made by `bert4rec export`?)");
        BundleManifest m;
        try { m = BundleManifest.Parser.ParseFrom(SafeFiles.ReadAllBytes(p, MaxManifestBytes)); }
        catch (UnsafeFileException e) { throw new BundleException(name, e.Reason, $"{p}: {e.Reason}", e); }
        catch (InvalidProtocolBufferException e) { throw new BundleException(name, "not a valid manifest", $"{p}: not a valid manifest: {e.Message}", e); }
        if (m.FormatVersion != BundleLayout.FormatVersion)
            throw new BundleException(name, "unsupported format_version", $"{p}: format_version {m.FormatVersion}, this build reads {BundleLayout.FormatVersion}");
        if (m.Model == null || m.Model.ItemCount < 1 || m.Model.Hidden < 1)
            throw new BundleException(name, "field 'model' is missing or empty", $"{p}: field 'model' is missing or empty");
        return m;
    }

    /// <summary>
    /// Checks that every file the manifest lists is a regular file inside the bundle (no symlink, FIFO or device) with the
    /// recorded size (checked before reading, and at most <paramref name="maxBytes"/> of its entry) and SHA-256 (streamed,
    /// never more than the recorded size read).
    /// </summary>
    public static void VerifyFiles(string bundleDir, BundleManifest manifest, Func<BundleFile, long>? maxBytes = null)
    {
        foreach (var f in manifest.Files)
        {
            if (f.Name.Length == 0 || f.Name.Length > 255 || f.Name.Contains('/') || f.Name.Contains('\\') || f.Name.Contains("..") || f.Name.Any(char.IsControl))
                throw new BundleException("", "a manifest file name is not a plain name inside the bundle", $"manifest file name '{f.Name}' must be a plain name inside the bundle");
            string p = Path.Combine(bundleDir, f.Name);
            long max = maxBytes?.Invoke(f) ?? long.MaxValue;
            if (f.SizeBytes < 0 || f.SizeBytes > max)
                throw new BundleException(f.Name, "recorded size out of bounds", $"{p}: the manifest's size {f.SizeBytes} bytes is out of bounds (at most {max} for a {f.Role} file of this model)");
            string h;
            try { h = SafeFiles.Sha256(p, f.SizeBytes); }
            catch (UnsafeFileException e)
            {
                string reason = e.Reason == "missing" ? $"listed in the manifest ({f.Role}) but missing" : e.Reason.StartsWith("size ") || e.Reason.StartsWith("larger") ? "size differs from the manifest" : e.Reason;
                throw new BundleException(f.Name, reason, $"{p}: {e.Reason} (manifest: {f.SizeBytes} bytes)", e);
            }
            if (!string.Equals(h, f.Sha256, StringComparison.OrdinalIgnoreCase))
                throw new BundleException(f.Name, "SHA-256 does not match the manifest", $"{p}: SHA-256 {h} does not match the manifest's {f.Sha256}");
        }
    }

    /// <summary>
    /// The bytes of a manifest entry, read once (a regular file of the recorded size, at most <paramref name="maxBytes"/>)
    /// and checked against the recorded SHA-256, so what is parsed is what was verified.
    /// </summary>
    public static byte[] ReadVerified(string bundleDir, BundleFile f, long maxBytes)
    {
        string p = Path.Combine(bundleDir, f.Name);
        if (f.SizeBytes < 0 || f.SizeBytes > maxBytes)
            throw new BundleException(f.Name, "recorded size out of bounds", $"{p}: the manifest's size {f.SizeBytes} bytes is out of bounds (at most {maxBytes})");
        byte[] bytes;
        try { bytes = SafeFiles.ReadAllBytes(p, f.SizeBytes); }
        catch (UnsafeFileException e)
        {
            string reason = e.Reason.StartsWith("larger") ? "size differs from the manifest" : e.Reason;
            throw new BundleException(f.Name, reason, $"{p}: {e.Reason} (manifest: {f.SizeBytes} bytes)", e);
        }
        if (bytes.Length != f.SizeBytes) throw new BundleException(f.Name, "size differs from the manifest", $"{p}: size {bytes.Length} bytes, manifest says {f.SizeBytes}");
        string h = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (!string.Equals(h, f.Sha256, StringComparison.OrdinalIgnoreCase))
            throw new BundleException(f.Name, "SHA-256 does not match the manifest", $"{p}: SHA-256 {h} does not match the manifest's {f.Sha256}");
        return bytes;
    }

    /// <summary>The manifest entry of a role, or null.</summary>
    public static BundleFile? FileOfRole(BundleManifest manifest, string role) => manifest.Files.FirstOrDefault(f => f.Role == role);

    public static ModelConfig ToConfig(ModelShape s) => new()
    {
        Kind = ModelKinds.TryParse(s.Kind, out var kind) ? kind : throw new BundleException($"manifest: model kind '{s.Kind}' is not one of {string.Join(", ", ModelKinds.All.Select(k => k.Name()))}"),
        ItemCount = s.ItemCount, Hidden = s.Hidden, Heads = s.Heads, Layers = s.Layers, MaxLength = s.MaxLength,
        HiddenDropout = s.HiddenDropout, AttentionDropout = s.AttentionDropout, LayerNormEpsilon = s.LayerNormEpsilon,
        UserCount = s.UserCount, UserFeatures = s.UserFeatures, ItemFeatures = s.ItemFeatures,
    };

    /// <summary>The manifest's model shape; a feature model's also declares its graph's inputs.</summary>
    public static ModelShape ToShape(ModelConfig c)
    {
        var shape = new ModelShape
        {
            Kind = c.Kind.Name(),
            ItemCount = c.ItemCount, Hidden = c.Hidden, Heads = c.Heads, Layers = c.Layers, MaxLength = c.MaxLength,
            HiddenDropout = c.HiddenDropout, AttentionDropout = c.AttentionDropout, LayerNormEpsilon = c.LayerNormEpsilon,
            UserCount = c.UserCount, UserFeatures = c.UserFeatures, ItemFeatures = c.ItemFeatures,
        };
        if (!c.Kind.IsSequential())
            foreach (var (name, type, dims) in ModelIo.FeatureModelInputs(c))
                shape.Inputs.Add(new GraphInput { Name = name, ElementType = type, Dims = { dims } });
        return shape;
    }
}
