// Reading, writing and verifying an artifact bundle's manifest (protobuf, plus a JSON rendering for people).
using System.Security.Cryptography;
using Bert4Rec.Contracts.Bundle;
using Google.Protobuf;

namespace Bert4Rec.Contracts;

/// <summary>A bundle that is missing a file, has a file whose hash or size differs from its manifest, or an unreadable manifest.</summary>
public sealed class BundleException(string message, Exception? inner = null) : Exception(message, inner);

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

    /// <summary>Reads manifest.pb of <paramref name="bundleDir"/>; a missing or unparsable manifest is a <see cref="BundleException"/>.</summary>
    public static BundleManifest Read(string bundleDir)
    {
        if (!Directory.Exists(bundleDir)) throw new BundleException($"bundle folder not found: {bundleDir}");
        string p = Path.Combine(bundleDir, BundleLayout.Manifest);
        if (!File.Exists(p)) throw new BundleException($"{p}: manifest missing (is {bundleDir} a bundle made by `bert4rec export`?)");
        BundleManifest m;
        try { m = BundleManifest.Parser.ParseFrom(File.ReadAllBytes(p)); }
        catch (InvalidProtocolBufferException e) { throw new BundleException($"{p}: not a valid manifest: {e.Message}", e); }
        if (m.FormatVersion != BundleLayout.FormatVersion)
            throw new BundleException($"{p}: format_version {m.FormatVersion}, this build reads {BundleLayout.FormatVersion}");
        if (m.Model == null || m.Model.ItemCount < 1 || m.Model.Hidden < 1)
            throw new BundleException($"{p}: field 'model' is missing or empty");
        return m;
    }

    /// <summary>Checks that every file the manifest lists exists with the recorded size and SHA-256.</summary>
    public static void VerifyFiles(string bundleDir, BundleManifest manifest)
    {
        foreach (var f in manifest.Files)
        {
            if (f.Name.Contains('/') || f.Name.Contains('\\') || f.Name.Contains(".."))
                throw new BundleException($"manifest file name '{f.Name}' must be a plain name inside the bundle");
            string p = Path.Combine(bundleDir, f.Name);
            if (!File.Exists(p)) throw new BundleException($"{p}: listed in the manifest ({f.Role}) but missing");
            long size = new FileInfo(p).Length;
            if (size != f.SizeBytes) throw new BundleException($"{p}: size {size} bytes, manifest says {f.SizeBytes}");
            string h = Sha256(p);
            if (!string.Equals(h, f.Sha256, StringComparison.OrdinalIgnoreCase))
                throw new BundleException($"{p}: SHA-256 {h} does not match the manifest's {f.Sha256}");
        }
    }

    /// <summary>The manifest entry of a role, or null.</summary>
    public static BundleFile? FileOfRole(BundleManifest manifest, string role) => manifest.Files.FirstOrDefault(f => f.Role == role);

    public static ModelConfig ToConfig(ModelShape s) => new()
    {
        Kind = ModelKinds.TryParse(s.Kind, out var kind) ? kind : throw new BundleException($"manifest: model kind '{s.Kind}' is not one of bert4rec, sasrec, gru4rec"),
        ItemCount = s.ItemCount, Hidden = s.Hidden, Heads = s.Heads, Layers = s.Layers, MaxLength = s.MaxLength,
        HiddenDropout = s.HiddenDropout, AttentionDropout = s.AttentionDropout, LayerNormEpsilon = s.LayerNormEpsilon,
    };

    public static ModelShape ToShape(ModelConfig c) => new()
    {
        Kind = c.Kind.Name(),
        ItemCount = c.ItemCount, Hidden = c.Hidden, Heads = c.Heads, Layers = c.Layers, MaxLength = c.MaxLength,
        HiddenDropout = c.HiddenDropout, AttentionDropout = c.AttentionDropout, LayerNormEpsilon = c.LayerNormEpsilon,
    };
}
