namespace MoE.Api.Tests;

/// <summary>A temporary folder deleted at dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public DirectoryInfo Info { get; } = Directory.CreateTempSubdirectory("moe-api-test-");

    public string File(string name) => Path.Combine(Info.FullName, name);

    public void Dispose() => Info.Delete(recursive: true);
}
