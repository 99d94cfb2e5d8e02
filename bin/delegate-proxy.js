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
const { main } = await import('../dist/main.js');
main(process.argv.slice(2));
