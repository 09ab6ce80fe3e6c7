// The suite's runner imports fs.globSync, which Node 20 lacks; only its
// tier-check subcommand calls it. This module stands in for "fs" inside the
// suite on such a Node: everything of node:fs, plus a globSync that refuses.
export * from 'node:fs';

export function globSync() {
  throw new Error('fs.globSync needs Node 22 or later (only the suite\'s tier-check subcommand uses it)');
}
