using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("MoE.Api.Tests")]
