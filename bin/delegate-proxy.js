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
// on it (measured). So the CLI replaces its own process image with one that has the flag, whatever
// started it (the image's ENTRYPOINT, npm start, npx, node bin/delegate-proxy.js): same PID, so
// signals and PID 1 behave as before, and no second process. A flag given on the command line or in
// NODE_OPTIONS wins. docs/operations.md "Memory".
// --max-semi-space-size=16: Node 24 lets each semi-space grow to 64 MB on a large host, +95 MB of RSS
// in the churn soak, for no measured throughput gain over 16 MB.
const MEMORY_FLAGS = ['--max-semi-space-size=16'];
const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
const missing = MEMORY_FLAGS.filter((flag) => !given.some((g) => g.startsWith(flag.split('=')[0])));
if (missing.length > 0 && typeof process.execve === 'function') {
  process.execve(process.execPath, [process.execPath, ...missing, ...process.execArgv, ...process.argv.slice(1)]);
}

// Start-up runs code that is hot only while modules load and the config is checked (path resolution,
// schema building); V8 would optimize it with Maglev and TurboFan, and those compilers' own code and
// memory stay resident: +9 MB of idle RSS measured on Node 24. They are off until the proxy listens,
// then on again for the request path. Left alone when the command line chooses the tiers itself.
const { setFlagsFromString } = await import('node:v8');
const tiersChosen = given.some((g) => /^--(no-)?(maglev|turbofan|opt|jitless)\b/.test(g));
if (!tiersChosen) for (const flag of ['--no-maglev', '--no-turbofan']) setFlagsFromString(flag);

const { main } = await import('../dist/main.js');
await main(process.argv.slice(2));
if (!tiersChosen) for (const flag of ['--maglev', '--turbofan']) setFlagsFromString(flag);
