// Atomic writes: a file is written beside its destination under a temporary name, flushed, then renamed into place; a
// folder is built beside its destination and swapped in by one atomic exchange, so the final path is never missing.
// Temporary names carry the writer's process id, and leftovers of dead processes are removed by the next writer.
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Bert4Rec.Contracts;

public static class AtomicFile
{
    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> so that readers see the old file or the whole new one, never a part.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        string tmp = TempPathFor(path);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>Streams into a temporary file through <paramref name="write"/>, then renames it onto <paramref name="path"/>.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        string tmp = TempPathFor(path);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>A fresh temporary path in the same directory as <paramref name="path"/> (so the rename stays on one file system).</summary>
    public static string TempPathFor(string path)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(dir);
        RemoveStale(full);
        return Path.Combine(dir, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
    }

    /// <summary>A fresh temporary folder name beside <paramref name="target"/> (same file system), tagged with this process id.</summary>
    public static string TempFolderFor(string target)
    {
        string full = Path.GetFullPath(target).TrimEnd('/');
        RemoveStale(full);
        return $"{full}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int renameat2(int olddirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string oldpath, int newdirfd,
                                        [MarshalAs(UnmanagedType.LPUTF8Str)] string newpath, uint flags);   // int renameat2(int, const char*, int, const char*, unsigned)
    private const int AT_FDCWD = -100;
    private const uint RENAME_EXCHANGE = 2;

    /// <summary>
    /// Puts the folder <paramref name="source"/> at <paramref name="target"/>. A new target is one rename; an existing one
    /// is swapped with the new folder by one atomic exchange (renameat2 RENAME_EXCHANGE) and the old content removed
    /// after, so readers and a crash see the old folder or the new one, never none. Where the file system cannot
    /// exchange, the old folder is moved aside (target.old-PID-ID) first, and the next writer puts it back if a crash
    /// left the target missing.
    /// </summary>
    public static void ReplaceDirectory(string source, string target)
    {
        target = Path.GetFullPath(target).TrimEnd('/');
        RemoveStale(target);
        if (!Directory.Exists(target)) { Directory.Move(source, target); return; }
        if (OperatingSystem.IsLinux())
        {
            try
            {
                if (renameat2(AT_FDCWD, source, AT_FDCWD, target, RENAME_EXCHANGE) == 0)
                {
                    Directory.Delete(source, true);       // now the old content
                    return;
                }
            }
            catch (EntryPointNotFoundException) { }
        }
        string old = $"{target}.old-{Environment.ProcessId}-{Guid.NewGuid():N}";
        Directory.Move(target, old);
        try { Directory.Move(source, target); }
        catch { Directory.Move(old, target); throw; }
        Directory.Delete(old, true);
    }

    private static readonly Regex Leftover = new(@"\.(tmp|old)-(?<pid>[0-9]+)-[0-9a-f]{32}$", RegexOptions.CultureInvariant);

    /// <summary>
    /// Removes temporary files and folders beside <paramref name="target"/> (for any target in its folder) that belong to
    /// processes no longer running; if the target itself is missing and a dead writer left it moved aside, puts it back.
    /// </summary>
    public static void RemoveStale(string target)
    {
        string full = Path.GetFullPath(target).TrimEnd('/');
        string? dir = Path.GetDirectoryName(full);
        if (dir == null || !Directory.Exists(dir) || !OperatingSystem.IsLinux()) return;
        foreach (var entry in Directory.EnumerateFileSystemEntries(dir))
        {
            var m = Leftover.Match(entry);
            if (!m.Success || !int.TryParse(m.Groups["pid"].Value, out int pid) || pid == Environment.ProcessId || Directory.Exists($"/proc/{pid}")) continue;
            try
            {
                if (m.Groups[1].Value == "old" && entry.StartsWith(full + ".old-", StringComparison.Ordinal) && !Path.Exists(full))
                    Directory.Move(entry, full);
                else if (Directory.Exists(entry)) Directory.Delete(entry, true);
                else File.Delete(entry);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    private static void TryDelete(string p)
    {
        try { if (File.Exists(p)) File.Delete(p); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
