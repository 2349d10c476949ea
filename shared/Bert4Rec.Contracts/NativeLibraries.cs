// Finds the native libraries that scripts/setup.sh puts in the git-ignored .native folder, for NativeLibrary resolvers.
using System.Reflection;
using System.Runtime.InteropServices;

namespace Bert4Rec.Contracts;

public static class NativeLibraries
{
    /// <summary>Environment variable that overrides where native libraries are looked for.</summary>
    public const string DirectoryVariable = "BERT4REC_NATIVE_DIR";
    public const string SetupCommand = "scripts/setup.sh (run by ./bert4rec on every call)";

    /// <summary>
    /// The folder holding our native libraries: $BERT4REC_NATIVE_DIR, else the first `.native` folder found walking up from the
    /// application's base directory (the repository root for builds inside the clone), else null.
    /// </summary>
    public static string? FindDirectory()
    {
        var env = Environment.GetEnvironmentVariable(DirectoryVariable);
        if (!string.IsNullOrEmpty(env) && Directory.Exists(env)) return Path.GetFullPath(env);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, ".native");
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>Full path of <paramref name="fileName"/> in the native folder, or null when it is not there.</summary>
    public static string? Find(string fileName)
    {
        var dir = FindDirectory();
        if (dir == null) return null;
        var p = Path.Combine(dir, fileName);
        return File.Exists(p) ? p : null;
    }

    /// <summary>
    /// Loads <paramref name="fileName"/> from the native folder, or throws <see cref="DllNotFoundException"/> whose message names
    /// the file, where it was looked for and the command that installs it.
    /// </summary>
    public static IntPtr Load(string fileName)
    {
        var path = Find(fileName);
        if (path == null)
            throw new DllNotFoundException(
                $"native library '{fileName}' not found (looked in ${DirectoryVariable} and in a .native folder above {AppContext.BaseDirectory}); " +
                $"install it with {SetupCommand}");
        try { return NativeLibrary.Load(path); }
        catch (DllNotFoundException e)
        {
            throw new DllNotFoundException($"native library '{path}' exists but could not be loaded: {e.Message}. Re-run {SetupCommand}.", e);
        }
    }

    /// <summary>
    /// Installs a resolver on <paramref name="assembly"/> that maps <paramref name="libraryName"/> to <paramref name="fileName"/> in the native folder.
    /// Safe to call more than once per assembly; only the first call installs.
    /// </summary>
    public static void Register(Assembly assembly, string libraryName, string fileName)
    {
        lock (Registered)
        {
            if (!Registered.TryGetValue(assembly, out var map))
            {
                map = new Dictionary<string, string>(StringComparer.Ordinal);
                Registered[assembly] = map;
                var captured = map;
                NativeLibrary.SetDllImportResolver(assembly, (name, _, _) =>
                {
                    string? file;
                    lock (Registered) captured.TryGetValue(name, out file);
                    return file == null ? IntPtr.Zero : Load(file);
                });
            }
            map[libraryName] = fileName;
        }
    }

    private static readonly Dictionary<Assembly, Dictionary<string, string>> Registered = new();
}
