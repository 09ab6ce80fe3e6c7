// Preloaded by scripts/conformance.sh (node --import ./node20.mjs): on a Node
// without fs.globSync, the suite's own import of "fs" resolves to
// fs-globsync.mjs instead. On Node 22 and later this does nothing.
import fs from 'node:fs';
import { register } from 'node:module';

if (typeof fs.globSync !== 'function') {
  register('./node20-hooks.mjs', import.meta.url);
}
