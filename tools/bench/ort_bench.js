// ONNX Runtime side of tools/bench/bench_nest.py: times one ONNX model on one raw NCHW float input.
// usage: node ort_bench.js MODEL.onnx INPUT.f32 THREADS ITERS OUT_LOGITS.f32
// Prints one JSON line {"ms_per_image": median, ...} and writes the first output raw (float32).
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function fail(msg) {
  process.stderr.write(`ort_bench: ${msg}\n`);
  process.exit(1);
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.length !== 5) fail('usage: node ort_bench.js MODEL.onnx INPUT.f32 THREADS ITERS OUT_LOGITS.f32');
  const [modelPath, inputPath, threadsArg, itersArg, outPath] = argv;
  const threads = Number(threadsArg), iters = Number(itersArg);
  if (!Number.isInteger(threads) || threads < 1 || !Number.isInteger(iters) || iters < 1)
    fail(`THREADS and ITERS must be positive integers (got '${threadsArg}', '${itersArg}')`);

  const buf = fs.readFileSync(inputPath);
  if (buf.length % 12 !== 0) fail(`${inputPath}: ${buf.length} bytes is not a [1, 3, S, S] float32 tensor`);
  const side = Math.round(Math.sqrt(buf.length / 12));
  if (side * side * 12 !== buf.length) fail(`${inputPath}: ${buf.length} bytes is not a square 3-channel image`);
  // copy into an aligned buffer: a Buffer may start at any byte offset of Node's pool
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));

  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data, [1, 3, side, side])};
  const outName = session.outputNames[0];

  let out = await session.run(feeds); // warm-up: allocations, kernel selection
  const t = [];
  for (let i = 0; i < iters; i++) {
    const t0 = process.hrtime.bigint();
    out = await session.run(feeds);
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const logits = out[outName].data;
  fs.writeFileSync(outPath, Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
  const s = [...t].sort((a, b) => a - b);
  const median = s.length % 2 ? s[(s.length - 1) / 2] : 0.5 * (s[s.length / 2 - 1] + s[s.length / 2]);
  const mean = t.reduce((a, b) => a + b, 0) / t.length;
  const version = require('onnxruntime-node/package.json').version;
  console.log(JSON.stringify({
    ms_per_image: +median.toFixed(3), ms_mean: +mean.toFixed(3), ms_min: +s[0].toFixed(3),
    threads, iters, onnxruntime: version,
  }));
}

main().catch((e) => fail(e && e.message ? e.message : String(e)));
