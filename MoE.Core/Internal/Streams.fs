/// The named random streams of a fit. Every random choice draws from its own xoshiro256** stream
/// <c>Rng.stream seed id</c>, so adding a restart or an SGD epoch never shifts another choice's draws.
/// <remarks>
/// The ids are the numbers the code used before the streams were named, so seeded fits are unchanged. Where two
/// uses can meet in one fit the ids are disjoint: restarts beyond the fifth draw from a range of their own
/// (before, restart 7 shared the subsample's stream). Ids that coincide belong to methods that never run
/// together: the SGD solver's start (3) and restart 3 (the subspace solver), the reservoir (fitChunks, subspace
/// solver only) and the SGD order. A test checks that no restart meets the subsample or the reservoir.
/// </remarks>
module internal MoE.Core.Streams

/// Restart r of the subspace L4 solver: r for the first five (the legacy ids), 10⁶ + r after them.
let l4Restart (restart: int) : int64 =
    if restart < 5 then
        int64 restart
    else
        1_000_000L + int64 restart

/// The SGD solver's random start A ~ N(0, 1/d).
[<Literal>]
let SgdL4Start = 3L

/// The baselines' random start (ℓ2: A, W; EM: A, W).
[<Literal>]
let RandomStart = 5L

/// The seeded subsample of the sign search and of the provisional σ run.
[<Literal>]
let Subsample = 7L

/// The order in which SGD visits the samples, epoch after epoch.
[<Literal>]
let SgdOrder = 11L

/// The reservoir sample of a fit from chunks (the subspace solver only, so never beside SgdOrder).
[<Literal>]
let Reservoir = 11L

/// The random starts of the tensor power method (spectral and whitened-L4 initializers).
[<Literal>]
let TensorPower = 2_000_001L

/// The random orthonormal frames of the subspace multi-start initializer.
[<Literal>]
let SubspaceStarts = 2_000_002L

/// The random start s of EM: the first is the baselines' legacy stream (so a single-start EM is unchanged), the
/// others a range of their own, 3·10⁶ + s.
let emStart (start: int) : int64 =
    if start = 0 then RandomStart else 3_000_000L + int64 start

/// The screening and validation subsamples of the candidate selection.
[<Literal>]
let Screening = 2_000_003L

/// The random intercepts of a generated ground truth of the general model.
[<Literal>]
let Intercepts = 2_000_004L

/// The segment start s of the likelihood (a random direction of the gate's columns and random cut points): a range of
/// its own, 4·10⁶ + s.
let segmentStart (start: int) : int64 = 4_000_000L + int64 start

/// The minimal-sample start s of the likelihood (each expert through q random rows): a range of its own, 5·10⁶ + s.
let sampleStart (start: int) : int64 = 5_000_000L + int64 start

/// The randomised PIT of a count or a 0/1 outcome in a model's check on held-out rows (Calibration.check).
[<Literal>]
let Pit = 2_000_005L

/// The random slices and mixtures of the spectral start of the GLM families (GlmSpectral, docs/math.md §12.6).
[<Literal>]
let GlmSpectral = 2_000_006L
