// Scores an exported model with ONNX Runtime Web (its WebAssembly backend, here in Node) and compares every output
// with the toolkit's own predictions (`moe predict`), by the same rule as tests/MoE.Onnx.Tests/Agreement.cs:
// |onnx - toolkit| / (|toolkit| + s), s the output's rounding scale (the sum of |terms| it is computed from, through
// the activation's Lipschitz constant; p_i (T_i + max_j T_j) for a gate probability); a value below the smallest
// normal only needs the runtime's to be below it too (subnormals are flushed). Bounds: 1e-12 in double, 1e-5 in
// float32. Usage: node check.mjs model.json model.onnx data.csv predictions.csv double|float32
import * as ort from 'onnxruntime-web';
import { readFileSync } from 'node:fs';

const [modelPath, onnxPath, dataPath, predictionsPath, precision] = process.argv.slice(2);
if (!['double', 'float32'].includes(precision)) {
  console.error('usage: node check.mjs model.json model.onnx data.csv predictions.csv double|float32');
  process.exit(2);
}
const float32 = precision === 'float32';
const model = JSON.parse(readFileSync(modelPath, 'utf8'));
const csv = (path) => readFileSync(path, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
const k = model.k, d = model.d;
const experts = model.expertInputs ?? [...Array(d).keys()];
const gateColumns = model.gateInputs ?? [...Array(d).keys()];
const b = model.regressorIntercepts ?? Array(k).fill(0);
const c = [...(model.gatingIntercepts ?? Array(k - 1).fill(0)), 0];
const slope = model.activation.slope ?? 0;
const lipschitz = { sigmoid: 0.25, 'leaky-relu': Math.max(1, Math.abs(slope)) }[model.activation.name] ?? 1;
const rows = csv(dataPath).map((r) => r.slice(0, d));
const expected = csv(predictionsPath);
const n = rows.length;

ort.env.wasm.numThreads = 1;
const session = await ort.InferenceSession.create(readFileSync(onnxPath), { executionProviders: ['wasm'] });
const flat = (float32 ? Float32Array : Float64Array).from(rows.flat());
const out = await session.run({ x: new ort.Tensor(float32 ? 'float32' : 'float64', flat, [n, d]) });
const tiny = float32 ? 1.1754943508222875e-38 : 2.2250738585072014e-308;
let worst = 0, where = '';
const check = (got, want, scale, what, row) => {
  const e = Math.abs(want) < tiny ? (Math.abs(got) < tiny ? 0 : Infinity) : Math.abs(got - want) / (Math.abs(want) + scale);
  if (!(e <= worst)) { worst = Number.isNaN(e) ? Infinity : e; where = `${what} of row ${row}: onnx ${got}, toolkit ${want}`; }
};
for (let r = 0; r < n; r++) {
  const x = rows[r];
  const sMu = [], t = [];
  for (let i = 0; i < k; i++) {
    let sE = Math.abs(b[i]), sG = Math.abs(c[i]);
    experts.forEach((col, j) => { sE += Math.abs(model.regressors[i][j] * x[col]); });
    if (i < k - 1) gateColumns.forEach((col, j) => { sG += Math.abs(model.gating[i][j] * x[col]); });
    sMu.push(lipschitz * sE);
    t.push(sG);
  }
  const tMax = Math.max(...t);
  let sMean = 0;
  for (let i = 0; i < k; i++) {
    const mu = expected[r][1 + i], p = expected[r][1 + k + i];
    const sP = p * (t[i] + tMax);
    sMean += p * sMu[i] + Math.abs(mu) * sP;
    check(out.expert_means.data[r * k + i], mu, sMu[i], `expert_means[${i}]`, r);
    check(out.gate.data[r * k + i], p, sP, `gate[${i}]`, r);
  }
  check(out.mean.data[r], expected[r][0], sMean, 'mean', r);
}
const bound = float32 ? 1e-5 : 1e-12;
const line = `onnxruntime-web ${ort.env.versions.web} (wasm), ${precision}: ${n} rows, ${k} experts, ${model.activation.name}; ` +
  `largest scaled difference ${worst.toExponential(3)} (bound ${bound})`;
if (worst <= bound) {
  console.log(line);
} else {
  console.error(`${line} at ${where}`);
  process.exit(1);
}
