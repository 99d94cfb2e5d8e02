// Runs the `--dev` start from source on free ports (tests spawn it with `node --import tsx`).
import { startDev } from '../../src/main.js';

await startDev({ proxyPort: 0, adminPort: 0, asPort: 0, upstreamPort: 0, mcpPort: 0 });
