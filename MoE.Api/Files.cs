using Microsoft.FSharp.Core;
using Core = MoE.Core;

namespace MoE.Api;

/// <summary>Atomic file writes: the content goes to a temporary file in the same folder, is flushed, and is renamed
/// over the target, so a crash, a kill or a full disk leaves the previous file (or none), never a partial one.</summary>
public static class AtomicFile
{
    /// <summary>Writes a file through <paramref name="fill"/>, atomically.</summary>
    /// <param name="path">The target (created or replaced); its folder must exist.</param>
    /// <param name="fill">Writes the content to the stream it is given (and does not close it).</param>
    /// <exception cref="IOException">The write or the rename failed; the target is unchanged.</exception>
    /// <exception cref="UnauthorizedAccessException">The folder is not writable, or the target is a directory.</exception>
    public static void Write(string path, Action<Stream> fill)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(fill);
        Core.AtomicFile.Write(path, FuncConvert.FromAction(fill));
    }

    /// <summary>Writes text as UTF-8 (no byte-order mark), atomically.</summary>
    /// <param name="path">The target (created or replaced).</param>
    /// <param name="text">The content.</param>
    public static void WriteAllText(string path, string text)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(text);
        Core.AtomicFile.WriteAllText(path, text);
    }
}
