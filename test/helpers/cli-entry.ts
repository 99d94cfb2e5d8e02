// Runs the CLI from source (tests spawn it with `node --import tsx`), so no build is needed.
import { main } from '../../src/main.js';

await main(process.argv.slice(2));
