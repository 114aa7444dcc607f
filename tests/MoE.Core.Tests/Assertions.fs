/// Helpers for exception assertions: the exact exception type, the parameter it names, and message fragments.
module MoE.Core.Tests.Assertions

open System
open Xunit

/// Runs f, expects exactly exception type 'E, returns it.
let throws<'E when 'E :> exn> (f: unit -> unit) : 'E = Assert.Throws<'E>(Action f)

/// Expects exactly 'E (an ArgumentException or subclass) naming `param`, whose message contains every fragment.
let throwsArg<'E when 'E :> ArgumentException> (param: string) (fragments: string list) (f: unit -> unit) =
    let e = throws<'E> f
    Assert.Equal(param, e.ParamName)

    for s in fragments do
        Assert.Contains(s, e.Message)

/// Expects exactly 'E whose message contains every fragment.
let throwsWith<'E when 'E :> exn> (fragments: string list) (f: unit -> unit) =
    let e = throws<'E> f

    for s in fragments do
        Assert.Contains(s, e.Message)
