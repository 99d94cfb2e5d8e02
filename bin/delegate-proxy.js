#!/usr/bin/env node
// Checked before anything else loads: on an older Node the compiled code or its dependencies
// (undici 8 needs 22.19) would fail with a stack trace that names neither the cause nor the fix.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(
    `delegate-proxy needs Node.js 22.19 or newer (24 LTS recommended); this is Node.js ${process.versions.node}\n`,
  );
  process.exit(1);
}

// V8 sizes its young generation when the process starts; v8.setFlagsFromString() later has no effect
// on it (measured), and glibc reads its settings only then too. So the CLI replaces its own process
// image with one that has the flag and the environment below, whatever started it (the image's
// ENTRYPOINT, npm start, npx, node bin/delegate-proxy.js): same PID, so signals and PID 1 behave as
// before, and no second process. A flag given on the command line or in NODE_OPTIONS, or a variable
// already in the environment, wins. docs/operations.md "Memory".
// --max-semi-space-size=4: Node 24 lets each semi-space grow to 64 MB on a large host (+95 MB of RSS
// in the churn soak); at 4 MB one user at 1,000 req/s uses about 15 MB less than at 16, for 0.76x ->
// 0.80x of a bare http-proxy's CPU per warm request (bench/process-memory.ts, bench/run.ts).
const MEMORY_FLAGS = ['--max-semi-space-size=4'];
// glibc reads its malloc settings when the process starts; an operator's own value wins, and musl
// ignores them. MALLOC_ARENA_MAX=2: 2 arenas instead of one per thread (V8's worker threads each get
// one), about 1 MB less idle RSS. Fixed 128 KiB mmap and trim thresholds: glibc otherwise raises both
// as the process frees large blocks, and then keeps up to twice the raised threshold at its heap's
// top; one user at 1,000 req/s 96.4 -> 93.4 MB and churn 122.7 -> 116.1 MB (means of three runs
// each, bench/process-memory.ts at half length), at the same CPU per request.
const MEMORY_ENV = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};
// Start-up runs code that is hot only while Node resolves paths and modules and the config is
// checked; V8 would optimize it, and the optimizing compilers' own code and memory then stay resident:
// +11 MB of idle RSS measured on Node 24. The compilers are off until the proxy listens, then TurboFan
// and Sparkplug on again for the request path. On the re-executed command line they are off from the
// first line of bootstrap (Node resolving this file's path alone gets a function optimized); without
// a re-exec, from here. Left alone when the command line chooses the tiers itself.
const TIERS = ['maglev', 'turbofan', 'sparkplug'];
// Maglev, V8's middle tier, stays off for good: hot request code still reaches TurboFan, and without
// Maglev's code and compile memory RSS under load is about 5 MB lower at the same CPU per request
// (0.74x of a bare http-proxy warm, 0.91x for an MCP call, with --max-semi-space-size=4).
const TIERS_AFTER_START = ['turbofan', 'sparkplug'];
const REEXECUTED = 'DELEGATE_PROXY_REEXECUTED';
const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
const marker = process.env[REEXECUTED];
const reexecuted = marker === 'tiers-chosen' || marker === 'tiers-off';
delete process.env[REEXECUTED];
// The re-executed command line holds this file's own tier flags, so whether the operator chose the
// tiers travels from the first process image in the marker's value.
const tiersChosen = reexecuted
  ? marker === 'tiers-chosen'
  : given.some((g) => /^--(no-)?(maglev|turbofan|sparkplug|opt|jitless)\b/.test(g));
const missing = MEMORY_FLAGS.filter((flag) => !given.some((g) => g.startsWith(flag.split('=')[0])));
const missingEnv = Object.entries(MEMORY_ENV).filter(([name]) => process.env[name] === undefined);
if (!reexecuted && missing.length + missingEnv.length > 0 && typeof process.execve === 'function') {
  const tiersOff = tiersChosen ? [] : TIERS.map((t) => `--no-${t}`);
  process.execve(
    process.execPath,
    [process.execPath, ...missing, ...tiersOff, ...process.execArgv, ...process.argv.slice(1)],
    {
      ...process.env,
      ...Object.fromEntries(missingEnv),
      [REEXECUTED]: tiersChosen ? 'tiers-chosen' : 'tiers-off',
    },
  );
}

const { setFlagsFromString } = await import('node:v8');
if (!tiersChosen && !reexecuted) for (const t of TIERS) setFlagsFromString(`--no-${t}`);

// dist/cli.js: src/main.ts bundled (scripts/bundle.mjs).
const { main } = await import('../dist/cli.js');
await main(process.argv.slice(2));
if (!tiersChosen) for (const t of TIERS_AFTER_START) setFlagsFromString(`--${t}`);
