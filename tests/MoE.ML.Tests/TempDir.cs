namespace MoE.ML.Tests;

/// <summary>A temporary folder deleted at dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public DirectoryInfo Info { get; } = Directory.CreateTempSubdirectory("moe-ml-test-");

    public string File(string name) => Path.Combine(Info.FullName, name);

    public void Dispose() => Info.Delete(recursive: true);
}
