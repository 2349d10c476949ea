// Opening files a service must not trust: regular files only (a symlink, FIFO, device or directory is refused before a
// byte is read, and opening never blocks), the size checked before reading, hashing streamed with a bound.
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace Bert4Rec.Contracts;

/// <summary>A file that is not a plain regular file of an acceptable size; the message names only the file's own name.</summary>
public sealed class UnsafeFileException(string fileName, string reason) : IOException($"{fileName}: {reason}")
{
    public string FileName { get; } = fileName;
    public string Reason { get; } = reason;
}

public static class SafeFiles
{
    private const int O_RDONLY = 0, O_NONBLOCK = 0x800, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000;   // Linux values
    private const int S_IFMT = 0xF000, S_IFREG = 0x8000;
    private const int ELOOP = 40, ENOENT = 2, EACCES = 13;

    [DllImport("libc", SetLastError = true)]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);   // int open(const char*, int)

    [DllImport("libc", SetLastError = true)]
    private static extern int fstat(int fd, byte[] buf);                                               // int fstat(int, struct stat*)

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);

    /// <summary>
    /// Opens <paramref name="path"/> for reading if its last component is a regular file (not a symlink, FIFO, socket,
    /// device or directory) of at most <paramref name="maxBytes"/>; returns the stream and the size seen at open time.
    /// </summary>
    public static (FileStream Stream, long Size) OpenRegular(string path, long maxBytes)
    {
        string name = Path.GetFileName(path);
        if (!OperatingSystem.IsLinux())
        {
            var info = new FileInfo(path);
            if (!info.Exists || info.LinkTarget != null) throw new UnsafeFileException(name, info.Exists ? "is a symbolic link" : "missing");
            if (info.Length > maxBytes) throw new UnsafeFileException(name, $"larger than the limit of {maxBytes} bytes");
            return (new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16), info.Length);
        }
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new UnsafeFileException(name, errno switch
            {
                ELOOP => "is a symbolic link",
                ENOENT => "missing",
                EACCES => "not readable",
                _ => $"cannot be opened (errno {errno})",
            });
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            var st = new byte[256];
            if (fstat(fd, st) != 0) throw new UnsafeFileException(name, "cannot be examined");
            // struct stat on Linux: st_mode at 24 (x86-64) or 16 (arm64, the generic layout); st_size at 48 on both
            int mode = BitConverter.ToInt32(st, RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 24 : 16);
            long size = BitConverter.ToInt64(st, 48);
            if ((mode & S_IFMT) != S_IFREG) throw new UnsafeFileException(name, "is not a regular file");
            if (size > maxBytes) throw new UnsafeFileException(name, $"larger than the limit of {maxBytes} bytes");
            return (new FileStream(handle, FileAccess.Read, 1 << 16), size);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Reads a whole regular file of at most <paramref name="maxBytes"/>; a file that changes size while read is refused.</summary>
    public static byte[] ReadAllBytes(string path, long maxBytes)
    {
        var (fs, size) = OpenRegular(path, maxBytes);
        using (fs)
        {
            var bytes = new byte[size];
            fs.ReadExactly(bytes);
            if (fs.ReadByte() >= 0) throw new UnsafeFileException(Path.GetFileName(path), "grew while being read");
            return bytes;
        }
    }

    /// <summary>
    /// Lower-case hex SHA-256 of a regular file that must be exactly <paramref name="expectedSize"/> bytes (checked before
    /// reading); reads at most that many bytes plus one.
    /// </summary>
    public static string Sha256(string path, long expectedSize)
    {
        var (fs, size) = OpenRegular(path, expectedSize);
        using (fs)
        {
            string name = Path.GetFileName(path);
            if (size != expectedSize) throw new UnsafeFileException(name, $"size {size} bytes differs from the expected {expectedSize}");
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buf = new byte[1 << 20];
            long left = size;
            while (left > 0)
            {
                int n = fs.Read(buf, 0, (int)Math.Min(buf.Length, left));
                if (n == 0) throw new UnsafeFileException(name, "shrank while being read");
                sha.AppendData(buf, 0, n);
                left -= n;
            }
            if (fs.ReadByte() >= 0) throw new UnsafeFileException(name, "grew while being read");
            return Convert.ToHexStringLower(sha.GetHashAndReset());
        }
    }

    /// <summary>True when <paramref name="path"/> itself (not what it points to) is a symbolic link.</summary>
    public static bool IsSymbolicLink(string path) => new FileInfo(path).LinkTarget != null || new DirectoryInfo(path).LinkTarget != null;
}
