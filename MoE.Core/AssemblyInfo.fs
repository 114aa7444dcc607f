namespace MoE.Core

open System.Runtime.CompilerServices

[<assembly: InternalsVisibleTo("MoE.Core.Tests")>]
[<assembly: InternalsVisibleTo("MoE.Bench")>]
do ()
