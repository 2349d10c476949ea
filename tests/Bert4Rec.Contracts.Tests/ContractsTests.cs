// Tests of the shared contracts: the parameter layout, the vocabulary file, atomic writes and the strict flag parser.
using Bert4Rec.Contracts;

namespace Bert4Rec.Contracts.Tests;

public class ParameterLayoutTests
{
    [Fact]
    public void Layout_is_contiguous_and_counts_every_parameter()
    {
        var cfg = new ModelConfig { ItemCount = 10, Hidden = 8, Heads = 2, Layers = 2, MaxLength = 5 };
        var layout = new ParameterLayout(cfg);
        long expected = 0;
        foreach (var t in layout.Tensors) { Assert.Equal(expected, t.Offset); expected += t.Size; }
        Assert.Equal(expected, layout.TotalSize);
        int d = 8, v = 12, n = 5;
        long perLayer = d * 3 * d + 3 * d + d * d + d + 2 * d + d * 4 * d + 4 * d + 4 * d * d + d + 2 * d;
        Assert.Equal(v * d + n * d + 2 * d + 2 * perLayer + d * d + d + 2 * d + v, layout.TotalSize);
        Assert.Equal(new[] { 12, 8 }, layout["tok_emb"].Shape);
        Assert.True(layout["layers.1.ffn.w2"].WeightDecay);
        Assert.False(layout["layers.0.ln1.g"].WeightDecay);
        Assert.False(layout["out_bias"].WeightDecay);
        Assert.Throws<KeyNotFoundException>(() => layout["nope"]);
    }

    [Theory]
    [InlineData(0, 8, 2)]
    [InlineData(5, 8, 3)]
    public void Invalid_config_is_refused_with_the_field_named(int items, int hidden, int heads)
    {
        var e = Assert.Throws<ArgumentException>(() => new ParameterLayout(new ModelConfig { ItemCount = items, Hidden = hidden, Heads = heads }));
        Assert.Contains(items < 1 ? "ItemCount" : "Heads", e.Message);
    }
}

public class VocabularyTests
{
    [Fact]
    public void Round_trips_through_a_file_and_maps_both_ways()
    {
        var dir = Directory.CreateTempSubdirectory();
        try
        {
            var v = new Vocabulary(new[] { "a", "1234", "x:y" });
            string p = Path.Combine(dir.FullName, "vocab.txt");
            v.Save(p);
            var back = Vocabulary.Load(p);
            Assert.Equal(3, back.Count);
            Assert.Equal(4, back.MaskId);
            Assert.Equal(2, back.IndexOf("1234"));
            Assert.Equal("x:y", back.RawId(3));
            Assert.False(back.TryGetIndex("zzz", out _));
            Assert.Empty(Directory.GetFiles(dir.FullName, ".*tmp*"));
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void Duplicate_or_blank_ids_are_refused_with_the_line()
    {
        var dir = Directory.CreateTempSubdirectory();
        try
        {
            string p = Path.Combine(dir.FullName, "vocab.txt");
            File.WriteAllText(p, "a\nb\na\n");
            var e = Assert.Throws<InvalidDataException>(() => Vocabulary.Load(p));
            Assert.Contains("twice", e.Message);
            File.WriteAllText(p, "a\n\nb\n");
            e = Assert.Throws<InvalidDataException>(() => Vocabulary.Load(p));
            Assert.Contains(":2:", e.Message);
        }
        finally { dir.Delete(true); }
    }
}

public class AtomicWriteTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-atomic-");
    public void Dispose() => _dir.Delete(true);

    [Fact]
    public void Replacing_an_existing_folder_swaps_it_whole_and_leftovers_of_dead_writers_are_removed()
    {
        string target = Path.Combine(_dir.FullName, "out");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "a"), "old");
        // leftovers of a dead writer (pid above Linux's pid_max) and of this live process
        string deadTmp = $"{target}.tmp-4194305-{Guid.NewGuid():N}", deadFile = Path.Combine(_dir.FullName, $".x.tmp-4194305-{Guid.NewGuid():N}");
        Directory.CreateDirectory(deadTmp);
        File.WriteAllText(deadFile, "");
        string mine = AtomicFile.TempFolderFor(target);
        Directory.CreateDirectory(mine);
        File.WriteAllText(Path.Combine(mine, "a"), "new");
        AtomicFile.ReplaceDirectory(mine, target);
        Assert.Equal("new", File.ReadAllText(Path.Combine(target, "a")));
        Assert.False(Directory.Exists(mine));
        if (OperatingSystem.IsLinux())
        {
            Assert.False(Directory.Exists(deadTmp));
            Assert.False(File.Exists(deadFile));
        }
        Assert.Equal(new[] { "out" }, _dir.GetFileSystemInfos().Select(f => f.Name));
    }

    [Fact]
    public void A_target_a_dead_writer_left_moved_aside_is_put_back()
    {
        if (!OperatingSystem.IsLinux()) return;
        string target = Path.Combine(_dir.FullName, "data");
        string aside = $"{target}.old-4194305-{Guid.NewGuid():N}";
        Directory.CreateDirectory(aside);
        File.WriteAllText(Path.Combine(aside, "a"), "old");
        AtomicFile.RemoveStale(target);
        Assert.Equal("old", File.ReadAllText(Path.Combine(target, "a")));
    }

    [Fact]
    public void Safe_reads_refuse_symlinks_fifos_and_oversized_files_and_vocabulary_text_must_be_utf8()
    {
        if (!OperatingSystem.IsLinux()) return;
        string real = Path.Combine(_dir.FullName, "real.txt"), link = Path.Combine(_dir.FullName, "link.txt");
        File.WriteAllText(real, "a\nb\n");
        File.CreateSymbolicLink(link, real);
        Assert.Equal("is a symbolic link", Assert.Throws<UnsafeFileException>(() => SafeFiles.ReadAllBytes(link, 100)).Reason);
        Assert.Throws<UnsafeFileException>(() => SafeFiles.ReadAllBytes(real, 2));
        Assert.Throws<UnsafeFileException>(() => SafeFiles.Sha256(real, 3));
        Assert.Equal(BundleManifests.Sha256(real), SafeFiles.Sha256(real, 4));
        Assert.Equal("is not a regular file", Assert.Throws<UnsafeFileException>(() => SafeFiles.OpenRegular(_dir.FullName, 100)).Reason);
        var e = Assert.Throws<InvalidDataException>(() => Vocabulary.Parse(new byte[] { (byte)'a', 0xff, (byte)'\n' }, "vocab.txt"));
        Assert.Contains("UTF-8", e.Message);
        Assert.Equal(2, Vocabulary.Parse("a\nb\n"u8.ToArray(), "v").Count);
        Assert.DoesNotContain("sec ret", Assert.Throws<InvalidDataException>(() => Vocabulary.Parse("a\nsec ret\n"u8.ToArray(), "v")).Message);
    }
}
