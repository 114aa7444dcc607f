namespace MoE.Core

open System
open System.IO
open System.Text

/// <summary>Writes files atomically: the content goes to a temporary file in the same folder, is flushed to the
/// device, and then renamed over the target. A crash, a kill or a full disk during the write leaves the previous
/// file (or none) under the target's name, never a partial one; the temporary file is removed on failure.</summary>
/// <remarks>The rename is atomic on every file system .NET runs on when source and target share a folder
/// (rename(2) on POSIX, MoveFileEx with replace on Windows). The folder must exist.</remarks>
[<RequireQualifiedAccess>]
module AtomicFile =

    /// <summary>Writes a file through <paramref name="fill"/>, atomically.</summary>
    /// <param name="path">The target file (created or replaced).</param>
    /// <param name="fill">Writes the content to the stream it is given (and does not close it).</param>
    /// <exception cref="T:System.IO.IOException">The write or the rename failed (the target is unchanged).</exception>
    /// <exception cref="T:System.UnauthorizedAccessException">The folder is not writable, or the target is a
    /// directory.</exception>
    [<CompiledName("Write")>]
    let write (path: string) (fill: Stream -> unit) : unit =
        Guard.notNull "path" path
        Guard.notNull "fill" fill
        let full = Path.GetFullPath path

        if Directory.Exists full then
            raise (UnauthorizedAccessException(Text.format "'%s' is a directory, not a file." [| box path |]))

        let folder = Path.GetDirectoryName full

        let temp =
            Path.Combine(
                folder,
                Text.format ".%s.%s.tmp" [| box (Path.GetFileName full); box (Guid.NewGuid().ToString "N") |]
            )

        try
            do
                use stream =
                    new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 <<< 16)

                fill stream
                stream.Flush true

            File.Move(temp, full, true)
        with _ ->
            try
                File.Delete temp
            with _ ->
                ()

            reraise ()

    /// <summary>Writes text as UTF-8 (no byte-order mark), atomically.</summary>
    /// <param name="path">The target file.</param>
    /// <param name="text">The content.</param>
    [<CompiledName("WriteAllText")>]
    let writeAllText (path: string) (text: string) : unit =
        Guard.notNull "text" text

        write path (fun stream ->
            let bytes = UTF8Encoding(false).GetBytes text
            stream.Write(bytes, 0, bytes.Length))
